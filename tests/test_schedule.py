"""Learning-rate schedules: the factors, what the optimisers get each step, resume, and the config's checks."""

from __future__ import annotations

import math

import pytest
import torch

from gantricks.config import TrainConfig
from gantricks.schedule import lr_factor
from gantricks.train import Trainer


def test_linear_and_cosine_factors_run_from_one_to_final():
    steps = 11
    lin = [lr_factor("linear", t, steps, final=0.2) for t in range(steps)]
    cos = [lr_factor("cosine", t, steps) for t in range(steps)]
    assert lin[0] == 1.0 and math.isclose(lin[-1], 0.2) and math.isclose(lin[5], 0.6)
    assert cos[0] == 1.0 and math.isclose(cos[5], 0.5) and math.isclose(cos[-1], 0.0, abs_tol=1e-12)
    assert all(a >= b for a, b in zip(cos, cos[1:]))
    assert [lr_factor("constant", t, steps) for t in range(steps)] == [1.0] * steps


def test_warmup_rises_linearly_then_the_schedule_starts():
    f = [lr_factor("linear", t, 15, warmup=4) for t in range(15)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == 1.0 and f[-1] == 0.0 and math.isclose(f[9], 0.5)
    with pytest.raises(ValueError, match="schedule.kind='step' is invalid"):
        lr_factor("step", 0, 10)


@pytest.mark.parametrize("nets", ["both", "g", "d"])
def test_each_step_trains_with_its_factor(nets):
    cfg = TrainConfig(steps=6, batch_size=16, progress=False, sync_every=1,
                      optim={"lr_g": 1e-3, "lr_d": 4e-3}, schedule={"kind": "linear", "final": 0.5, "nets": nets})
    trainer = Trainer(cfg)
    trainer.fit()
    factors = [lr_factor("linear", t, 6, final=0.5) for t in range(6)]
    lr_g = [h["lr_g"] for h in trainer.history]
    lr_d = [h["lr_d"] for h in trainer.history]
    assert lr_g == pytest.approx([1e-3 * f for f in factors] if nets != "d" else [1e-3] * 6)
    assert lr_d == pytest.approx([4e-3 * f for f in factors] if nets != "g" else [4e-3] * 6)


def test_a_scheduled_run_resumes_exactly(tmp_path):
    cfg = TrainConfig(steps=10, batch_size=16, progress=False, schedule={"kind": "cosine", "warmup": 3})
    straight = Trainer(cfg)
    straight.fit()
    Trainer(cfg).fit(steps=4, out_dir=tmp_path)
    resumed = Trainer.from_checkpoint(tmp_path)
    assert resumed.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * lr_factor("cosine", 4, 10, warmup=3))
    resumed.fit()
    assert [h["lr_g"] for h in resumed.history] == [h["lr_g"] for h in straight.history]
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)


def test_a_constant_schedule_adds_no_hook_and_changes_nothing():
    plain = Trainer(TrainConfig(steps=3, batch_size=16, progress=False))
    assert not any(h.key == "schedule" for h in plain.hooks)
    plain.fit()
    assert {h["lr_g"] for h in plain.history} == {2e-4}


@pytest.mark.parametrize(("fields", "message"), [
    ({"schedule": {"kind": "linear", "warmup": 50}, "steps": 50}, r"schedule.warmup=50 is invalid: .*shorter"),
    ({"schedule": {"final": 0.1}}, r"schedule.final=0.1 is invalid: a constant schedule has no final rate"),
    ({"schedule": {"kind": "linear", "final": 1.5}}, r"schedule.final=1.5 is invalid"),
    ({"schedule": {"kind": "linear"}, "regulate": {"fp_control": "source"}},
     r"schedule.kind='linear' is invalid: regulate.fp_control='source' already sets G's learning rate"),
])
def test_bad_schedules_are_clear_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_a_schedule_of_d_only_goes_with_the_false_positive_controller():
    cfg = TrainConfig(schedule={"kind": "linear", "nets": "d"}, regulate={"fp_control": "source"})
    assert cfg.schedule.nets == "d"


def test_the_cli_flags_set_the_schedule():
    from gantricks.cli import build_parser
    from gantricks.flags import config_fields

    args = build_parser().parse_args(["train", "--out", "x", "--lr-schedule", "cosine", "--lr-warmup", "5",
                                      "--lr-final", "0.1"])
    assert config_fields(args)["schedule"] == {"kind": "cosine", "warmup": 5, "final": 0.1}
