"""Packing: D judges m samples at once (chapter 8, "Stabilisers"; Lin et al. 2018, "PacGAN: the power of two
samples in generative adversarial networks").

PacGAN's D takes m samples of one kind (all real or all fake) concatenated into one input and gives one judgement.
A G that drops modes makes packs whose members are too alike, which D can detect; the paper shows that packing
penalises mode collapse (its Table 1 is the 2D benchmark of "How we measure": PacGAN4 captures 7.8 of 8 and 24.8 of 25
modes). Here :class:`Packed` wraps D: a batch of n samples becomes n / m packs of m consecutive samples,
concatenated along the features (2D points: 2m coordinates) or the channels (images: m channels), and D's first
layer takes m times its inputs (a new layer, initialised as the config's ``init`` says). Each pack's logit is
repeated for its m members, so D returns n logits as the loop expects, and a loss's mean over them is the mean over
the packs. Packs of a batch size that m divides never mix reals and fakes. Unconditional runs only (PacGAN's): a
label per pack is not defined. The per-sample gradient penalties of :mod:`gantricks.penalty` are refused with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .models import init_weights
from .section import Section, option, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig

__all__ = ["Packed", "PackingConfig", "pack", "widen_input"]


@dataclass
class PackingConfig(Section):
    """PacGAN: D judges packs of m samples (Lin et al. 2018); m = 1 (off) by default."""

    key: ClassVar[str] = "packing"

    m: int = option(1, "PacGAN: D judges packs of this many samples, concatenated, e.g. 2 or 4 (1: off)",
                    positive_int, flag="--pack", metavar="M")

    def check_with(self, cfg: Any) -> None:
        if self.m == 1:
            return
        if cfg.batch_size % self.m:
            self.fail("m", f"it must divide batch_size={cfg.batch_size}, so no pack mixes reals and fakes")
        labels = cfg.build_latent_code().model_labels(cfg.n_classes)
        if labels.d or labels.aux:
            self.fail("m", "packing is for unconditional runs: D would need one label per pack")
        if cfg.penalty.r1 or cfg.penalty.gp:
            self.fail("m", "D judges packs, so the per-sample gradient of penalty.r1 / penalty.gp is undefined; "
                      "switch one off")
        if cfg.mbstd.group and (cfg.batch_size // self.m) % cfg.mbstd.group:
            self.fail("m", f"batch_size / m = {cfg.batch_size // self.m} packs must split into mbstd.group="
                      f"{cfg.mbstd.group}")

    def prepare_models(self, g: nn.Module, d: nn.Module, cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
        return (g, Packed(widen_input(d, self.m, cfg.init), self.m)) if self.m > 1 else (g, d)


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """(n, c, ...) -> (n / m, m c, ...): consecutive samples concatenated along dimension 1."""
    if x.shape[0] % m:
        raise ValueError(f"packing: a batch of {x.shape[0]} samples does not split into packs of {m}")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


def widen_input(d: nn.Module, m: int, init: str = "torch") -> nn.Module:
    """``d`` with its first linear or convolution layer replaced in place by one taking ``m`` times its inputs."""
    name, first = next(((n, mod) for n, mod in d.named_modules() if isinstance(mod, (nn.Linear, nn.Conv2d))),
                       ("", None))
    if first is None:
        raise ValueError(f"{type(d).__name__} has no linear or convolution layer to widen")
    bias = first.bias is not None
    if isinstance(first, nn.Linear):
        wide: nn.Module = nn.Linear(first.in_features * m, first.out_features, bias=bias)
    else:
        wide = nn.Conv2d(first.in_channels * m, first.out_channels, first.kernel_size, first.stride, first.padding,
                         bias=bias)
    parent, _, child = name.rpartition(".")
    setattr(d.get_submodule(parent), child, init_weights(wide.to(first.weight.device), init))
    return d


class Packed(nn.Module):
    """``D`` on packs of ``m`` consecutive samples; each pack's logit (and auxiliary output) repeated m times."""

    def __init__(self, d: nn.Module, m: int) -> None:
        super().__init__()
        self.d, self.m = d, int(m)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, with_aux: bool = False) -> Any:
        if y is not None:
            raise ValueError("Packed: packing is for unconditional discriminators (got labels y)")
        out = self.d(pack(x, self.m), None, with_aux=with_aux)
        if not with_aux:
            return out.repeat_interleave(self.m, dim=0)
        logits, aux = out
        return logits.repeat_interleave(self.m, dim=0), None if aux is None else aux.repeat_interleave(self.m, dim=0)
