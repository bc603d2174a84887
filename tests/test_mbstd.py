"""Minibatch standard deviation (gantricks/mbstd.py): the statistic in closed form, D unchanged at initialisation,
groups that never mix reals and fakes, the config's rules, the loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantricks import TrainConfig, Trainer
from gantricks.mbstd import MinibatchStdDev, add_minibatch_std, group_std
from gantricks.models import build_models


def test_group_std_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0], [5.0, 5.0]])
    # rows 0, 1: feature stds sqrt(1 + 1e-8) and sqrt(0 + 1e-8) -> mean (1 + 1e-4) / 2; rows 2, 3: identical -> 1e-4
    assert group_std(x, 2).tolist() == pytest.approx([0.50005, 0.50005, 1e-4, 1e-4], abs=1e-7)
    x = torch.randn(12, 5)
    expected = x.view(3, 4, 5).std(dim=1, unbiased=False).mean(dim=1).repeat_interleave(4)
    assert torch.allclose(group_std(x, 4), expected, atol=1e-6)
    assert MinibatchStdDev(4)(x).shape == (12, 6)
    assert torch.equal(group_std(x[:3], 4), group_std(x[:3], 3))  # a small batch is one group
    with pytest.raises(ValueError, match="a batch of 10 samples does not split into groups of 4"):
        group_std(torch.randn(10, 5), 4)


@pytest.mark.parametrize("dataset, model, shape", [("ring8", "mlp2d", (2,)), ("mnist", "mlp", (1, 28, 28)),
                                                   ("mnist", "dcgan", (1, 28, 28))])
def test_d_at_initialisation_is_unchanged_and_the_new_weight_learns(dataset, model, shape):
    kw = dict(dataset=dataset, model=model, width=8 if model == "dcgan" else None)
    torch.manual_seed(0)
    _, plain = build_models(TrainConfig(**kw), shape)
    torch.manual_seed(0)
    _, d = build_models(TrainConfig(**kw, mbstd={"group": 4}), shape)
    x = torch.randn(8, *shape)
    assert torch.allclose(d(x), plain(x), atol=1e-6)
    d(x).sum().backward()
    assert d.net[-1][1].weight.grad[0, -1] != 0


def test_groups_never_mix_reals_and_fakes():
    torch.manual_seed(0)
    _, d = build_models(TrainConfig(mbstd={"group": 4}), (2,))
    with torch.no_grad():
        d.net[-1][1].weight[0, -1] = 5.0  # make the statistic matter
    real, fake = torch.randn(8, 2), torch.zeros(8, 2)
    joint = d(torch.cat([real, fake]))
    assert torch.allclose(joint, torch.cat([d(real), d(fake)]), atol=1e-6)


def test_config_rules():
    assert TrainConfig().mbstd.group == 0
    with pytest.raises(ValueError, match=r"mbstd.group=1 is invalid: a group of 1 has no spread"):
        TrainConfig(mbstd={"group": 1})
    with pytest.raises(ValueError, match=r"mbstd.group=3 is invalid: it must divide batch_size=128"):
        TrainConfig(mbstd={"group": 3})


def test_r1_with_minibatch_std_is_the_gradient_of_the_summed_logits():
    """With the layer on, R1 penalises grad_x of the batch's summed logits (as StyleGAN2 does): it is not the
    sample-by-sample gradient, since each sample moves its group's spread, and the combination trains."""
    from gantricks.penalty import r1_penalty

    class D(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    torch.manual_seed(0)
    d = add_minibatch_std(D(), 4)
    wider = d.net[-1][1]
    with torch.no_grad():
        wider.weight[:, -1] = 1.0  # the spread's weight starts at 0; give it a say
    x = torch.randn(8, 2)
    xs = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(xs).sum(), xs)
    assert torch.allclose(r1_penalty(d, x), grad.square().sum(1).mean(), atol=1e-6)
    # the gradient with each group's spread held fixed differs: the coupling is there and is penalised
    body = d.net[:-1]
    spread = group_std(body(x).detach(), 4)
    xs = x.clone().requires_grad_(True)
    (fixed,) = torch.autograd.grad(wider(torch.cat([body(xs), spread[:, None]], 1)).sum(), xs)
    assert not torch.allclose(grad, fixed, atol=1e-4)
    cfg = TrainConfig(dataset="ring8", steps=4, batch_size=16, data_size=300, progress=False, device="cpu",
                      mbstd={"group": 4}, penalty={"r1": 1.0})
    trainer = Trainer(cfg)
    trainer.fit()
    assert all(math.isfinite(row["loss_r1"]) for row in trainer.history)
    assert any(row["loss_r1"] > 0 for row in trainer.history)


def test_the_loop_trains_and_resumes_exactly(straight_and_resumed):
    cfg = TrainConfig(dataset="ring8", steps=6, batch_size=16, data_size=300, sync_every=2, progress=False,
                      device="cpu", mbstd={"group": 4}, spectral={"d": True})
    straight, resumed = straight_and_resumed(cfg, stop=3)
    assert all(torch.equal(a, b) for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()))
    assert straight.D.net[-1][1].weight[0, -1] != 0  # the statistic's weight trained
