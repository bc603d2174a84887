"""Learning curves, time to quality, and studies that survive being killed (ablate's run checkpoints)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch

from gantricks.config import TrainConfig
from gantricks.curves import (
    CurveRecord,
    curve_steps,
    fit_with_curve,
    summarize_curves,
    summarize_time_to_quality,
    target_2d,
    target_for,
    target_mnist,
    time_to_quality,
)
from gantricks.experiments import evaluate, run_grid
from gantricks.train import Trainer

CFG = TrainConfig(steps=40, batch_size=32, progress=False)


def test_curve_steps_end_at_the_budget():
    assert curve_steps(100, 25) == [25, 50, 75, 100]
    assert curve_steps(10, 20) == [10]
    with pytest.raises(ValueError, match="every=0 is invalid"):
        curve_steps(10, 0)


def test_targets_and_time_to_quality():
    ring = target_for("ring8")
    assert ring({"modes": 8, "high_quality": 0.9}) and not ring({"modes": 7, "high_quality": 0.99})
    assert not ring({"modes": 8, "high_quality": 0.89})
    assert target_for("grid25")({"modes": 25, "high_quality": 0.95})
    assert target_for("mnist") is None
    digits = target_mnist(100.0)
    assert digits({"digits_covered": 10, "frechet": 99.0}) and not digits({"digits_covered": 9, "frechet": 50.0})
    assert not digits({"digits_covered": 10, "frechet": math.nan})
    points = [{"step": 30, "seconds": 3.0, "modes": 8, "high_quality": 0.95},
              {"step": 10, "seconds": 1.0, "modes": 8, "high_quality": 0.5},
              {"step": 20, "seconds": 2.0, "modes": 8, "high_quality": 0.92}]
    assert time_to_quality(points, target_2d(8)) == {"step": 20, "seconds": 2.0}
    assert time_to_quality(points, target_2d(8, 0.99)) is None


def test_runs_that_never_reach_quality_count_as_infinitely_slow():
    rows = [{"config": "a", "ttq_step": s, "ttq_seconds": None if s is None else s / 10} for s in (100, 300, None)]
    rows += [{"config": "b", "ttq_step": None, "ttq_seconds": None}] * 2
    a, b = summarize_time_to_quality(rows)
    assert (a["n"], a["reached"], a["ttq_step_median"], a["ttq_seconds_median"]) == (3, 2, 300, 30.0)
    assert a["ttq_step_q25"] == 200 and a["ttq_step_q75"] == math.inf
    assert (b["reached"], b["ttq_step_median"]) == (0, math.inf)


def test_summarize_curves_over_seeds():
    rows = [{"config": "a", "curve": {"step": [10, 20], "modes": [4.0, 8.0]}},
            {"config": "a", "curve": {"step": [10, 20, 30], "modes": [6.0, 6.0, 8.0]}}]
    s = summarize_curves(rows, "modes")["a"]
    assert s["step"] == [10, 20] and s["mean"] == [5.0, 7.0] and s["min"] == [4.0, 6.0] and s["max"] == [6.0, 8.0]
    assert s["std"][0] == pytest.approx(math.sqrt(2))


def test_evaluating_along_the_way_does_not_change_training():
    plain = Trainer(CFG)
    plain.fit()
    curved = Trainer(CFG, hooks=[CurveRecord()])
    points = fit_with_curve(curved, [10, 25, 40], evaluate)
    assert [p["step"] for p in points] == [10, 25, 40]
    assert all(0 < a["seconds"] < b["seconds"] for a, b in zip(points, points[1:]))
    for a, b in zip(plain.G.state_dict().values(), curved.G.state_dict().values()):
        assert torch.equal(a, b)
    assert points[-1]["modes"] == evaluate(plain)["modes"]
    assert points[-1]["high_quality"] == evaluate(plain)["high_quality"]


def test_run_grid_stores_curves_and_time_to_quality(tmp_path):
    results = tmp_path / "r.json"
    rows = run_grid({"base": CFG}, [0, 1], results=results, progress=False, curve_every=20,
                    target=lambda p: p["step"] >= 40)
    assert [r["curve"]["step"] for r in rows] == [[20, 40], [20, 40]]
    assert all(r["ttq_step"] == 40 and r["ttq_seconds"] == r["curve"]["seconds"][-1] for r in rows)
    assert all(r["modes"] == r["curve"]["modes"][-1] for r in rows)
    stored = json.loads(results.read_text())["rows"]
    assert stored[0]["curve"] == rows[0]["curve"]
    assert not os.path.exists(tmp_path / "r.runs")  # finished runs leave no checkpoints behind


class _Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_with_its_curve(tmp_path):
    reference = run_grid({"base": CFG}, [0], results=tmp_path / "ref.json", progress=False, curve_every=10)
    calls = []

    def dies_at_the_third_point(trainer):
        calls.append(trainer.step_count)
        if len(calls) == 3:
            raise _Interrupt
        return evaluate(trainer)

    with pytest.raises(_Interrupt):
        run_grid({"base": CFG}, [0], evaluate=dies_at_the_third_point, results=tmp_path / "r.json",
                 progress=False, curve_every=10)
    assert calls == [10, 20, 30]
    folder = next((tmp_path / "r.runs").glob("base-*")) / "seed0"
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["step"] == 20
    resumed_calls = []

    def counting(trainer):
        resumed_calls.append(trainer.step_count)
        return evaluate(trainer)

    rows = run_grid({"base": CFG}, [0], evaluate=counting, results=tmp_path / "r.json", progress=False,
                    curve_every=10)
    assert resumed_calls == [30, 40]  # the points before the kill came from the checkpoint
    assert rows[0]["resumed"] is True
    for key in ("modes", "high_quality", "kl"):
        assert rows[0]["curve"][key] == pytest.approx(reference[0]["curve"][key], nan_ok=True)
    assert rows[0]["curve"]["step"] == reference[0]["curve"]["step"]


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path):
    with pytest.raises(_Interrupt):
        run_grid({"base": CFG}, [0], evaluate=lambda t: (_ for _ in ()).throw(_Interrupt), results=tmp_path / "r.json",
                 progress=False, curve_every=10, checkpoint_every=5)
    folder = next((tmp_path / "r.runs").glob("base-*")) / "seed0"
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["step"] == 5
    with pytest.warns(UserWarning, match="holds another config or is unreadable; that run starts over"):
        rows = run_grid({"base": CFG.replace(batch_size=16)}, [0], results=tmp_path / "r.json", progress=False,
                        curve_every=20)
    assert "resumed" not in rows[0]


@pytest.mark.slow
def test_a_killed_ablate_resumes_where_it_stopped(tmp_path):
    """SIGKILL a real ``ablate`` mid-run, rerun the same command: finished rows are kept, the run resumes."""
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"steps": 400, "batch_size": 32, "dataset": "ring8"},
                                "configs": {"a": {}}}))
    cmd = [sys.executable, "-m", "gantricks", "ablate", "--grid", str(grid), "--seeds", "2", "--out",
           str(tmp_path / "r.json"), "--curve-every", "50"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    ckpts = tmp_path / "r.runs"
    while time.time() < deadline and not (tmp_path / "r.json").exists():
        time.sleep(0.2)
    while time.time() < deadline and not list(ckpts.glob("*/seed1/checkpoint.pt")):
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    first = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["seed"] for r in first] == [0]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["seed"] for r in rows] == [0, 1] and rows[0] == first[0] and rows[1].get("resumed") is True
    assert rows[1]["curve"]["step"] == list(range(50, 401, 50))


def test_ablate_batches_the_seeds_of_a_config_that_allows_it(tmp_path):
    """``batch_seeds``: one vectorised model for the config's seeds; the rows look like run_grid's."""
    sgd = {"name": "sgd", "lr_g": 0.01, "lr_d": 0.01}  # batched == separate to rounding (tests/test_batched.py)
    configs = {"plain": CFG.replace(steps=20, optim=sgd), "noisy": CFG.replace(steps=20, noise={"instance_sigma": 0.2})}
    rows = run_grid(configs, [0, 1], results=tmp_path / "r.json", progress=False, curve_every=10, batch_seeds=True)
    by = {(r["config"], r["seed"]): r for r in rows}
    assert by[("plain", 0)]["batched"] == 2 and "batched" not in by[("noisy", 0)]  # noise is not batchable yet
    assert all(r["curve"]["step"] == [10, 20] for r in rows)
    separate = run_grid({"plain": configs["plain"]}, [1], progress=False)[0]
    for metric in ("modes", "high_quality"):
        assert by[("plain", 1)][metric] == pytest.approx(separate[metric], abs=0.002)


def test_ablate_runs_the_configs_it_is_given(tmp_path, capsys):
    from gantricks.cli import main

    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"steps": 3, "batch_size": 16},
                                "configs": {"a": {}, "b": {"dataset": "grid25"}}}))
    out = tmp_path / "r.json"
    assert main(["ablate", "--grid", str(grid), "--seeds", "1", "--config", "b", "--out", str(out)]) == 0
    assert [r["config"] for r in json.loads(out.read_text())["rows"]] == ["b"]
    with pytest.raises(SystemExit) as exit_info:
        main(["ablate", "--grid", str(grid), "--config", "c", "--out", str(tmp_path / "s.json")])
    assert exit_info.value.code == 2
    assert "--config 'c': the grid" in capsys.readouterr().err


def test_value_at_takes_the_last_evaluation_reached_by_then():
    from gantricks.curves import value_at

    curve = {"step": [500, 1000, 1500], "seconds": [40.0, 85.0, 120.0], "frechet": [180.0, 150.0, 140.0]}
    assert value_at(curve, "frechet", 100.0) == {"step": 1000, "seconds": 85.0, "frechet": 150.0}
    assert value_at(curve, "frechet", 120.0)["step"] == 1500  # an evaluation exactly at the time counts
    assert value_at(curve, "frechet", 39.9) is None  # nothing was evaluated by then: no value is invented
    assert value_at(curve, "frechet", 1000, x="step")["seconds"] == 85.0
    with pytest.raises(ValueError, match="no 'kl' column"):
        value_at(curve, "kl", 100.0)
    with pytest.raises(ValueError, match="x='time' is invalid"):
        value_at(curve, "frechet", 100.0, x="time")
