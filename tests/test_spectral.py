"""Spectral normalisation of D (gantricks/spectral.py): each normalised weight's largest singular value is 1, D is
1-Lipschitz where its layers allow, u and v are in D's state_dict and a resumed run is exact."""

from __future__ import annotations

import pytest
import torch

from gantricks import TrainConfig, Trainer
from gantricks.models import build_models
from gantricks.spectral import normalised_layers, spectral_normalise

CASES = [("ring8", "mlp2d", "mlp", (2,)), ("ring8", "mlp2d", "maxout", (2,)), ("mnist", "mlp", "mlp", (1, 28, 28)),
         ("mnist", "dcgan", "mlp", (1, 28, 28))]


def _sigma(layer: torch.nn.Module) -> float:
    w = layer.weight  # the normalised weight W / sigma(W)
    if isinstance(layer, torch.nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1), ord=2).item()


@pytest.mark.parametrize("dataset, model, d_arch, shape", CASES)
def test_every_weight_has_largest_singular_value_one(dataset, model, d_arch, shape):
    torch.manual_seed(0)
    cfg = TrainConfig(dataset=dataset, model=model, d_arch=d_arch, width=8 if model == "dcgan" else None,
                      spectral={"d": True, "power_iterations": 5})
    _, d = build_models(cfg, shape)
    layers = normalised_layers(d)
    n_layers = sum(isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) for m in d.modules())
    assert len(layers) == n_layers >= 3
    x = torch.randn(16, *shape)
    sigmas = []
    for _ in range(40):  # 5 power iterations per forward pass in training mode
        d(x)
        sigmas.append([_sigma(layer) for layer in layers])
    # the power-iteration estimate of sigma(W) is a lower bound, so W / estimate has sigma >= 1, falling to 1
    assert all(s >= 1 - 1e-5 for row in sigmas for s in row)
    assert max(sigmas[0]) > max(sigmas[-1])
    for layer in layers:
        assert _sigma(layer) == pytest.approx(1.0, abs=1e-3)
        assert {"_u", "_v"} <= set(dict(layer.parametrizations.weight[0].named_buffers()))
    assert any(k.endswith("parametrizations.weight.0._u") for k in d.state_dict())


def test_a_normalised_mlp_discriminator_is_one_lipschitz():
    torch.manual_seed(1)
    _, d = build_models(TrainConfig(dataset="ring8", d_arch="maxout", spectral={"d": True, "power_iterations": 5}),
                        (2,))
    for _ in range(50):
        d(torch.randn(64, 2))
    d.eval()
    x = (torch.randn(256, 2) * 3).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x)  # samples are independent: row i is grad of D at x_i
    assert grad.norm(dim=1).max().item() <= 1.0 + 1e-3


def test_eval_mode_runs_no_power_iteration_and_defaults_are_off():
    torch.manual_seed(0)
    _, d = build_models(TrainConfig(spectral={"d": True}), (2,))
    d.eval()
    before = {k: v.clone() for k, v in d.state_dict().items()}
    d(torch.randn(8, 2))
    assert all(torch.equal(before[k], v) for k, v in d.state_dict().items())
    _, plain = build_models(TrainConfig(), (2,))
    assert normalised_layers(plain) == [] and not TrainConfig().spectral.d


def test_power_iterations_and_bad_values():
    cfg = TrainConfig(spectral={"d": True, "power_iterations": 3})
    _, d = build_models(cfg, (2,))
    assert all(m.parametrizations.weight[0].n_power_iterations == 3 for m in normalised_layers(d))
    with pytest.raises(ValueError, match=r"spectral.power_iterations=2 is invalid: it sets spectral normalisation"):
        TrainConfig(spectral={"power_iterations": 2})
    with pytest.raises(ValueError, match=r"spectral.power_iterations=0 is invalid: expected a positive integer"):
        TrainConfig(spectral={"d": True, "power_iterations": 0})
    with pytest.raises(ValueError, match=r"spectral.d=1 is invalid: expected True or False"):
        TrainConfig(spectral={"d": 1})
    with pytest.raises(ValueError, match="has no linear or convolution layer"):
        spectral_normalise(torch.nn.ReLU())


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_training_resumes_exactly(straight_and_resumed, update):
    cfg = TrainConfig(dataset="ring8", d_arch="maxout", steps=8, batch_size=32, data_size=500, sync_every=3,
                      progress=False, device="cpu", loss="hinge", update=update, spectral={"d": True})
    straight, resumed = straight_and_resumed(cfg, stop=5)
    a, b = straight.D.state_dict(), resumed.D.state_dict()
    assert a.keys() == b.keys() and any(k.endswith("_u") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(x, y) for x, y in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()))
    assert [r["loss_d"] for r in straight.history] == [r["loss_d"] for r in resumed.history]
    for layer in normalised_layers(straight.D):
        assert _sigma(layer) == pytest.approx(1.0, abs=0.05)


def test_the_command_line_switches_the_stabilisers_on_and_resumes(tmp_path):
    import json

    from gantricks.cli import main

    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--steps", "4", "--dataset", "ring8", "--batch-size", "32", "--data-size",
            "500", "--no-progress", "--spectral-norm", "--sn-power-iterations", "2", "--loss", "hinge", "--r1", "1",
            "--r1-every", "2", "--gp", "0.5", "--ema", "0.9", "--ema-warmup", "3"]
    assert main(argv) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["spectral"] == {"d": True, "power_iterations": 2} and cfg["loss"] == "hinge"
    assert cfg["penalty"] == {"r1": 1.0, "r1_every": 2, "gp": 0.5}
    assert cfg["ema"] == {"decay": 0.9, "warmup": 3, "bn_batches": 4}
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    resumed = Trainer.from_checkpoint(run)
    assert resumed.step_count == 6 and resumed.hook("ema").updates == 6 and resumed.hook("r1").updates == 6
    assert len(normalised_layers(resumed.D)) == 4
