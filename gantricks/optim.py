"""Trick 2 (chapter 3, "Optimisers"): build ``torch.optim`` optimisers for G and D by name.

No hand-rolled optimisers: every name maps to a ``torch.optim`` class. G and D get their own learning rates, so
the two time-scale update rule (TTUR, Heusel et al. 2017) is just ``lr_d != lr_g``. Where the device and the class
support it, the fused (CUDA, and CPU for Adam/AdamW/SGD in recent torch) or foreach implementation is used.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch

from .config import OptimConfig

__all__ = ["OPTIMIZERS", "build_optimizer", "build_optimizers"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
}


def _fast_kwargs(cls: type[torch.optim.Optimizer], device: torch.device) -> dict[str, bool]:
    params = inspect.signature(cls.__init__).parameters
    if "fused" in params and (device.type == "cuda" or (device.type == "cpu" and cls in (
            torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD))):
        return {"fused": True}
    if "foreach" in params:
        return {"foreach": True}
    return {}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig, lr: float,
                    device: torch.device) -> torch.optim.Optimizer:
    """One optimiser named ``cfg.name`` over ``params`` with learning rate ``lr``."""
    cfg.validate()
    cls = OPTIMIZERS[cfg.name]
    kwargs: dict = {"lr": lr, "weight_decay": cfg.weight_decay}
    if cfg.name in ("adam", "adamw"):
        kwargs["betas"] = cfg.betas
    if cfg.name in ("sgd", "rmsprop"):
        kwargs["momentum"] = cfg.momentum
    kwargs.update(_fast_kwargs(cls, device))
    return cls(params, **kwargs)


def build_optimizers(generator: torch.nn.Module, discriminator: torch.nn.Module, cfg: OptimConfig,
                     device: torch.device) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """``(opt_g, opt_d)`` with ``cfg.lr_g`` and ``cfg.lr_d``."""
    return (build_optimizer(generator.parameters(), cfg, cfg.lr_g, device),
            build_optimizer(discriminator.parameters(), cfg, cfg.lr_d, device))
