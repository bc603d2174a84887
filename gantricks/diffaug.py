"""Differentiable augmentation of everything D sees (chapter 8, "Stabilisers"; Zhao et al. 2020, "Differentiable
augmentation for data-efficient GAN training", the reference code ``DiffAugment_pytorch.py``).

A D trained on few images memorises them; augmenting only the reals would teach G to draw augmented images. DiffAugment
applies the same random, differentiable transformations to reals and fakes in D's update and to the fakes of G's
update, so D never sees an unaugmented image and G's gradient passes through the transformation. Here that is one
:class:`~gantricks.hooks.Hook`'s :meth:`~gantricks.hooks.Hook.d_input`, which the loop calls on every batch D sees
(reals and fakes of D's update, G's fakes; a simultaneous update augments its one fake batch once, for both
losses). Each sample gets its own draw, from the hook's own generator (seeded, checkpointed). The transformations,
as in the reference code, in the order the policy names them:

* ``color``: brightness (add U[-0.5, 0.5]), saturation (scale the deviation from the channel mean by U[0, 2]; a
  no-op on one channel), contrast (scale the deviation from the image mean by U[0.5, 1.5]);
* ``translation``: shift by up to ``translation`` of the side (0.125: 4 pixels of 28) each way, filling with 0;
* ``cutout``: zero a square of ``cutout`` of the side (0.5: 14 x 14) centred at a random pixel.

For images only: the config refuses the 2D mixtures. With instance noise (chapter 2) on too, the noise is added
first (its section comes first), then the augmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .hooks import Hook, RandomHook
from .section import Number, Section, fail, option

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["AUGMENTATIONS", "DiffAugment", "DiffAugmentConfig", "augment", "brightness", "contrast", "cutout",
           "cut_square", "saturation", "shift", "translation"]

_RATIO = Number(0, 1, lo_open=True, allowed="expected a number in (0, 1]")


def _uniform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # drawn in float32 whatever x's dtype (AMP), so a run draws the same augmentations with and without it
    return torch.rand(x.shape[0], 1, 1, 1, dtype=torch.float32, device=x.device, generator=gen).to(x.dtype)


def brightness(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Add U[-0.5, 0.5] to each image."""
    return x + (_uniform(x, gen) - 0.5)


def saturation(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Scale each image's deviation from its channel mean by U[0, 2]."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, gen) * 2) + mean


def contrast(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Scale each image's deviation from its mean by U[0.5, 1.5]."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, gen) + 0.5) + mean


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """``out[b, :, i, j] = x[b, :, i + dy[b], j + dx[b]]``, 0 where that falls outside the image."""
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device) + dy.view(n, 1)
    cols = torch.arange(w, device=x.device) + dx.view(n, 1)
    inside = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, 1, w)
    b = torch.arange(n, device=x.device).view(n, 1, 1)
    out = x[b, :, rows.clamp(0, h - 1).view(n, h, 1), cols.clamp(0, w - 1).view(n, 1, w)]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2) * inside


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by whole pixels drawn from [-s, s] per axis, s = round(ratio * side)."""
    sy, sx = int(x.shape[2] * ratio + 0.5), int(x.shape[3] * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (x.shape[0],), device=x.device, generator=gen)
    dx = torch.randint(-sx, sx + 1, (x.shape[0],), device=x.device, generator=gen)
    return shift(x, dy, dx)


def cut_square(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero rows ``[cy - size[0] // 2, cy - size[0] // 2 + size[0])`` x the same for columns, per image."""
    n, _, h, w = x.shape
    top, left = (cy - size[0] // 2).view(n, 1), (cx - size[1] // 2).view(n, 1)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows, in_cols = (rows >= top) & (rows < top + size[0]), (cols >= left) & (cols < left + size[1])
    keep = ~(in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w))
    return x * keep.to(x.dtype)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of round(ratio * side) pixels per image, centred at a random pixel (it may stick out)."""
    size = int(x.shape[2] * ratio + 0.5), int(x.shape[3] * ratio + 0.5)
    cy = torch.randint(0, x.shape[2] + (1 - size[0] % 2), (x.shape[0],), device=x.device, generator=gen)
    cx = torch.randint(0, x.shape[3] + (1 - size[1] % 2), (x.shape[0],), device=x.device, generator=gen)
    return cut_square(x, cy, cx, size)


AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "color": lambda x, gen, cfg: contrast(saturation(brightness(x, gen), gen), gen),
    "translation": lambda x, gen, cfg: translation(x, gen, cfg.translation),
    "cutout": lambda x, gen, cfg: cutout(x, gen, cfg.cutout),
}
"""The policy's names -> ``f(x, generator, config)``, as the reference code's ``AUGMENT_FNS``."""


def _policy(name: str, value: Any) -> tuple[str, ...]:
    p = tuple(value) if isinstance(value, (tuple, list)) else None
    if p is None or not all(isinstance(v, str) and v in AUGMENTATIONS for v in p) or len(set(p)) != len(p):
        fail(name, value, f"expected distinct names among {tuple(AUGMENTATIONS)} (empty: off)")
    return p


@dataclass
class DiffAugmentConfig(Section):
    """Differentiable augmentation of every batch D sees (Zhao et al. 2020); off (no policy) by default."""

    key: ClassVar[str] = "diffaug"

    policy: tuple[str, ...] = option((), "DiffAugment: augment reals and fakes alike with these, in order: color, "
                                     "translation, cutout (images only)", _policy, flag="--diffaugment",
                                     metavar="NAME")
    translation: float = option(0.125, "largest shift of DiffAugment's translation, as a fraction of the side",
                                _RATIO, flag="--diffaugment-translation", metavar="F")
    cutout: float = option(0.5, "side of DiffAugment's cutout square, as a fraction of the image's",
                           _RATIO, flag="--diffaugment-cutout", metavar="F")

    def check(self) -> None:
        for name in ("translation", "cutout"):  # a size for an augmentation the policy does not run would be ignored
            if getattr(self, name) != type(self).__dataclass_fields__[name].default and name not in self.policy:
                self.fail(name, f"it sizes DiffAugment's {name}, which policy={list(self.policy)} does not apply; "
                          f"add {name!r} to diffaug.policy (--diffaugment {name}) or leave it at its default")

    def check_with(self, cfg: Any) -> None:
        if self.policy and cfg.dataset != "mnist":
            self.fail("policy", f"DiffAugment transforms images; dataset {cfg.dataset!r} holds 2D points")

    def hooks(self, cfg: Any) -> list[Hook]:
        return [DiffAugment(self, seed=cfg.seed + 9)] if self.policy else []


def augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator,
            cfg: DiffAugmentConfig | None = None) -> torch.Tensor:
    """``x`` (images, (n, c, h, w)) through the policy's augmentations, in order, drawing from ``gen``."""
    if x.dim() != 4:
        raise ValueError(f"DiffAugment needs images of shape (n, c, h, w), got {tuple(x.shape)}")
    cfg = cfg or DiffAugmentConfig()
    for name in policy:
        x = AUGMENTATIONS[name](x, gen, cfg)
    return x


class DiffAugment(RandomHook):
    """Augments every batch D sees (:meth:`d_input`) with ``cfg.policy``."""

    key = "diffaug"

    def __init__(self, cfg: DiffAugmentConfig, seed: int = 0) -> None:
        super().__init__(seed)
        cfg.validate()
        self.cfg = cfg

    def d_input(self, x: torch.Tensor, step: int, trainer: Trainer) -> torch.Tensor:
        return augment(x, self.cfg.policy, self.generator(x.device), self.cfg)

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        raise ValueError("a format-1 checkpoint predates DiffAugment; it cannot resume with it")
