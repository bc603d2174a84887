"""Tests of gantricks.metrics.mode_coverage against closed forms and a plain-Python reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gantricks.data import mixture_2d, mixture_spec
from gantricks.metrics import ModeCoverage, kl_to_uniform, mode_coverage

NAMES = ["ring8", "grid25"]
P_WITHIN_3_STD = 1.0 - math.exp(-4.5)  # P(chi2 with 2 dof < 9) for an isotropic 2D Gaussian


def binomial_tol(p: float, n: int, n_se: float = 4.0) -> float:
    return n_se * math.sqrt(p * (1.0 - p) / n)


def reference_counts(samples: np.ndarray, centers: np.ndarray, std: float) -> list[int]:
    """PacGAN's MetricLogger loop, written out sample by sample (slow; small N only)."""
    counts = [0] * len(centers)
    for x in samples:
        dists = [math.sqrt(((x[0] - c[0]) ** 2 + (x[1] - c[1]) ** 2) / std**2) for c in centers]
        j = min(range(len(centers)), key=dists.__getitem__)
        if dists[j] < 3:
            counts[j] += 1
    return counts


@pytest.mark.parametrize("name", NAMES)
def test_real_samples_capture_every_mode(name: str) -> None:
    n = 20_000
    mix = mixture_2d(name, n, seed=1)
    res = mode_coverage(mix.samples, name)
    k = mix.spec.n_modes
    assert res.modes == k == res.n_modes
    assert res.n_samples == n
    assert abs(res.high_quality - P_WITHIN_3_STD) < binomial_tol(P_WITHIN_3_STD, n)
    # multinomial noise: KL ~ (K - 1) / (2 n) < 1e-3; one missing mode alone gives log(K / (K - 1)) > 0.03
    assert 0.0 <= res.kl < 0.005
    # each high-quality sample is counted at the mode it was drawn from (modes are 100+ std apart)
    inside = (mix.samples - mix.centers[mix.labels]).norm(dim=1) < 3 * mix.std
    expected = torch.bincount(mix.labels[inside], minlength=k)
    assert res.counts == expected.tolist()
    assert sum(res.counts) == round(res.high_quality * n)


@pytest.mark.parametrize("name", NAMES)
def test_matches_reference_loop_on_points_near_and_between_modes(name: str) -> None:
    spec = mixture_spec(name)
    rng = np.random.default_rng(0)
    c = spec.centers.numpy().astype(np.float64)
    # points at 0-5 std from random centres: about half are high quality, in every mode
    idx = rng.integers(len(c), size=600)
    radius = rng.uniform(0, 5 * spec.std, size=600)
    angle = rng.uniform(0, 2 * np.pi, size=600)
    pts = c[idx] + np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    res = mode_coverage(pts, spec)
    ref = reference_counts(pts, c, spec.std)
    assert res.counts == ref
    assert 0.4 < res.high_quality < 0.8
    assert res.high_quality == sum(ref) / len(pts)
    assert res.modes == sum(1 for r in ref if r > 0)
    assert res.kl == pytest.approx(
        sum(r / sum(ref) * math.log(r / sum(ref) * len(c)) for r in ref if r), abs=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", [0, 5])
def test_all_samples_in_one_mode(name: str, mode: int) -> None:
    spec = mixture_spec(name)
    one = spec.centers[mode] + 0.5 * spec.std * torch.randn(
        2000, 2, generator=torch.Generator().manual_seed(3)
    )
    res = mode_coverage(one, spec)
    assert res.modes == 1
    assert res.counts[mode] == sum(res.counts) > 0
    assert res.kl == pytest.approx(math.log(spec.n_modes), abs=1e-12)


@pytest.mark.parametrize(
    ("name", "half_width", "n"),
    [("ring8", 1.2, 200_000), ("grid25", 5.0, 100_000)],
)
def test_uniform_square_high_quality_fraction_is_disc_area(name: str, half_width: float, n: int) -> None:
    spec = mixture_spec(name)
    r = 3 * spec.std
    assert float(spec.centers.abs().max()) + r < half_width  # every disc lies inside the square
    p = spec.n_modes * math.pi * r**2 / (2 * half_width) ** 2
    gen = torch.Generator().manual_seed(4)
    pts = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1) * half_width
    res = mode_coverage(pts, name)
    assert abs(res.high_quality - p) < binomial_tol(p, n)
    assert res.modes == spec.n_modes  # >= 60 expected hits per disc: all captured
    assert res.kl < 0.05  # the discs have equal areas: the histogram is near uniform


def test_far_points_capture_nothing_and_kl_is_nan() -> None:
    far = torch.full((50, 2), 100.0)
    far[:25] = -100.0
    for name in NAMES:
        res = mode_coverage(far, name)
        assert res.modes == 0
        assert res.high_quality == 0.0
        assert math.isnan(res.kl)
        assert res.counts == [0] * mixture_spec(name).n_modes


def test_non_finite_samples_are_never_high_quality() -> None:
    spec = mixture_spec("ring8")
    x = spec.centers.clone()  # one sample exactly at each centre
    x[0] = float("nan")
    x[1, 0] = float("inf")
    res = mode_coverage(x, spec)
    assert res.high_quality == pytest.approx(6 / 8)
    assert res.counts[2:] == [1] * 6
    assert res.modes == 6


def test_threshold_is_three_std_strict() -> None:
    spec = mixture_spec("grid25")
    c = spec.centers[7].double()
    pts = torch.stack([c + torch.tensor([2.99 * spec.std, 0.0]), c + torch.tensor([0.0, -3.01 * spec.std])])
    res = mode_coverage(pts, spec)
    assert res.high_quality == 0.5
    assert res.counts[7] == 1 and res.modes == 1
    assert mode_coverage(pts, spec, n_std=4.0).high_quality == 1.0


def test_numpy_and_torch_inputs_agree_and_as_dict() -> None:
    mix = mixture_2d("grid25", 2500, seed=5)
    pts = mix.samples + 0.05 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(6))
    a = mode_coverage(pts, "grid25")
    b = mode_coverage(pts.numpy(), mixture_spec("grid25"))
    assert a == b
    d = a.as_dict()
    assert set(d) == {"modes", "high_quality", "kl", "counts", "n_modes", "n_samples"}
    assert d["counts"] == a.counts and d["counts"] is not a.counts
    assert isinstance(a, ModeCoverage)


def test_kl_to_uniform_closed_forms() -> None:
    assert kl_to_uniform(torch.tensor([5, 5, 5, 5])) == pytest.approx(0.0, abs=1e-15)
    assert kl_to_uniform(torch.tensor([3, 1, 0, 0])) == pytest.approx(
        0.75 * math.log(3) + 0.25 * math.log(1), abs=1e-12
    )
    assert kl_to_uniform(torch.tensor([2, 2, 0, 0])) == pytest.approx(math.log(2), abs=1e-12)
    assert math.isnan(kl_to_uniform(torch.zeros(8)))


@pytest.mark.parametrize(
    ("samples", "spec", "match"),
    [
        (torch.zeros(10, 3), "ring8", r"samples must have shape \(N, 2\), got \(10, 3\)"),
        (torch.zeros(10), "ring8", r"samples must have shape \(N, 2\)"),
        (torch.zeros(0, 2), "ring8", "samples is empty"),
        ([[0.0, 0.0]], "ring8", "samples must be a torch.Tensor or numpy.ndarray"),
        (torch.zeros(4, 2), "ring9", "spec_or_name.*'ring9'"),
        (torch.zeros(4, 2), 8, "spec_or_name must be a MixtureSpec"),
        (np.zeros((4, 2), dtype=bool), "ring8", "samples must be real numbers"),
    ],
)
def test_input_validation(samples, spec, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mode_coverage(samples, spec)


def test_bad_n_std() -> None:
    with pytest.raises(ValueError, match="n_std"):
        mode_coverage(torch.zeros(3, 2), "ring8", n_std=0)
