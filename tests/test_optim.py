"""The optimiser factory and presets (trick 2, chapter 3): every name steps, TTUR is real, state survives resume."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gantricks import OptimConfig, TrainConfig, Trainer
from gantricks.cli import main
from gantricks.optim import OPTIM_PRESETS, OPTIMIZERS, build_optimizer, build_optimizers, optim_preset

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")
CPU = torch.device("cpu")


def _nets() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return nn.Linear(3, 2), nn.Linear(2, 1)


def _step(g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> None:
    x = torch.randn(8, 3)
    for opt in (opt_g, opt_d):
        opt.zero_grad()
    d(g(x)).pow(2).mean().backward()
    opt_g.step()
    opt_d.step()


def _tiny(**kw) -> TrainConfig:
    base = dict(dataset="ring8", steps=3, batch_size=16, data_size=200, progress=False, device="cpu", sync_every=1)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_name_builds_the_torch_class_and_steps(name):
    g, d = _nets()
    opt_g, opt_d = build_optimizers(g, d, OptimConfig(name=name, lr_g=1e-2, lr_d=1e-2), CPU)
    assert type(opt_g) is OPTIMIZERS[name] and type(opt_d) is OPTIMIZERS[name]
    before = [p.detach().clone() for p in (*g.parameters(), *d.parameters())]
    _step(g, d, opt_g, opt_d)
    after = list((*g.parameters(), *d.parameters()))
    assert all(not torch.equal(b, a) for b, a in zip(before, after))


def test_every_hyper_parameter_reaches_torch():
    g, d = _nets()
    sgd = build_optimizer(g.parameters(), OptimConfig(name="sgd", momentum=0.9, nesterov=True, weight_decay=1e-3),
                          0.05, CPU).param_groups[0]
    assert (sgd["lr"], sgd["momentum"], sgd["nesterov"], sgd["weight_decay"]) == (0.05, 0.9, True, 1e-3)
    rms = build_optimizer(g.parameters(), OptimConfig(name="rmsprop", momentum=0.5, alpha=0.9), 1e-3,
                          CPU).param_groups[0]
    assert (rms["momentum"], rms["alpha"]) == (0.5, 0.9)
    opt_g, opt_d = build_optimizers(g, d, OptimConfig(betas=(0.5, 0.999), betas_d=(0.0, 0.9)), CPU)
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999) and opt_d.param_groups[0]["betas"] == (0.0, 0.9)


def test_ttur_gives_g_and_d_their_own_rates_in_the_trainer():
    t = Trainer(_tiny(optim={"preset": "ttur-sagan"}))
    assert [pg["lr"] for pg in t.opt_g.param_groups] == [1e-4] and [pg["lr"] for pg in t.opt_d.param_groups] == [4e-4]
    g0 = [p.detach().clone() for p in t.G.parameters()]
    d0 = [p.detach().clone() for p in t.D.parameters()]
    t.fit(1)
    # Adam's first step with beta1 = 0 moves each weight by lr * |g| / (|g| + eps): at most lr, ~lr for most
    dg = max((p - q).abs().max().item() for p, q in zip(t.G.parameters(), g0))
    dd = max((p - q).abs().max().item() for p, q in zip(t.D.parameters(), d0))
    assert dg == pytest.approx(1e-4, rel=1e-3) and dd == pytest.approx(4e-4, rel=1e-3)
    assert (t.history[0]["lr_g"], t.history[0]["lr_d"]) == (1e-4, 4e-4)


@pytest.mark.parametrize("name", list(OPTIM_PRESETS))
def test_every_preset_validates_builds_and_names_its_source(name):
    cfg = optim_preset(name)
    assert cfg.name in OPTIMIZERS
    source = OPTIM_PRESETS[name]["source"]
    assert len(source) > 20 and (any(ch.isdigit() for ch in source) or "torch" in source)
    g, d = _nets()
    opt_g, opt_d = build_optimizers(g, d, cfg, CPU)
    assert (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]) == (cfg.lr_g, cfg.lr_d)
    _step(g, d, opt_g, opt_d)


def test_presets_hold_the_published_values():
    assert optim_preset("dcgan") == OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999))
    sagan = optim_preset("ttur-sagan")
    assert (sagan.lr_g, sagan.lr_d, sagan.betas) == (1e-4, 4e-4, (0.0, 0.9))
    assert optim_preset("source-adam").betas == (0.9, 0.997) and optim_preset("source-adam").lr_g == 1e-3
    assert optim_preset("torch-default").betas == (0.9, 0.999)
    assert optim_preset("nesterov").nesterov and optim_preset("adadelta").lr_d == 1.0
    assert optim_preset("dcgan", lr_d=1e-3).lr_d == 1e-3


def test_unknown_preset_lists_every_preset():
    with pytest.raises(ValueError, match=r"optim\.preset='adamax' is invalid") as err:
        optim_preset("adamax")
    assert all(repr(name) in str(err.value) for name in OPTIM_PRESETS)
    with pytest.raises(ValueError, match="allowed values are"):
        TrainConfig(optim={"preset": "nope"})


@pytest.mark.parametrize("changes, match", [
    ({"name": "sgd", "nesterov": True}, r"optim\.nesterov=True is invalid: Nesterov momentum needs optim\.momentum"),
    ({"name": "adam", "nesterov": True, "momentum": 0.9}, r"optim\.momentum=0\.9 .*'adam' has no such"),
    ({"name": "rmsprop", "nesterov": True, "momentum": 0.9}, r"optim\.nesterov=True .*'rmsprop'.*\['sgd'\]"),
    ({"nesterov": 1}, r"optim\.nesterov=1 is invalid: expected True or False"),
    ({"name": "adam", "momentum": 0.5}, r"optim\.momentum=0\.5 .*applies to \['sgd', 'rmsprop'\]"),
    ({"name": "sgd", "betas": (0.9, 0.999)}, r"optim\.betas=\(0\.9, 0\.999\) .*'sgd'.*default \(0\.5, 0\.999\)"),
    ({"name": "sgd", "betas_d": (0.0, 0.9)}, r"optim\.betas_d=\(0\.0, 0\.9\) .*'sgd'"),
    ({"name": "adagrad", "alpha": 0.9}, r"optim\.alpha=0\.9 .*\['rmsprop'\]"),
    ({"alpha": 1.0}, r"optim\.alpha=1\.0 is invalid: expected a number in \[0, 1\)"),
    ({"betas_d": (0.5,)}, r"optim\.betas_d=\(0\.5,\) is invalid: expected two numbers"),
    ({"weight_decay": -1e-4}, r"optim\.weight_decay=-0\.0001 is invalid"),
])
def test_bad_or_inapplicable_hyper_parameters_are_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        OptimConfig(**changes).validate()


def test_defaults_of_unused_fields_are_fine():
    OptimConfig(name="sgd").validate()  # default betas and alpha, not read by SGD, are not an error
    OptimConfig(name="adadelta", lr_g=1.0, lr_d=1.0).validate()


def test_presets_in_config_dicts_json_and_grid_files(tmp_path):
    from gantricks.experiments import load_grid

    cfg = TrainConfig(optim={"preset": "ttur-sagan", "lr_g": 2e-4})
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.betas) == (2e-4, 4e-4, (0.0, 0.9))
    moved = TrainConfig(optim={"name": "sgd", "momentum": 0.9}).replace(optim={"preset": "dcgan"})
    assert moved.optim == optim_preset("dcgan")
    full = TrainConfig(optim=OptimConfig(name="sgd", momentum=0.9, nesterov=True, lr_g=1e-3))
    assert TrainConfig.from_dict(json.loads(full.to_json())) == full
    betas_d = TrainConfig(optim=OptimConfig(betas_d=(0.0, 0.9)))
    assert TrainConfig.from_dict(json.loads(betas_d.to_json())) == betas_d
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"steps": 5, "optim": {"preset": "dcgan"}},
                                "configs": {"dcgan": {}, "slow_g": {"optim": {"lr_g": 5e-5}},
                                            "sagan": {"optim": {"preset": "ttur-sagan"}}}}))
    configs = load_grid(grid)
    assert configs["dcgan"].optim == optim_preset("dcgan")
    assert configs["slow_g"].optim == optim_preset("dcgan", lr_g=5e-5)
    assert configs["sagan"].optim == optim_preset("ttur-sagan")


@pytest.mark.parametrize("preset", ["ttur-sagan", "nesterov", "rmsprop"])
def test_optimiser_state_survives_a_checkpoint(tmp_path, preset):
    t = Trainer(_tiny(optim=optim_preset(preset, **({"momentum": 0.5} if preset == "rmsprop" else {}))))
    t.fit(3)
    t.save(tmp_path)
    back = Trainer.from_checkpoint(tmp_path)
    assert back.cfg.optim == t.cfg.optim
    for a, b in ((t.opt_g, back.opt_g), (t.opt_d, back.opt_d)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
        for k, state in sa["state"].items():
            assert state.keys() == sb["state"][k].keys() and len(state) > 0  # momentum / moments, not empty
            assert all(torch.equal(torch.as_tensor(v), torch.as_tensor(sb["state"][k][n])) for n, v in state.items())
    t.fit(5)
    back.fit(5)
    for p, q in zip((*t.G.parameters(), *t.D.parameters()), (*back.G.parameters(), *back.D.parameters())):
        assert torch.equal(p, q)


def test_cli_optim_preset_and_its_errors(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--dataset", "ring8", "--batch-size", "16", "--data-size", "200", "--steps", "2", "--no-progress"]
    assert main(["train", "--out", str(run), "--optim-preset", "ttur-sagan", "--lr-g", "5e-5", *args]) == 0
    optim = json.loads((run / "config.json").read_text())["optim"]
    assert (optim["lr_g"], optim["lr_d"], optim["betas"]) == (5e-5, 4e-4, [0.0, 0.9])
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "x"), "--optim-preset", "ttur-sagan", "--optimizer", "sgd", *args])
    assert "optim.betas=(0.0, 0.9) is invalid: 'sgd' has no such hyper-parameter" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "y"), "--optim-preset", "lion", *args])
    assert "invalid choice: 'lion'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(run), "--optim-preset", "dcgan", "--steps", "4"])
    assert "--optim-preset" in capsys.readouterr().err
