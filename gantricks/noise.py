"""Trick 1 (chapter 2, "Noise inputs"): latent priors.

A prior is a small object with ``sample(n, device, generator) -> Tensor (n, dim)``; the training loop draws every z
through it, so a chapter changes the prior by passing another object, not by editing the loop. This module starts
with the standard normal prior of Goodfellow et al. (2014) that every chapter uses by default.
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["NormalPrior", "Prior"]


class Prior(Protocol):
    """What the training loop needs from a latent prior."""

    dim: int

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor: ...


class NormalPrior:
    """z ~ N(0, I) of dimension ``dim``."""

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"NormalPrior: dim={dim!r} must be a positive integer")
        self.dim = dim

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.dim, device=device, generator=generator)

    def __repr__(self) -> str:
        return f"NormalPrior(dim={self.dim})"
