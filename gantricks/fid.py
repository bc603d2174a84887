"""FID and KID with Inception-v3, where its weights and real MNIST can be downloaded (Colab, a machine online).

The book's own MNIST scores (:mod:`gantricks.mnist_metrics`, the appendix "How we measure") use a small digit
classifier because Inception weights cannot be downloaded offline. A practitioner who compares with papers needs
the standard metrics, which this module computes through torchmetrics (``pip install 'gantricks[fid]'``):

* FID, the Frechet Inception distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge
  to a local Nash equilibrium"): the Frechet distance between Gaussian fits of Inception-v3's 2,048 pool features of
  real and generated images (torchmetrics' ``FrechetInceptionDistance``);
* KID, the kernel Inception distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased MMD^2 between
  the same features under the cubic kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (mean and
  std; torchmetrics' ``KernelInceptionDistance``). Unlike FID it is unbiased in the number of samples.

The network is torchmetrics' ``NoTrainInceptionV3`` ("inception-v3-compat": torch-fidelity's port of the
TensorFlow weights of the reference FID code), its weights fetched once into ``$TORCH_HOME/hub/checkpoints``, with
images resized to 299 x 299 as TensorFlow 1 did (``antialias=False``). Features are extracted once and both metrics
are computed from them. The real images are torchvision's MNIST test split (10,000 digits; a seeded subset of
``n`` when fewer are asked for); the generated digits are ``n`` samples of the run, grey levels repeated over three
channels, as uint8. FID falls with ``n`` (it is biased), so compare FIDs only at equal ``n``; 10,000 is usual.

Where the weights or the digits cannot be had, :class:`FIDUnavailable` says why in one line and points to the
classifier metrics (``python -m gantricks evaluate RUN_DIR``). In Python: ``fid_metrics(trainer)``.
"""

from __future__ import annotations

import inspect
import os
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["MNIST_TEST_SIZE", "FIDUnavailable", "fid_metrics", "inception_features", "inception_metrics",
           "real_mnist", "to_uint8_rgb"]

MNIST_TEST_SIZE = 10_000
"""Digits in torchvision's MNIST test split, the real images FID and KID compare with."""

OFFLINE_HINT = "offline, use the classifier metrics: python -m gantricks evaluate RUN_DIR (without --metric)"
INSTALL_HINT = "pip install 'torchmetrics[image]' (the extra gantricks[fid])"


class FIDUnavailable(RuntimeError):
    """FID/KID cannot be computed here (no torchmetrics, no Inception weights or no real MNIST): a one-line reason."""


def _reason(err: BaseException) -> str:
    """``Type: first line`` of the innermost cause of ``err`` (what actually failed: DNS, HTTP 404, ...)."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = str(getattr(err, "reason", None) or err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _torchmetrics() -> tuple[type, type]:
    """torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` (``FIDUnavailable`` without it)."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError as err:
        raise FIDUnavailable(f"FID/KID need torchmetrics with its image extra ({_reason(err)}): {INSTALL_HINT}; "
                             f"{OFFLINE_HINT}") from err
    return FrechetInceptionDistance, KernelInceptionDistance


def to_uint8_rgb(images: torch.Tensor, value_range: str = "tanh") -> torch.Tensor:
    """Images (N, 1 or 3, H, W) in [-1, 1] (``"tanh"``) or [0, 1] (``"sigmoid"``) as uint8 (N, 3, H, W) in 0..255.

    Values outside the range are clipped; a single grey channel is repeated three times, as Inception expects RGB.
    """
    if value_range not in ("tanh", "sigmoid"):
        raise ValueError(f"to_uint8_rgb: value_range={value_range!r} is not one of ('tanh', 'sigmoid')")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"to_uint8_rgb: images of shape {tuple(images.shape)}: expected (N, 1 or 3, H, W)")
    x = images.detach().to(torch.float32)
    if value_range == "tanh":
        x = (x + 1) / 2
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


def inception_features() -> nn.Module:
    """torchmetrics' Inception-v3 (2,048 pool features of uint8 RGB images); ``FIDUnavailable`` if its weights are
    neither in ``$TORCH_HOME/hub/checkpoints`` nor downloadable."""
    _torchmetrics()
    from torchmetrics.image.fid import NoTrainInceptionV3

    kwargs: dict[str, Any] = {"name": "inception-v3-compat", "features_list": ["2048"]}
    if "antialias" in inspect.signature(NoTrainInceptionV3.__init__).parameters:
        kwargs["antialias"] = False  # resize as TensorFlow 1 did (the reference FID code; torchmetrics < 1.8)
    try:
        return NoTrainInceptionV3(**kwargs)
    except (OSError, RuntimeError) as err:  # URLError/HTTPError are OSErrors; a corrupt download: RuntimeError
        where = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise FIDUnavailable(f"FID/KID need torch-fidelity's Inception-v3 weights, which are not in {where} and "
                             f"could not be downloaded ({_reason(err)}); {OFFLINE_HINT}") from err


@torch.no_grad()
def _features(extractor: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    out = [extractor(batch.to(device)).reshape(len(batch), -1).to(torch.float64).cpu()
           for batch in images.split(batch_size)]
    return torch.cat(out)


class _Precomputed(nn.Module):
    """The identity on features already extracted: torchmetrics' metrics take a feature extractor, ours has run."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def inception_metrics(real: torch.Tensor, fake: torch.Tensor, feature: nn.Module | None = None,
                      kid_subsets: int = 100, kid_subset_size: int = 1000, batch_size: int = 200,
                      device: Any = "cpu", seed: int = 0) -> dict[str, float]:
    """FID and KID (mean, std) between two sets of uint8 RGB images (N, 3, H, W), N >= 2 each.

    ``feature`` maps a batch of such images to (batch, D) features; by default :func:`inception_features` (the
    standard metrics; a stand-in network gives the same formulas in its own feature space). KID draws
    ``kid_subsets`` subsets of ``min(kid_subset_size, N)`` features from each set (torchmetrics' defaults: 100 of
    1,000) with ``seed``; with N <= ``kid_subset_size`` every subset is the whole set and ``kid_std`` is 0.
    """
    for name, images in (("real", real), ("fake", fake)):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3 or images.shape[0] < 2:
            raise ValueError(f"inception_metrics: {name} images have dtype {images.dtype} and shape "
                             f"{tuple(images.shape)}: expected uint8 (N >= 2, 3, H, W); see to_uint8_rgb")
    if kid_subsets <= 0 or kid_subset_size <= 1:
        raise ValueError(f"inception_metrics: kid_subsets={kid_subsets}, kid_subset_size={kid_subset_size}: "
                         "expected kid_subsets > 0 and kid_subset_size > 1")
    fid_cls, kid_cls = _torchmetrics()
    extractor = inception_features() if feature is None else feature
    device = torch.device(device)
    extractor = extractor.to(device).eval()
    f_real = _features(extractor, real, batch_size, device)
    f_fake = _features(extractor, fake, batch_size, device)
    if f_real.shape[1] != f_fake.shape[1]:
        raise ValueError(f"inception_metrics: {f_real.shape[1]} real features but {f_fake.shape[1]} fake features")
    identity = _Precomputed(f_real.shape[1])
    fid = fid_cls(feature=identity, reset_real_features=True)
    fid.update(f_real, real=True)
    fid.update(f_fake, real=False)
    size = min(kid_subset_size, len(f_real), len(f_fake))
    with warnings.catch_warnings():  # it warns that it keeps every feature: ours are already all in memory
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = kid_cls(feature=identity, subsets=kid_subsets, subset_size=size)
    kid.update(f_real, real=True)
    kid.update(f_fake, real=False)
    with torch.random.fork_rng(devices=[]):  # KID's subsets come from the global generator: seed it, then restore
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


def real_mnist(n: int = MNIST_TEST_SIZE, root: str | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` digits of torchvision's MNIST test split as uint8 (n, 3, 28, 28): all of them in order for ``n`` =
    10,000, else a subset drawn with ``seed``. ``FIDUnavailable`` when it can neither be read nor downloaded."""
    from .data import load_mnist

    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MNIST_TEST_SIZE:
        raise ValueError(f"real_mnist: n={n!r}: expected an integer in [2, {MNIST_TEST_SIZE}] (the test split's size)")
    try:
        images, _, _ = load_mnist(root, train=False, source="torchvision", value_range="sigmoid")
    except RuntimeError as err:
        raise FIDUnavailable(f"FID/KID compare with torchvision's MNIST test digits, which could not be read or "
                             f"downloaded ({_reason(err)}); {OFFLINE_HINT}") from err
    if n < len(images):
        images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]
    return to_uint8_rgb(images, "sigmoid")


def fid_metrics(trainer: Trainer, n: int | None = None, seed: int = 0, feature: nn.Module | None = None,
                real: torch.Tensor | None = None, batch_size: int = 200) -> dict[str, Any]:
    """FID and KID of an MNIST run: ``n`` (default 10,000) samples against ``n`` torchvision MNIST test digits.

    Returns ``fid``, ``kid_mean``, ``kid_std`` and what they were measured with (``n``, ``reference``,
    ``network``). ``feature`` replaces Inception (e.g. a small stand-in network) and ``real`` the reference images
    (uint8 (N, 3, H, W)); the samples of a class-conditional run ask for every digit equally often. Raises
    ``ValueError`` for a run that is not MNIST or a bad ``n``, and :class:`FIDUnavailable` (one line, pointing to
    the classifier metrics) where torchmetrics, the Inception weights or real MNIST cannot be had.
    """
    dataset = trainer.cfg.dataset
    if dataset != "mnist":
        raise ValueError(f"FID/KID are image metrics: this run's dataset is {dataset!r}, not 'mnist'; the 2D "
                         "benchmarks are measured by modes/high_quality/kl (python -m gantricks evaluate RUN_DIR)")
    n = MNIST_TEST_SIZE if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MNIST_TEST_SIZE:
        raise ValueError(f"--n {n!r}: FID/KID need between 2 and {MNIST_TEST_SIZE:,} samples (the MNIST test "
                         "split's size; 10,000 is usual, and FIDs are comparable only at equal n)")
    _torchmetrics()
    if real is None:
        real = real_mnist(n, trainer.cfg.mnist_root, seed=0)
        reference = (f"torchvision MNIST test split ({n:,} digits"
                     + (")" if n == MNIST_TEST_SIZE else ", a subset drawn with seed 0)"))
    else:
        reference = f"{len(real):,} images given by the caller"
    if feature is None:
        feature = inception_features()
        network = "Inception-v3 (torchmetrics/torch-fidelity 'inception-v3-compat', 2,048 pool features)"
    else:
        network = f"stand-in feature extractor {type(feature).__name__}"
    gen = torch.Generator(device=trainer.device).manual_seed(seed)
    fake, _ = trainer.sample_with_labels(n, generator=gen)
    fake = to_uint8_rgb(fake, "sigmoid" if trainer.cfg.output == "sigmoid" else "tanh")
    scores = inception_metrics(real, fake, feature, batch_size=batch_size, device=trainer.device, seed=seed)
    return {**scores, "n": n, "reference": reference, "network": network}
