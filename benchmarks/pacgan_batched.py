"""PacGAN's plain-GAN protocol at its full budget, every seed of a dataset trained as one batched model.

The grid is ``book/results/pacgan_2d_grid.json`` (run preset ``pacgan``, 400,000 updates, 100,000 points; "How we
measure" explains the protocol, the "Performance" page the batching). Each config's seeds train together as one
:class:`gantricks.batched.BatchedTrainer` (:func:`gantricks.batched.run_batched`), are evaluated with
:func:`gantricks.experiments.evaluate` (PacGAN's modes / high-quality / KL on 2,500 samples) and written in the
results format of :mod:`gantricks.experiments` (``{"command", "meta", "rows"}``), after each config. A batch
checkpoints every ``--checkpoint-every`` steps into ``OUT`` without ``.json`` plus ``.runs/<config>``, so a run cut
short by a time limit resumes where it stopped when the same command is run again; configs with rows already in
``OUT`` are skipped.

    python benchmarks/pacgan_batched.py --device cuda --compile cuda-graph               # the full protocol
    python benchmarks/pacgan_batched.py --device cpu --steps 200 --seeds 2 --out /tmp/p.json   # a smoke run
    python benchmarks/pacgan_batched.py --merge book/results/pacgan_2d_gpu.json A.json B.json

Published (Lin et al. 2018, the plain GAN, as the run preset ``pacgan`` records it): ring8 6.3 modes, 98.2% high
quality; grid25 17.3 modes, 94.8%.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence

from gantricks.batched import COMPILE_MODES, run_batched
from gantricks.experiments import _load_rows, _save_rows, format_table, load_grid, summarize

GRID = "book/results/pacgan_2d_grid.json"
PUBLISHED = {"ring8": {"modes": 6.3, "high_quality": 0.982}, "grid25": {"modes": 17.3, "high_quality": 0.948}}
METRICS = {"modes": ".2f", "high_quality": ".3f", "kl": ".3f"}


def merge(out: str, parts: Sequence[str], command: str) -> None:
    """Write the rows of the results files ``parts`` into ``out`` (rows of ``out`` kept, later files winning)."""
    rows = {(r["config"], r["seed"]): r for path in (out, *parts) for r in _load_rows(path)}
    _save_rows(out, list(rows.values()), command)
    print(f"merged {len(parts)} file(s) into {out}: {len(rows)} rows")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--grid", default=GRID, help="the grid file")
    p.add_argument("--configs", default=None, help="comma list of the grid's configs (default: all)")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1, trained as one batched model")
    p.add_argument("--steps", type=int, default=None, help="override the grid's budget (e.g. a short smoke run)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--compile", default=None, choices=[m for m in COMPILE_MODES if m],
                   help="cuda-graph: the whole batched step as one CUDA graph; the others: torch.compile of the "
                   "batched G and D calls in that mode (reduce-overhead: CUDA graphs)")
    p.add_argument("--checkpoint-every", type=int, default=20_000, help="steps between checkpoints (0: none)")
    p.add_argument("--out", default="book/results/pacgan_2d_gpu.json", help="the results file")
    p.add_argument("--merge", nargs="+", default=None, metavar="FILE",
                   help="only merge these results files into --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    if args.merge:
        merge(args.out, args.merge, command)
        return 0
    overrides = {"device": args.device, **({"steps": args.steps} if args.steps else {})}
    grid = load_grid(args.grid, **overrides)
    names = args.configs.split(",") if args.configs else list(grid)
    unknown = [n for n in names if n not in grid]
    if unknown:
        sys.exit(f"pacgan_batched: --configs {unknown} not in {args.grid} (it has {list(grid)})")
    seeds = list(range(args.seeds))
    rows = _load_rows(args.out)
    runs = (args.out[: -len(".json")] if args.out.endswith(".json") else args.out) + ".runs"
    for name in names:
        if {(name, s) for s in seeds} <= {(r["config"], r["seed"]) for r in rows}:
            print(f"[{name}] already in {args.out}")
            continue
        new = run_batched(grid[name], seeds, name=name, compile=args.compile, run_dir=os.path.join(runs, name),
                          checkpoint_every=args.checkpoint_every)
        rows = [r for r in rows if r["config"] != name] + new
        _save_rows(args.out, rows, command)
        print(f"[{name}] {len(seeds)} seeds x {grid[name].steps} steps, batched: {new[0]['batch_train_seconds']:.0f} s "
              f"of training ({new[0]['batch_seconds']:.0f} s in this call); wrote {args.out}", flush=True)
    shown = [r for r in rows if r["config"] in names]
    print(format_table(summarize(shown, list(METRICS)), METRICS))
    for name in names:
        pub = PUBLISHED.get(grid[name].dataset)
        if pub:
            print(f"published ({grid[name].dataset}, plain GAN): {pub['modes']} modes, {pub['high_quality']:.3f} "
                  "high quality")
    print(json.dumps({"train_seconds_per_config": {n: next((r.get("batch_train_seconds") for r in rows
                                                             if r["config"] == n), None) for n in names}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
