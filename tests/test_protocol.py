"""PacGAN's protocol as options: maxout D, N(0, 0.02) init, the simultaneous update, the presets and the grid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gantricks.config import TrainConfig
from gantricks.experiments import load_grid
from gantricks.models import Maxout, MLP2DDiscriminator, build_models, init_weights
from gantricks.optim import optim_preset
from gantricks.presets import run_preset
from gantricks.train import Trainer

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"


def test_maxout_is_the_max_over_each_units_pieces():
    torch.manual_seed(0)
    layer = Maxout(3, 4, pieces=5)
    x = torch.randn(7, 3)
    pre = x @ layer.linear.weight.T + layer.linear.bias  # (7, 20): unit u owns outputs 5u .. 5u+4
    expected = torch.stack([pre[:, 5 * u: 5 * u + 5].max(dim=1).values for u in range(4)], dim=1)
    torch.testing.assert_close(layer(x), expected)


def test_the_maxout_discriminator_has_pacgans_shape():
    d = MLP2DDiscriminator(arch="maxout")
    maxouts = [m for m in d.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [(2, 200, 5), (200, 200, 5),
                                                                                   (200, 200, 5)]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert d(torch.randn(6, 2)).shape == (6,)
    with pytest.raises(ValueError, match="arch='relu' is not one of"):
        MLP2DDiscriminator(arch="relu")


def test_normal_init_draws_weights_from_n0_002_with_zero_biases():
    torch.manual_seed(1)
    g, d = build_models(TrainConfig(init="normal", d_arch="maxout"), (2,))
    weights = torch.cat([m.weight.detach().flatten() for net in (g, d) for m in net.modules()
                         if isinstance(m, torch.nn.Linear)])
    assert abs(float(weights.std()) - 0.02) < 0.001 and abs(float(weights.mean())) < 0.001
    for net in (g, d):
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                assert torch.count_nonzero(m.bias) == 0
            if isinstance(m, torch.nn.BatchNorm1d):
                assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_torch_init_is_pytorchs_default_and_an_unknown_scheme_is_refused():
    torch.manual_seed(2)
    g1, d1 = build_models(TrainConfig(), (2,))
    torch.manual_seed(2)
    g2, d2 = build_models(TrainConfig(init="torch"), (2,))
    for a, b in zip([*g1.parameters(), *d1.parameters()], [*g2.parameters(), *d2.parameters()]):
        assert torch.equal(a, b)
    assert float(torch.cat([p.detach().flatten() for p in g1.parameters()]).std()) > 0.03  # not N(0, 0.02)
    with pytest.raises(ValueError, match=r"init='xavier' is invalid: allowed values are \('torch', 'normal'\)"):
        init_weights(g1, "xavier")


@pytest.mark.parametrize(("fields", "message"), [
    ({"dataset": "mnist", "d_arch": "maxout"}, r"d_arch='maxout' is invalid: maxout units are for the 2D"),
    ({"update": "simultaneous", "d_steps": 2}, r"update='simultaneous' is invalid: .*set d_steps=1"),
    ({"init": "uniform"}, r"init='uniform' is invalid"),
    ({"update": "together"}, r"update='together' is invalid"),
])
def test_bad_protocol_fields_are_clear_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def _fixed_batch(trainer: Trainer, real: torch.Tensor, z: torch.Tensor) -> None:
    trainer.sampler.next = lambda: (real,)  # type: ignore[method-assign]
    trainer._latent = lambda n: (z, None)  # type: ignore[method-assign]


@pytest.mark.parametrize("d_arch", ["mlp", "maxout"])
def test_a_simultaneous_step_takes_both_gradients_at_the_same_weights(d_arch):
    """One SGD step by hand: D's and G's gradients at (D0, G0) on one batch and one z, then both updates."""
    cfg = TrainConfig(steps=1, batch_size=16, update="simultaneous", d_arch=d_arch, progress=False,
                      optim={"name": "sgd", "lr_g": 0.05, "lr_d": 0.05})
    trainer = Trainer(cfg)
    torch.manual_seed(3)
    real, z = torch.randn(16, 2), torch.randn(16, 2)
    _fixed_batch(trainer, real, z)
    g0, d0 = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)
    trainer.step()

    fake = g0(z)
    logits = d0(torch.cat([real, fake]))
    loss_d = F.softplus(-logits[:16]).mean() + F.softplus(logits[16:]).mean()
    loss_g = F.softplus(-logits[16:]).mean()
    grads_d = torch.autograd.grad(loss_d, list(d0.parameters()), retain_graph=True)
    grads_g = torch.autograd.grad(loss_g, list(g0.parameters()))
    for p, p0, g in zip(trainer.D.parameters(), d0.parameters(), grads_d):
        torch.testing.assert_close(p, p0 - 0.05 * g)
    for p, p0, g in zip(trainer.G.parameters(), g0.parameters(), grads_g):
        torch.testing.assert_close(p, p0 - 0.05 * g)


def test_the_alternating_step_differs_from_the_simultaneous_one():
    runs = {}
    for update in ("alternating", "simultaneous"):
        trainer = Trainer(TrainConfig(steps=1, batch_size=16, update=update, progress=False))
        _fixed_batch(trainer, torch.ones(16, 2), torch.zeros(16, 2))
        trainer.step()
        runs[update] = torch.cat([p.flatten() for p in trainer.G.parameters()])
    assert not torch.equal(runs["alternating"], runs["simultaneous"])


def test_a_simultaneous_run_resumes_exactly(straight_and_resumed):
    cfg = TrainConfig(steps=12, batch_size=32, update="simultaneous", d_arch="maxout", init="normal", progress=False)
    straight, resumed = straight_and_resumed(cfg, stop=5)
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)


def test_the_pacgan_presets_and_grid_are_the_published_protocol():
    opt = optim_preset("pacgan")
    assert (opt.name, opt.lr_g, opt.lr_d, opt.betas) == ("adam", 1e-4, 1e-4, (0.8, 0.999))
    cfg = run_preset("pacgan", dataset="grid25")
    assert (cfg.batch_size, cfg.d_arch, cfg.init, cfg.update, cfg.d_steps, cfg.loss) == (
        100, "maxout", "normal", "simultaneous", 1, "ns")
    assert cfg.resolved_z_dim == 2 and cfg.data_size == 100_000
    grid = load_grid(RESULTS / "pacgan_2d_grid.json")
    assert set(grid) == {"ring8", "grid25"}
    for name, c in grid.items():
        assert c == run_preset("pacgan", dataset=name, steps=400_000)  # 400 epochs x 100,000 points / batch 100
    with pytest.raises(ValueError, match="preset='pacgan' does not apply to dataset='mnist'"):
        run_preset("pacgan", dataset="mnist")
    assert "400,000" in json.loads((RESULTS / "pacgan_2d_grid.json").read_text())["description"]
