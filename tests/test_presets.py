"""Run presets (gantricks.presets): the table, run_preset's merge order, `train --preset`, grid files, `presets`."""

from __future__ import annotations

import json
import re

import pytest

from gantricks import presets
from gantricks.cli import main
from gantricks.config import DATASETS, TrainConfig, merge_fields
from gantricks.experiments import load_grid
from gantricks.presets import RUN_PRESETS, run_preset

USER_FIELDS = {"dataset", "steps", "seed"}  # the user's choice, never a preset's


@pytest.mark.parametrize("name", list(RUN_PRESETS))
def test_every_preset_is_well_formed_and_builds_for_every_dataset(name):
    entry = RUN_PRESETS[name]
    assert {"fields", "chapter", "evidence"} <= set(entry) <= {"fields", "chapter", "evidence", "datasets",
                                                                "for_dataset"}
    assert re.fullmatch(r"book/(\d\d_\w+|how_we_measure)\.ipynb", entry["chapter"])
    assert isinstance(entry["evidence"], str) and entry["evidence"]
    assert not USER_FIELDS & set(entry["fields"]), f"preset {name!r} sets {USER_FIELDS & set(entry['fields'])}"
    for fields in entry.get("for_dataset", {}).values():  # a recipe's budget may be the steps it was measured at
        assert not {"dataset", "seed"} & set(fields)
    allowed = entry.get("datasets", DATASETS)
    assert allowed and set(allowed) <= set(DATASETS)
    for dataset in DATASETS:
        if dataset not in allowed:
            with pytest.raises(ValueError, match=rf"preset='{name}' does not apply to dataset='{dataset}'"):
                run_preset(name, dataset=dataset, steps=7, seed=3)
            continue
        cfg = run_preset(name, dataset=dataset, steps=7, seed=3)
        assert isinstance(cfg, TrainConfig) and (cfg.dataset, cfg.steps, cfg.seed) == (dataset, 7, 3)
        own = entry.get("for_dataset", {}).get(dataset, {})
        assert cfg == TrainConfig.from_dict(merge_fields(entry["fields"], own,
                                                         {"dataset": dataset, "steps": 7, "seed": 3}))


def test_the_presets_are_the_measured_configs():
    from pathlib import Path

    from gantricks.experiments import load_grid

    results = Path(__file__).resolve().parents[1] / "book" / "results"
    for dataset, grid, name in (("ring8", "recipe_ring8_grid.json", "linear decay"),
                                ("grid25", "recipe_grid25_grid.json", "linear decay"),
                                ("mnist", "mnist_digits_grid.json", "dcgan w32")):
        measured = load_grid(results / grid)[name]  # the recipe that "How we measure" / chapter 1 measure
        assert run_preset("baseline", dataset=dataset) == measured, dataset
    assert run_preset("baseline") == run_preset("baseline", dataset="ring8")  # TrainConfig's default dataset
    noise = run_preset("noise", dataset="mnist").noise  # "instance noise 0.5" of book/results/noise_mnist_grid.json
    assert (noise.instance_sigma, noise.instance_anneal_steps, noise.instance_schedule) == (0.5, 2000, "linear")
    measured = load_grid(results / "regulate_grid25_grid.json")["none + clip"]  # chapter 4's clipping, controllers off
    assert run_preset("regulate", dataset="grid25", steps=measured.steps) == measured
    optim = run_preset("optim").optim
    assert (optim.name, optim.lr_g, optim.lr_d, optim.betas) == ("adam", 1e-4, 4e-4, (0.0, 0.9))


def test_all_tricks_is_the_chapter_presets_merged_and_the_leave_one_out_grids_remove_one_trick_each():
    from pathlib import Path

    fields = RUN_PRESETS["all-tricks"]["fields"]
    assert fields == {**RUN_PRESETS["noise"]["fields"], **RUN_PRESETS["optim"]["fields"],
                      **RUN_PRESETS["regulate"]["fields"]}  # three disjoint sections, nothing else
    results = Path(__file__).resolve().parents[1] / "book" / "results"
    for dataset in DATASETS:
        configs = load_grid(results / f"all_{dataset}_grid.json")
        every = configs["all tricks"]
        assert every == run_preset("all-tricks", dataset=dataset, steps=every.steps, batch_size=every.batch_size)
        baseline = configs["none (baseline)"]
        assert baseline == TrainConfig(dataset=dataset, steps=every.steps, batch_size=every.batch_size)
        for section in ("noise", "optim", "regulate"):
            minus = configs[f"all - {section}"]
            off = minus.noise.instance_sigma == 0.0 if section == "noise" else getattr(minus, section) == getattr(
                baseline, section)
            assert off, f"{dataset}: 'all - {section}' leaves the trick on"
            assert minus.replace(**{section: getattr(every, section)}) == every  # nothing else changed
    assert load_grid(results / "all_mnist_dcgan_grid.json")["all tricks"].resolved_model == "dcgan"


def test_what_works_is_the_baseline_plus_the_stabilisers_chapter_8_measured_alone():
    """The preset is exactly the configs chapter 8 measured: on ring8 its minibatch-std row (the pair with R1 is the
    leave-one-out grid), on MNIST its R1 row; grid25 gets ring8's choice on its own baseline; the what-works grids
    run the preset itself."""
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "book" / "results"
    alone = load_grid(results / "stabilisers_ring8_grid.json")
    ring8 = run_preset("what-works", dataset="ring8")
    assert ring8 == alone["minibatch std (group 4)"]
    (pair,) = load_grid(results / "pair_ring8_grid.json").values()  # its leave-one-out: each part is a row above
    assert pair == ring8.replace(penalty=alone["R1 (gamma 1)"].penalty)
    assert (ring8.mbstd.group, ring8.penalty.r1, ring8.steps, ring8.schedule.kind) == (4, 0.0, 6000, "linear")
    grid25 = run_preset("what-works", dataset="grid25")
    assert grid25 == run_preset("baseline", dataset="grid25").replace(mbstd=ring8.mbstd)
    mnist = run_preset("what-works", dataset="mnist")
    assert mnist == load_grid(results / "stabilisers_mnist_grid.json")["R1 (gamma 10, D without BatchNorm)"]
    assert (mnist.d_norm, mnist.penalty.r1, mnist.resolved_model) == ("none", 10.0, "dcgan")
    for dataset, cfg in (("ring8", ring8), ("grid25", grid25), ("mnist", mnist)):
        (ran,) = [c for name, c in load_grid(results / f"whatworks_{dataset}_grid.json").items()
                  if name.startswith("what works")]
        assert ran == cfg
    assert load_grid(results / "whatworks_mnist_grid.json")["baseline"] == run_preset("baseline", dataset="mnist")


def test_the_latent_preset_needs_labels_and_says_so():
    cfg = run_preset("latent", dataset="mnist")
    assert (cfg.n_classes, cfg.latent.resolved_conditioning(cfg.n_classes)) == (10, "acgan")
    with pytest.raises(ValueError, match=r"preset='latent' does not apply to dataset='ring8': it applies to "
                                         r"\('mnist',\)"):
        run_preset("latent")  # the default dataset is ring8


def test_overrides_win_section_by_section_and_leave_the_table_alone():
    before = json.dumps(RUN_PRESETS, sort_keys=True)
    cfg = run_preset("noise", dataset="ring8", noise={"instance_anneal_steps": 10})
    assert (cfg.noise.instance_sigma, cfg.noise.instance_anneal_steps) == (0.5, 10)
    optim = run_preset("optim", optim={"lr_g": 5e-5}).optim  # the optimiser preset stays, lr_g changes
    assert (optim.lr_g, optim.lr_d, optim.betas) == (5e-5, 4e-4, (0.0, 0.9))
    assert run_preset("optim", optim={"preset": "dcgan"}).optim == TrainConfig().optim
    assert run_preset("noise", noise={"instance_sigma": 0.0}).noise.instance_sigma == 0.0
    assert json.dumps(RUN_PRESETS, sort_keys=True) == before


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match=r"preset='best' is invalid: allowed values are \('baseline', 'noise'"):
        run_preset("best")


def test_a_new_preset_is_one_entry(monkeypatch):
    monkeypatch.setitem(RUN_PRESETS, "both", {"fields": merge_fields(RUN_PRESETS["noise"]["fields"],
                                                                     RUN_PRESETS["optim"]["fields"]),
                                              "chapter": "book/99_all.ipynb", "evidence": "a test"})
    cfg = presets.run_preset("both", dataset="grid25")
    assert (cfg.noise.instance_sigma, cfg.optim.lr_d) == (0.5, 4e-4)


def test_cli_train_preset_records_it_and_flags_win(tmp_path):
    run = tmp_path / "run"
    args = ["--dataset", "ring8", "--steps", "3", "--batch-size", "16", "--data-size", "200", "--no-progress"]
    assert main(["train", "--preset", "optim", "--out", str(run), *args]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["optim"]["lr_g"], saved["optim"]["lr_d"], saved["optim"]["betas"]) == (1e-4, 4e-4, [0.0, 0.9])
    assert saved["preset"] == "optim" and (saved["dataset"], saved["steps"]) == ("ring8", 3)
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0  # the checkpoint keeps it
    assert json.loads((run / "config.json").read_text())["preset"] == "optim"
    other = tmp_path / "flags"
    assert main(["train", "--preset", "noise", "--instance-anneal-steps", "10", "--lr-g", "1e-3", "--out",
                 str(other), *args]) == 0
    saved = json.loads((other / "config.json").read_text())
    assert (saved["noise"]["instance_sigma"], saved["noise"]["instance_anneal_steps"]) == (0.5, 10)
    assert saved["optim"]["lr_g"] == 1e-3
    plain = tmp_path / "plain"
    assert main(["train", "--out", str(plain), *args]) == 0
    assert "preset" not in json.loads((plain / "config.json").read_text())


def test_cli_preset_errors_are_argparse_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", "--preset", "best", "--out", str(tmp_path / "x")])
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert "invalid choice: 'best'" in stderr and all(name in stderr for name in RUN_PRESETS)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--dataset", "ring8", "--steps", "2", "--batch-size", "16",
                 "--data-size", "200", "--no-progress"]) == 0
    with pytest.raises(SystemExit) as err:
        main(["train", "--resume", str(run), "--preset", "noise", "--steps", "3"])
    assert err.value.code == 2 and "--preset" in capsys.readouterr().err


def test_grid_file_preset_at_base_or_config(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": {"dataset": "ring8", "preset": "noise", "noise": {"instance_sigma": 0.3}},
                                "configs": {"inherits": {}, "own": {"preset": "optim"}, "none": {"preset": None},
                                            "fields": {"noise": {"instance_anneal_steps": 5}}}}))
    configs = load_grid(grid, steps=3)
    assert (configs["inherits"].noise.instance_sigma, configs["inherits"].noise.instance_anneal_steps) == (0.3, 2000)
    own = configs["own"]  # the config's preset replaces base's; base's own noise field still applies
    assert (own.optim.lr_d, own.noise.instance_sigma, own.noise.instance_anneal_steps) == (4e-4, 0.3, 1000)
    assert configs["none"].optim == TrainConfig().optim and configs["none"].noise.instance_anneal_steps == 1000
    assert configs["fields"].noise.instance_anneal_steps == 5 and all(c.steps == 3 for c in configs.values())
    grid.write_text(json.dumps({"configs": {"bad": {"preset": "best"}}}))
    with pytest.raises(ValueError, match=r"config 'bad': preset='best' is invalid"):
        load_grid(grid)
    grid.write_text(json.dumps({"configs": {"labels": {"dataset": "grid25", "preset": "latent"}}}))
    with pytest.raises(ValueError, match=r"config 'labels': preset='latent' does not apply to dataset='grid25'"):
        load_grid(grid)


def test_cli_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, entry in RUN_PRESETS.items():
        assert re.search(rf"^{re.escape(name)}\b", out, re.M) and entry["chapter"] in out and entry["evidence"] in out


def test_a_preset_may_hold_a_recipe_per_dataset_with_its_budget(monkeypatch, tmp_path):
    monkeypatch.setitem(RUN_PRESETS, "recipe", {
        "fields": {"batch_size": 64}, "chapter": "book/how_we_measure.ipynb", "evidence": "a test",
        "for_dataset": {"grid25": {"steps": 30, "schedule": {"kind": "linear"}}}})
    assert run_preset("recipe", dataset="ring8") == TrainConfig(batch_size=64)
    grid = run_preset("recipe", dataset="grid25")
    assert (grid.batch_size, grid.steps, grid.schedule.kind) == (64, 30, "linear")
    assert run_preset("recipe", dataset="grid25", steps=9, schedule={"final": 0.5}).steps == 9
    assert run_preset("recipe", dataset="grid25", schedule={"final": 0.5}).schedule.kind == "linear"
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"base": {"preset": "recipe"}, "configs": {"g": {"dataset": "grid25"}}}))
    assert load_grid(path)["g"] == grid
