"""gantricks: the package behind the book "GAN tricks" -- four training techniques, one loop, measured.

Start with :class:`gantricks.TrainConfig` and :func:`gantricks.train` (chapter 1, "The baseline GAN").
"""

from __future__ import annotations

from .config import LatentConfig, OptimConfig, TrainConfig
from .data import TensorSampler, load_mnist, mixture_2d, mixture_spec
from .hooks import Hook
from .latent import MixturePrior
from .noise import NormalPrior
from .train import DivergenceError, NonFiniteLossError, Trainer, train

__version__ = "0.1.0"

__all__ = [
    "DivergenceError",
    "Hook",
    "LatentConfig",
    "MixturePrior",
    "NonFiniteLossError",
    "NormalPrior",
    "OptimConfig",
    "TensorSampler",
    "TrainConfig",
    "Trainer",
    "__version__",
    "load_mnist",
    "mixture_2d",
    "mixture_spec",
    "train",
]


def quick() -> bool:
    """True when ``GANTRICKS_QUICK=1``: chapters shrink their budgets (the same cells run, the numbers shrink)."""
    import os

    return os.environ.get("GANTRICKS_QUICK", "") not in ("", "0", "false", "False")
