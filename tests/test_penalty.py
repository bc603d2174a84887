"""Gradient penalties (gantricks/penalty.py) against D's whose input gradient is known in closed form: a linear D
(grad = w everywhere) and a quadratic one (grad = a * x); lazy R1; the penalties in the loop and on resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gantricks import TrainConfig, Trainer
from gantricks.hooks import DBatch
from gantricks.models import build_models
from gantricks.penalty import GradientPenalty, R1Penalty, r1_penalty, wgan_gp_penalty


class LinearD(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(w.clone()), nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b


class QuadraticD(nn.Module):
    """D(x) = 1/2 sum_j a_j x_j^2, so grad_x D = a * x."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * (self.a * x.square()).sum(1)


W = torch.tensor([3.0, -4.0])  # ||w|| = 5


def _trainer(d: nn.Module) -> SimpleNamespace:
    return SimpleNamespace(D=d, code=SimpleNamespace(d_labels=lambda y: y))


def _batch(real: torch.Tensor, fake: torch.Tensor) -> DBatch:
    z = torch.zeros(real.shape[0])
    return DBatch(real, None, fake, None, z, z, None, None)


def test_r1_of_a_linear_d_is_half_gamma_times_the_squared_weight_norm():
    d = LinearD(W)
    real = torch.randn(32, 2)
    assert r1_penalty(d, real).item() == pytest.approx(25.0)
    terms = R1Penalty(gamma=0.2).d_loss(_batch(real, real), _trainer(d))
    assert terms.loss.item() == pytest.approx(0.1 * 25.0)  # gamma / 2 * ||w||^2
    terms.loss.backward()  # d/dw gamma/2 ||w||^2 = gamma w: the penalty's gradient reaches D's weights
    assert torch.allclose(d.w.grad, 0.2 * W) and d.b.grad is None  # the bias does not move the gradient


def test_r1_of_a_quadratic_d_and_its_gradient():
    a = torch.tensor([1.0, -2.0, 0.5])
    d, x = QuadraticD(a), torch.randn(16, 3)
    p = r1_penalty(d, x)
    assert p.item() == pytest.approx((a * x).square().sum(1).mean().item(), rel=1e-6)
    p.backward()  # d/da_j mean_i sum_j a_j^2 x_ij^2 = 2 a_j mean_i x_ij^2
    assert torch.allclose(d.a.grad, 2 * a * x.square().mean(0), rtol=1e-5)


def test_lazy_r1_applies_on_every_kth_update_with_weight_k():
    d, real = LinearD(W), torch.randn(8, 2)
    hook = R1Penalty(gamma=1.0, every=4)
    losses = [hook.d_loss(_batch(real, real), _trainer(d)) for _ in range(9)]
    applied = [t.loss is not None for t in losses]
    assert applied == [True, False, False, False, True, False, False, False, True]
    assert losses[4].loss.item() == pytest.approx(4 * 0.5 * 25.0)
    assert [t.log["loss_r1"].item() for t in losses[1:4]] == [0.0, 0.0, 0.0]
    assert hook.state_dict() == {"updates": 9}


def test_wgan_gp_of_a_linear_d():
    d = LinearD(W)
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    eps = torch.rand(32)
    p = wgan_gp_penalty(d, real, fake, eps)
    assert p.item() == pytest.approx(16.0)  # (||w|| - 1)^2 at every interpolate
    p.backward()  # 2 (||w|| - 1) w / ||w||
    assert torch.allclose(d.w.grad, 2 * 4 * W / 5)
    hook = GradientPenalty(lam=10.0, seed=3)
    assert hook.d_loss(_batch(real, fake), _trainer(d)).loss.item() == pytest.approx(160.0)


def test_wgan_gp_of_a_quadratic_d_at_the_interpolates():
    a = torch.tensor([2.0, 0.5])
    d, real, fake, eps = QuadraticD(a), torch.randn(10, 2), torch.randn(10, 2), torch.rand(10)
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    expected = ((a * x_hat).norm(dim=1) - 1).square().mean()
    assert wgan_gp_penalty(d, real, fake, eps).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gp_interpolation_weights_come_from_its_own_seeded_generator():
    d, real, fake = QuadraticD(torch.tensor([2.0, 0.5])), torch.randn(10, 2), torch.randn(10, 2)
    a, b = GradientPenalty(1.0, seed=7), GradientPenalty(1.0, seed=7)
    first = [a.d_loss(_batch(real, fake), _trainer(d)).loss.item() for _ in range(2)]
    assert first[0] != first[1]
    b.load_state_dict(a.state_dict())
    batch = _batch(real, fake)
    assert b.d_loss(batch, _trainer(d)).loss.item() == a.d_loss(batch, _trainer(d)).loss.item()


def test_the_penalty_pass_does_not_iterate_spectral_normalisation():
    torch.manual_seed(0)
    t = Trainer(TrainConfig(steps=1, batch_size=16, data_size=200, progress=False, device="cpu",
                            spectral={"d": True}))
    before = {k: v.clone() for k, v in t.D.state_dict().items()}
    r1_penalty(t.D, torch.randn(16, 2))
    assert t.D.training and all(torch.equal(before[k], v) for k, v in t.D.state_dict().items())


@pytest.mark.parametrize("penalty, loss", [({"r1": 1.0, "r1_every": 3}, "ns"), ({"gp": 10.0}, "wgan"),
                                           ({"r1": 0.5, "gp": 1.0}, "hinge")])
def test_penalties_in_the_loop_resume_exactly(straight_and_resumed, penalty, loss):
    cfg = TrainConfig(dataset="ring8", steps=7, batch_size=16, data_size=300, sync_every=2, progress=False,
                      device="cpu", loss=loss, penalty=penalty)
    straight, resumed = straight_and_resumed(cfg, stop=4)  # mid-interval of the lazy R1
    names = [n for n in ("loss_r1", "loss_gp") if n.split("_")[1] in penalty]
    for n in names:
        assert [r[n] for r in straight.history] == [r[n] for r in resumed.history]
        assert any(r[n] > 0 for r in straight.history)
    if "r1_every" in penalty:
        assert [r["loss_r1"] > 0 for r in straight.history] == [True, False, False, True, False, False, True]
    assert all(torch.equal(a, b) for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()))


def test_config_checks():
    assert TrainConfig().build_hooks() == []
    with pytest.raises(ValueError, match=r"penalty.r1_every=4 is invalid: it makes R1 lazy"):
        TrainConfig(penalty={"r1_every": 4})
    with pytest.raises(ValueError, match=r"penalty.gp=-1 is invalid: expected a finite number >= 0"):
        TrainConfig(penalty={"gp": -1})
    with pytest.raises(ValueError, match=r"penalty.r1=1.0 is invalid: model 'dcgan' has BatchNorm in D"):
        TrainConfig(dataset="mnist", model="dcgan", penalty={"r1": 1.0})
    kinds = [type(h).__name__ for h in TrainConfig(penalty={"r1": 1.0, "gp": 2.0}).build_hooks()]
    assert kinds == ["R1Penalty", "GradientPenalty"]


def test_penalties_with_a_conditional_d_get_its_labels():
    torch.manual_seed(0)
    data = (torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10)
    cfg = TrainConfig(dataset="mnist", model="mlp", n_classes=10, steps=2, batch_size=16, progress=False,
                      device="cpu", penalty={"r1": 1.0, "gp": 1.0})
    t = Trainer(cfg, data=data)
    t.fit()
    assert t.history[-1]["loss_r1"] > 0 and t.history[-1]["loss_gp"] > 0


def test_a_dcgan_d_without_batchnorm_takes_r1_sample_by_sample():
    cfg = TrainConfig(dataset="mnist", model="dcgan", width=8, d_norm="none", penalty={"r1": 1.0})
    _, d = build_models(cfg, (1, 28, 28))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert d.net[2].bias is not None  # the second convolution gets back the bias BatchNorm made redundant
    torch.manual_seed(0)
    real = torch.rand(6, 1, 28, 28) * 2 - 1
    one_by_one = torch.stack([r1_penalty(d, real[i:i + 1]) for i in range(6)]).mean()
    assert r1_penalty(d, real).item() == pytest.approx(one_by_one.item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"d_norm='none' is invalid: only the DCGAN's discriminator has BatchNorm"):
        TrainConfig(dataset="ring8", d_norm="none")
