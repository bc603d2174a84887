"""Seeds as one batched model against the same seeds run one after another ("Performance" page, book/performance.md).

For each K, the benchmark trains K seeds of one config two ways on the same device: **separate**, K
:class:`gantricks.Trainer` runs one after another (what ``ablate`` does today), and **batched**, one
:class:`gantricks.batched.BatchedTrainer` of the K seeds. Each run takes ``--warmup`` untimed steps, then ``--steps``
timed ones (CUDA synchronised at both ends). The arms run interleaved, in a rotated order each repeat, ``--repeats``
times; the table reports medians and the **median of per-repeat ratios** (separate time / batched time), so a noisy
host disturbs both arms of a repeat alike. ``runs' worth`` is K times the batched steps/s over one separate run's
steps/s: how many unbatched runs the batched model's throughput is worth.

The default config is PacGAN's 2D protocol (run preset ``pacgan``: maxout D, N(0, 0.02) init, simultaneous
update, Adam 1e-4 / 0.8, batch 100) on ring8. ``--compile cuda-graph`` (CUDA) captures the batched model's whole
step as one CUDA graph (:mod:`gantricks.batched_graph`); ``--compile reduce-overhead`` records G's and D's calls as
CUDA graphs through ``torch.compile``. Capture and compilation happen in the warm-up.

    python benchmarks/bench_batched.py --out benchmarks/results/bench_batched_cpu.json
    python benchmarks/bench_batched.py --device cuda --ks 1,10,50 --out benchmarks/results/bench_batched_cuda.json
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
from collections.abc import Callable, Sequence
from typing import Any

import torch

from gantricks import Trainer
from gantricks.batched import COMPILE_MODES, BatchedTrainer
from gantricks.config import TrainConfig, resolve_device
from gantricks.presets import run_preset

CPU = {"ks": "1,4,10", "steps": 20, "warmup": 3}
CUDA = {"ks": "1,10,50", "steps": 300, "warmup": 30}


def bench_config(dataset: str, device: torch.device, data_size: int) -> TrainConfig:
    """PacGAN's plain GAN on ``dataset`` (run preset ``pacgan``), no progress bar, long enough for any timing."""
    return run_preset("pacgan", dataset=dataset, device=str(device), steps=10**9, data_size=data_size,
                      progress=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Trainer | BatchedTrainer, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds for ``steps`` steps of ``run`` after ``warmup`` untimed ones."""
    run.fit(steps=warmup)
    _sync(device)
    t0 = time.perf_counter()
    run.fit(steps=warmup + steps)
    _sync(device)
    return time.perf_counter() - t0


def time_separate(cfg: TrainConfig, seeds: Sequence[int], steps: int, warmup: int, device: torch.device,
                  at_most: int) -> float:
    """Seconds of timed steps of K ``Trainer`` runs, one after another (each built and warmed up untimed); with
    more than ``at_most`` seeds, the first ``at_most`` are timed and the sum scaled by K / ``at_most`` (every run
    does the same work)."""
    timed = seeds[:at_most]
    return sum(_timed(Trainer(cfg.replace(seed=s)), steps, warmup, device) for s in timed) * len(seeds) / len(timed)


def time_batched(cfg: TrainConfig, seeds: Sequence[int], steps: int, warmup: int, device: torch.device,
                 compile_mode: str | None) -> float:
    return _timed(BatchedTrainer(cfg, seeds, compile=compile_mode), steps, warmup, device)


def bench(cfg: TrainConfig, ks: Sequence[int], steps: int, warmup: int, repeats: int, device: torch.device,
          compile_mode: str | None, log: Any, separate_max: int,
          on_repeat: Callable[[list[dict[str, Any]]], None] = lambda _: None) -> list[dict[str, Any]]:
    """Interleaved repeats of both arms for every K; one result entry per K (also given to ``on_repeat`` after
    every repeat, so a run cut short keeps what it measured)."""
    times: dict[tuple[int, str], list[float]] = {(k, arm): [] for k in ks for arm in ("separate", "batched")}
    arms = [(k, arm) for k in ks for arm in ("separate", "batched")]
    for r in range(repeats):
        for k, arm in arms[r % len(arms):] + arms[: r % len(arms)]:
            seeds = list(range(k))
            t = (time_separate(cfg, seeds, steps, warmup, device, separate_max) if arm == "separate"
                 else time_batched(cfg, seeds, steps, warmup, device, compile_mode))
            times[(k, arm)].append(t)
            log(f"repeat {r + 1}/{repeats}: K={k} {arm}: {t:.3f} s")
        on_repeat(summarise(times, ks, steps, separate_max))
    return summarise(times, ks, steps, separate_max)


def summarise(times: dict[tuple[int, str], list[float]], ks: Sequence[int], steps: int, separate_max: int
              ) -> list[dict[str, Any]]:
    """Medians and median ratios per K from the timings so far."""
    one_run = statistics.median(times[(ks[0], "separate")]) / ks[0]  # a single unbatched run
    out = []
    for k in ks:
        sep, bat = times[(k, "separate")], times[(k, "batched")]
        out.append({
            "k": k, "steps": steps, "separate_seconds": sep, "batched_seconds": bat,
            "separate_runs_timed": min(k, separate_max),
            "ratio": statistics.median(s / b for s, b in zip(sep, bat)),
            "batched_steps_per_s": steps / statistics.median(bat),
            "separate_steps_per_s_per_run": steps * k / statistics.median(sep),
            "runs_worth": k * steps / statistics.median(bat) / (steps / one_run),
        })
    return out


def format_table(results: dict[str, Any]) -> str:
    lines = ["| K | separate, s | batched, s | separate / batched | batched steps/s | runs' worth |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for e in results["results"]:
        lines.append(f"| {e['k']} | {statistics.median(e['separate_seconds']):.3f} | "
                     f"{statistics.median(e['batched_seconds']):.3f} | {e['ratio']:.2f} | "
                     f"{e['batched_steps_per_s']:.1f} | {e['runs_worth']:.1f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--ks", default=None, help=f"comma list of K (default {CPU['ks']} on the CPU, {CUDA['ks']} on "
                   "CUDA)")
    p.add_argument("--steps", type=int, default=None, help=f"timed steps per run (default {CPU['steps']} on the "
                   f"CPU, {CUDA['steps']} on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help=f"untimed steps per run (default {CPU['warmup']} / "
                   f"{CUDA['warmup']})")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every arm")
    p.add_argument("--separate-max", type=int, default=10**6, help="time at most this many separate runs per K "
                   "and scale their sum to K runs (they all do the same work)")
    p.add_argument("--dataset", default="ring8", choices=("ring8", "grid25"))
    p.add_argument("--data-size", type=int, default=100_000, help="points drawn from the mixture per seed")
    p.add_argument("--compile", default=None, choices=[m for m in COMPILE_MODES if m],
                   help="cuda-graph: the whole batched step as one CUDA graph; the others: torch.compile of the "
                   "batched G and D calls in that mode (reduce-overhead: CUDA graphs)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write every timing as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    defaults = CUDA if device.type == "cuda" else CPU
    try:
        ks = [int(k) for k in (args.ks or defaults["ks"]).split(",")]
    except ValueError:
        parser.error(f"--ks {args.ks}: expected a comma list of positive integers")
    steps, warmup = args.steps or defaults["steps"], args.warmup or defaults["warmup"]
    for flag, value in (("--ks", min(ks)), ("--steps", steps), ("--warmup", warmup), ("--repeats", args.repeats),
                        ("--separate-max", args.separate_max)):
        if value < 1:
            parser.error(f"{flag} {value}: expected integers >= 1")
    if args.out is not None and not args.out.endswith(".json"):
        parser.error(f"--out {args.out}: expected a .json file name")
    log = (lambda _: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = bench_config(args.dataset, device, args.data_size)
    results: dict[str, Any] = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "config": cfg.to_dict(),
        "compile": args.compile, "repeats": args.repeats, "warmup": warmup, "separate_max": args.separate_max,
    }

    def save(entries: list[dict[str, Any]]) -> None:
        results["results"] = entries
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out + ".tmp", "w", encoding="utf-8") as f:
                json.dump(results, f, indent=2)
            os.replace(args.out + ".tmp", args.out)

    save(bench(cfg, ks, steps, warmup, args.repeats, device, args.compile, log, args.separate_max, save))
    print(f"bench_batched: {results['device']} ({results['device_name']}), {results['threads']} threads, torch "
          f"{results['torch']}; PacGAN's protocol on {args.dataset}, {steps} timed steps per run; medians of "
          f"{args.repeats} interleaved repeats")
    print(format_table(results))
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
