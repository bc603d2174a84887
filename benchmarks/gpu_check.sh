#!/usr/bin/env bash
# The GPU check (book/performance.md): the CUDA tests, then the loop benchmark on CUDA; under 5 minutes in all.
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]     # default RESULTS_DIR: benchmarks/results
#
# It refuses to run without a CUDA device (the CUDA tests would only skip). The tests are the ones whose names
# contain "cuda" (pytest -k cuda): bf16 autocast and torch.compile train, and with 2+ GPUs torchrun + NCCL +
# SyncBatchNorm train. The benchmark writes RESULTS_DIR/bench_loop_cuda.json and bench_loop_cuda_compile.json
# (every timing, the GPU's name, versions) and prints its tables. Each phase has a time limit, so the whole check
# stays under 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then PY=python3; fi
RESULTS=${1:-benchmarks/results}
mkdir -p "$RESULTS"

"$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device here; nothing to check")
for i in range(torch.cuda.device_count()):
    print(f"gpu_check: cuda:{i} = {torch.cuda.get_device_name(i)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF

start=$SECONDS
echo "=== CUDA tests (pytest -k cuda)"
timeout 100 "$PY" -m pytest -q -p no:cacheprovider -k cuda tests/
echo "=== CUDA tests: $((SECONDS - start)) s"

# torch.compile goes last and apart: its compile times are the least predictable part, and a run cut short by its
# time limit keeps the models it finished (the JSON is rewritten after each model).
start=$SECONDS
echo "=== benchmark (469 steps = one 60,000-image MNIST epoch per run), every fast path but torch.compile"
timeout 120 "$PY" benchmarks/bench_loop.py --device cuda --repeats 3 \
  --variants device-data,fused-adam,fused-vs-foreach,set-to-none,sync-every-50,d-call,bf16 \
  --out "$RESULTS/bench_loop_cuda.json"
echo "=== benchmark: $((SECONDS - start)) s"

start=$SECONDS
echo "=== benchmark: torch.compile"
timeout 70 "$PY" benchmarks/bench_loop.py --device cuda --repeats 2 --variants compile \
  --out "$RESULTS/bench_loop_cuda_compile.json"
echo "=== benchmark, torch.compile: $((SECONDS - start)) s"
