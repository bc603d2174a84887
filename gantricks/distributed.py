"""Data-parallel training on several GPUs (or CPU processes) with ``DistributedDataParallel`` under ``torchrun``.

The "Performance" page of the book (``book/performance.md``) explains it. ``torchrun --nproc_per_node N -m gantricks
train ...`` starts N processes and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment; a
:class:`~gantricks.train.Trainer` built in such a process calls :func:`setup`, which joins the process group (NCCL
on CUDA, gloo on the CPU) and gives each rank its own GPU (``cuda:LOCAL_RANK``). Then:

* G and D are wrapped in ``DistributedDataParallel`` (Li et al. 2020, "PyTorch Distributed", VLDB), which averages
  their gradients over the ranks during ``backward``; on CUDA their BatchNorm layers become ``SyncBatchNorm``, so
  batch statistics are taken over the global batch (on the CPU, where ``SyncBatchNorm`` does not run, each rank
  normalises with its own batch's statistics and keeps its own running statistics);
* every rank draws its own disjoint slice of each global batch, of data and of latent vectors alike
  (:class:`~gantricks.data.TensorSampler`, :func:`rank_slice`), so the **global batch is the per-rank
  ``batch_size`` times the world size**: 4 GPUs at ``--batch-size 128`` train on 512 images per step;
* the per-step records are averaged over the ranks when they are read back (every ``sync_every`` steps), so the
  history holds global means; only rank 0 writes checkpoints, the history and samples, and every rank resumes from
  rank 0's checkpoint (all ranks share the sampler's and the latent generator's state).

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing here does anything: one process trains as before.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "all_mean", "barrier", "cleanup", "from_env", "mean_over_ranks", "rank_device", "rank_slice",
           "setup", "wrap"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its ``rank``, the ``world_size`` and its ``local_rank`` on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one process that writes files and prints."""
        return self.rank == 0


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is invalid: expected an integer (torchrun sets it)") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} is invalid: expected an integer >= 0")
    return value


def from_env(env: Mapping[str, str] | None = None) -> DistContext:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (as ``torchrun`` sets them); absent means one process."""
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    if world < 1:
        raise ValueError(f"WORLD_SIZE={world} is invalid: expected an integer >= 1")
    rank = _env_int(env, "RANK", 0)
    local = _env_int(env, "LOCAL_RANK", rank)
    if rank >= world:
        raise ValueError(f"RANK={rank} is invalid: expected an integer in [0, WORLD_SIZE={world})")
    return DistContext(rank=rank, world_size=world, local_rank=local)


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA, the CPU for the CPU (several ranks share it)."""
    if not ctx.enabled:
        return device
    if device.type == "cuda":
        if device.index is not None and device.index != ctx.local_rank:
            raise ValueError(f"device={str(device)!r} is invalid with {ctx.world_size} ranks: give 'cuda' or 'auto' "
                             f"and each rank takes cuda:LOCAL_RANK (this rank: cuda:{ctx.local_rank})")
        if ctx.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={ctx.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                             "start at most that many processes per node")
        return torch.device("cuda", ctx.local_rank)
    if device.type != "cpu":
        raise ValueError(f"device={str(device)!r} is invalid for distributed training: use CUDA (NCCL) or the CPU "
                         "(gloo)")
    return device


def setup(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group that ``torchrun`` describes (once per process); return the context and the device."""
    ctx = from_env()
    if not ctx.enabled:
        return ctx, device
    device = rank_device(device, ctx)
    if dist.is_initialized():
        if dist.get_world_size() != ctx.world_size or dist.get_rank() != ctx.rank:
            raise ValueError(f"the process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not match "
                             f"RANK={ctx.rank}, WORLD_SIZE={ctx.world_size}")
        return ctx, device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ctx.rank, world_size=ctx.world_size)
    return ctx, device


def cleanup() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _no_buffer_sync() -> dict[str, bool]:
    """DDP's keyword that stops it broadcasting buffers from rank 0 before every forward (renamed in torch 2.14)."""
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` itself for one process; else ``DistributedDataParallel(model)``, with ``SyncBatchNorm`` on CUDA.

    The BatchNorm layers are converted in place and keep their parameters (optimisers built before stay valid).
    Buffers are not broadcast before every forward: with ``SyncBatchNorm`` they are equal on every rank anyway.
    """
    if not ctx.enabled:
        return model
    if device.type == "cuda":
        for name, child in list(model.named_children()):
            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, **_no_buffer_sync())


def rank_slice(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's rows of a global batch of ``world_size * n`` rows (all of it for one process)."""
    if not ctx.enabled:
        return x
    n = x.shape[0] // ctx.world_size
    return x[ctx.rank * n : (ctx.rank + 1) * n]


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here (nothing for one process)."""
    if ctx.enabled:
        dist.barrier()


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over the processes of an initialised process group (``x`` itself otherwise); every rank
    must call it. Hooks use it so that every rank takes the same decision (chapter 4's controllers)."""
    if not (dist.is_available() and dist.is_initialized()):
        return x
    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)  # gloo has no ReduceOp.AVG
    return x.div_(dist.get_world_size())


def all_mean(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of ``x`` over the ranks of ``ctx`` (``x`` itself for one process); every rank must call it."""
    return mean_over_ranks(x) if ctx.enabled else x
