"""Multi-seed runner: tidy rows, resumable results files with metadata, mean +/- std summaries."""

from __future__ import annotations

import json
import math

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
