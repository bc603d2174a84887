"""Trick 1 (chapter 2, "Noise inputs"): latent priors, the source's epsilon block, instance noise and slerp.

A prior is a small object with ``sample(n, device, generator) -> Tensor (n, dim)``; the training loop draws every z
through it, so a chapter changes the prior by passing another object (or one config field), never by editing the
loop.

* :class:`NormalPrior`: z ~ N(0, I), the default (Goodfellow et al. 2014).
* :class:`UniformPrior`: z ~ U[-1, 1]^d, DCGAN's choice (Radford et al. 2016).
* :class:`TruncatedNormalPrior`: N(0, I) with every coordinate resampled until |z_i| <= threshold: BigGAN's
  truncation trick (Brock et al. 2019), usually applied at sampling time only.
* :class:`RescaledPrior`: each z standardised over its coordinates to a chosen mean and std (the source's
  "rescaling z to a mean and variance").
* :class:`SpherePrior`: z / sqrt(mean(z^2)), ProGAN's pixel norm applied to z (Karras et al. 2018), so |z| = sqrt(d).
* :class:`EpsilonBlockPrior`: the source's extra block, ``z = concat(z_tilde, eps)`` with eps iid N(0, variance).
* :class:`InstanceNoise`: a :class:`~gantricks.hooks.Hook` adding Gaussian noise to *every* input of D, real and
  fake alike, with sigma annealed from sigma0 to 0 (Sonderby et al. 2016; Arjovsky & Bottou 2017).
* :func:`slerp`: spherical interpolation between latent vectors (White 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .code import Prior
from .hooks import Hook
from .section import Choice, Number, Section, non_negative_int, option, positive, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig
    from .train import Trainer

__all__ = ["PRIORS", "SCHEDULES", "EpsilonBlockPrior", "InstanceNoise", "NoiseConfig", "NormalPrior", "Prior",
           "RescaledPrior", "SpherePrior", "TruncatedNormalPrior", "UniformPrior", "build_prior", "noise_hooks",
           "slerp"]

PRIORS = ("normal", "uniform", "truncated", "rescaled", "sphere")
SCHEDULES = ("linear", "exp")


@dataclass
class NoiseConfig(Section):
    """Trick 1 (chapter 2, "Noise inputs"): the latent prior and instance noise. The defaults are off.

    Priors: ``normal`` N(0, I), ``uniform`` U[-1, 1] (DCGAN), ``truncated`` (BigGAN's truncation), ``rescaled``
    (each z standardised), ``sphere`` (|z| = sqrt(dim)); ``eps_width`` > 0 appends the source's block of small iid
    noise to z; ``instance_sigma`` > 0 adds annealed Gaussian noise to every input of D (Sonderby et al. 2016).
    """

    key: ClassVar[str] = "noise"

    prior: str = option("normal", "latent prior", Choice(PRIORS))
    truncation: float = option(2.0, "threshold of --prior truncated", positive)
    rescale_mean: float = option(0.0, "mean each z is standardised to (--prior rescaled)",
                                 Number(allowed="expected a finite number", hi_open=True))
    rescale_std: float = option(1.0, "std each z is standardised to (--prior rescaled)", positive)
    eps_width: int = option(0, "append this many iid N(0, --eps-variance) coordinates to z (0: off)", non_negative_int)
    eps_variance: float = option(0.01, "variance of the appended coordinates", positive)
    instance_sigma: float = option(0.0, "instance noise on D's inputs, annealed from SIGMA0 to 0 (0: off)",
                                   Number(0, math.inf, hi_open=True, allowed="expected a finite number >= 0 (0: off)"),
                                   flag="--instance-noise", metavar="SIGMA0")
    instance_anneal_steps: int = option(1000, "steps to anneal the instance noise over", positive_int)
    instance_schedule: str = option("linear", "annealing schedule of the instance noise", Choice(SCHEDULES))

    def check_with(self, cfg: Any) -> None:
        if self.prior == "rescaled" and cfg.resolved_z_dim < 2:
            self.fail("prior", "needs z_dim >= 2 to standardise over coordinates")

    def latent_prior(self, cfg: Any) -> Prior | None:
        return None if self.prior == "normal" and not self.eps_width else build_prior(cfg)

    def hooks(self, cfg: Any) -> list[Hook]:
        return noise_hooks(cfg)



def _check_dim(cls: str, dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ValueError(f"{cls}: dim={dim!r} must be a positive integer")
    return dim


def _check_positive(cls: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{cls}: {name}={value!r} must be a positive finite number")
    return float(value)


class NormalPrior:
    """z ~ N(0, I) of dimension ``dim``."""

    def __init__(self, dim: int) -> None:
        self.dim = _check_dim("NormalPrior", dim)

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.dim, device=device, generator=generator)

    def __repr__(self) -> str:
        return f"NormalPrior(dim={self.dim})"


class UniformPrior:
    """z ~ U[-1, 1]^dim (DCGAN)."""

    def __init__(self, dim: int) -> None:
        self.dim = _check_dim("UniformPrior", dim)

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, self.dim, device=device, generator=generator) * 2 - 1

    def __repr__(self) -> str:
        return f"UniformPrior(dim={self.dim})"


class TruncatedNormalPrior:
    """N(0, I) with every coordinate outside [-threshold, threshold] redrawn until it falls inside (BigGAN).

    Rejection per coordinate keeps the exact truncated-normal distribution; each pass redraws only the rejected
    entries, so the expected number of passes is small even for a threshold of 0.5 (acceptance 38%).
    """

    def __init__(self, dim: int, threshold: float = 1.0) -> None:
        self.dim = _check_dim("TruncatedNormalPrior", dim)
        self.threshold = _check_positive("TruncatedNormalPrior", "threshold", threshold)

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.dim, device=device, generator=generator)
        bad = z.abs() > self.threshold
        while bool(bad.any()):
            z[bad] = torch.randn(int(bad.sum()), device=device, generator=generator)
            bad = z.abs() > self.threshold
        return z

    def __repr__(self) -> str:
        return f"TruncatedNormalPrior(dim={self.dim}, threshold={self.threshold})"


class RescaledPrior:
    """N(0, I) samples, each standardised over its own coordinates to mean ``mean`` and std ``std``."""

    def __init__(self, dim: int, mean: float = 0.0, std: float = 1.0) -> None:
        self.dim = _check_dim("RescaledPrior", dim)
        if self.dim < 2:
            raise ValueError(f"RescaledPrior: dim={dim} must be >= 2 to standardise over coordinates")
        if not isinstance(mean, (int, float)) or not math.isfinite(mean):
            raise ValueError(f"RescaledPrior: mean={mean!r} must be a finite number")
        self.mean = float(mean)
        self.std = _check_positive("RescaledPrior", "std", std)

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.dim, device=device, generator=generator)
        z = (z - z.mean(dim=1, keepdim=True)) / z.std(dim=1, keepdim=True)
        return z * self.std + self.mean

    def __repr__(self) -> str:
        return f"RescaledPrior(dim={self.dim}, mean={self.mean}, std={self.std})"


class SpherePrior:
    """N(0, I) samples divided by their root mean square: every z lies on the sphere of radius sqrt(dim)."""

    def __init__(self, dim: int) -> None:
        self.dim = _check_dim("SpherePrior", dim)

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.dim, device=device, generator=generator)
        return z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)

    def __repr__(self) -> str:
        return f"SpherePrior(dim={self.dim})"


class EpsilonBlockPrior:
    """The source's ``z = concat(z_tilde, eps)``: a base prior's sample followed by ``width`` iid N(0, variance)."""

    def __init__(self, base: Prior, width: int, variance: float = 0.01) -> None:
        self.base = base
        self.width = _check_dim("EpsilonBlockPrior (width)", width)
        self.variance = _check_positive("EpsilonBlockPrior", "variance", variance)
        self.dim = base.dim + self.width

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        z = self.base.sample(n, device, generator)
        eps = torch.randn(n, self.width, device=device, generator=generator) * math.sqrt(self.variance)
        return torch.cat([z, eps], dim=1)

    def __repr__(self) -> str:
        return f"EpsilonBlockPrior({self.base!r}, width={self.width}, variance={self.variance})"


class InstanceNoise(Hook):
    """Gaussian noise of std sigma(step) on every batch D sees, real and fake, annealed to 0 by ``anneal_steps``.

    ``schedule="linear"``: sigma0 * (1 - step / anneal_steps); ``"exp"``: sigma0 * 0.01 ** (step / anneal_steps)
    (1% of sigma0 at the end), and 0 from ``anneal_steps`` on in both cases. The noise is drawn from the hook's own
    generator, seeded by ``seed``, whose state is saved in checkpoints, so a resumed run adds the same noise.
    """

    SCHEDULES = ("linear", "exp")

    def __init__(self, sigma0: float, anneal_steps: int, schedule: str = "linear", seed: int = 0) -> None:
        self.sigma0 = _check_positive("InstanceNoise", "sigma0", sigma0)
        if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, int) or anneal_steps <= 0:
            raise ValueError(f"InstanceNoise: anneal_steps={anneal_steps!r} must be a positive integer")
        if schedule not in self.SCHEDULES:
            raise ValueError(f"InstanceNoise: schedule={schedule!r} is not one of {self.SCHEDULES}")
        self.anneal_steps, self.schedule = anneal_steps, schedule
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}
        self._state: torch.Tensor | None = None

    def sigma(self, step: int) -> float:
        """The noise std at ``step`` (0-based: the first training step is step 0)."""
        if step >= self.anneal_steps:
            return 0.0
        frac = step / self.anneal_steps
        return self.sigma0 * (1 - frac) if self.schedule == "linear" else self.sigma0 * 0.01 ** frac

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            g = torch.Generator(device=device).manual_seed(self.seed)
            if self._state is not None:
                g.set_state(self._state)
            self._generators[key] = g
        return self._generators[key]

    def d_input(self, x: torch.Tensor, step: int, trainer: Trainer) -> torch.Tensor:
        s = self.sigma(step)
        if s == 0.0:
            return x
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=self._generator(x.device))
        return x + s * noise

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        record["instance_noise_sigma"] = self.sigma(step - 1)

    def state_dict(self) -> dict[str, Any]:
        g = next(iter(self._generators.values()), None)
        return {"generator": g.get_state() if g is not None else self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = state["generator"]
        self._generators = {}


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation from ``z0`` (t=0) to ``z1`` (t=1) along the last dimension (White 2016).

    Falls back to linear interpolation where the two vectors are (nearly) parallel.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"slerp: z0 has shape {tuple(z0.shape)} but z1 has {tuple(z1.shape)}")
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    if t.dim() == 1:
        t = t.unsqueeze(-1)
    cos = (z0 * z1).sum(-1, keepdim=True) / (z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    linear = (1 - t) * z0 + t * z1
    spherical = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / so.clamp_min(1e-12)
    return torch.where(so.abs() < 1e-6, linear, spherical)


def build_prior(cfg: TrainConfig) -> Prior:
    """The prior that ``cfg.noise`` describes: of dimension ``cfg.resolved_z_dim``, plus ``eps_width``."""
    nc, dim = cfg.noise, cfg.resolved_z_dim
    base: Prior
    if nc.prior == "uniform":
        base = UniformPrior(dim)
    elif nc.prior == "truncated":
        base = TruncatedNormalPrior(dim, nc.truncation)
    elif nc.prior == "rescaled":
        base = RescaledPrior(dim, nc.rescale_mean, nc.rescale_std)
    elif nc.prior == "sphere":
        base = SpherePrior(dim)
    else:
        base = NormalPrior(dim)
    return EpsilonBlockPrior(base, nc.eps_width, nc.eps_variance) if nc.eps_width else base


def noise_hooks(cfg: TrainConfig) -> list[Hook]:
    """The hooks that ``cfg.noise`` switches on: :class:`InstanceNoise` when ``instance_sigma`` > 0."""
    nc = cfg.noise
    if not nc.instance_sigma:
        return []
    return [InstanceNoise(nc.instance_sigma, nc.instance_anneal_steps, nc.instance_schedule, seed=cfg.seed + 5)]
