"""Learning-rate schedules for G and D (chapter 1, "The baseline GAN", and "How we measure": the baseline's recipe).

A GAN at a constant learning rate keeps circling its equilibrium at a radius set by the step size; decaying the rate
shrinks that radius. On the 2D mixtures this is what turns samples that sit near a mode into samples inside it
(PacGAN's high-quality criterion, :mod:`gantricks.metrics`), which "How we measure" shows with learning curves.

:class:`ScheduleConfig` multiplies both networks' learning rates (or one network's) by a factor of the step, over the
run's ``steps``: ``constant`` (1), ``linear`` (from 1 down to ``final``), ``cosine`` (half a cosine from 1 down to
``final``, Loshchilov & Hutter 2017, SGDR, without restarts), each after ``warmup`` steps of linear warm-up from
``1 / warmup`` (Goyal et al. 2017). Step k (1-based) trains with ``factor(k - 1)``; the last step trains with exactly
``final``. The factors go through ``torch.optim.lr_scheduler.LambdaLR``, whose state the checkpoint keeps, so a
resumed run continues the schedule where it stopped. A resume that changes ``steps`` stretches what remains of it.

The schedule sets the rate; chapter 4's false-positive controller also sets G's rate, so the two do not combine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .hooks import Hook
from .section import Choice, Number, Section, non_negative_int, option

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["SCHEDULES", "LRSchedule", "ScheduleConfig", "lr_factor"]

SCHEDULES = ("constant", "linear", "cosine")
NETS = ("both", "g", "d")


def lr_factor(kind: str, t: int, steps: int, warmup: int = 0, final: float = 0.0) -> float:
    """The multiplier of the base learning rate at step index ``t`` (0-based) of ``steps``.

    >>> [round(lr_factor("linear", t, 5), 2) for t in range(5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]
    >>> [round(lr_factor("cosine", t, 3, warmup=2, final=0.1), 3) for t in range(5)]
    [0.5, 1.0, 0.1, 0.1, 0.1]
    """
    if kind not in SCHEDULES:
        raise ValueError(f"schedule.kind={kind!r} is invalid: allowed values are {SCHEDULES}")
    if t < warmup:
        return (t + 1) / warmup
    if kind == "constant":
        return 1.0
    span = steps - warmup - 1
    p = min(1.0, (t - warmup) / span) if span > 0 else 1.0
    shape = 1.0 - p if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * p))
    return final + (1.0 - final) * shape


@dataclass
class ScheduleConfig(Section):
    """Learning-rate schedule of G and D over the run's steps; ``constant`` without warm-up (off) by default."""

    key: ClassVar[str] = "schedule"

    kind: str = option("constant", "learning-rate schedule over the run's steps: constant, linear (decay to "
                       "--lr-final) or cosine", Choice(SCHEDULES), flag="--lr-schedule")
    warmup: int = option(0, "steps of linear warm-up before the schedule", non_negative_int, flag="--lr-warmup")
    final: float = option(0.0, "the last step's rate as a fraction of the initial one (linear, cosine)",
                          Number(0, 1), flag="--lr-final")
    nets: str = option("both", "the networks that follow the schedule: both, g or d", Choice(NETS),
                       flag="--lr-schedule-nets")

    @property
    def active(self) -> bool:
        return self.kind != "constant" or self.warmup > 0

    def check(self) -> None:
        if self.final != 0.0 and self.kind == "constant":
            self.fail("final", "a constant schedule has no final rate; choose kind 'linear' or 'cosine'")

    def check_with(self, cfg: Any) -> None:
        if not self.active:
            return
        if self.warmup >= cfg.steps:
            self.fail("warmup", f"the warm-up must be shorter than the run (steps={cfg.steps})")
        if cfg.regulate.fp_control != "off" and self.nets in ("both", "g"):
            self.fail("kind", f"regulate.fp_control={cfg.regulate.fp_control!r} already sets G's learning rate; "
                      "schedule D only (nets 'd') or switch the controller off")

    def hooks(self, cfg: Any) -> list[Hook]:
        return [LRSchedule(self, cfg.steps)] if self.active else []


class LRSchedule(Hook):
    """Multiplies the chosen networks' learning rates by :func:`lr_factor` after every step (``LambdaLR``)."""

    key = "schedule"

    def __init__(self, cfg: ScheduleConfig, steps: int) -> None:
        cfg.validate()
        self.cfg, self.steps = cfg, steps
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}

    def _factor(self, t: int) -> float:
        return lr_factor(self.cfg.kind, t, self.steps, self.cfg.warmup, self.cfg.final)

    def setup(self, trainer: Trainer) -> None:
        opts = {"g": trainer.opt_g, "d": trainer.opt_d}
        names = ("g", "d") if self.cfg.nets == "both" else (self.cfg.nets,)
        self.schedulers = {n: torch.optim.lr_scheduler.LambdaLR(opts[n], self._factor) for n in names}

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        for s in self.schedulers.values():
            s.step()

    def state_dict(self) -> dict[str, Any]:
        return {n: s.state_dict() for n, s in self.schedulers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for n, s in self.schedulers.items():
            s.load_state_dict(state[n])

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        raise ValueError("a format-1 checkpoint predates learning-rate schedules; it cannot resume with one")
