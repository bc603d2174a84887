"""Gradient penalties on D (chapter 8, "Stabilisers"): R1 on real data and WGAN-GP on interpolates.

* R1 (Mescheder et al. 2018, "Which training methods for GANs do actually converge?", eq. 9): D's loss gains
  ``gamma / 2 * E_x ||grad_x D(x)||^2`` over real x, which keeps D flat on the data, so that G is not pushed off it.
  Lazy regularisation (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN", section 4 and
  appendix B; stylegan2-ada-pytorch ``loss.py``, phase ``Dreg``): the term is computed only on every ``every``-th D
  update, with weight ``every``, so that its average over updates is unchanged while its cost is divided by
  ``every``. The D updates are counted from 0; the count is checkpointed, so a resumed run keeps the same updates.
* WGAN-GP (Gulrajani et al. 2017, "Improved training of Wasserstein GANs", eq. 3): D's loss gains
  ``lambda * E (||grad D(x_hat)|| - 1)^2`` at ``x_hat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` per sample, a
  soft version of the 1-Lipschitz constraint of the Wasserstein critic (``loss="wgan"``); the eps come from the
  hook's own generator, checkpointed. A conditional D (cGAN) judges the interpolates with the reals' labels.

Both are :class:`~gantricks.hooks.Hook` s adding a named term through ``d_loss`` (logged as ``loss_r1`` and
``loss_gp``: the term added to D's objective in the step's last D update, 0 on a lazy update that skips it), not
branches of the loop. D's inputs in :class:`~gantricks.hooks.DBatch` carry no gradient, so each penalty runs D once
more on a detached copy that requires one (as StyleGAN2's ``Dreg`` phase does), the inputs as D saw them (after
:meth:`~gantricks.hooks.Hook.d_input`, e.g. augmented), with ``create_graph`` so the penalty's own gradient reaches
D's weights. That extra pass runs D in eval mode: spectral normalisation (:mod:`gantricks.spectral`) then uses the u
and v of the pass that D's loss just made, without another power iteration, so the penalty is on the very function
D's loss used. D must not normalise over the batch: with BatchNorm (the DCGAN's D) the eval-mode pass is not the
function D's loss trained, so the config refuses the penalties there unless ``d_norm='none'`` drops it. Minibatch
standard deviation (:mod:`gantricks.mbstd`) is allowed: it is the same function in both modes, and the gradient of
the summed logits is then what StyleGAN2 penalises too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .hooks import DBatch, Hook, LossTerms, RandomHook
from .section import Number, Section, fail, option, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["GradientPenalty", "PenaltyConfig", "R1Penalty", "input_gradients", "r1_penalty", "wgan_gp_penalty"]

_WEIGHT = Number(0, math.inf, hi_open=True, allowed="expected a finite number >= 0 (0: off)")
_BATCHNORM_MODELS = ("dcgan",)


@dataclass
class PenaltyConfig(Section):
    """Gradient penalties on D: R1 on reals (Mescheder et al. 2018), WGAN-GP (Gulrajani et al. 2017); off."""

    key: ClassVar[str] = "penalty"

    r1: float = option(0.0, "R1 penalty gamma/2 E||grad D(x)||^2 on real data, weight GAMMA (0: off)", _WEIGHT,
                       flag="--r1", metavar="GAMMA")
    r1_every: int = option(1, "lazy R1: apply it on every k-th D update only, weighted by k (StyleGAN2)",
                           positive_int, flag="--r1-every", metavar="K")
    gp: float = option(0.0, "WGAN-GP penalty LAMBDA E(||grad D(x_hat)|| - 1)^2 on real-fake interpolates (0: off)",
                       _WEIGHT, flag="--gp", metavar="LAMBDA")

    def check(self) -> None:
        if self.r1_every != 1 and not self.r1:
            self.fail("r1_every", "it makes R1 lazy; switch R1 on with r1 > 0")

    def check_with(self, cfg: Any) -> None:
        for name in ("r1", "gp"):
            if getattr(self, name) and cfg.resolved_model in _BATCHNORM_MODELS and cfg.d_norm == "batch":
                self.fail(name, f"model {cfg.resolved_model!r} has BatchNorm in D, which mixes the batch's samples, "
                          "so the per-sample gradient the penalty needs is undefined; drop it (d_norm='none') or use "
                          "an MLP discriminator")

    def hooks(self, cfg: Any) -> list[Hook]:
        hooks: list[Hook] = []
        if self.r1:
            hooks.append(R1Penalty(self.r1, self.r1_every))
        if self.gp:
            hooks.append(GradientPenalty(self.gp, seed=cfg.seed + 6))
        return hooks


def input_gradients(d: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """``grad_x D(x)`` per sample, flattened to (n, features), with its graph (``create_graph``) so that a penalty
    on it can be differentiated again. D runs in eval mode (restored after) on a detached copy of ``x``."""
    x = x.detach().float().requires_grad_(True)
    was_training = d.training
    d.eval()
    try:
        logits = d(x) if y is None else d(x, y)
    finally:
        d.train(was_training)
    (grad,) = torch.autograd.grad(logits.float().sum(), x, create_graph=True)
    return grad.flatten(1)


def r1_penalty(d: nn.Module, real: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` over the real batch (R1 without its weight gamma / 2)."""
    return input_gradients(d, real, y).square().sum(1).mean()


def wgan_gp_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                    y: torch.Tensor | None = None) -> torch.Tensor:
    """``E (||grad D(x_hat)|| - 1)^2`` at ``x_hat = eps real + (1 - eps) fake`` (WGAN-GP without its weight);
    ``eps`` has one value per sample, shape (n,)."""
    eps = eps.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return (input_gradients(d, x_hat, y).norm(dim=1) - 1).square().mean()


def _d_and_labels(batch_y: torch.Tensor | None, trainer: Trainer) -> tuple[nn.Module, torch.Tensor | None]:
    return trainer.D, trainer.code.d_labels(batch_y)


class R1Penalty(Hook):
    """``gamma / 2 * E||grad_x D(x)||^2`` on the reals of every ``every``-th D update, times ``every`` (lazy)."""

    key = "r1"

    def __init__(self, gamma: float, every: int = 1) -> None:
        self.gamma = _WEIGHT("R1Penalty.gamma", gamma)
        self.every = positive_int("R1Penalty.every", every)
        if not self.gamma:
            fail("R1Penalty.gamma", gamma, "expected a positive number")
        self.updates = 0

    def d_loss(self, batch: DBatch, trainer: Trainer) -> LossTerms:
        due = self.updates % self.every == 0
        self.updates += 1
        if not due:
            return LossTerms(None, {"loss_r1": torch.zeros((), device=batch.real.device)})
        d, y = _d_and_labels(batch.y_real, trainer)
        term = self.gamma / 2 * self.every * r1_penalty(d, batch.real, y)
        return LossTerms(term, {"loss_r1": term})

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        raise ValueError("a format-1 checkpoint predates the R1 penalty; it cannot resume with one")


class GradientPenalty(RandomHook):
    """WGAN-GP: ``lam * E(||grad D(x_hat)|| - 1)^2`` on interpolates of the D update's reals and fakes."""

    key = "gp"

    def __init__(self, lam: float, seed: int = 0) -> None:
        super().__init__(seed)
        self.lam = _WEIGHT("GradientPenalty.lam", lam)
        if not self.lam:
            fail("GradientPenalty.lam", lam, "expected a positive number")

    def d_loss(self, batch: DBatch, trainer: Trainer) -> LossTerms:
        n = min(batch.real.shape[0], batch.fake.shape[0])  # pairs of a real and a fake
        eps = torch.rand(n, device=batch.real.device, generator=self.generator(batch.real.device))
        d, y = _d_and_labels(batch.y_real, trainer)
        term = self.lam * wgan_gp_penalty(d, batch.real[:n], batch.fake[:n], eps, None if y is None else y[:n])
        return LossTerms(term, {"loss_gp": term})

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        raise ValueError("a format-1 checkpoint predates WGAN-GP; it cannot resume with it")
