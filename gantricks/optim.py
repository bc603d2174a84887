"""Trick 2 (chapter 3, "Optimisers", book/03_optimizers.ipynb): ``torch.optim`` optimisers for G and D, and presets.

No hand-rolled optimisers: every name maps to a ``torch.optim`` class (SGD, with ``momentum`` and ``nesterov``;
RMSprop; Adagrad; Adadelta; Adam; AdamW). G and D get their own learning rates, so the two time-scale update rule
(TTUR, Heusel et al. 2017) is just ``lr_d != lr_g``, and D may get its own Adam betas (``betas_d``). Where the
device and the class support it, the fused (CUDA, and CPU for Adam/AdamW/SGD in recent torch) or foreach
implementation is used. :data:`OPTIM_PRESETS` holds published settings, each with its source; chapter 3 measures
them on the 2D mixtures and MNIST and draws them on the Dirac-GAN (:mod:`gantricks.dirac`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from .section import Choice, Number, Section, flag, option, optional, positive
from .section import betas as two_betas

__all__ = ["OPTIMIZERS", "OPTIMIZER_FIELDS", "OPTIM_PRESETS", "OptimConfig", "build_optimizer", "build_optimizers",
           "optim_preset"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
}

# The OptimConfig fields each optimiser reads besides lr_g, lr_d and weight_decay (which all read; for Adam
# weight_decay is an L2 term in the gradient, for AdamW it is decoupled, Loshchilov & Hutter 2019). A field that
# the chosen optimiser does not read must keep its default: OptimConfig.validate says so instead of ignoring it.
# Other constants are torch's defaults: Adagrad lr_decay 0, Adadelta rho 0.9, eps everywhere.
OPTIMIZER_FIELDS: dict[str, tuple[str, ...]] = {
    "adam": ("betas", "betas_d"),
    "adamw": ("betas", "betas_d"),
    "sgd": ("momentum", "nesterov"),
    "rmsprop": ("momentum", "alpha"),
    "adagrad": (),
    "adadelta": (),
}

# Named settings: OptimConfig fields plus "source". Learning rates without a published GAN value are starting
# points matched to the step size of their neighbours (said in "source"), not tuned; chapter 3 measures them.
OPTIM_PRESETS: dict[str, dict[str, Any]] = {
    "dcgan": {"name": "adam", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
              "source": "Radford et al. 2016 (DCGAN), section 4: Adam, lr 2e-4, beta1 0.5"},
    "pacgan": {"name": "adam", "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.8, 0.999),
               "source": "PacGAN's 2D experiments (Lin et al. 2018; code fjxmlzn/PacGAN, synthetic_data_experiments "
                         "config.py): Adam, learning_rate 1e-4, beta1 0.8 for both networks (Blocks' beta2 0.999)"},
    "ttur-sagan": {"name": "adam", "lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.0, 0.9),
                   "source": "two time-scales (TTUR, Heusel et al. 2017) with SAGAN's values (Zhang et al. 2019, "
                             "section 5): D lr 4e-4, G lr 1e-4, Adam betas (0, 0.9)"},
    "source-adam": {"name": "adam", "lr_g": 1e-3, "lr_d": 1e-3, "betas": (0.9, 0.997),
                    "source": "the source text's Adam: lr 1e-3, betas (0.9, 0.997)"},
    "torch-default": {"name": "adam", "lr_g": 1e-3, "lr_d": 1e-3, "betas": (0.9, 0.999),
                      "source": "torch.optim.Adam's defaults, the values Kingma & Ba 2015 suggest"},
    "sgd": {"name": "sgd", "lr_g": 1e-2, "lr_d": 1e-2,
            "source": "plain SGD (Goodfellow et al. 2014 trained with SGD); lr 0.01 is a common starting point"},
    "momentum": {"name": "sgd", "lr_g": 1e-3, "lr_d": 1e-3, "momentum": 0.9,
                 "source": "heavy-ball momentum 0.9 (Polyak 1964; Sutskever et al. 2013); lr 1e-3 so that "
                           "lr / (1 - momentum) = 0.01 matches 'sgd'"},
    "nesterov": {"name": "sgd", "lr_g": 1e-3, "lr_d": 1e-3, "momentum": 0.9, "nesterov": True,
                 "source": "Nesterov momentum 0.9 as Sutskever et al. 2013 write it; lr as 'momentum'"},
    "rmsprop": {"name": "rmsprop", "lr_g": 2e-4, "lr_d": 2e-4, "alpha": 0.99,
                "source": "RMSprop (Tieleman & Hinton 2012), torch's alpha 0.99; lr 2e-4 matches DCGAN's Adam step "
                          "(WGAN used 5e-5, Arjovsky et al. 2017)"},
    "adagrad": {"name": "adagrad", "lr_g": 1e-2, "lr_d": 1e-2,
                "source": "Adagrad (Duchi et al. 2011) at torch's default lr 0.01; its steps shrink as gradients "
                          "accumulate"},
    "adadelta": {"name": "adadelta", "lr_g": 1.0, "lr_d": 1.0,
                 "source": "Adadelta (Zeiler 2012) at torch's defaults: lr 1.0, rho 0.9"},
}


_UNIT = Number(0, 1, hi_open=True, allowed="expected a number in [0, 1)")


@dataclass
class OptimConfig(Section):
    """Trick 2 (chapter 3, "Optimisers"): the optimisers of G and D, one learning rate each (TTUR when they differ).

    The default is DCGAN's Adam (Radford et al. 2016: lr 2e-4, betas (0.5, 0.999)) for both networks. A field the
    chosen optimiser does not read must keep its default (:data:`OPTIMIZER_FIELDS`). A dict of fields may start
    from a named setting with ``{"preset": NAME, ...}`` (:data:`OPTIM_PRESETS`; the other keys override it).
    """

    key: ClassVar[str] = "optim"
    presets: ClassVar[dict[str, dict[str, Any]]] = OPTIM_PRESETS

    name: str = option("adam", "torch.optim optimiser", Choice(tuple(OPTIMIZERS)), flag="--optimizer")
    lr_g: float = option(2e-4, "generator learning rate", positive)
    lr_d: float = option(2e-4, "discriminator learning rate", positive)
    betas: tuple[float, float] = option((0.5, 0.999), "Adam/AdamW betas", two_betas, metavar="B")
    betas_d: tuple[float, float] | None = option(None, "the discriminator's own Adam betas (default: --betas)",
                                                 optional(two_betas), metavar="B")
    momentum: float = option(0.0, "momentum of sgd or rmsprop", _UNIT)
    nesterov: bool = option(False, "Nesterov momentum (sgd with --momentum > 0)", flag)
    alpha: float = option(0.99, "rmsprop's smoothing constant", _UNIT)
    weight_decay: float = option(0.0, "weight decay (L2 for adam, decoupled for adamw)",
                                 Number(0, float("inf"), hi_open=True, allowed="expected a finite number >= 0"))

    def check(self) -> None:
        for f in fields(self):
            users = [n for n, takes in OPTIMIZER_FIELDS.items() if f.name in takes]
            if users and self.name not in users and getattr(self, f.name) != f.default:
                self.fail(f.name, f"{self.name!r} has no such hyper-parameter (it applies to {users}); leave it at "
                          f"its default {f.default!r}")
        if self.nesterov and self.momentum <= 0:
            self.fail("nesterov", "Nesterov momentum needs optim.momentum > 0")

    @classmethod
    def extra_keys(cls) -> tuple[str, ...]:
        return ("preset",)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> OptimConfig:
        """``{"preset": NAME, ...}`` starts from that preset; the other keys override it."""
        if "preset" not in fields:
            return super().from_fields(fields)  # type: ignore[return-value]
        fields = dict(fields)
        return optim_preset(fields.pop("preset"), **fields)


def optim_preset(preset: str, /, **changes: Any) -> OptimConfig:
    """The validated :class:`OptimConfig` of ``preset`` (see :data:`OPTIM_PRESETS`), with ``changes`` applied.

    >>> optim_preset("ttur-sagan").lr_d
    0.0004
    """
    if preset not in OPTIM_PRESETS:
        raise ValueError(f"optim.preset={preset!r} is invalid: allowed values are {tuple(OPTIM_PRESETS)}")
    settings = {k: v for k, v in OPTIM_PRESETS[preset].items() if k != "source"}
    cfg = OptimConfig.from_fields({**settings, **changes})
    cfg.validate()
    return cfg


def _fast_kwargs(cls: type[torch.optim.Optimizer], device: torch.device) -> dict[str, bool]:
    params = inspect.signature(cls.__init__).parameters
    if "fused" in params and (device.type == "cuda" or (device.type == "cpu" and cls in (
            torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD))):
        return {"fused": True}
    if "foreach" in params:
        return {"foreach": True}
    return {}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig, lr: float, device: torch.device,
                    betas: tuple[float, float] | None = None) -> torch.optim.Optimizer:
    """One optimiser named ``cfg.name`` over ``params`` with learning rate ``lr`` (and ``betas``, default
    ``cfg.betas``, for Adam/AdamW); the other hyper-parameters it takes (:data:`OPTIMIZER_FIELDS`) come from ``cfg``.
    """
    cfg.validate()
    cls = OPTIMIZERS[cfg.name]
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": cfg.weight_decay}
    for name in OPTIMIZER_FIELDS[cfg.name]:
        if name == "betas":
            kwargs["betas"] = cfg.betas if betas is None else betas
        elif name != "betas_d":
            kwargs[name] = getattr(cfg, name)
    kwargs.update(_fast_kwargs(cls, device))
    return cls(params, **kwargs)


def build_optimizers(generator: torch.nn.Module, discriminator: torch.nn.Module, cfg: OptimConfig,
                     device: torch.device) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """``(opt_g, opt_d)``: G with ``cfg.lr_g`` and ``cfg.betas``, D with ``cfg.lr_d`` and ``cfg.betas_d`` (if set)."""
    return (build_optimizer(generator.parameters(), cfg, cfg.lr_g, device),
            build_optimizer(discriminator.parameters(), cfg, cfg.lr_d, device, betas=cfg.betas_d))
