"""GAN losses on discriminator logits (chapter 1, "The baseline GAN"; hinge and Wasserstein: chapter 8).

Discriminators output logits and the cross-entropy losses go through ``binary_cross_entropy_with_logits`` (a
log-sum-exp form), not ``Sigmoid`` + ``BCELoss`` or ``log(D + eps)``, which saturate and lose precision once D is
confident. ``kind`` (the config's ``loss``) chooses the pair of objectives:

* ``minimax`` (Goodfellow et al. 2014): D's cross-entropy; G minimises ``log(1 - D(G(z)))``, i.e. maximises D's loss
  on fakes;
* ``ns``, non-saturating (same paper, section 3): D's cross-entropy; G maximises ``log D(G(z))``, which keeps
  gradients alive early on;
* ``hinge`` (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral normalization for GANs", eq. 17): D
  minimises ``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))``, G minimises ``-mean(D(G(z)))``;
* ``wgan`` (Arjovsky et al. 2017, "Wasserstein GAN"): D, a critic, minimises ``mean(D(G(z))) - mean(D(x))``, G
  minimises ``-mean(D(G(z)))``. The critic must be kept Lipschitz: a gradient penalty (Gulrajani et al. 2017,
  :mod:`gantricks.penalty`) or spectral normalisation (:mod:`gantricks.spectral`).

For ``hinge`` and ``wgan`` the "logit" is D's raw score: it is not a log-odds, so ``sigmoid(score)`` (the history's
``d_real``/``d_fake``) is only a monotone view of it. One-sided label smoothing (Salimans et al. 2016) changes the
cross-entropy's real targets to ``1 - s`` and applies to ``ns`` and ``minimax`` only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CROSS_ENTROPY_LOSSES", "LOSSES", "discriminator_loss", "generator_loss"]

LOSSES = ("ns", "minimax", "hinge", "wgan")
CROSS_ENTROPY_LOSSES = ("ns", "minimax")
"""The losses whose D is a classifier trained by cross-entropy (its logits are log-odds)."""


def _check_kind(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"loss={kind!r} is invalid: allowed values are {LOSSES}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0,
                       kind: str = "ns") -> dict[str, torch.Tensor]:
    """D's loss for ``kind`` (``ns``/``minimax``: BCE(real, 1 - s) + BCE(fake, 0); ``hinge``; ``wgan``). Returns the
    total and both terms (means over the batch)."""
    _check_kind(kind)
    if kind in CROSS_ENTROPY_LOSSES:
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - label_smoothing))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    elif label_smoothing:
        raise ValueError(f"label_smoothing={label_smoothing!r} is invalid with loss={kind!r}: smoothing changes "
                         f"cross-entropy targets, which only {CROSS_ENTROPY_LOSSES} have")
    elif kind == "hinge":
        real, fake = F.relu(1.0 - real_logits).mean(), F.relu(1.0 + fake_logits).mean()
    else:  # wgan
        real, fake = -real_logits.mean(), fake_logits.mean()
    return {"loss_d": real + fake, "loss_d_real": real, "loss_d_fake": fake}


def generator_loss(fake_logits: torch.Tensor, kind: str = "ns") -> torch.Tensor:
    """G's loss on D's logits for its samples: ``ns`` = -log D(G(z)), ``minimax`` = log(1 - D(G(z))), ``hinge`` and
    ``wgan`` = -mean(D(G(z)))."""
    if kind == "ns":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    _check_kind(kind)
    return -fake_logits.mean()
