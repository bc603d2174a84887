"""Discriminator Rejection Sampling (Azadi et al. 2019), part of chapter 4 ("The discriminator regulates the
generator", ``book/04_discriminator_regulation.ipynb``): after training, D decides which fakes to keep.

For an optimal D, ``exp(D~(x)) = p_data(x) / p_g(x)`` (D~ the logit), so accepting a fake x with probability
``exp(D~(x) - D~*_M)`` (``D~*_M`` the largest logit) is exact rejection sampling from p_data. The paper makes it
practical: ``D~*_M`` is estimated on held-out fakes (its burn-in) and raised whenever a larger logit turns up, and
a sample is accepted with probability ``sigmoid(F(x))``, where

    F(x) = D~(x) - D~*_M - log(1 - exp(D~(x) - D~*_M - eps)) - gamma,

which equals ``exp(D~ - D~*_M)`` for gamma = 0 and eps -> 0; ``eps`` keeps the log finite at the maximum and
``gamma`` shifts the acceptance rate (higher gamma: stricter). :meth:`DiscriminatorRejectionSampler.calibrate`
sets gamma to the ``gamma_percentile``-th percentile of F (with gamma = 0) over the held-out fakes, or keeps a
fixed ``gamma`` when ``gamma_percentile`` is None (gamma = 0 with an exact D is exact rejection sampling). The
default, the 95th percentile, is that of MH-GAN's reimplementation of DRS (Turner et al. 2019,
``uber-research/metropolis-hastings-gans``), which takes it per batch; one calibration keeps the same acceptance
rule for every batch.

The paper also fine-tunes D before sampling; here D is used as trained, so its logits are only as good as D.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .losses import CROSS_ENTROPY_LOSSES
from .noise import NormalPrior, Prior

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["DRSResult", "DiscriminatorRejectionSampler", "acceptance_probability", "drs_score"]


def drs_score(logits: torch.Tensor, max_logit: float, eps: float = 1e-6) -> torch.Tensor:
    """F(x) + gamma = D~ - D~*_M - log(1 - exp(D~ - D~*_M - eps)) of Azadi et al. (2019) for D's ``logits``;
    logits above ``max_logit`` count as equal to it."""
    delta = (logits.float() - max_logit).clamp(max=0.0)
    return delta - torch.log(-torch.expm1(delta - eps))


def acceptance_probability(logits: torch.Tensor, max_logit: float, gamma: float = 0.0,
                           eps: float = 1e-6) -> torch.Tensor:
    """``sigmoid(F(x))``: the probability that DRS keeps a fake with logit ``logits`` (see the module docstring)."""
    return torch.sigmoid(drs_score(logits, max_logit, eps) - gamma)


@dataclass
class DRSResult:
    """What :meth:`DiscriminatorRejectionSampler.sample` returns: the accepted samples (CPU, at most ``n``), their
    labels (conditional models), how many fakes were drawn and accepted, and the sampler's ``max_logit``/``gamma``.
    ``complete`` is False when the draw budget ran out before ``n`` samples were accepted."""

    samples: torch.Tensor
    labels: torch.Tensor | None
    drawn: int
    accepted: int
    max_logit: float
    gamma: float
    complete: bool

    @property
    def acceptance_rate(self) -> float:
        """Accepted fakes over drawn fakes."""
        return self.accepted / self.drawn if self.drawn else 0.0


class DiscriminatorRejectionSampler:
    """Rejection sampling of G's samples with D's logits (Azadi et al. 2019).

    ``generator``/``discriminator``: modules or callables, ``G(z[, y]) -> x`` and ``D(x[, y]) -> logits (N,)``;
    ``prior``: a :class:`~gantricks.noise.Prior` or a latent size (N(0, I)), by default ``generator.z_dim``;
    ``n_classes`` > 0: labels drawn uniformly are passed to both. Modules run in eval mode under ``no_grad``.
    Use :meth:`from_trainer` for a trained :class:`~gantricks.train.Trainer`.
    """

    def __init__(self, generator: Callable[..., torch.Tensor], discriminator: Callable[..., torch.Tensor],
                 prior: Prior | int | None = None, *, n_classes: int = 0, device: str | torch.device = "cpu",
                 gamma_percentile: float | None = 95.0, gamma: float = 0.0, eps: float = 1e-6,
                 batch_size: int = 1000) -> None:
        if prior is None:
            prior = getattr(generator, "z_dim", None)
            if prior is None:
                raise ValueError("DiscriminatorRejectionSampler: pass prior (a Prior or the latent size)")
        self.prior: Prior = NormalPrior(prior) if isinstance(prior, int) else prior
        if gamma_percentile is not None and not 0 <= gamma_percentile <= 100:
            raise ValueError(f"DiscriminatorRejectionSampler: gamma_percentile={gamma_percentile!r} is invalid: "
                             "expected a number in [0, 100] or None (use the fixed gamma)")
        if not eps > 0:
            raise ValueError(f"DiscriminatorRejectionSampler: eps={eps!r} is invalid: expected a positive number")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"DiscriminatorRejectionSampler: batch_size={batch_size!r} is invalid: "
                             "expected a positive integer")
        self.G, self.D, self.n_classes = generator, discriminator, n_classes
        self.device = torch.device(device)
        self.gamma_percentile, self.gamma, self.eps, self.batch_size = gamma_percentile, float(gamma), eps, batch_size
        self.max_logit: float | None = None

    @classmethod
    def from_trainer(cls, trainer: Trainer, **kwargs: Any) -> DiscriminatorRejectionSampler:
        """A sampler over a trainer's G, D, prior, classes and device (``kwargs`` as for the constructor).

        Unconditional runs and cGANs only: an ACGAN's D takes no label and a ``mixture_to_g`` G needs components.
        """
        if trainer.code.conditioning == "acgan" or trainer.code.component_to_g:
            raise ValueError("DiscriminatorRejectionSampler.from_trainer: only unconditional and cgan runs are "
                             f"supported, not conditioning={trainer.code.conditioning!r} with "
                             f"mixture_to_g={trainer.code.component_to_g}")
        if trainer.cfg.loss not in CROSS_ENTROPY_LOSSES:
            raise ValueError(f"loss={trainer.cfg.loss!r} is invalid for rejection sampling: it reads D's logit as "
                             f"log p_data/p_g, which only a D trained by cross-entropy {CROSS_ENTROPY_LOSSES} gives")
        cfg = trainer.cfg
        for field, value, on in (("packing.m", cfg.packing.m, cfg.packing.m > 1),
                                 ("mbstd.group", cfg.mbstd.group, cfg.mbstd.group > 0)):
            if on:
                raise ValueError(f"{field}={value!r} is invalid for rejection sampling: D then scores a sample "
                                 "together with others of its batch, so its logit is no single sample's "
                                 "log p_data/p_g; rejection sampling needs a D that scores each sample alone")
        return cls(trainer.G, trainer.D, trainer.prior, n_classes=trainer.cfg.n_classes, device=trainer.device,
                   **kwargs)

    @torch.no_grad()
    def _draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``n`` fakes, their labels and D's logits, on the device."""
        z = self.prior.sample(n, self.device, gen)
        if not self.n_classes:
            x = self.G(z)
            return x, None, self.D(x).reshape(n).float()
        y = torch.randint(self.n_classes, (n,), device=self.device, generator=gen)
        x = self.G(z, y)
        return x, y, self.D(x, y).reshape(n).float()

    def _eval(self) -> list[tuple[torch.nn.Module, bool]]:
        modes = [(m, m.training) for m in (self.G, self.D) if isinstance(m, torch.nn.Module)]
        for m, _ in modes:
            m.eval()
        return modes

    def calibrate(self, n: int = 10_000, generator: torch.Generator | None = None) -> DiscriminatorRejectionSampler:
        """Estimate ``max_logit`` (D~*_M) and ``gamma`` on ``n`` held-out fakes (the paper's burn-in)."""
        gen = generator or torch.Generator(device=self.device).manual_seed(12345)
        modes = self._eval()
        try:
            logits = torch.cat([self._draw(min(self.batch_size, n - i), gen)[2]
                                for i in range(0, n, self.batch_size)])
        finally:
            for m, was in modes:
                m.train(was)
        self.max_logit = float(logits.max())
        if self.gamma_percentile is not None:
            f = drs_score(logits, self.max_logit, self.eps).double()
            self.gamma = float(torch.quantile(f, self.gamma_percentile / 100))
        return self

    def sample(self, n: int, max_draws: int | None = None,
               generator: torch.Generator | None = None) -> DRSResult:
        """Draw fakes batch by batch and keep each with probability ``sigmoid(F(x))`` until ``n`` are kept or
        ``max_draws`` (default ``100 * n``) fakes were drawn; then warn and return what was kept."""
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"n={n!r} is invalid: expected a positive integer")
        budget = 100 * n if max_draws is None else max_draws
        if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
            raise ValueError(f"max_draws={max_draws!r} is invalid: expected a positive integer")
        gen = generator or torch.Generator(device=self.device).manual_seed(0)
        if self.max_logit is None:
            self.calibrate(generator=gen)
        assert self.max_logit is not None
        kept: list[torch.Tensor] = []
        labels: list[torch.Tensor] = []
        drawn = accepted = 0
        modes = self._eval()
        try:
            while accepted < n and drawn < budget:
                k = min(self.batch_size, budget - drawn)
                x, y, logits = self._draw(k, gen)
                self.max_logit = max(self.max_logit, float(logits.max()))  # the paper raises D~*_M when exceeded
                p = acceptance_probability(logits, self.max_logit, self.gamma, self.eps)
                keep = torch.rand(k, device=self.device, generator=gen) < p
                drawn += k
                accepted += int(keep.sum())
                kept.append(x[keep])
                if y is not None:
                    labels.append(y[keep])
        finally:
            for m, was in modes:
                m.train(was)
        complete = accepted >= n
        if not complete:
            warnings.warn(f"discriminator rejection sampling: drew max_draws={budget} fakes and accepted only "
                          f"{accepted} of the {n} asked (acceptance {accepted / drawn:.2%}); returning those. "
                          "Raise max_draws or lower gamma_percentile.", RuntimeWarning, stacklevel=2)
        samples = torch.cat(kept)[:n].float().cpu()
        ys = torch.cat(labels)[:n].cpu() if labels else None
        return DRSResult(samples, ys, drawn, accepted, self.max_logit, self.gamma, complete)
