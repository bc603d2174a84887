"""Models (shapes, logits, conditioning, the seed's BatchNorm eps) and losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantricks import TrainConfig
from gantricks.losses import discriminator_loss, generator_loss
from gantricks.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLP2DDiscriminator,
    MLP2DGenerator,
    MLPDiscriminator,
    MLPGenerator,
    build_models,
)


@pytest.mark.parametrize("g, d, z_dim, shape", [
    (MLPGenerator(), MLPDiscriminator(), 64, (1, 28, 28)),
    (DCGANGenerator(), DCGANDiscriminator(), 64, (1, 28, 28)),
    (MLP2DGenerator(), MLP2DDiscriminator(), 2, (2,)),
])
def test_shapes_and_logits(g, d, z_dim, shape):
    x = g(torch.randn(5, z_dim))
    assert x.shape == (5, *shape)
    logits = d(x)
    assert logits.shape == (5,)
    assert not isinstance(list(d.modules())[-1], nn.Sigmoid)  # logits, not probabilities


def test_tanh_and_sigmoid_outputs_have_their_ranges():
    z = torch.randn(64, 64) * 10
    assert MLPGenerator(output="tanh")(z).min() < 0
    s = MLPGenerator(output="sigmoid")(z)
    assert s.min() >= 0 and s.max() <= 1


def test_mlp_generator_keeps_the_seeds_batchnorm_eps():
    bns = [m for m in MLPGenerator().modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in bns] == [256, 512, 1024]
    assert all(m.eps == 0.8 for m in bns)


@pytest.mark.parametrize("g, d, z_dim", [
    (MLPGenerator(n_classes=10), MLPDiscriminator(n_classes=10), 64),
    (DCGANGenerator(n_classes=10), DCGANDiscriminator(n_classes=10), 64),
])
def test_conditioning_uses_the_label(g, d, z_dim):
    g.eval()
    z = torch.randn(4, z_dim)
    a, b = g(z, torch.tensor([0, 0, 0, 0])), g(z, torch.tensor([1, 1, 1, 1]))
    assert not torch.allclose(a, b)  # the label changes the output for the same z
    assert d(a, torch.tensor([0, 1, 2, 3])).shape == (4,)
    with pytest.raises(ValueError, match="needs labels"):
        g(z)
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(4,\)"):
        d(a, torch.tensor([0, 1]))


def test_unconditional_model_rejects_labels():
    with pytest.raises(ValueError, match="n_classes=0"):
        MLPGenerator()(torch.randn(2, 64), torch.tensor([0, 1]))


def test_build_models_checks_the_data_shape():
    g, d = build_models(TrainConfig(dataset="mnist", model="dcgan"), (1, 28, 28))
    assert isinstance(g, DCGANGenerator) and isinstance(d, DCGANDiscriminator)
    with pytest.raises(ValueError, match=r"model='mlp'.*\(1, 28, 28\), got \(3, 32, 32\)"):
        build_models(TrainConfig(dataset="mnist"), (3, 32, 32))
    with pytest.raises(ValueError, match="mlp2d"):
        build_models(TrainConfig(dataset="ring8"), (3,))


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_discriminator_loss_matches_hand_computation():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    out = discriminator_loss(real, fake)
    want_real = (_softplus(-2.0) + _softplus(1.0)) / 2  # -log sigmoid(r)
    want_fake = (_softplus(0.5) + _softplus(-3.0)) / 2  # -log(1 - sigmoid(f))
    assert out["loss_d_real"].item() == pytest.approx(want_real, rel=1e-6)
    assert out["loss_d_fake"].item() == pytest.approx(want_fake, rel=1e-6)
    assert out["loss_d"].item() == pytest.approx(want_real + want_fake, rel=1e-6)


def test_one_sided_label_smoothing_only_touches_real_targets():
    real, fake = torch.tensor([1.5]), torch.tensor([0.3])
    out = discriminator_loss(real, fake, label_smoothing=0.1)
    p = 1 / (1 + math.exp(-1.5))
    assert out["loss_d_real"].item() == pytest.approx(-(0.9 * math.log(p) + 0.1 * math.log(1 - p)), rel=1e-6)
    assert out["loss_d_fake"].item() == pytest.approx(_softplus(0.3), rel=1e-6)


def test_generator_losses_match_hand_computation():
    f = torch.tensor([0.7, -2.0])
    assert generator_loss(f, "ns").item() == pytest.approx((_softplus(-0.7) + _softplus(2.0)) / 2, rel=1e-6)
    assert generator_loss(f, "minimax").item() == pytest.approx(-(_softplus(0.7) + _softplus(-2.0)) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="loss='lsgan' is invalid"):  # wgan and hinge are valid since issue 17
        generator_loss(f, "lsgan")


def test_logit_losses_stay_finite_where_sigmoid_bce_saturates():
    logits = torch.tensor([40.0], requires_grad=True)  # sigmoid(40) == 1.0 exactly in float32
    loss = discriminator_loss(torch.tensor([0.0]), logits)["loss_d_fake"]
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(40.0, rel=1e-4)
    assert logits.grad.item() == pytest.approx(1.0, rel=1e-6)  # d softplus(l) / dl = sigmoid(40)
    prob = torch.sigmoid(torch.tensor([40.0]))
    assert prob.item() == 1.0  # the probability form has already lost the information:
    clamped = torch.nn.functional.binary_cross_entropy(prob, torch.zeros(1))
    assert clamped.item() == 100.0  # BCELoss clamps log(0) at -100 instead of the true 40


def test_the_dcgan_width_sets_its_channels_and_is_refused_elsewhere():
    from gantricks.config import TrainConfig
    from gantricks.models import build_models

    g, d = build_models(TrainConfig(dataset="mnist", model="dcgan", width=16), (1, 28, 28))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32]
    assert g(torch.randn(3, 64)).shape == (3, 1, 28, 28) and d(torch.randn(3, 1, 28, 28)).shape == (3,)
    with pytest.raises(ValueError, match=r"width=16 is invalid: it sets the DCGAN's channels; model 'mlp2d'"):
        TrainConfig(width=16)
