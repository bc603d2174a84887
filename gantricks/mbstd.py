"""Minibatch standard deviation in D (chapter 8, "Stabilisers"; Karras et al. 2018, "Progressive growing of GANs",
section 3).

A D that judges one sample at a time cannot see that G draws the same sample again and again. The layer gives D a
statistic of the batch: over each group of ``group`` samples, the standard deviation of every feature (population
variance + 1e-8, then the square root), averaged over the features to one number per group, appended to each of
the group's samples as one more feature. A collapsed G gives fakes whose groups have a small spread, which D can
then tell from the reals'.

Here it sits before D's final linear layer (ProGAN puts it before the last block, at 4 x 4), for every D of
:mod:`gantricks.models`: that layer gains one input, whose weight starts at 0, so D at initialisation computes what
it computed without the layer. Groups are consecutive samples, not ProGAN's strided ones: the loop passes a D
without BatchNorm ``cat(real, fake)`` in one call, and consecutive groups of a batch size that ``group`` divides never
mix reals and fakes. The layer couples the samples of a group, so with a gradient penalty of
:mod:`gantricks.penalty` the gradient at ``x_i`` of the batch's summed logits also carries what ``x_i`` changes in
its group's spread; the papers that train with both compute it just so (ProGAN with WGAN-GP, StyleGAN2's R1:
stylegan2-ada-pytorch ``loss.py`` differentiates ``real_logits.sum()`` through a D with minibatch std), and so does
this package. The coupling runs through one feature per group, averaged over all features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .section import Number, Section, option

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig

__all__ = ["MinibatchStdConfig", "MinibatchStdDev", "add_minibatch_std", "group_std"]

_GROUP = Number(0, float("inf"), integer=True, allowed="expected 0 (off) or an integer >= 2")


@dataclass
class MinibatchStdConfig(Section):
    """Minibatch standard deviation before D's last layer (Karras et al. 2018); off by default."""

    key: ClassVar[str] = "mbstd"

    group: int = option(0, "minibatch standard deviation as one more feature before D's last layer, over groups of "
                        "this many samples, e.g. 4 (0: off)", _GROUP, flag="--minibatch-std", metavar="GROUP")

    def check(self) -> None:
        if self.group == 1:
            self.fail("group", "a group of 1 has no spread; use 0 (off) or >= 2")

    def check_with(self, cfg: Any) -> None:
        if not self.group:
            return
        if cfg.batch_size % self.group:
            self.fail("group", f"it must divide batch_size={cfg.batch_size}, so no group mixes reals and fakes")
        if cfg.latent.labelled_batch % self.group:
            self.fail("group", f"it must divide latent.labelled_batch={cfg.latent.labelled_batch}")

    def prepare_models(self, g: nn.Module, d: nn.Module, cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
        return (g, add_minibatch_std(d, self.group)) if self.group else (g, d)


def group_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """One value per sample: the mean over features of the standard deviation over its group of ``group``
    consecutive samples (the whole batch if it is smaller); ``x`` is (n, features)."""
    n = x.shape[0]
    g = min(group, n)
    if n % g:
        raise ValueError(f"minibatch std: a batch of {n} samples does not split into groups of {g}")
    y = x.float().reshape(n // g, g, -1)
    std = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=1)
    return std.repeat_interleave(g).to(x.dtype)


class MinibatchStdDev(nn.Module):
    """Appends :func:`group_std` to each sample's features: (n, f) -> (n, f + 1)."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = int(group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, group_std(x, self.group).unsqueeze(1)], dim=1)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def add_minibatch_std(d: nn.Module, group: int) -> nn.Module:
    """``d`` (whose ``net`` ends with its linear logit layer, as every D of :mod:`gantricks.models`) with that layer
    replaced in place by :class:`MinibatchStdDev` + the same layer with one more input, weighted 0."""
    last = getattr(d, "net", [None])[-1]
    if not isinstance(last, nn.Linear):
        raise ValueError(f"{type(d).__name__}: minibatch std needs a D whose net ends with a linear layer")
    wider = nn.Linear(last.in_features + 1, last.out_features, bias=last.bias is not None, device="meta")
    wider = wider.to_empty(device=last.weight.device)
    with torch.no_grad():
        wider.weight.zero_()
        wider.weight[:, : last.in_features] = last.weight
        if last.bias is not None:
            wider.bias.copy_(last.bias)
    d.net[-1] = nn.Sequential(MinibatchStdDev(group), wider)
    return d
