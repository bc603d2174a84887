"""The moving average of G's weights (gantricks/ema.py): its update rule in closed form, its warm-up, recomputed
BatchNorm statistics, that training is untouched, and exact resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gantricks import TrainConfig, Trainer
from gantricks.ema import EMAGenerator, ema_decay, recompute_batchnorm


def _cfg(**kw):
    return TrainConfig(**{**dict(dataset="ring8", steps=6, batch_size=16, data_size=300, sync_every=2,
                                 progress=False, device="cpu"), **kw})


def _hook(g: nn.Module, decay: float, warmup: int = 0) -> EMAGenerator:
    hook = EMAGenerator(decay, warmup)
    hook.setup(SimpleNamespace(G=g))
    return hook


def test_the_average_of_constant_weights_is_those_weights():
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    hook = _hook(g, 0.9, warmup=5)
    for _ in range(20):
        hook.update(g)
    assert all(torch.equal(a, b) for a, b in zip(hook.model.parameters(), g.parameters()))


def test_one_update_is_d_old_plus_one_minus_d_new():
    torch.manual_seed(0)
    g = nn.Linear(3, 2)
    hook = _hook(g, 0.75)
    old = [p.detach().clone() for p in g.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p))
    assert hook.update(g) == 0.75
    for e, o, n in zip(hook.model.parameters(), old, g.parameters()):
        assert torch.allclose(e, 0.75 * o + 0.25 * n, atol=1e-7)


def test_warm_up_starts_at_g_and_ramps_the_decay():
    torch.manual_seed(0)
    g = nn.Linear(3, 2)
    hook = _hook(g, 0.99, warmup=10)
    with torch.no_grad():
        g.weight.add_(1.0)
    assert hook.update(g) == 0.0  # the first update copies G: the initialisation is forgotten
    assert torch.equal(hook.model.weight, g.weight)
    decays = [ema_decay(0.99, t, 10) for t in range(2000)]
    assert decays[:3] == [0.0, 1 / 11, 2 / 12] and decays[-1] == 0.99
    assert all(a <= b for a, b in zip(decays, decays[1:]))
    assert ema_decay(0.5, 0, 0) == 0.5


def test_batchnorm_statistics_are_recomputed_from_the_average():
    t = Trainer(_cfg(ema={"decay": 0.9, "bn_batches": 1}))
    t.fit()
    g = t.sampling_G
    hook = t.hook("ema")
    assert g is hook.model and g is not t.G and not hook.stale
    z, _ = t._sampling_latent(16, torch.Generator().manual_seed(t.cfg.seed + 8))
    bn = g.net[1]
    h = g.net[0](z)
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, h.var(0), rtol=1e-5)  # unbiased, as BatchNorm keeps it
    assert not torch.allclose(bn.running_mean, t.G.net[1].running_mean)  # not G's statistics
    assert bn.momentum == t.G.net[1].momentum and not g.training
    before = t.sample(50)
    assert torch.equal(before, t.sample(50))  # sampling again does not recompute or move anything


def test_training_is_untouched_and_sampling_uses_the_average():
    plain, averaged = Trainer(_cfg()), Trainer(_cfg(ema={"decay": 0.5}))
    plain.fit()
    averaged.fit(snapshot_every=2)  # sampling in the middle of training must not change training
    assert all(torch.equal(a, b) for a, b in zip(plain.G.state_dict().values(), averaged.G.state_dict().values()))
    assert [r["loss_d"] for r in plain.history] == [r["loss_d"] for r in averaged.history]
    assert [r["ema_decay"] for r in averaged.history] == [ema_decay(0.5, t, 10) for t in range(6)]
    assert not torch.equal(plain.sample(20), averaged.sample(20))


def test_recompute_batchnorm_without_batchnorm_is_a_no_op():
    m = nn.Linear(2, 2)
    recompute_batchnorm(m, [(torch.randn(4, 2), None)])
    assert m.training


def test_resume_is_exact(tmp_path):
    cfg = _cfg(steps=8, ema={"decay": 0.8, "warmup": 2})
    straight = Trainer(cfg)
    straight.fit()
    first = Trainer(cfg)
    first.fit(steps=5, out_dir=tmp_path)  # the checkpoint is written before samples.png: statistics stale
    resumed = Trainer.from_checkpoint(tmp_path)
    assert resumed.hook("ema").updates == 5
    resumed.fit()
    a, b = straight.hook("ema").model.state_dict(), resumed.hook("ema").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(straight.sample(100), resumed.sample(100))


def test_config():
    assert TrainConfig().ema.decay == 0.0 and TrainConfig().build_hooks() == []
    with pytest.raises(ValueError, match=r"ema.decay=1.0 is invalid: expected a number in \[0, 1\)"):
        TrainConfig(ema={"decay": 1.0})
    with pytest.raises(ValueError, match=r"ema.warmup=3 is invalid: it sets the average of G's weights"):
        TrainConfig(ema={"warmup": 3})
    assert [h.key for h in TrainConfig(ema={"decay": 0.99}).build_hooks()] == ["ema"]


def test_a_conditional_generator_recomputes_its_statistics_with_labels():
    data = (torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10)
    t = Trainer(TrainConfig(dataset="mnist", model="dcgan", width=8, n_classes=10, steps=2, batch_size=16,
                            progress=False, device="cpu", ema={"decay": 0.9}), data=data)
    t.fit()
    samples = t.sample(20)
    assert samples.shape == (20, 1, 28, 28) and torch.isfinite(samples).all()
    assert not t.hook("ema").stale and t.sampling_G is t.hook("ema").model
