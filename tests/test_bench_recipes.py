"""benchmarks/bench_recipes.py: it times every config of a grid, interleaved, and writes what it measured."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_recipes", ROOT / "benchmarks" / "bench_recipes.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_recipes"] = bench
_spec.loader.exec_module(bench)


def test_it_times_each_config_of_a_grid_and_writes_json(tmp_path, capsys):
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"dataset": "ring8", "batch_size": 16},
                                "configs": {"alt": {}, "sim": {"update": "simultaneous"}}}))
    out = tmp_path / "r.json"
    assert bench.main(["--grid", str(grid), "--warmup", "1", "--steps", "3", "--repeats", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["first"] == "alt" and set(result["configs"]) == {"alt", "sim"}
    for row in result["configs"].values():
        assert len(row["times"]) == 2 and row["seconds_per_step"] > 0
    assert result["configs"]["alt"]["ratio_to_first"] == 1.0
    assert result["meta"]["steps"] == 3 and "--grid" in result["command"]
    assert "| sim |" in capsys.readouterr().out


def test_time_steps_counts_only_the_timed_steps():
    from gantricks import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(batch_size=16, steps=100, progress=False))
    assert bench.time_steps(trainer, warmup=2, steps=3) > 0
    assert trainer.step_count == 5
