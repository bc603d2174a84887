"""PacGAN's packing (gantricks/packing.py): packs in closed form, D's widened first layer, logits per pack repeated,
the config's rules, the loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gantricks import TrainConfig
from gantricks.models import build_models
from gantricks.packing import Packed, pack
from gantricks.spectral import normalised_layers


def test_pack_concatenates_consecutive_samples():
    x = torch.arange(8.0).view(4, 2)
    assert pack(x, 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    img = torch.randn(6, 1, 3, 3)
    p = pack(img, 3)
    assert p.shape == (2, 3, 3, 3) and torch.equal(p[1, 2], img[5, 0])
    with pytest.raises(ValueError, match="a batch of 5 samples does not split into packs of 2"):
        pack(torch.randn(5, 2), 2)


@pytest.mark.parametrize("dataset, model, d_arch, shape, first_in", [
    ("ring8", "mlp2d", "mlp", (2,), 8), ("ring8", "mlp2d", "maxout", (2,), 8),
    ("mnist", "mlp", "mlp", (1, 28, 28), 4 * 784), ("mnist", "dcgan", "mlp", (1, 28, 28), 4)])
def test_d_judges_packs_and_repeats_each_judgement(dataset, model, d_arch, shape, first_in):
    torch.manual_seed(0)
    cfg = TrainConfig(dataset=dataset, model=model, d_arch=d_arch, width=8 if model == "dcgan" else None,
                      init="normal", packing={"m": 4})
    _, d = build_models(cfg, shape)
    assert isinstance(d, Packed)
    first = next(m for m in d.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    assert (first.in_features if isinstance(first, torch.nn.Linear) else first.in_channels) == first_in
    assert first.weight.std().item() == pytest.approx(0.02, rel=0.2)  # initialised as init='normal' says
    x = torch.randn(8, *shape)
    logits = d(x)
    by_pack = d.d(pack(x, 4))
    assert logits.shape == (8,) and torch.equal(logits, by_pack.repeat_interleave(4))
    loss = F.binary_cross_entropy_with_logits(logits, torch.ones(8))
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(by_pack, torch.ones(2)).item(), rel=1e-6)


def test_config_rules():
    assert TrainConfig().packing.m == 1
    with pytest.raises(ValueError, match=r"packing.m=3 is invalid: it must divide batch_size=128"):
        TrainConfig(packing={"m": 3})
    with pytest.raises(ValueError, match=r"packing.m=2 is invalid: packing is for unconditional runs"):
        TrainConfig(dataset="mnist", n_classes=10, packing={"m": 2})
    with pytest.raises(ValueError, match=r"packing.m=2 is invalid: D judges packs"):
        TrainConfig(packing={"m": 2}, penalty={"gp": 1.0})
    with pytest.raises(ValueError, match=r"packing.m=4 is invalid: batch_size / m = 4 packs must split"):
        TrainConfig(batch_size=16, packing={"m": 4}, mbstd={"group": 8})


def test_the_loop_with_packing_minibatch_std_and_spectral_norm_resumes_exactly(straight_and_resumed):
    cfg = TrainConfig(dataset="ring8", d_arch="maxout", steps=6, batch_size=16, data_size=300, sync_every=2,
                      progress=False, device="cpu", packing={"m": 2}, mbstd={"group": 4}, spectral={"d": True})
    straight, resumed = straight_and_resumed(cfg, stop=3)
    assert len(normalised_layers(straight.D)) == 4  # the widened first layer and the last one included
    assert all(torch.equal(a, b) for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()))
    assert [r["loss_d"] for r in straight.history] == [r["loss_d"] for r in resumed.history]


def test_the_flags():
    from gantricks.cli import build_parser
    from gantricks.flags import config_fields

    args = build_parser().parse_args(["train", "--out", "x", "--pack", "4", "--minibatch-std", "8"])
    cfg = TrainConfig(**config_fields(args))
    assert cfg.packing.m == 4 and cfg.mbstd.group == 8
