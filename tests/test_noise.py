"""Trick 1: latent priors have the right support and moments; instance noise anneals and resumes; slerp."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gantricks import TrainConfig, Trainer
from gantricks.noise import (
    EpsilonBlockPrior,
    InstanceNoise,
    NormalPrior,
    RescaledPrior,
    SpherePrior,
    TruncatedNormalPrior,
    UniformPrior,
    slerp,
)

N = 200_000
CPU = torch.device("cpu")


def _draw(prior, n=N, seed=0):
    return prior.sample(n, CPU, torch.Generator().manual_seed(seed))


def test_normal_moments():
    z = _draw(NormalPrior(4))
    # standard errors: mean 1/sqrt(N) = 0.0022, variance sqrt(2/N) = 0.0032; 5 SE tolerances
    assert z.mean(0).abs().max() < 0.011 and (z.var(0) - 1).abs().max() < 0.016


def test_uniform_support_and_moments():
    z = _draw(UniformPrior(3))
    assert z.min() >= -1 and z.max() <= 1
    assert (z.var(0) - 1 / 3).abs().max() < 0.01  # Var U[-1, 1] = 1/3
    assert z.min() < -0.999 and z.max() > 0.999  # fills its support


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
def test_truncation_never_leaves_the_threshold_and_has_the_truncated_variance(threshold):
    z = _draw(TruncatedNormalPrior(8, threshold), n=50_000)
    assert z.abs().max() <= threshold
    a = threshold
    pdf, mass = math.exp(-a * a / 2) / math.sqrt(2 * math.pi), math.erf(a / math.sqrt(2))
    want = 1 - 2 * a * pdf / mass  # variance of N(0, 1) truncated to [-a, a]
    assert z.var().item() == pytest.approx(want, rel=0.02)


def test_rescaled_prior_standardises_every_vector():
    z = _draw(RescaledPrior(16, mean=0.5, std=2.0), n=1000)
    assert torch.allclose(z.mean(1), torch.full((1000,), 0.5), atol=1e-5)
    assert torch.allclose(z.std(1), torch.full((1000,), 2.0), atol=1e-5)


def test_sphere_prior_has_radius_sqrt_dim():
    z = _draw(SpherePrior(64), n=1000)
    assert torch.allclose(z.norm(dim=1), torch.full((1000,), 8.0), atol=1e-3)


def test_epsilon_block_is_small_iid_noise_after_the_base():
    prior = EpsilonBlockPrior(NormalPrior(6), width=4, variance=0.01)
    z = _draw(prior)
    assert prior.dim == 10 and z.shape == (N, 10)
    assert (z[:, :6].var(0) - 1).abs().max() < 0.02
    assert (z[:, 6:].var(0) - 0.01).abs().max() < 0.0004  # SE of the variance: 0.01 * sqrt(2/N) = 3.2e-5
    corr = torch.corrcoef(z.T)[6:, :6]
    assert corr.abs().max() < 0.015  # independent of the base block


@pytest.mark.parametrize("make, field", [
    (lambda: NormalPrior(0), "dim=0"), (lambda: TruncatedNormalPrior(2, 0.0), "threshold=0.0"),
    (lambda: RescaledPrior(4, std=-1), "std=-1"), (lambda: EpsilonBlockPrior(NormalPrior(2), 0), "dim=0"),
    (lambda: InstanceNoise(0.0, 10), "sigma0=0.0"), (lambda: InstanceNoise(0.1, 10, "cosine"), "schedule"),
])
def test_bad_parameters_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize("schedule", ["linear", "exp"])
def test_annealing_starts_at_sigma0_and_ends_at_zero(schedule):
    noise = InstanceNoise(0.3, anneal_steps=100, schedule=schedule)
    sig = [noise.sigma(s) for s in range(0, 120)]
    assert sig[0] == 0.3 and sig[100] == 0.0 and sig[119] == 0.0
    assert all(a >= b for a, b in zip(sig, sig[1:]))  # never increases
    assert noise.sigma(50) == pytest.approx(0.15 if schedule == "linear" else 0.03)


def test_instance_noise_hits_real_and_fake_alike():
    class Spy(InstanceNoise):
        seen: list = []

        def d_input(self, x, step, trainer):
            out = super().d_input(x, step, trainer)
            self.seen.append((out - x).std().item())
            return out

    spy = Spy(0.5, anneal_steps=1000)
    t = Trainer(TrainConfig(dataset="ring8", steps=1, batch_size=256, data_size=1000, progress=False), hooks=[spy])
    t.fit()
    assert len(spy.seen) == 3  # D step: real, fake; G step: fake
    assert all(s == pytest.approx(0.5, rel=0.1) for s in spy.seen)
    assert t.history[0]["instance_noise_sigma"] == 0.5


def test_resume_restores_the_noise_stream(tmp_path):
    cfg = TrainConfig(dataset="ring8", steps=8, batch_size=32, data_size=500, progress=False)
    straight = Trainer(cfg, hooks=[InstanceNoise(0.2, 6)])
    straight.fit()
    first = Trainer(cfg, hooks=[InstanceNoise(0.2, 6)])
    first.fit(steps=3, out_dir=tmp_path)
    resumed = Trainer.from_checkpoint(tmp_path, hooks=[InstanceNoise(0.2, 6)])
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()))
    fresh = Trainer.from_checkpoint(tmp_path, hooks=[InstanceNoise(0.2, 6, seed=1)])
    fresh.hooks[0].load_state_dict({"generator": None})  # a different noise stream changes the run
    fresh.fit()
    assert not all(torch.equal(a, b) for a, b in zip(straight.G.state_dict().values(), fresh.G.state_dict().values()))


def test_slerp_endpoints_norm_and_parallel_fallback():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(5, 32, generator=g), torch.randn(5, 32, generator=g)
    assert torch.allclose(slerp(z0, z1, 0.0), z0, atol=1e-5) and torch.allclose(slerp(z0, z1, 1.0), z1, atol=1e-5)
    u0, u1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    mid = slerp(u0, u1, 0.5)
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-5)  # stays on the unit sphere
    assert torch.allclose(slerp(z0, 2 * z0, 0.5), 1.5 * z0, atol=1e-5)  # parallel: linear
    with pytest.raises(ValueError, match="shape"):
        slerp(z0, z1[:, :3], 0.5)


def test_config_fields_switch_the_tricks_on_and_resume_rebuilds_them(tmp_path):
    from gantricks.cli import main

    cfg = TrainConfig(dataset="ring8", steps=4, batch_size=16, data_size=300, progress=False,
                      noise={"prior": "truncated", "truncation": 0.5, "eps_width": 3, "instance_sigma": 0.1,
                             "instance_anneal_steps": 10})
    t = Trainer(cfg)
    assert isinstance(t.prior, EpsilonBlockPrior) and isinstance(t.prior.base, TruncatedNormalPrior)
    assert t.G.z_dim == 2 + 3 and isinstance(t.hooks[0], InstanceNoise)
    t.fit(out_dir=tmp_path)
    assert t.history[-1]["instance_noise_sigma"] == pytest.approx(0.1 * (1 - 3 / 10))
    resumed = Trainer.from_checkpoint(tmp_path, steps=6)
    assert isinstance(resumed.hooks[0], InstanceNoise) and resumed.cfg.noise.eps_width == 3
    run = tmp_path / "cli"
    assert main(["train", "--out", str(run), "--steps", "2", "--data-size", "300", "--no-progress",
                 "--prior", "uniform", "--instance-noise", "0.2"]) == 0
    assert json.loads((run / "config.json").read_text())["noise"]["instance_sigma"] == 0.2


@pytest.mark.parametrize("noise, field", [({"prior": "cauchy"}, "noise.prior"), ({"eps_width": -1}, "noise.eps_width"),
                                          ({"instance_sigma": -0.1}, "noise.instance_sigma"),
                                          ({"instance_schedule": "cos"}, "noise.instance_schedule")])
def test_noise_config_errors_name_the_field(noise, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        TrainConfig(noise=noise)
