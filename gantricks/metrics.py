"""Metrics: mode coverage on the 2D benchmarks, exactly as PacGAN's code measures it.

The chapter "How we measure" explains these numbers; chapter 1 ("The baseline GAN") first uses them.

:func:`mode_coverage` follows the protocol of PacGAN (Lin et al. 2018, "PacGAN: The power of two samples
in generative adversarial networks"; code: fjxmlzn/PacGAN, class ``MetricLogger`` in
``synthetic_data_experiments/PacGAN/pacgan/extensions.py``), itself after VEEGAN (Srivastava et al. 2017):

* every generated sample is assigned to its nearest mode centre;
* it is *high quality* if its distance to that centre is less than 3 standard deviations of the mode
  (PacGAN's code: ``sqrt(sum(d**2 / var)) < 3``, strict; for the isotropic modes here ``|d| < 3 * std``);
* a mode is *captured* if at least one high-quality sample is assigned to it;
* the high-quality fraction is the number of high-quality samples over *all* N samples;
* the KL is ``KL(p || uniform) = sum_k p_k log(K p_k)`` (natural log) of the histogram ``p`` of the
  high-quality samples over the K modes: the "reverse KL" of PacGAN's Table 1. PacGAN's code logs the
  entropy ``scipy.stats.entropy(counts / counts.sum())`` of that histogram, and ``KL = log K - entropy``.
  Modes with a zero count contribute 0 (the ``0 log 0 = 0`` convention of ``scipy.stats.entropy``), so the
  KL stays finite, at most ``log K`` (all high-quality samples in one mode). With *no* high-quality sample
  the histogram is ``0 / 0``: PacGAN's code then gets NaN, and so do we (``kl = nan``). Average over seeds
  with ``numpy.nanmean`` and say how many runs had no high-quality sample (their ``modes`` and
  ``high_quality`` are 0).

Samples that are not finite (a diverged generator) are never high quality.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Union

import numpy as np
import torch

from .data import MixtureSpec, mixture_spec

__all__ = ["HQ_THRESHOLD_STD", "PUBLISHED_2D", "ModeCoverage", "kl_to_uniform", "mode_coverage"]

HQ_THRESHOLD_STD = 3.0
"""High quality: within this many standard deviations of the nearest mode (PacGAN, VEEGAN)."""

_CHUNK = 1 << 16  # rows per block of the (N, K) distance matrix, to bound memory for very large N

ArrayLike = Union[torch.Tensor, np.ndarray]


@dataclass(frozen=True)
class ModeCoverage:
    """The PacGAN/VEEGAN mode-coverage numbers of one set of generated samples.

    ``modes``: modes captured (out of ``n_modes``); ``high_quality``: fraction of the ``n_samples``
    samples that are high quality, in [0, 1]; ``kl``: KL of the high-quality mode histogram to uniform
    (natural log; NaN when there is no high-quality sample); ``counts``: high-quality samples per mode, in
    the order of the spec's centres.
    """

    modes: int
    high_quality: float
    kl: float
    counts: list[int]
    n_modes: int
    n_samples: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``counts`` copied), e.g. for a row of a results table."""
        return asdict(self)  # lists are copied


def _as_samples(samples: ArrayLike) -> torch.Tensor:
    if isinstance(samples, torch.Tensor):
        x = samples.detach()
    elif isinstance(samples, np.ndarray):
        try:
            x = torch.from_numpy(np.ascontiguousarray(samples))
        except TypeError as err:
            raise ValueError(f"mode_coverage: samples has an unsupported dtype ({err})") from None
    else:
        raise ValueError(
            f"mode_coverage: samples must be a torch.Tensor or numpy.ndarray of shape (N, 2), "
            f"got {type(samples).__name__}"
        )
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"mode_coverage: samples must have shape (N, 2), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("mode_coverage: samples is empty (N = 0); give at least one sample")
    if x.dtype == torch.bool or x.dtype.is_complex:
        raise ValueError(f"mode_coverage: samples must be real numbers, got dtype {x.dtype}")
    return x.to(device="cpu", dtype=torch.float64)


def _as_spec(spec_or_name: MixtureSpec | str) -> MixtureSpec:
    if isinstance(spec_or_name, str):
        try:
            return mixture_spec(spec_or_name)
        except ValueError as err:
            raise ValueError(f"mode_coverage: spec_or_name: {err}") from None
    if isinstance(spec_or_name, MixtureSpec):
        return spec_or_name
    raise ValueError(
        f"mode_coverage: spec_or_name must be a MixtureSpec or a mixture name such as 'ring8', "
        f"got {type(spec_or_name).__name__}"
    )


def kl_to_uniform(counts: torch.Tensor) -> float:
    """``KL(p || uniform)`` of the histogram ``counts`` (natural log, ``0 log 0 = 0``); NaN if it sums to 0.

    Equals ``log K - scipy.stats.entropy(counts)``, the quantity behind PacGAN's "reverse KL" (see the module
    docstring).
    """
    c = counts.to(torch.float64)
    total = c.sum()
    if total <= 0:
        return math.nan
    p = c / total
    k = c.numel()
    terms = torch.where(p > 0, p * torch.log(p * k), torch.zeros_like(p))
    return float(terms.sum())


def mode_coverage(
    samples: ArrayLike, spec_or_name: MixtureSpec | str, n_std: float = HQ_THRESHOLD_STD
) -> ModeCoverage:
    """Modes captured, high-quality fraction and KL of ``samples`` (N, 2) on a 2D benchmark (PacGAN).

    ``spec_or_name`` is a :class:`gantricks.data.MixtureSpec` or ``"ring8"`` / ``"grid25"``. ``n_std`` is the
    high-quality radius in standard deviations (3 in PacGAN and VEEGAN; change it only to explore). Callers
    evaluate 2,500 samples, as PacGAN does. The computation is vectorised (float64, on the CPU).

    >>> from gantricks.data import mixture_2d
    >>> mode_coverage(mixture_2d("ring8", 2500, seed=0).samples, "ring8").modes
    8
    """
    x = _as_samples(samples)
    spec = _as_spec(spec_or_name)
    if not (isinstance(n_std, (int, float)) and n_std > 0):
        raise ValueError(f"mode_coverage: n_std={n_std!r} must be a positive number")
    centers = spec.centers.detach().to(device="cpu", dtype=torch.float64)
    k = centers.shape[0]
    radius2 = (n_std * float(spec.std)) ** 2

    nearest_parts, hq_parts = [], []
    for block in torch.split(x, _CHUNK):  # a few blocks at most; each is fully vectorised
        d2 = (block[:, None, :] - centers[None, :, :]).square().sum(-1)  # (n, K), exact (no matmul trick)
        min_d2, nearest = d2.min(dim=1)
        nearest_parts.append(nearest)
        hq_parts.append(min_d2 < radius2)  # NaN compares False: non-finite samples are never high quality
    nearest = torch.cat(nearest_parts)
    hq = torch.cat(hq_parts)

    counts = torch.bincount(nearest[hq], minlength=k)
    return ModeCoverage(
        modes=int((counts > 0).sum()),
        high_quality=float(hq.sum()) / x.shape[0],
        kl=kl_to_uniform(counts),
        counts=[int(c) for c in counts],
        n_modes=k,
        n_samples=int(x.shape[0]),
    )


PUBLISHED_2D = [
    # (method, source, ring8 modes, ring8 high-quality %, grid25 modes, grid25 high-quality %), as printed
    ("GAN", "PacGAN, Lin et al. 2018, Table 1 (10 trials)", 6.3, 98.2, 17.3, 94.8),
    ("PacGAN4", "PacGAN, Lin et al. 2018, Table 1 (10 trials)", 7.8, 95.9, 24.8, 93.6),
    ("GAN", "VEEGAN, Srivastava et al. 2017, Table 1", 1.0, 99.3, 3.3, 0.5),
    ("Unrolled GAN", "VEEGAN, Srivastava et al. 2017, Table 1", 7.6, 35.6, 23.6, 16.0),
    ("VEEGAN", "VEEGAN, Srivastava et al. 2017, Table 1", 8.0, 52.9, 24.6, 40.0),
]
"""Published results on the same 2D protocol, to put beside ours; their networks and budgets differ from ours."""
