"""Spectral normalisation of D (chapter 8, "Stabilisers"; Miyato et al. 2018, "Spectral normalization for generative
adversarial networks").

Every linear and convolution layer of D divides its weight W by an estimate of its largest singular value
sigma(W), so each linear layer is (at most) 1-Lipschitz and so is D, as far as its other layers allow: LeakyReLU
and maxout (a maximum of 1-Lipschitz maps) are 1-Lipschitz; BatchNorm (the DCGAN's D) is not, and the paper's
discriminators have none. A convolution is normalised as its reshaped weight matrix (below), whose largest singular
value is not the convolution's Lipschitz constant (that can be larger), so a normalised convolution is only roughly
1-Lipschitz, as in the paper. sigma(W) comes from power iteration on vectors u, v kept between forward passes: each
forward pass in training mode runs ``power_iterations`` more iterations (the paper uses 1), one in eval mode none.
The estimate is a lower bound of sigma(W), so a normalised weight's largest singular value starts a little above 1
and falls to 1 as the iterations accumulate (``tests/test_spectral.py`` measures it).
A convolution's weight is normalised as the matrix (out_channels, in_channels * kh * kw), as in the paper and in
``torch.nn.utils.parametrizations.spectral_norm``, which does the work here; u and v are buffers of D, so they are
in D's ``state_dict`` and a resumed run continues the same iteration.

Label embeddings (a conditional D's input) are not normalised; the auxiliary class head (ACGAN) is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from .section import Section, flag, option, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig

__all__ = ["NORMALISED", "SpectralConfig", "normalised_layers", "spectral_normalise"]

NORMALISED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
"""The layers whose weights spectral normalisation divides by their largest singular value."""


@dataclass
class SpectralConfig(Section):
    """Spectral normalisation of D's layers (Miyato et al. 2018); off by default."""

    key: ClassVar[str] = "spectral"

    d: bool = option(False, "spectral normalisation of every linear and convolution layer of D (Miyato et al. 2018)",
                     flag, flag="--spectral-norm")
    power_iterations: int = option(1, "power iterations per D forward pass in training (--spectral-norm)",
                                   positive_int, flag="--sn-power-iterations", metavar="N")

    def check(self) -> None:
        if self.power_iterations != 1 and not self.d:
            self.fail("power_iterations", "it sets spectral normalisation's iterations; switch it on with d=True "
                      "(--spectral-norm)")

    def prepare_models(self, g: nn.Module, d: nn.Module, cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
        return (g, spectral_normalise(d, self.power_iterations)) if self.d else (g, d)


def spectral_normalise(model: nn.Module, power_iterations: int = 1) -> nn.Module:
    """``model`` with every layer of :data:`NORMALISED` spectrally normalised in place (its weight becomes
    ``W / sigma(W)``); u and v start from N(0, 1) draws of torch's global generator, then 15 power iterations."""
    positive_int("power_iterations", power_iterations)
    layers = [m for m in model.modules() if isinstance(m, NORMALISED)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no linear or convolution layer to normalise")
    for m in layers:
        spectral_norm(m, n_power_iterations=power_iterations)
    return model


def normalised_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of ``model`` whose weight is spectrally normalised."""
    return [m for m in model.modules() if isinstance(m, NORMALISED) and parametrize.is_parametrized(m, "weight")]
