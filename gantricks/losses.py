"""GAN losses on discriminator logits (chapter 1, "The baseline GAN").

Discriminators output logits and every loss goes through ``binary_cross_entropy_with_logits`` (a log-sum-exp form),
not ``Sigmoid`` + ``BCELoss`` or ``log(D + eps)``, which saturate and lose precision once D is confident.

* minimax (Goodfellow et al. 2014): G minimises ``log(1 - D(G(z)))``, i.e. maximises D's loss on fakes;
* non-saturating (same paper, section 3): G maximises ``log D(G(z))``, which keeps gradients alive early on;
* one-sided label smoothing (Salimans et al. 2016): real targets ``1 - s``, fake targets stay 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["discriminator_loss", "generator_loss"]


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """D's loss: BCE(real, 1 - s) + BCE(fake, 0). Returns the total and both terms (means over the batch)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - label_smoothing))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return {"loss_d": real + fake, "loss_d_real": real, "loss_d_fake": fake}


def generator_loss(fake_logits: torch.Tensor, kind: str = "ns") -> torch.Tensor:
    """G's loss on D's logits for its samples: ``ns`` = -log D(G(z)), ``minimax`` = log(1 - D(G(z)))."""
    if kind == "ns":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"generator_loss: kind={kind!r} is not one of ('ns', 'minimax')")
