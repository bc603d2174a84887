"""gantricks.diagnose: each symptom on a synthetic history, argument errors, metric symptoms, the report, two short
real runs (a diverging one trips exploding_grad, the default does not) and the ``diagnose`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gantricks.cli import main
from gantricks.config import TrainConfig
from gantricks.diagnose import (
    HISTORY_COLUMNS,
    HISTORY_THRESHOLDS,
    MIN_MODES,
    SYMPTOMS,
    Finding,
    diagnose,
    diagnose_metrics,
    report,
)
from gantricks.train import NonFiniteLossError, Trainer


def healthy(n: int = 1000, seed: int = 0) -> list[dict[str, float]]:
    """A history like a balanced run's: D(G(z)) near 0.45 and noisy, gradient norms growing slowly, constant lr."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        grow = 1 + 3 * i / n
        rows.append({"step": i + 1, "loss_d": 1.3 + 0.05 * rng.standard_normal(), "loss_g": 0.8,
                     "d_real": 0.55, "d_fake": 0.45 + 0.05 * rng.standard_normal(),
                     "grad_norm_g": grow * math.exp(0.3 * rng.standard_normal()),
                     "grad_norm_d": 0.5 * grow * math.exp(0.3 * rng.standard_normal()),
                     "lr_g": 2e-4, "lr_d": 2e-4, "time": 0.01 * i})
    return rows


def setting(rows: list[dict[str, float]], column: str, start: int, values) -> list[dict[str, float]]:
    """``rows`` with ``column`` replaced from row ``start`` on by ``values(i)`` (i = row index)."""
    for i in range(start, len(rows)):
        rows[i][column] = values(i)
    return rows


def symptoms(findings) -> list[str]:
    return [f.symptom for f in findings]


def test_a_healthy_history_has_no_findings():
    for seed in range(3):
        assert diagnose(healthy(seed=seed)) == []
    assert diagnose(healthy(300), window=50) == []


def test_d_wins_at_the_first_window_whose_means_cross_both_floors():
    rows = setting(healthy(), "loss_d", 400, lambda i: 0.01)
    rows = setting(rows, "d_fake", 400, lambda i: 0.02 + 0.01 * (i % 2))
    [f] = [f for f in diagnose(rows, window=100) if f.symptom == "d_wins"]
    loss = np.array([r["loss_d"] for r in rows])
    fake = np.array([r["d_fake"] for r in rows])
    floor, fake_floor = HISTORY_THRESHOLDS["d_loss_floor"], HISTORY_THRESHOLDS["d_fake_floor"]
    end = next(e for e in range(99, len(rows))
               if loss[e - 99:e + 1].mean() < floor and fake[e - 99:e + 1].mean() < fake_floor)
    assert f.step == rows[end]["step"] and f.threshold == floor
    assert f.value == pytest.approx(loss[end - 99:end + 1].mean())
    assert f"{f.value:.3g}" in f.message and "chapter 3" in f.advice
    # D(G(z)) low but D's loss not (e.g. D also rejects the reals): not d_wins
    assert "d_wins" not in symptoms(diagnose(setting(healthy(), "d_fake", 400, lambda i: 0.02), window=100))


def test_vanishing_g_grad_relative_to_the_largest_median_and_below_the_floor():
    rows = setting(healthy(), "grad_norm_g", 500, lambda i: 1e-4 * (1 + 0.1 * (i % 3)))
    [f] = [f for f in diagnose(rows) if f.symptom == "vanishing_g_grad"]
    assert 600 <= f.step <= 700  # the window median drops once more than half the window has vanished
    ref = max(np.median([r["grad_norm_g"] for r in rows[i - 199:i + 1]]) for i in range(199, f.step))
    assert f.value < f.threshold == pytest.approx(1e-2 * ref) and "x its median" in f.message
    tiny = [{**r, "grad_norm_g": r["grad_norm_g"] * 1e-9} for r in healthy()]
    [f] = [f for f in diagnose(tiny) if f.symptom == "vanishing_g_grad"]
    assert f.step == 200 and f.threshold == HISTORY_THRESHOLDS["vanish_floor"] and "floor" in f.message
    assert "vanishing_g_grad" not in symptoms(diagnose(rows, vanish_ratio=1e-5, vanish_floor=0))


def test_exploding_grad_names_the_network_and_catches_non_finite_norms():
    rows = setting(healthy(), "grad_norm_d", 333, lambda i: 1e4)
    [f] = diagnose(rows)
    assert (f.symptom, f.step) == ("exploding_grad", 334) and "D's gradient" in f.message
    assert f.threshold == pytest.approx(100 * np.median([r["grad_norm_d"] for r in rows[133:333]]))
    rows = healthy()
    rows[700]["grad_norm_g"] = float("nan")
    [f] = diagnose(rows)
    assert (f.symptom, f.step) == ("exploding_grad", 701) and "G's gradient" in f.message and math.isnan(f.value)
    rows = healthy()
    rows[500]["grad_norm_g"] *= 20  # a 20x spike is not an explosion at the default 100x
    assert diagnose(rows) == []
    assert symptoms(diagnose(rows, explode_ratio=10)) == ["exploding_grad"]


def test_d_fake_stuck_reports_where_it_is_stuck():
    rows = setting(healthy(), "d_fake", 300, lambda i: 0.5 + 1e-5 * (i % 2))
    [f] = diagnose(rows, window=100)
    assert (f.symptom, f.step) == ("d_fake_stuck", 400) and f.value < 1e-4 and "stayed at 0.5" in f.message


def test_lr_at_bound_needs_a_move_to_an_extreme_and_a_whole_window_there():
    def controller(i: int) -> float:  # x1.25 every 50 steps from 2e-4, clamped at 2e-3 (chapter 4's source rule)
        return min(2e-4 * 1.25 ** (i // 50), 2e-3)

    rows = setting(healthy(), "lr_g", 0, controller)
    reached = next(i for i in range(1000) if controller(i) == 2e-3)
    [f] = diagnose(rows)
    assert (f.symptom, f.step) == ("lr_at_bound", reached + 200) and f.value == 2e-3 and "lr_g" in f.message
    assert f.threshold == pytest.approx(1e-3) and "highest" in f.message
    small = setting(healthy(), "lr_g", 100, lambda i: 2.5e-4)  # one step up, then steady: no runaway
    assert diagnose(small) == []
    down = setting(healthy(), "lr_d", 100, lambda i: 2e-4 / 1.25 ** min((i - 100) // 20 + 1, 20))
    [f] = diagnose(down)
    assert f.symptom == "lr_at_bound" and "lr_d" in f.message and "lowest" in f.message


def test_non_finite_losses_do_not_crash_it():
    rows = healthy()
    for r in rows[600:]:
        r["loss_d"] = r["d_fake"] = float("nan")
    assert diagnose(rows) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 0}, "window=0 is invalid"),
    ({"window": 1}, "window=1 is invalid"),
    ({"window": 2.5}, "window=2.5 is invalid"),
    ({"window": True}, "window=True is invalid"),
    ({"window": 2000}, "history has 1000 rows, fewer than window=2000"),
    ({"d_loss_floor": -1}, "d_loss_floor=-1 is invalid: expected a positive number"),
    ({"d_fake_floor": 1.5}, "d_fake_floor=1.5 is invalid: expected a number in (0, 1)"),
    ({"vanish_ratio": 1}, "vanish_ratio=1 is invalid"),
    ({"explode_ratio": float("nan")}, "explode_ratio=nan is invalid"),
    ({"stuck_std": "small"}, "stuck_std='small' is invalid"),
    ({"lr_ratio": 0.5}, "lr_ratio=0.5 is invalid: expected a number > 1"),
    ({"d_loss": 0.1}, "unknown threshold(s) ['d_loss']; allowed are"),
])
def test_bad_arguments_are_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError) as err:
        diagnose(healthy(), **kwargs)
    assert message in str(err.value)


def test_missing_columns_and_wrong_types_are_value_errors():
    rows = [{k: v for k, v in r.items() if k != "grad_norm_d"} for r in healthy()]
    with pytest.raises(ValueError, match=r"lack column\(s\) \['grad_norm_d'\]"):
        diagnose(rows)
    with pytest.raises(ValueError, match="sequence of rows"):
        diagnose(healthy()[0])
    with pytest.raises(ValueError, match="history is empty"):
        diagnose([])
    assert set(HISTORY_COLUMNS) <= set(healthy(1)[0])


def test_metric_symptoms_per_dataset():
    assert diagnose_metrics({"modes": 6.0, "high_quality": 0.4, "kl": 0.3}, "ring8") == []
    [f] = diagnose_metrics({"modes": 5.0, "high_quality": 0.4}, "ring8")
    assert (f.symptom, f.step, f.value, f.threshold) == ("mode_collapse", -1, 5.0, 6.0)
    assert "modes=5 of 8 (< 6): G misses 3 of the modes" in f.message
    assert symptoms(diagnose_metrics({"modes": 19, "high_quality": 0.3, "step": 3000}, "grid25")) == ["mode_collapse"]
    assert diagnose_metrics({"modes": 19, "high_quality": 0.3, "step": 3000}, "grid25")[0].step == 3000
    assert diagnose_metrics({"modes": 20, "high_quality": 0.3}, "grid25") == []
    found = diagnose_metrics({"modes": 0.0, "high_quality": 0.0, "kl": float("nan")}, "ring8")
    assert symptoms(found) == ["mode_collapse", "low_quality"] and found[1].threshold == 0.05
    mnist = diagnose_metrics({"digits_covered": 7.0, "kl": 0.5, "frechet": 400.0}, "mnist")
    assert symptoms(mnist) == ["mode_collapse"] and "misses 3 of the digits" in mnist[0].message
    assert diagnose_metrics({"digits_covered": 8.0}, "mnist") == []
    assert diagnose_metrics({"modes": 5.0, "high_quality": 0.4}, "ring8", min_modes=4) == []
    strict = diagnose_metrics({"modes": 8, "high_quality": 0.4}, "ring8", min_high_quality=0.5)  # PacGAN's bar
    assert symptoms(strict) == ["low_quality"]
    assert MIN_MODES == {"ring8": 6, "grid25": 20, "mnist": 8}


@pytest.mark.parametrize("args, kwargs, message", [
    (({"modes": 8, "high_quality": 1.0}, "cifar"), {}, "dataset='cifar' is invalid: allowed values are"),
    (({"high_quality": 1.0}, "ring8"), {}, "metrics lack 'modes'"),
    (({"modes": 8}, "grid25"), {}, "metrics lack 'high_quality'"),
    (({"modes": 8}, "mnist"), {}, "metrics lack 'digits_covered'"),
    (({"modes": 8, "high_quality": 1.0}, "ring8"), {"min_modes": 9}, "min_modes=9 is invalid: expected a number in "
                                                                       "(0, 8]"),
    (({"modes": 8, "high_quality": 1.0}, "ring8"), {"min_high_quality": 0}, "min_high_quality=0 is invalid"),
    (({"modes": 8, "high_quality": 1.0}, "ring8"), {"modes": 3}, "unknown threshold(s) ['modes']"),
])
def test_metric_argument_errors(args, kwargs, message):
    with pytest.raises(ValueError) as err:
        diagnose_metrics(*args, **kwargs)
    assert message in str(err.value)


def test_report_and_the_symptom_table():
    assert report([]) == "no symptoms found"
    findings = diagnose(setting(healthy(), "grad_norm_d", 333, lambda i: 1e4))
    findings += diagnose_metrics({"modes": 2, "high_quality": 0.01}, "ring8")
    text = report(findings)
    assert text.splitlines()[0].startswith("exploding_grad (step 334): grad_norm_d reached")
    for f in findings:
        assert f.message in text and f.advice in text
    assert "mode_collapse (metrics):" in text and "try: chapter 4: clip" in text
    assert {"d_wins", "vanishing_g_grad", "exploding_grad", "d_fake_stuck", "lr_at_bound", "mode_collapse",
            "low_quality"} == set(SYMPTOMS)
    for entry in SYMPTOMS.values():
        assert set(entry) == {"description", "chapter"} and "chapter" in entry["chapter"]
    with pytest.raises(AttributeError):
        findings[0].step = 0  # frozen
    assert isinstance(findings[0], Finding)


# -- real runs (ring8, CPU) -------------------------------------------------------------------------------------
def test_real_broken_runs_trip_their_symptom_and_the_default_run_does_not():
    # SGD with momentum 0.9 at lr 0.1 diverges: non-finite losses at step 27 in calibration
    broken = Trainer(TrainConfig(steps=200, optim={"name": "sgd", "lr_g": 0.1, "lr_d": 0.1, "momentum": 0.9},
                                 progress=False, device="cpu"))
    with pytest.raises(NonFiniteLossError):
        broken.fit()
    n = len(broken.history)
    assert 10 <= n < 100
    found = diagnose(broken.history, window=10)
    assert found[0].symptom == "exploding_grad" and found[0].step < n
    # five D steps at 10x D's learning rate with the minimax loss: D wins (step 160 in calibration)
    strong_d = Trainer(TrainConfig(steps=200, d_steps=5, loss="minimax", optim={"lr_d": 2e-3}, progress=False,
                                   device="cpu"))
    assert "d_wins" in symptoms(diagnose(strong_d.fit(), window=100))
    assert diagnose(Trainer(TrainConfig(steps=250, progress=False, device="cpu")).fit(), window=100) == []


def test_diagnose_command_on_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "40", "--batch-size", "32", "--data-size", "500",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["diagnose", str(run), "--window", "20"]) == 0
    out = capsys.readouterr().out
    assert "40 steps" in out and "modes=" in out and "high_quality=" in out
    assert "mode_collapse" in out or "low_quality" in out or "no symptoms found" in out
    assert main(["diagnose", str(run), "--window", "20", "--no-metrics"]) == 0
    assert "no symptoms found" in capsys.readouterr().out
    (run / "history.csv").unlink()  # then the checkpoint's history
    assert main(["diagnose", str(run), "--window", "20", "--no-metrics"]) == 0
    assert capsys.readouterr().out.startswith(f"{run}: 40 steps\n")
    with pytest.raises(SystemExit) as err:
        main(["diagnose", str(run), "--window", "41"])
    assert err.value.code == 2 and "--window 41: the run has only 40 steps" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["diagnose", "nowhere"], "RUN_DIR nowhere: no such folder"),
    (["diagnose", "empty"], "no history.csv or checkpoint.pt"),
])
def test_diagnose_command_errors(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert "error:" in stderr and message in stderr and "Traceback" not in stderr


def test_diagnose_command_names_a_malformed_history_csv(tmp_path, capsys):
    run = tmp_path / "bad"
    run.mkdir()
    (run / "history.csv").write_text("step,loss_d\n1,0.7\n2,oops\n")
    with pytest.raises(SystemExit) as err:
        main(["diagnose", str(run), "--window", "2"])
    stderr = capsys.readouterr().err
    assert err.value.code == 2 and "line 3: column 'loss_d' = 'oops' is not a number" in stderr


def test_history_csv_round_trip(tmp_path):
    import math

    from gantricks.checkpoint import read_csv_columns, write_csv

    path = tmp_path / "h.csv"
    write_csv([{"step": 1, "loss_d": 0.5}, {"step": 2, "loss_d": 0.25, "fp_rate": 0.1}], path)
    cols = read_csv_columns(path)
    assert list(cols) == ["step", "loss_d", "fp_rate"]
    assert cols["loss_d"].tolist() == [0.5, 0.25] and math.isnan(cols["fp_rate"][0]) and cols["fp_rate"][1] == 0.1


def test_ablate_diagnose_records_symptoms_and_goes_on_past_a_diverged_run(tmp_path, capsys):
    grid = tmp_path / "g.json"
    base = {"dataset": "ring8", "steps": 300, "batch_size": 64, "device": "cpu"}
    grid.write_text(json.dumps({"base": base, "configs": {
        "sgd 0.1": {"optim": {"name": "sgd", "lr_g": 0.1, "lr_d": 0.1, "momentum": 0.9}},  # non-finite by ~step 30
        "d wins": {"loss": "minimax", "d_steps": 5, "optim": {"lr_d": 2e-3}},
        "healthy": {"steps": 100}}}))
    out = tmp_path / "r.json"
    assert main(["ablate", "--grid", str(grid), "--seeds", "1", "--diagnose", "20", "--out", str(out)]) == 0
    rows = {r["config"]: r for r in json.loads(out.read_text())["rows"]}
    wild, won, calm = rows["sgd 0.1"], rows["d wins"], rows["healthy"]
    assert wild["diverged_step"] < 300 and "modes" not in wild  # recorded as an outcome, no metrics invented
    assert "exploding_grad" in wild["symptoms"] and wild["symptoms"]["exploding_grad"] <= wild["diverged_step"]
    assert "d_wins" in won["symptoms"] and "diverged_step" not in won and won["modes"] >= 0
    assert calm["symptoms"] == {}
    assert "exploding_grad@" in (tmp_path / "r.csv").read_text()
    printed = capsys.readouterr().out
    assert "sgd 0.1: exploding_grad 1/1" in printed and "diverged 1/1" in printed and "healthy: none" in printed
    with pytest.raises(SystemExit) as exit_info:
        main(["ablate", "--grid", str(grid), "--diagnose", "1", "--out", str(tmp_path / "s.json")])
    assert exit_info.value.code == 2 and "--diagnose 1: expected 0 (off) or a window of at least 2" in \
        capsys.readouterr().err
