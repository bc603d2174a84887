"""Trick 3 (chapter 4, "The discriminator regulates the generator"): D's judgements steer training.

Chapter 4 (``book/04_discriminator_regulation.ipynb``) measures every piece. All are :class:`~gantricks.hooks.Hook`\\ s
that read the logits of the step's last D update (``trainer.d_logits``):

* :class:`DiscriminatorStats` logs the two signals: ``fp_rate``, the fraction of the batch's fakes that D judges
  real (logit > 0: false positives), and ``ada_rt`` = E[sign(D(x_real))], the overfitting heuristic r_t of ADA
  (Karras et al. 2020, "Training generative adversarial networks with limited data", target 0.6).
* :class:`FalsePositiveController` moves G's learning rate from the smoothed false-positive rate, in the style of
  ADA's controller (stylegan2-ada-pytorch ``training_loop.py``): every ``interval`` steps, outside a band
  [low, high] the rate is multiplied or divided by ``factor``, clamped to [lr_min, lr_max]. ``"source"`` is the rule
  as the source states it ("discriminator rejection"): too few false positives -> *lower* G's learning rate, too
  many -> *raise* it; ``"balance"`` is the opposite, what balancing the two players would suggest.
* :class:`AdaptiveInstanceNoise` is the instance noise of chapter 2 (:class:`~gantricks.noise.InstanceNoise`) with
  its sigma driven by r_t through ADA's step rule instead of a schedule.
* :class:`GradClip` clips the gradient norms of G and D (``torch.nn.utils.clip_grad_norm_``; Pascanu et al. 2013).
  The Trainer already logs the norms before any hook runs (``grad_norm_g``/``grad_norm_d``): those are the
  pre-clip norms.

Rejection sampling with D at sampling time (Azadi et al. 2019) is in :mod:`gantricks.drs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .distributed import mean_over_ranks
from .hooks import Hook
from .noise import InstanceNoise
from .section import Choice, Number, Section, flag, option, positive, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig
    from .train import Trainer

__all__ = ["FP_CONTROLS", "AdaptiveInstanceNoise", "DiscriminatorStats", "FalsePositiveController", "GradClip",
           "RegulateConfig", "ada_rt", "false_positive_rate", "regulate_hooks"]

FP_CONTROLS = ("off", "source", "balance")
_INF = math.inf


@dataclass
class RegulateConfig(Section):
    """Trick 3 (chapter 4, "The discriminator regulates the generator"). The defaults are off.

    ``fp_control``: G's learning rate from the smoothed fraction of fakes D judges real, kept in a band
    (:class:`FalsePositiveController`); ``adaptive_noise``: instance noise driven by ADA's r_t controller (Karras et
    al. 2020; :class:`AdaptiveInstanceNoise`); ``clip_g``/``clip_d``: gradient-norm clipping (:class:`GradClip`);
    ``log_stats``: log ``fp_rate`` and ``ada_rt`` without controlling anything.
    """

    key: ClassVar[str] = "regulate"

    fp_control: str = option("off", "G's lr from D's false-positive rate; source: too few -> lower it, too many -> "
                             "raise it; balance: the opposite", Choice(FP_CONTROLS))
    fp_low: float = option(0.2, "lower edge of the false-positive band", Number(0, 1))
    fp_high: float = option(0.5, "upper edge of the false-positive band, > --fp-low", Number(0, 1))
    fp_factor: float = option(1.25, "lr step factor of --fp-control, > 1",
                              Number(1, _INF, lo_open=True, hi_open=True, allowed="expected a finite number > 1"))
    fp_interval: int = option(50, "steps between lr changes of --fp-control", positive_int)
    fp_ema: float = option(0.98, "EMA decay of the false-positive rate (0: no smoothing)",
                           Number(0, 1, hi_open=True, allowed="expected a number in [0, 1) (0: no smoothing)"))
    lr_min: float = option(1e-5, "lowest lr_g of --fp-control", positive)
    lr_max: float = option(2e-3, "highest lr_g of --fp-control, >= --lr-min", positive)
    adaptive_noise: bool = option(False, "instance noise with sigma driven by ADA's r_t controller (not with "
                                  "--instance-noise)", flag)
    ada_target: float = option(0.6, "target of ADA's r_t", Number(-1, 1, lo_open=True, hi_open=True,
                                                                   allowed="expected a number in (-1, 1)"))
    ada_interval: int = option(4, "steps between updates of the adaptive noise", positive_int)
    ada_speed_kimg: float = option(100.0, "thousands of images for sigma to go from 0 to its maximum", positive)
    ada_sigma_max: float = option(0.5, "largest sigma of the adaptive noise", positive)
    clip_g: float = option(0.0, "clip G's gradient norm to this (0: off)",
                           Number(0, _INF, hi_open=True, allowed="expected a finite number >= 0 (0: off)"))
    clip_d: float = option(0.0, "clip D's gradient norm to this (0: off)",
                           Number(0, _INF, hi_open=True, allowed="expected a finite number >= 0 (0: off)"))
    log_stats: bool = option(False, "log fp_rate and ADA's r_t every step, without any control", flag,
                             flag="--log-d-stats")

    def check(self) -> None:
        if not self.fp_high > self.fp_low:
            self.fail("fp_high", f"expected a number in (fp_low={self.fp_low}, 1]")
        if not self.lr_max >= self.lr_min:
            self.fail("lr_max", f"expected a finite number >= lr_min={self.lr_min}")

    def check_with(self, cfg: Any) -> None:
        if self.fp_control != "off" and not self.lr_min <= cfg.optim.lr_g <= self.lr_max:
            self.fail("lr_min", f"G's starting lr optim.lr_g={cfg.optim.lr_g} must lie in [regulate.lr_min, "
                      f"regulate.lr_max] = [{self.lr_min}, {self.lr_max}] when fp_control is on")
        if self.adaptive_noise and cfg.noise.instance_sigma:
            self.fail("adaptive_noise", "it drives the instance noise itself: set noise.instance_sigma=0 (annealed "
                      "instance noise) or switch adaptive_noise off")

    def hooks(self, cfg: Any) -> list[Hook]:
        return regulate_hooks(cfg)


def false_positive_rate(fake_logits: torch.Tensor) -> torch.Tensor:
    """The fraction of fakes that D judges real (logit > 0), as a 0-d tensor on the logits' device."""
    return (fake_logits.detach() > 0).float().mean()


def ada_rt(real_logits: torch.Tensor) -> torch.Tensor:
    """ADA's overfitting heuristic r_t = E[sign(D(x_real))] in [-1, 1] (Karras et al. 2020), as a 0-d tensor."""
    return real_logits.detach().float().sign().mean()


_STATS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "fp_rate": lambda real, fake: false_positive_rate(fake),
    "ada_rt": lambda real, fake: ada_rt(real),
}


def _stat(name: str, record: dict[str, Any], trainer: Trainer) -> torch.Tensor:
    """``record[name]``, computed from ``trainer.d_logits`` (and logged) unless an earlier hook already did."""
    if name not in record:
        if getattr(trainer, "d_logits", None) is None:
            raise RuntimeError(f"{name}: the trainer has no D logits yet (trainer.d_logits is set by a D step)")
        record[name] = _STATS[name](*trainer.d_logits)
    return record[name]


def _check(cls: str, name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise ValueError(f"{cls}: {name}={value!r} is invalid: expected {allowed}")
    return float(value)


def _interval(cls: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{cls}: interval={value!r} is invalid: expected a positive integer")
    return value


class DiscriminatorStats(Hook):
    """Logs ``fp_rate`` and ``ada_rt`` every step (no control): the curves of an uncontrolled run."""

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        for name in _STATS:
            _stat(name, record, trainer)


class FalsePositiveController(Hook):
    """G's learning rate from D's false-positive rate (chapter 4), stateful and bounded like ADA's controller.

    Every step: fp_t = fraction of fakes with logit > 0, smoothed as ``fp_ema = ema * fp_ema + (1 - ema) * fp_t``
    (``ema`` = 0: no smoothing). Every ``interval`` steps, :meth:`update` gives the new lr: below ``low`` /
    above ``high`` it is divided or multiplied by ``factor`` (which one depends on ``direction``), inside the band
    it is unchanged, and it never leaves [lr_min, lr_max]. Logged every step: ``fp_rate``, ``fp_rate_ema``
    (the Trainer logs ``lr_g``). The smoothed rate stays on the device; it is read once per ``interval`` steps,
    averaged over the processes of a ``torchrun`` job so that every rank sets the same lr.
    """

    DIRECTIONS = ("source", "balance")

    def __init__(self, direction: str = "source", low: float = 0.2, high: float = 0.5, factor: float = 1.25,
                 interval: int = 50, ema: float = 0.98, lr_min: float = 1e-5, lr_max: float = 2e-3) -> None:
        cls = "FalsePositiveController"
        if direction not in self.DIRECTIONS:
            raise ValueError(f"{cls}: direction={direction!r} is not one of {self.DIRECTIONS}")
        self.direction = direction
        self.low = _check(cls, "low", low, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        self.high = _check(cls, "high", high, lambda v: self.low < v <= 1, f"a number in (low={low}, 1]")
        self.factor = _check(cls, "factor", factor, lambda v: v > 1, "a number > 1")
        self.interval = _interval(cls, interval)
        self.ema = _check(cls, "ema", ema, lambda v: 0 <= v < 1, "a number in [0, 1)")
        self.lr_min = _check(cls, "lr_min", lr_min, lambda v: v > 0, "a positive number")
        self.lr_max = _check(cls, "lr_max", lr_max, lambda v: v >= self.lr_min, f"a number >= lr_min={lr_min}")
        self.fp_ema: torch.Tensor | None = None
        self.lr: float | None = None

    def update(self, fp: float, lr: float) -> float:
        """The learning rate after one control step at smoothed false-positive rate ``fp``."""
        if fp < self.low:  # D catches (almost) every fake
            raise_lr = self.direction == "balance"
        elif fp > self.high:  # D is fooled often
            raise_lr = self.direction == "source"
        else:
            return lr
        new = lr * self.factor if raise_lr else lr / self.factor
        return min(max(new, self.lr_min), self.lr_max)

    def _apply(self, trainer: Trainer) -> None:
        for group in trainer.opt_g.param_groups:
            group["lr"] = self.lr

    def on_train_start(self, trainer: Trainer) -> None:
        if self.lr is None:
            self.lr = float(trainer.opt_g.param_groups[0]["lr"])
        self._apply(trainer)

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        fp = _stat("fp_rate", record, trainer)
        self.fp_ema = fp if self.fp_ema is None else self.fp_ema.to(fp.device) * self.ema + fp * (1 - self.ema)
        record["fp_rate_ema"] = self.fp_ema
        if step % self.interval == 0:
            if self.lr is None:
                self.lr = float(trainer.opt_g.param_groups[0]["lr"])
            self.lr = self.update(float(mean_over_ranks(self.fp_ema)), self.lr)
            self._apply(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"fp_ema": self.fp_ema, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fp_ema, self.lr = state["fp_ema"], state["lr"]


class AdaptiveInstanceNoise(InstanceNoise):
    """Instance noise (chapter 2) whose sigma follows ADA's controller on r_t instead of a schedule (chapter 4).

    A strength p in [0, 1] starts at 0; every ``interval`` steps, with r_t averaged over those steps,
    ``p += sign(r_t - target) * batch * interval / (speed_kimg * 1000)`` (stylegan2-ada-pytorch, with images
    per step ``batch``), clamped to [0, 1], and sigma = p * ``sigma_max``: sigma can travel from 0 to
    ``sigma_max`` in ``speed_kimg`` thousand real images. p stays on the device (no host reads). Logged every step:
    ``ada_rt`` and ``instance_noise_sigma`` (the sigma used in that step).
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_kimg: float = 100.0, sigma_max: float = 0.5,
                 batch: int = 128, seed: int = 0) -> None:
        cls = "AdaptiveInstanceNoise"
        sigma_max = _check(cls, "sigma_max", sigma_max, lambda v: v > 0, "a positive number")
        super().__init__(sigma0=sigma_max, anneal_steps=1, seed=seed)  # the schedule is unused: sigma() is ours
        self.sigma_max = sigma_max
        self.target = _check(cls, "target", target, lambda v: -1 < v < 1, "a number in (-1, 1)")
        self.interval = _interval(cls, interval)
        self.speed_kimg = _check(cls, "speed_kimg", speed_kimg, lambda v: v > 0, "a positive number")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
            raise ValueError(f"{cls}: batch={batch!r} is invalid: expected a positive integer")
        self.batch = batch
        self.p = torch.zeros(())
        self._rt_sum: torch.Tensor | None = None
        self._rt_n = 0

    @property
    def adjust(self) -> float:
        """The size of one step of p: ``batch * interval / (speed_kimg * 1000)``."""
        return self.batch * self.interval / (self.speed_kimg * 1000)

    def update(self, rt: torch.Tensor | float, p: torch.Tensor | float) -> torch.Tensor:
        """ADA's rule: p moved by ``sign(rt - target) * adjust``, clamped to [0, 1]."""
        p = torch.as_tensor(p, dtype=torch.float32)
        rt = torch.as_tensor(rt, dtype=torch.float32, device=p.device)
        return (p + torch.sign(rt - self.target) * self.adjust).clamp(0.0, 1.0)

    def sigma(self, step: int = 0) -> float:
        """The current noise std (``step`` is ignored: sigma follows the controller, not the step)."""
        return float(self.p) * self.sigma_max

    def d_input(self, x: torch.Tensor, step: int, trainer: Trainer) -> torch.Tensor:
        if self.p.device != x.device:
            self.p = self.p.to(x.device)
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=self._generator(x.device))
        return x + (self.p * self.sigma_max).to(x.dtype) * noise

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        rt = _stat("ada_rt", record, trainer)
        record["instance_noise_sigma"] = self.p * self.sigma_max
        self._rt_sum = rt if self._rt_sum is None else self._rt_sum.to(rt.device) + rt
        self._rt_n += 1
        if step % self.interval == 0:
            self.p = self.update(mean_over_ranks(self._rt_sum / self._rt_n), self.p.to(rt.device))
            self._rt_sum, self._rt_n = None, 0

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "p": self.p, "rt_sum": self._rt_sum, "rt_n": self._rt_n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.p, self._rt_sum, self._rt_n = state["p"], state["rt_sum"], state["rt_n"]


class GradClip(Hook):
    """Clip G's and D's gradient norms to ``max_norm_g``/``max_norm_d`` (0: that network is not clipped)."""

    def __init__(self, max_norm_g: float = 0.0, max_norm_d: float = 0.0) -> None:
        ok, allowed = (lambda v: v >= 0), "a number >= 0 (0: off)"
        self.max_norm = {"g": _check("GradClip", "max_norm_g", max_norm_g, ok, allowed),
                         "d": _check("GradClip", "max_norm_d", max_norm_d, ok, allowed)}

    def before_optimizer_step(self, which: str, model: torch.nn.Module, trainer: Trainer) -> dict[str, Any] | None:
        if self.max_norm[which]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.max_norm[which])
        return None


def regulate_hooks(cfg: TrainConfig) -> list[Hook]:
    """The hooks that ``cfg.regulate`` switches on, in a fixed order (statistics first, so the others reuse them)."""
    rc, hooks = cfg.regulate, []
    if rc.log_stats:
        hooks.append(DiscriminatorStats())
    if rc.fp_control != "off":
        hooks.append(FalsePositiveController(rc.fp_control, rc.fp_low, rc.fp_high, rc.fp_factor, rc.fp_interval,
                                             rc.fp_ema, rc.lr_min, rc.lr_max))
    if rc.adaptive_noise:
        hooks.append(AdaptiveInstanceNoise(rc.ada_target, rc.ada_interval, rc.ada_speed_kimg, rc.ada_sigma_max,
                                           batch=cfg.batch_size * cfg.d_steps, seed=cfg.seed + 5))
    if rc.clip_g or rc.clip_d:
        hooks.append(GradClip(rc.clip_g, rc.clip_d))
    return hooks
