"""Multi-seed runner: tidy rows, resumable results files with metadata, mean +/- std summaries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gantricks import TrainConfig
from gantricks.experiments import evaluate_2d, format_table, run_grid, summarize


def _cfg(**kw):
    return TrainConfig(dataset="ring8", steps=3, batch_size=16, data_size=200, progress=False, **kw)


def test_run_grid_rows_and_resume(tmp_path, capsys):
    path = tmp_path / "res.json"
    calls = []

    def evaluate(trainer):
        calls.append((trainer.cfg.optim.lr_g, trainer.cfg.seed))
        return {"score": float(trainer.cfg.seed)}

    configs = {"a": _cfg(), "b": _cfg().replace(optim={"lr_g": 1e-3})}
    rows = run_grid(configs, [0, 1], evaluate, results=path, command="test")
    assert [(r["config"], r["seed"]) for r in rows] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert calls == [(2e-4, 0), (2e-4, 1), (1e-3, 0), (1e-3, 1)]  # each config keeps its own settings
    saved = json.loads(path.read_text())
    assert saved["command"] == "test" and len(saved["rows"]) == 4
    assert {"gantricks", "torch", "device", "date"} <= set(saved["meta"])
    calls.clear()
    again = run_grid(configs, [0, 1, 2], evaluate, results=path)
    assert calls == [(2e-4, 2), (1e-3, 2)]  # finished runs are not rerun
    assert len(again) == 6
    assert "[a seed 0]" in capsys.readouterr().out


def test_summarize_and_format_table():
    rows = [{"config": "x", "m": 1.0}, {"config": "x", "m": 3.0}, {"config": "y", "m": 2.0},
            {"config": "y", "m": float("nan")}]
    s = summarize(rows, ["m"])
    assert s[0] == {"config": "x", "n": 2, "m": 2.0, "m_std": pytest.approx(math.sqrt(2.0))}
    assert s[1]["m"] == 2.0 and s[1]["m_std"] == 0.0 and s[1]["n"] == 2
    table = format_table(s, {"m": ".2f"})
    assert "| x | 2 | 2.00 ± 1.41 |" in table.splitlines()


def test_evaluate_2d_reports_the_protocol_metrics():
    from gantricks import Trainer

    t = Trainer(_cfg())
    out = evaluate_2d(t, n=500)
    assert set(out) == {"modes", "high_quality", "kl"}
    assert 0 <= out["modes"] <= 8 and 0 <= out["high_quality"] <= 1


def test_load_grid_merges_base_and_names_bad_configs(tmp_path):
    from gantricks.experiments import load_grid

    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"dataset": "grid25", "steps": 7, "optim": {"lr_d": 1e-3}},
                                "configs": {"plain": {}, "ttur": {"optim": {"lr_g": 5e-5}}}}))
    configs = load_grid(grid, steps=3)
    assert configs["plain"].dataset == "grid25" and configs["plain"].steps == 3
    assert (configs["ttur"].optim.lr_g, configs["ttur"].optim.lr_d) == (5e-5, 1e-3)
    grid.write_text(json.dumps({"configs": {"bad": {"loss": "hinge"}}}))
    with pytest.raises(ValueError, match="config 'bad'.*loss='hinge'"):
        load_grid(grid)
    grid.write_text(json.dumps({"configs": {}}))
    with pytest.raises(ValueError, match="non-empty object 'configs'"):
        load_grid(grid)


def test_ablate_and_evaluate_from_the_command_line(tmp_path, capsys):
    from gantricks.cli import main

    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"steps": 3, "batch_size": 16, "data_size": 200},
                                "configs": {"ring": {"dataset": "ring8"}, "grid": {"dataset": "grid25"}}}))
    out = tmp_path / "res" / "r.json"
    assert main(["ablate", "--grid", str(grid), "--seeds", "2", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python -m gantricks ablate --grid")
    assert len(saved["rows"]) == 4 and {"modes", "high_quality", "kl"} <= set(saved["rows"][0])
    assert (tmp_path / "res" / "r.csv").read_text().splitlines()[0].startswith("config,seed,modes")
    assert "| ring | 2 |" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "3", "--data-size", "200", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--n", "300"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 3 and report["n"] == 300 and 0 <= report["modes"] <= 8


def test_plot_results_draws_means_spread_and_every_run():
    import matplotlib

    matplotlib.use("Agg")
    from gantricks.viz import plot_results

    rows = [{"config": "a", "m": 1.0}, {"config": "a", "m": 3.0}, {"config": "b", "m": 5.0}]
    fig = plot_results(rows, "m")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [2.0, 5.0]
    from matplotlib.collections import PathCollection

    dots = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if isinstance(c, PathCollection)])
    assert sorted(dots.tolist()) == [1.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="metric='x'"):
        plot_results(rows, "x")
