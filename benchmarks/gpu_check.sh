#!/usr/bin/env bash
# The GPU check (book/performance.md): every GPU measurement of the book in one script, under 10 minutes in all.
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]     # default RESULTS_DIR: benchmarks/results
#   PHASES=pacgan bash benchmarks/gpu_check.sh     # one phase (or a comma list): tests, loop, batched, pacgan
#
# It refuses to run without a CUDA device (the CUDA tests would only skip). Phases, each with its own time limit:
#   tests    the tests whose names contain "cuda" (pytest -k cuda): bf16 autocast and torch.compile train, the
#            batched seeds equal separate runs on CUDA and train the same under both kinds of CUDA graphs, and with
#            2+ GPUs torchrun + NCCL + SyncBatchNorm train;
#   loop     the loop benchmark against the seed's loop on this GPU (469 steps = one MNIST epoch per run; every fast
#            path incl. bf16 for the DCGAN), then torch.compile: RESULTS_DIR/bench_loop_cuda{,_compile}.json;
#   batched  K seeds as one batched model against K separate runs, K = 1, 10, 50, eager and with the whole step
#            as one CUDA graph (gantricks.batched_graph): RESULTS_DIR/bench_batched_cuda{,_graphs}.json;
#   pacgan   PacGAN's plain-GAN protocol at its full budget, 10 seeds x 400,000 steps on ring8 and on grid25 (the two
#            datasets as two processes side by side, each dataset's seeds as one batched model: the whole step as a
#            CUDA graph (of compiled G and D calls, else of eager ones), else torch.compile's CUDA graphs, else
#            eager): book/results/pacgan_2d_gpu.json. Its batches checkpoint every 20,000 steps
#            into book/results/pacgan_2d_gpu_<dataset>.runs/, so if its time limit cuts them short,
#            `PHASES=pacgan bash benchmarks/gpu_check.sh` resumes them (set PACGAN_LIMIT, seconds, for a longer try).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then PY=python3; fi
RESULTS=${1:-benchmarks/results}
PHASES=${PHASES:-tests,loop,batched,pacgan}
PACGAN_LIMIT=${PACGAN_LIMIT:-185}
mkdir -p "$RESULTS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'EOF' || exit 1
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device here; nothing to check")
for i in range(torch.cuda.device_count()):
    print(f"gpu_check: cuda:{i} = {torch.cuda.get_device_name(i)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF

begin=$SECONDS
status=0
phase() { [[ ",$PHASES," == *",$1,"* ]]; }
run() {  # run LIMIT LABEL COMMAND...: one timed step; a failure is reported and remembered, the script goes on
  local limit=$1 label=$2 start=$SECONDS rc
  shift 2
  echo "=== $label (limit ${limit} s)"
  timeout "$limit" "$@"
  rc=$?
  echo "=== $label: $((SECONDS - start)) s, exit $rc"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

if phase tests; then
  run 130 "CUDA tests (pytest -k cuda)" "$PY" -m pytest -q -p no:cacheprovider -k cuda tests/
fi

if phase loop; then
  run 100 "loop benchmark, every fast path but torch.compile" "$PY" benchmarks/bench_loop.py --device cuda \
    --repeats 3 --variants device-data,fused-adam,fused-vs-foreach,set-to-none,sync-every-50,d-call,bf16 \
    --out "$RESULTS/bench_loop_cuda.json"
  # torch.compile apart: its compile times are the least predictable part (the JSON is rewritten after each model)
  run 50 "loop benchmark: torch.compile" "$PY" benchmarks/bench_loop.py --device cuda --repeats 2 \
    --variants compile --out "$RESULTS/bench_loop_cuda_compile.json"
fi

if phase batched; then
  run 50 "batched seeds, eager (K = 1, 10, 50)" "$PY" benchmarks/bench_batched.py --device cuda --ks 1,10,50 \
    --steps 200 --warmup 20 --repeats 2 --separate-max 5 --out "$RESULTS/bench_batched_cuda.json"
  run 75 "batched seeds, the whole step as one CUDA graph (K = 1, 10, 50)" "$PY" benchmarks/bench_batched.py \
    --device cuda --ks 1,10,50 --steps 200 --warmup 20 --repeats 2 --separate-max 5 --compile cuda-graph \
    --out "$RESULTS/bench_batched_cuda_graphs.json"
fi

pacgan() {  # pacgan DATASET: its 10 seeds as one batched model: the whole step as a CUDA graph of compiled G and D
  # calls, else of eager ones, else torch.compile's CUDA graphs, else eager; each try resumes from the last checkpoint
  local out="book/results/pacgan_2d_gpu_$1.json" start=$SECONDS rc=1 left mode
  for mode in cuda-graph-fused cuda-graph reduce-overhead eager; do
    left=$((PACGAN_LIMIT - (SECONDS - start)))
    [ "$left" -gt 10 ] || break
    echo "pacgan $1: --compile $mode (${left} s left)"
    if [ "$mode" = eager ]; then
      timeout "$left" "$PY" benchmarks/pacgan_batched.py --device cuda --configs "$1" --seeds 10 --out "$out"
    else
      timeout "$left" "$PY" benchmarks/pacgan_batched.py --device cuda --configs "$1" --seeds 10 \
        --compile "$mode" --out "$out"
    fi
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then break; fi
    echo "pacgan $1: --compile $mode failed (exit $rc)"
  done
  return "$rc"
}

if phase pacgan; then
  start=$SECONDS
  echo "=== PacGAN's protocol, 10 seeds x 400,000 steps, ring8 and grid25 side by side (limit ${PACGAN_LIMIT} s)"
  pacgan ring8 > "$RESULTS/pacgan_ring8.log" 2>&1 &
  ring=$!
  pacgan grid25 > "$RESULTS/pacgan_grid25.log" 2>&1 &
  grid=$!
  wait "$ring"; rc_ring=$?
  wait "$grid"; rc_grid=$?
  tail -n 12 "$RESULTS/pacgan_ring8.log" "$RESULTS/pacgan_grid25.log"
  parts=()
  for d in ring8 grid25; do [ -f "book/results/pacgan_2d_gpu_$d.json" ] && parts+=("book/results/pacgan_2d_gpu_$d.json"); done
  if [ "${#parts[@]}" -gt 0 ]; then
    "$PY" benchmarks/pacgan_batched.py --merge "${parts[@]}" --out book/results/pacgan_2d_gpu.json
  fi
  echo "=== PacGAN: $((SECONDS - start)) s, exit ring8 $rc_ring, grid25 $rc_grid (124: cut short by the limit;" \
       "rerun PHASES=pacgan to resume)"
  [ "$rc_ring" -eq 0 ] && [ "$rc_grid" -eq 0 ] || status=1
fi

echo "=== gpu_check: $((SECONDS - begin)) s in all, status $status"
exit "$status"
