"""Issue 19: never lose a run, never save a broken one.

Output paths are checked before the first step; divergence with finite losses stops the run; no checkpoint holds
non-finite values; every bad checkpoint, grid or results file is one line and exit 2 for every command that reads
it; crash leftovers are removed and a resume rewrites the run's records; a training process killed (SIGKILL) at
random moments, saves included, always leaves a checkpoint that loads and resumes exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gantricks import DivergenceError, Hook, NonFiniteLossError, TrainConfig, Trainer
from gantricks.checkpoint import CheckpointError, atomic_save, load_checkpoint
from gantricks.cli import main
from gantricks.experiments import load_grid
from gantricks.outputs import OutputPathError, check_output_dir, check_output_file

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "ring8", "--batch-size", "16", "--data-size", "200", "--device", "cpu", "--no-progress"]
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"dataset": "ring8", "batch_size": 16, "data_size": 200, "device": "cpu",
                          "progress": False, "steps": 4, **kw})


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)``'s exit code (SystemExit included), stdout and stderr."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as err:
        code = err.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 4-step ring8 run folder (copy it before changing it)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--out", str(run), "--steps", "4", *SMALL]) == 0
    return run


def _copy(run: Path, where: Path) -> Path:
    return Path(shutil.copytree(run, where / "run"))


# -- 1. outputs are checked before the first step ---------------------------------------------------------------
def test_train_out_that_is_a_file_fails_before_training(tmp_path, capsys):
    target = tmp_path / "f.txt"
    target.write_text("mine")
    code, _, err = _cli(["train", "--out", str(target), "--steps", "400", *SMALL], capsys)
    line = _one_line_error(err)
    assert code == 2 and f"--out {target}: it is a file, not a folder" in line and "training on" not in err
    assert target.read_text() == "mine"


@pytest.mark.parametrize("out, message", [("", "expected a folder name"), ("   ", "expected a folder name")])
def test_train_out_empty_is_refused(out, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["train", "--out", out, "--steps", "3", *SMALL], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_train_out_below_a_file_and_in_an_unwritable_place(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = _cli(["train", "--out", str(tmp_path / "f" / "run"), "--steps", "3", *SMALL], capsys)
    assert code == 2 and "the folder cannot be created (Not a directory)" in _one_line_error(err)
    if os.path.isdir("/sys"):  # sysfs takes no new folder, not even from root
        code, _, err = _cli(["train", "--out", "/sys/gantricks-run", "--steps", "3", *SMALL], capsys)
        assert code == 2 and "--out /sys/gantricks-run: the folder cannot be created" in _one_line_error(err)


def test_the_probe_writes_a_file_and_removes_it(tmp_path):
    assert check_output_dir(tmp_path / "new" / "run", "--out") == str(tmp_path / "new" / "run")
    assert os.listdir(tmp_path / "new" / "run") == []
    (tmp_path / "new" / "run" / "history.csv").mkdir()
    with pytest.raises(OutputPathError, match="history.csv: it is a folder, not a file"):
        check_output_dir(tmp_path / "new" / "run", "--resume", ["history.csv"])
    with pytest.raises(OutputPathError, match="expected a file name"):
        check_output_file("", "--out")


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs /sys, which takes no files")
def test_a_folder_that_takes_no_file_is_refused_even_for_root():
    try:  # root passes permission bits: only really writing tells
        check_output_dir("/sys", "--out")
    except OutputPathError as err:
        assert str(err).startswith("--out /sys: no file can be created in this folder (")
    else:
        pytest.skip("/sys takes files here")


class _NoFiles:
    """``tempfile.mkstemp`` in a folder that refuses new files (as a read-only folder does for a normal user)."""

    def __init__(self, folder: Path) -> None:
        self.folder = os.path.abspath(folder)
        self.real = __import__("tempfile").mkstemp

    def __call__(self, *args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == self.folder:
            raise PermissionError(13, "Permission denied")
        return self.real(*args, dir=dir, **kwargs)


def test_a_read_only_resume_folder_fails_before_training(trained, tmp_path, capsys, monkeypatch):
    run = _copy(trained, tmp_path)
    before = (run / "checkpoint.pt").read_bytes()
    monkeypatch.setattr("gantricks.outputs.tempfile.mkstemp", _NoFiles(run))
    code, _, err = _cli(["train", "--resume", str(run), "--steps", "50", "--no-progress"], capsys)
    assert code == 2 and f"--resume {run}: no file can be created in this folder (Permission denied)" in err
    assert "training on" not in err and (run / "checkpoint.pt").read_bytes() == before


def test_sample_and_ablate_into_a_read_only_folder_fail_before_any_work(trained, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": {"steps": 2, "batch_size": 16, "data_size": 200}, "configs": {"a": {}}}))
    monkeypatch.setattr("gantricks.outputs.tempfile.mkstemp", _NoFiles(locked))
    for argv in (["sample", str(trained), "--out", str(locked / "s.npy")],
                 ["ablate", "--grid", str(grid), "--seeds", "1", "--out", str(locked / "r.json")]):
        code, out, err = _cli(argv, capsys)
        assert code == 2 and f"--out {locked}: no file can be created in this folder" in _one_line_error(err)
        assert out == "" and os.listdir(locked) == []


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_read_only_folders_fail_before_any_work(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": {"steps": 2, "batch_size": 16, "data_size": 200}, "configs": {"a": {}}}))
    os.chmod(run, 0o555)
    os.chmod(locked, 0o555)
    try:
        for argv, flag in ((["train", "--resume", str(run), "--steps", "50", "--no-progress"], "--resume"),
                           (["train", "--out", str(locked / "run"), "--steps", "50", *SMALL], "--out"),
                           (["sample", str(run), "--out", str(locked / "s.npy")], "--out"),
                           (["ablate", "--grid", str(grid), "--seeds", "1", "--out", str(locked / "r.json")], "--out")):
            code, _, err = _cli(argv, capsys)
            assert code == 2 and f"{flag} " in _one_line_error(err) and "Permission denied" in err, argv
    finally:
        os.chmod(run, 0o755)
        os.chmod(locked, 0o755)


def test_sample_and_ablate_outputs_are_checked_first(trained, tmp_path, capsys):
    (tmp_path / "s.npy").mkdir()
    code, _, err = _cli(["sample", str(trained), "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "s.npy: it is a folder, not a file" in _one_line_error(err)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": {"steps": 2, "batch_size": 16, "data_size": 200}, "configs": {"a": {}}}))
    (tmp_path / "r.csv").mkdir()  # the CSV beside the results
    code, _, err = _cli(["ablate", "--grid", str(grid), "--seeds", "1", "--out", str(tmp_path / "r.json")], capsys)
    assert code == 2 and "r.csv: it is a folder, not a file" in _one_line_error(err)
    assert not (tmp_path / "r.json").exists()  # nothing ran
    for text, why in (("[1, 2", "is not a results file"), ('{"rows": 3}', "has no list 'rows'")):
        (tmp_path / "old.json").write_text(text)
        code, _, err = _cli(["ablate", "--grid", str(grid), "--seeds", "1", "--out", str(tmp_path / "old.json")],
                            capsys)
        assert code == 2 and why in _one_line_error(err)


# -- 2. the divergence guard --------------------------------------------------------------------------------------
def test_divergence_with_finite_losses_stops_with_exit_1_and_a_finite_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = _cli(["train", "--out", str(run), "--steps", "200", "--lr-d", "1e3", "--lr-g", "1e3",
                         "--checkpoint-every", "1", *SMALL], capsys)
    assert code == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "training stopped: diverged at step" in line and "divergence bound" in line
    step = int(line.split("diverged at step ")[1].split(":")[0])
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == step - 1
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())


class PoisonG(Hook):
    """After step ``at``'s updates, G's first weight is NaN (its losses were finite)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, step, record, trainer):
        if step == self.at:
            with torch.no_grad():
                next(trainer.G.parameters()).mul_(float("nan"))


class PoisonRecord(Hook):
    """Step ``at`` records an infinite G gradient norm (as an overflowing backward pass does)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, step, record, trainer):
        if step == self.at:
            record["grad_norm_g"] = torch.tensor(float("inf"))


def test_non_finite_parameters_are_never_checkpointed(tmp_path):
    t = Trainer(_cfg(steps=10), hooks=[PoisonG(3)])
    with pytest.raises(DivergenceError, match=r"diverged at step 3: G: net\.0\.weight holds NaN") as err:
        t.fit(out_dir=tmp_path, checkpoint_every=1)
    assert isinstance(err.value, NonFiniteLossError) and err.value.step == 3
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 2 and not any(name.startswith(".tmp") for name in os.listdir(tmp_path))
    assert Trainer.from_checkpoint(tmp_path, hooks=[PoisonG(3)]).step_count == 2


def test_a_non_finite_grad_norm_stops_the_run(tmp_path):
    t = Trainer(_cfg(steps=10, sync_every=50), hooks=[PoisonRecord(5)])
    with pytest.raises(DivergenceError, match="diverged at step 5: grad_norm_g=inf is not finite"):
        t.fit()
    assert [r["step"] for r in t.history] == [1, 2, 3, 4, 5]  # the evidence is kept, for diagnose
    assert t.history[-1]["grad_norm_g"] == math.inf


def test_save_checks_what_it_writes_optimiser_state_included(tmp_path):
    t = Trainer(_cfg(steps=3))
    t.fit(out_dir=tmp_path)
    good = (tmp_path / "checkpoint.pt").read_bytes()
    t.opt_g.state[next(iter(t.G.parameters()))]["exp_avg"][0] = float("inf")
    with pytest.raises(DivergenceError, match=r"refusing to write a checkpoint at step 3: opt_g: state\.0\.exp_avg"):
        t.save(tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "config.json", "history.csv", "samples.png"]


def _exploding_run(where: Path) -> Path:
    """A run folder whose weights are finite but whose generator outputs are infinite."""
    t = Trainer(_cfg(steps=2))
    t.fit()
    with torch.no_grad():
        t.G.net[-1].weight.fill_(3e38)
    run = where / "exploded"
    atomic_save(t.state_dict(), run / "checkpoint.pt")
    return run


def test_evaluate_prints_valid_json_with_null_and_counts_non_finite_samples(trained, tmp_path, capsys):
    code, out, _ = _cli(["evaluate", str(trained)], capsys)
    healthy = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert code == 0 and healthy["non_finite_samples"] == 0 and healthy["step"] == 4
    run = _exploding_run(tmp_path)
    code, out, err = _cli(["evaluate", str(run), "--n", "200"], capsys)
    bad = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert code == 0 and bad["non_finite_samples"] == 200 and bad["kl"] is None
    assert "200 of 200 samples are NaN or infinite" in err
    code, _, err = _cli(["sample", str(run), "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 1 and "64 of 64 samples are NaN or infinite" in _one_line_error(err)
    code, _, err = _cli(["sample", str(run), "--drs", "--drs-max-draws", "500", "--out", str(tmp_path / "s.npy")],
                        capsys)
    assert code == 1 and "DRS: D's logits on the fakes are NaN or infinite" in err and "Traceback" not in err
    assert not (tmp_path / "s.npy").exists()


def test_a_diverged_ablate_run_is_one_line_and_exit_1(tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": {"steps": 50, "batch_size": 16, "data_size": 200, "device": "cpu"},
                                "configs": {"wild": {"optim": {"lr_g": 1e3, "lr_d": 1e3}}}}))
    code, _, err = _cli(["ablate", "--grid", str(grid), "--seeds", "1", "--out", str(tmp_path / "r.json")], capsys)
    assert code == 1 and "a run diverged" in _one_line_error(err) and "diverged at step" in err


# -- 3. every bad file is one line and exit 2 --------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (print, ("this would run",))


def _bad_checkpoint(kind: str, good: Path, path: Path) -> str:
    """Write a bad checkpoint of ``kind`` at ``path`` (from the good one); return what the error must say."""
    data = good.read_bytes()
    state = load_checkpoint(good)
    path.parent.mkdir(parents=True)
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return "is truncated or corrupt"
    if kind == "empty":
        path.write_bytes(b"")
        return "is empty (0 bytes)"
    if kind == "random":
        path.write_bytes(random.Random(0).randbytes(5000))
        return "is not a torch checkpoint"
    if kind == "refused":
        torch.save({"G": _Evil()}, path)
        return "refuses because unpickling them could run code"
    if kind == "not a dict":
        torch.save([1, 2], path)
        return "holds a list, not a checkpoint"
    if kind == "missing keys":
        torch.save({"weights": torch.ones(3)}, path)
        return "lacks ['format', 'step', 'config', 'G'"
    if kind == "format":
        torch.save({**state, "format": 99}, path)
        return "has format 99"
    if kind == "nan weights":
        torch.save({**state, "G": {k: v * math.nan for k, v in state["G"].items()}}, path)
        return "holds NaN or infinite values (G: net.0.weight)"
    if kind == "wrong shapes":
        torch.save({**state, "D": {k: v[..., :1] if v.dim() else v for k, v in state["D"].items()}}, path)
        return "does not fit the run its config describes (RuntimeError: Error(s) in loading state_dict"
    assert kind == "bad config"
    torch.save({**state, "config": {**state["config"], "batch_size": "many"}}, path)
    return "its config is invalid (batch_size='many' is invalid"


KINDS = ["truncated", "empty", "random", "refused", "not a dict", "missing keys", "format", "nan weights",
         "wrong shapes", "bad config"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_checkpoint_is_one_line_and_exit_2_for_every_command(kind, trained, tmp_path, capsys):
    run = tmp_path / "run"
    ckpt = run / "checkpoint.pt"
    reason = _bad_checkpoint(kind, trained / "checkpoint.pt", ckpt)
    for argv in (["sample", str(run), "--out", str(tmp_path / "s.npy")], ["evaluate", str(run)],
                 ["diagnose", str(run), "--window", "2"], ["train", "--resume", str(run), "--steps", "8",
                                                             "--no-progress"]):
        code, out, err = _cli(argv, capsys)
        line = _one_line_error(err)
        if argv[0] == "diagnose" and kind in ("missing keys", "not a dict"):
            reason_here = "not a gantricks checkpoint" if kind == "missing keys" else reason
        else:
            reason_here = reason
        assert code == 2 and line.startswith(f"python -m gantricks {argv[0]}: error: checkpoint {str(ckpt)!r}")
        assert reason_here in line and "miniz" not in line, (argv, line)
    assert not (tmp_path / "s.npy").exists()
    if kind in ("truncated", "empty", "random", "refused", "not a dict"):
        with pytest.raises(CheckpointError, match=str(ckpt)):
            load_checkpoint(ckpt)


def test_checkpoint_error_is_a_value_error_and_a_runtime_error(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError):
        load_checkpoint(tmp_path / "c.pt")
    with pytest.raises(RuntimeError):
        load_checkpoint(tmp_path / "c.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


_JUNK = [None, 0, -1, 2.5, 1e300, "x", [], [1], {"a": 1}, True, math.nan, math.inf]


def _grid_positions() -> list[tuple[str, ...]]:
    """Every place of a grid file: the top, base, configs, a config, each field and each section's field."""
    places: list[tuple[str, ...]] = [(), ("base",), ("configs",), ("configs", "a"), ("configs", "a", "preset"),
                                     ("base", "optim")]
    places += [("configs", "a", f.name) for f in TrainConfig.core_fields()]
    for name, cls in TrainConfig.section_types().items():
        places += [("configs", "a", name)] + [("configs", "a", name, f.name) for f in dataclasses.fields(cls)]
    return places


def test_grid_files_of_any_shape_load_or_name_the_file(tmp_path):
    path = tmp_path / "grid.json"
    for place in _grid_positions():
        for junk in _JUNK:
            spec: object = {"base": {"steps": 5}, "configs": {"a": {}}}
            if place:
                node = spec
                for key in place[:-1]:
                    node = node.setdefault(key, {})  # type: ignore[union-attr]
                node[place[-1]] = junk  # type: ignore[index]
            else:
                spec = junk
            path.write_text(json.dumps(spec))
            try:
                load_grid(path)
            except ValueError as err:
                assert str(path) in str(err) and "\n" not in str(err), (place, junk, err)
    path.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        load_grid(path)


@pytest.mark.parametrize("spec, message", [
    ({"base": [1], "configs": {"a": {}}}, "'base' is a list [1]; expected an object of fields"),
    ({"base": None, "configs": {"a": {}}}, "'base' is null; expected an object"),
    ({"configs": {"a": 5}}, "config 'a': the number 5; expected an object of fields"),
    ({"configs": {"a": {"preset": [1]}}}, "preset=[1] is invalid"),
])
def test_ablate_names_a_malformed_grid(spec, message, tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(spec))
    code, _, err = _cli(["ablate", "--grid", str(grid), "--seeds", "1", "--out", str(tmp_path / "r.json")], capsys)
    assert code == 2 and message in err and "Traceback" not in err


# -- 4. crash leftovers ------------------------------------------------------------------------------------------
def test_resume_removes_leftovers_and_rewrites_the_records_first(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    t = Trainer.from_checkpoint(run, steps=9)
    t.fit(steps=6)
    t.save(run)  # a resumed run killed after its checkpoint at step 6: the records still say step 4
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 4
    (run / ".tmp-killed.pt").write_bytes(b"half a checkpoint")
    (run / "history.csv.tmp").write_text("step\n")
    (run / "config.json").write_text('{"half": ')
    code, out, _ = _cli(["train", "--resume", str(run), "--steps", "6", "--no-progress"], capsys)
    assert code == 0 and "already at step 6" in out
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 6
    assert json.loads((run / "config.json").read_text())["batch_size"] == 16
    assert sorted(os.listdir(run)) == ["checkpoint.pt", "config.json", "history.csv", "samples.png"]


def test_a_save_removes_stale_temporary_checkpoints(tmp_path):
    (tmp_path / ".tmp-abc123.pt").write_bytes(b"x" * 1000)
    (tmp_path / "keep.pt").write_bytes(b"mine")
    t = Trainer(_cfg(steps=2))
    t.fit()
    t.save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "keep.pt"]


def test_every_output_has_the_same_mode_after_a_resume(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    code, _, _ = _cli(["train", "--resume", str(run), "--steps", "6", "--no-progress"], capsys)
    assert code == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.iterdir()}
    assert len(set(modes.values())) == 1 and set(modes) == {"checkpoint.pt", "config.json", "history.csv",
                                                            "samples.png"}, modes


# -- 5. smaller cases ---------------------------------------------------------------------------------------------
def test_batch_size_1_is_a_config_error(capsys, tmp_path):
    code, _, err = _cli(["train", "--out", str(tmp_path / "r"), "--batch-size", "1", "--steps", "3"], capsys)
    assert code == 2 and "batch_size=1 is invalid: must be >= 2" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_diagnose_on_a_one_step_run_suggests_nothing_it_refuses(tmp_path, capsys):
    run = tmp_path / "one"
    assert main(["train", "--out", str(run), "--steps", "1", *SMALL]) == 0
    for extra in ([], ["--window", "1"], ["--window", "2"]):
        code, _, err = _cli(["diagnose", str(run), "--no-metrics", *extra], capsys)
        assert code == 2 and "the run has 1 step(s) in its history; diagnose needs at least 2" in err


# -- the fault injection: SIGKILL at random moments ---------------------------------------------------------------
_KILLER = r"""
import os, random, shutil, signal, sys, time

import torch._dynamo  # noqa: F401 - what torch.optim imports on first use (seconds), once for every child

from gantricks.cli import main  # imported once; each attempt is a forked child that runs 'train' from scratch

run, steps, attempts, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
flags = sys.argv[5:]
rng = random.Random(seed)
ckpt = os.path.join(run, "checkpoint.pt")
for attempt in range(attempts):
    argv = ["train", "--resume", run] if os.path.exists(ckpt) else ["train", "--out", run, *flags]
    before = os.stat(ckpt).st_mtime_ns if os.path.exists(ckpt) else None
    pid = os.fork()
    if pid == 0:
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        try:
            code = main([*argv, "--steps", steps, "--no-progress"])
        except SystemExit as err:
            code = err.code
        os._exit(code or 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        if os.path.exists(ckpt) and os.stat(ckpt).st_mtime_ns != before:
            break  # it has trained and saved: from now on a kill may land in a step or in a save
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.25))
    try:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # it had finished and been reaped above
        status = 0
    leftovers = [n for n in os.listdir(run) if n.startswith(".tmp-")]
    shutil.copyfile(ckpt, f"{run}.after-kill-{attempt}.pt")
    print("killed" if os.WIFSIGNALED(status) else "finished", len(leftovers), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the training processes it kills")
def test_sigkill_at_random_moments_never_breaks_the_checkpoint_and_resume_is_exact(tmp_path):
    """A process trains ring8 with a checkpoint every step and is SIGKILLed at a random moment after its first
    save, three times (each resuming the last); every checkpoint left loads, and a final resume ends on exactly the
    parameters and history of a run trained straight through, with no temporary file left."""
    steps, run = 60, tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-c", _KILLER, str(run), str(steps), "3", "19", *SMALL,
                           "--checkpoint-every", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    outcomes = [line.split()[0] for line in done.stdout.splitlines()]
    assert outcomes.count("killed") >= 2, done.stdout
    for attempt in range(len(outcomes)):
        state = load_checkpoint(f"{run}.after-kill-{attempt}.pt")  # always whole: never a half-written file
        assert 1 <= state["step"] <= steps and len(state["history"]) == state["step"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--resume", str(run), "--steps", str(steps), "--checkpoint-every", "0",
                     "--no-progress"]) == 0
        straight = Trainer(_cfg(steps=steps, checkpoint_every=1))
        straight.fit()
    finally:
        torch.set_num_threads(threads)
    resumed = load_checkpoint(run / "checkpoint.pt")
    assert resumed["step"] == steps
    for net, model in (("G", straight.G), ("D", straight.D)):
        for key, value in model.state_dict().items():
            assert torch.equal(resumed[net][key], value), (net, key)
    assert [r["loss_g"] for r in resumed["history"]] == [r["loss_g"] for r in straight.history]
    assert not [name for name in os.listdir(run) if name.startswith(".tmp") or name.endswith(".tmp")]
    assert len((run / "history.csv").read_text().splitlines()) == 1 + steps
