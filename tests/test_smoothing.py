"""Label smoothing (gantricks/smoothing.py), the trick added as one module + one registration line + this test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gantricks import TrainConfig, Trainer
from gantricks.hooks import DBatch
from gantricks.smoothing import LabelSmoothing


def test_label_smoothing_as_a_loss_term_equals_bce_with_smoothed_targets():
    torch.manual_seed(0)
    real, fake = torch.randn(64) * 3, torch.randn(64) * 3
    batch = DBatch(torch.zeros(64, 2), None, torch.zeros(64, 2), None, real, fake, None, None)
    terms = LabelSmoothing(real=0.1, fake=0.05).d_loss(batch, None)
    plain = F.binary_cross_entropy_with_logits(real, torch.ones(64)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros(64))
    smoothed = F.binary_cross_entropy_with_logits(real, torch.full((64,), 0.9)) + \
        F.binary_cross_entropy_with_logits(fake, torch.full((64,), 0.05))
    assert torch.allclose(plain + terms.loss, smoothed, atol=1e-6)
    assert set(terms.log) == {"loss_smooth_real", "loss_smooth_fake"}


def test_label_smoothing_in_the_loop_and_from_old_configs():
    t = Trainer(TrainConfig(steps=3, batch_size=16, data_size=200, progress=False, device="cpu",
                            smoothing={"real": 0.1}))
    t.fit()
    assert "loss_smooth_real" in t.history[-1] and "loss_smooth_fake" not in t.history[-1]
    old = {**TrainConfig().to_dict(), "label_smoothing": 0.2}
    del old["smoothing"]  # a config.json written before label smoothing was a section
    assert TrainConfig.from_dict(old).smoothing.real == 0.2
    with pytest.raises(ValueError, match=r"smoothing.real=0.6 is invalid: expected a number in \[0, 0.5\)"):
        TrainConfig(smoothing={"real": 0.6})
