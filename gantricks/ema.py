"""An exponential moving average of G's weights for sampling and evaluation (chapter 8, "Stabilisers"; Karras et al.
2018, "Progressive growing of GANs", section A.1; Yazici et al. 2019, "The unusual effectiveness of averaging in GAN
training").

G's weights keep circling the equilibrium while it trains; their average sits nearer its centre. After every step
the average moves towards G's weights: ``ema = d_t * ema + (1 - d_t) * G`` with ``d_t = min(decay, t / (t +
warmup))`` at the t-th update (from 0). The warm-up makes ``d_0 = 0``, so the average starts at G's weights after
the first step, not at the random initialisation, and then spans a growing window (about the last ``1 / warmup`` of
the run, as ``tf.train.ExponentialMovingAverage``'s ``num_updates`` and StyleGAN2's ``ema_rampup`` do) until
``decay`` caps it; ``warmup = 0``: ``d_t = decay`` from the start. Training is untouched: the average only reads
G, and :meth:`~gantricks.hooks.Hook.sampling_generator` hands it to sampling and evaluation
(:attr:`~gantricks.train.Trainer.sampling_G`).

BatchNorm: averaged weights with G's running statistics do not fit each other, and averaging the statistics does not
fix it, since they belong to weights the average never had. So before the average samples, its BatchNorm
statistics are recomputed: ``bn_batches`` batches of z, drawn from a generator seeded by the run's seed, go through
it in training mode with a cumulative average (``momentum = None``), as SWA's ``update_bn`` (Izmailov et al. 2018)
does. The statistics are recomputed only when the weights changed since the last time, and, with a fixed seed, they
are a function of the weights: a resumed run samples exactly as the straight one. The checkpoint holds the average's
weights and buffers and the update count.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .hooks import Hook
from .section import Number, Section, non_negative_int, option, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["EMAConfig", "EMAGenerator", "ema_decay", "recompute_batchnorm"]

_DECAY = Number(0, 1, hi_open=True, allowed="expected a number in [0, 1) (0: off)")


@dataclass
class EMAConfig(Section):
    """An exponential moving average of G's weights for sampling and evaluation; off by default."""

    key: ClassVar[str] = "ema"

    decay: float = option(0.0, "sample and evaluate with an exponential moving average of G's weights of this decay, "
                          "e.g. 0.999 (0: off)", _DECAY, flag="--ema", metavar="DECAY")
    warmup: int = option(10, "the average's decay at update t is min(decay, t / (t + warmup)), 0 at the first "
                         "(0: decay from the start)", non_negative_int, flag="--ema-warmup", metavar="STEPS")
    bn_batches: int = option(4, "batches of z (of batch_size) that recompute the average's BatchNorm statistics "
                             "before it samples", positive_int, flag="--ema-bn-batches", metavar="N")

    def check(self) -> None:
        defaults = EMAConfig.__dataclass_fields__
        for name in ("warmup", "bn_batches"):
            if not self.decay and getattr(self, name) != defaults[name].default:
                self.fail(name, "it sets the average of G's weights; switch it on with decay > 0 (--ema)")

    def hooks(self, cfg: Any) -> list[Hook]:
        return [EMAGenerator(self.decay, self.warmup, self.bn_batches, seed=cfg.seed + 8)] if self.decay else []


def ema_decay(decay: float, t: int, warmup: int = 0) -> float:
    """The decay of the t-th update (from 0): ``min(decay, t / (t + warmup))``, or ``decay`` without warm-up.

    >>> [ema_decay(0.9, t, warmup=2) for t in range(4)]
    [0.0, 0.3333333333333333, 0.5, 0.6]
    """
    return decay if warmup == 0 else min(decay, t / (t + warmup))


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor | None]]) -> None:
    """Reset ``model``'s BatchNorm statistics and recompute them as the cumulative average over ``batches`` of
    ``(z, y)`` passed through it in training mode (SWA's ``update_bn``); ``model``'s mode and momenta are restored."""
    bns = _batchnorms(model)
    if not bns:
        return
    momenta, was_training = [bn.momentum for bn in bns], model.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    try:
        for z, y in batches:
            model(z) if y is None else model(z, y)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)


class EMAGenerator(Hook):
    """Keeps the moving average of ``trainer.G``'s weights (see the module's docstring) and samples with it."""

    key = "ema"

    def __init__(self, decay: float, warmup: int = 10, bn_batches: int = 4, seed: int = 0) -> None:
        self.decay = _DECAY("EMAGenerator.decay", decay)
        self.warmup = non_negative_int("EMAGenerator.warmup", warmup)
        self.bn_batches = positive_int("EMAGenerator.bn_batches", bn_batches)
        self.seed = int(seed)
        self.model: nn.Module | None = None
        self.updates = 0
        self.stale = True  # the BatchNorm statistics do not belong to the current weights yet

    def setup(self, trainer: Trainer) -> None:
        self.model = copy.deepcopy(trainer.G).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, g: nn.Module) -> float:
        """One move of the average towards ``g``'s weights (buffers are copied); returns the decay used."""
        d = ema_decay(self.decay, self.updates, self.warmup)
        ema_params, g_params = list(self.model.parameters()), [p.detach() for p in g.parameters()]
        torch._foreach_lerp_(ema_params, g_params, 1.0 - d)
        for b, gb in zip(self.model.buffers(), g.buffers()):
            b.copy_(gb)
        self.updates += 1
        self.stale = True
        return d

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        record["ema_decay"] = self.update(trainer.G)

    def sampling_generator(self, trainer: Trainer) -> nn.Module:
        if self.stale and _batchnorms(self.model):
            gen = torch.Generator(device=trainer.device).manual_seed(self.seed)
            batches = [trainer._sampling_latent(trainer.cfg.batch_size, gen) for _ in range(self.bn_batches)]
            recompute_batchnorm(self.model, batches)
        self.stale = False
        return self.model

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates, "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates, self.stale = int(state["updates"]), bool(state["stale"])

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        raise ValueError("a format-1 checkpoint predates the average of G's weights; it cannot resume with one")
