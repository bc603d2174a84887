"""Seconds per training step of each config of a grid file, measured alone: the cost side of time to quality.

Time to quality ("How we measure", :mod:`gantricks.curves`) is a number of steps times a cost per step. Studies run
two processes side by side on two cores, so the wall times they record carry the other process's load; this
benchmark measures each config's step on a quiet machine instead, so that ``ttq_step x seconds_per_step`` is the
time a reader with the same machine would wait.

* Every config runs ``--warmup`` steps before its clock starts, then ``--steps`` timed steps (CUDA synchronised at
  both ends), with the progress bar off and one thread (``OMP_NUM_THREADS=1`` as the studies use).
* The configs run interleaved, in a rotated order each repeat, ``--repeats`` times; the table reports the median
  seconds per step of each config and the median of its per-repeat ratio to the first config.

Run it from the repository root, alone on the machine::

    OMP_NUM_THREADS=1 python benchmarks/bench_recipes.py --grid book/results/baseline_2d_grid.json \\
        --out benchmarks/results/bench_recipes_cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from typing import Any

import torch

from gantricks import Trainer
from gantricks.experiments import load_grid


def time_steps(trainer: Trainer, warmup: int, steps: int) -> float:
    """Seconds per step of ``steps`` steps after ``warmup`` untimed ones."""
    trainer.fit(steps=trainer.step_count + warmup)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.fit(steps=trainer.step_count + steps)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def measure(grid: str, warmup: int, steps: int, repeats: int, device: str | None) -> dict[str, Any]:
    overrides = {"progress": False, "steps": 10**9, **({"device": device} if device else {})}
    configs = load_grid(grid, **overrides)
    names = list(configs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            trainer = Trainer(configs[name])
            times[name].append(time_steps(trainer, warmup, steps))
    first = names[0]
    table = {n: {"seconds_per_step": statistics.median(t),
                 "ratio_to_first": statistics.median(a / b for a, b in zip(t, times[first])),
                 "times": t} for n, t in times.items()}
    return {"grid": grid, "first": first, "configs": table}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", required=True, help="a grid file (ablate's format)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="JSON file for every timing")
    args = p.parse_args(argv)
    result = measure(args.grid, args.warmup, args.steps, args.repeats, args.device)
    result["command"] = "python benchmarks/bench_recipes.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    result["meta"] = {
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "device": args.device or "auto", "processor": platform.processor() or platform.machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
    }
    print(f"| config | ms per step | ratio to {result['first']!r} |\n|---|---|---|")
    for name, row in result["configs"].items():
        print(f"| {name} | {1000 * row['seconds_per_step']:.2f} | {row['ratio_to_first']:.2f} |")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
