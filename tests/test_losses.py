"""Hinge and Wasserstein losses (gantricks/losses.py) against hand computation, and the config's choice of them."""

from __future__ import annotations

import pytest
import torch

from gantricks import TrainConfig, Trainer
from gantricks.losses import discriminator_loss, generator_loss

REAL = torch.tensor([2.0, 0.5, -1.0, 1.0])
FAKE = torch.tensor([-2.0, -0.5, 1.0, 0.0])


def test_hinge_by_hand():
    # real: relu(1 - [2, .5, -1, 1]) = [0, .5, 2, 0] -> 0.625
    # fake: relu(1 + [-2, -.5, 1, 0]) = [0, .5, 2, 1] -> 0.875
    t = discriminator_loss(REAL, FAKE, kind="hinge")
    assert t["loss_d_real"].item() == pytest.approx(0.625)
    assert t["loss_d_fake"].item() == pytest.approx(0.875)
    assert t["loss_d"].item() == pytest.approx(1.5)
    assert generator_loss(FAKE, "hinge").item() == pytest.approx(0.375)  # -mean([-2, -.5, 1, 0])


def test_wasserstein_by_hand():
    t = discriminator_loss(REAL, FAKE, kind="wgan")
    assert t["loss_d_real"].item() == pytest.approx(-0.625)  # -mean(real)
    assert t["loss_d_fake"].item() == pytest.approx(-0.375)  # mean(fake)
    assert t["loss_d"].item() == pytest.approx(-1.0)
    assert generator_loss(FAKE, "wgan").item() == pytest.approx(0.375)


def test_hinge_gradients_vanish_beyond_the_margin():
    real = torch.tensor([2.0, 0.0], requires_grad=True)
    fake = torch.tensor([-3.0, 0.0], requires_grad=True)
    discriminator_loss(real, fake, kind="hinge")["loss_d"].backward()
    assert real.grad.tolist() == [0.0, -0.5] and fake.grad.tolist() == [0.0, 0.5]


def test_cross_entropy_kinds_unchanged_and_bad_kinds_refused():
    a = discriminator_loss(REAL, FAKE, 0.1)
    b = discriminator_loss(REAL, FAKE, 0.1, kind="minimax")
    assert torch.equal(a["loss_d"], b["loss_d"])
    with pytest.raises(ValueError, match=r"loss='lsgan' is invalid: allowed values are"):
        discriminator_loss(REAL, FAKE, kind="lsgan")
    with pytest.raises(ValueError, match=r"loss='lsgan' is invalid"):
        generator_loss(FAKE, "lsgan")
    with pytest.raises(ValueError, match=r"label_smoothing=0.1 is invalid with loss='hinge'"):
        discriminator_loss(REAL, FAKE, 0.1, kind="hinge")


@pytest.mark.parametrize("loss", ["hinge", "wgan"])
def test_the_loop_trains_with_the_loss(loss):
    lipschitz = {"spectral": {"d": True}} if loss == "wgan" else {}  # an unconstrained critic is refused
    t = Trainer(TrainConfig(steps=3, batch_size=16, data_size=200, progress=False, device="cpu", loss=loss,
                            **lipschitz))
    t.fit()
    real, fake = t.d_logits
    row = t.history[-1]
    expected = discriminator_loss(real, fake, kind=loss)  # the last D update's logits, before its step
    assert row["loss_d"] == pytest.approx(expected["loss_d"].item(), rel=1e-5)


def test_config_refuses_smoothing_with_a_margin_loss():
    assert TrainConfig(loss="hinge").loss == "hinge"
    with pytest.raises(ValueError, match=r"smoothing.real=0.1 is invalid: smoothing changes cross-entropy targets"):
        TrainConfig(loss="wgan", smoothing={"real": 0.1})
    with pytest.raises(ValueError, match=r"loss='ls' is invalid: allowed values are \('ns', 'minimax', 'hinge', "):
        TrainConfig(loss="ls")


def test_config_refuses_an_unconstrained_wasserstein_critic():
    with pytest.raises(ValueError, match=r"loss='wgan' is invalid: the Wasserstein critic's loss is unbounded unless "
                       r"D is kept Lipschitz: add penalty.gp \(--gp 10"):
        TrainConfig(loss="wgan")
    assert TrainConfig(loss="wgan", penalty={"gp": 10.0}).loss == "wgan"
    assert TrainConfig(loss="wgan", spectral={"d": True}).loss == "wgan"


def test_rejection_sampling_refuses_a_margin_loss():
    from gantricks.drs import DiscriminatorRejectionSampler

    t = Trainer(TrainConfig(steps=1, batch_size=16, data_size=200, progress=False, device="cpu", loss="hinge"))
    with pytest.raises(ValueError, match=r"loss='hinge' is invalid for rejection sampling"):
        DiscriminatorRejectionSampler.from_trainer(t)


@pytest.mark.parametrize("section, field, value", [("packing", "m", 2), ("mbstd", "group", 4)])
def test_rejection_sampling_refuses_a_d_that_scores_samples_together(section, field, value):
    from gantricks.drs import DiscriminatorRejectionSampler

    t = Trainer(TrainConfig(steps=1, batch_size=16, data_size=200, progress=False, device="cpu",
                            **{section: {field: value}}))
    with pytest.raises(ValueError, match=rf"{section}.{field}={value} is invalid for rejection sampling: D then "
                       "scores a sample together with others"):
        DiscriminatorRejectionSampler.from_trainer(t)


# wgan needs a penalty or spectral norm, which the batched engine does not run, so it batches hinge only
@pytest.mark.parametrize("loss, update", [("hinge", "alternating"), ("hinge", "simultaneous")])
def test_batched_seeds_train_with_the_loss_as_separate_runs(loss, update):
    from test_batched import _compare, small

    # SGD with momentum: Adam turns the rounding noise of G's pre-BatchNorm biases (zero gradient in exact
    # arithmetic) into steps, which the batched tests allow for with Adam only loosely (test_batched.py)
    batched = _compare(small(loss=loss, update=update, optim={"preset": "momentum"}), seeds=[3, 5])
    assert batched.histories[0][0]["loss_d"] != pytest.approx(1.386, abs=0.05)  # not D's cross-entropy (~2 log 2)
