"""A whole training step of the batched seeds as one CUDA graph ("Performance" page, ``book/performance.md``).

A step of PacGAN's small networks launches a few hundred small kernels, and on a GPU the host's time to launch them
is the step's time. A CUDA graph records every kernel of one step (forward, backward, the optimisers' updates,
BatchNorm's running statistics, the logged values) once and replays them with one launch (Nvidia's CUDA graphs; the
PyTorch recipe is "whole-network capture", ``torch.cuda.graph``). What a graph cannot hold stays outside it: each
member's data batch and latent vectors are drawn as the loop draws them (their generators are the members' own)
and copied into the graph's fixed input tensors before each replay; the logged values are copied out after it.

With ``compile="cuda-graph-fused"`` G's and D's calls are also ``torch.compile`` d (inductor fuses their small
elementwise kernels, so the graph holds fewer of them); they compile during the warm-up.

The first :data:`WARMUP` steps run eagerly on a side stream (the optimisers create their state, the allocator warms
up), then the step is captured; a loaded checkpoint (new optimiser state tensors) starts the warm-up again. Adam's
and AdamW's updates run with ``capturable=True``; other optimisers and learning-rate schedules are refused (a
schedule changes the rate that a graph would keep fixed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .batched import BatchedTrainer

__all__ = ["WARMUP", "StepGraph", "check_graphable"]

WARMUP = 3
GRAPH_OPTIMIZERS = ("adam", "adamw", "sgd")


def check_graphable(trainer: BatchedTrainer) -> None:
    """Refuse, in one line naming the field, what a captured step cannot do."""
    cfg = trainer.cfg
    if trainer.device.type != "cuda" and not _EMULATE:
        raise ValueError(f"compile='cuda-graph' is invalid on device {str(trainer.device)!r}: CUDA graphs need CUDA "
                         "(the same for 'cuda-graph-fused')")
    if cfg.optim.name not in GRAPH_OPTIMIZERS:
        raise ValueError(f"optim.name={cfg.optim.name!r} is not supported with compile='cuda-graph' (allowed: "
                         f"{GRAPH_OPTIMIZERS})")
    if cfg.schedule.active:
        raise ValueError(f"schedule.kind={cfg.schedule.kind!r}: a learning-rate schedule cannot run inside a CUDA "
                         "graph (it would keep the first rate); use compile='reduce-overhead' or None")
    for opt in (trainer.opt_g, trainer.opt_d):
        for group in opt.param_groups:
            if "capturable" in group:
                group["capturable"] = True


_EMULATE = False
"""Tests only: run the captured step as a plain function (no CUDA), to check the inputs and outputs around it."""


def _capture(body: Callable[[], Any], device: torch.device) -> tuple[Any, Any, bool]:
    """``(graph, outputs, ran)``: ``body`` captured as a CUDA graph (``ran`` False: nothing executed yet); emulated,
    ``body`` runs once now (``ran`` True) and its graph's replay runs it again and copies into ``outputs``."""
    if _EMULATE:
        out = body()

        class Replay:
            def replay(self) -> None:
                out.copy_(body())

        return Replay(), out, True
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = body()
    return graph, out, False


class StepGraph:
    """The trainer's step as one CUDA graph: warm-up, capture, then per step: inputs in, one replay, metrics out."""

    def __init__(self, trainer: BatchedTrainer) -> None:
        check_graphable(trainer)
        self.t = trainer
        self.reset()

    def reset(self) -> None:
        """Forget the graph (after a checkpoint is loaded): warm up and capture again."""
        self.graph: Any = None
        self.eager_steps = 0
        self.keys: list[str] = []
        self.out: torch.Tensor | None = None
        self.feed: dict[str, Iterator[torch.Tensor]] | None = None

    def _draw_counts(self) -> tuple[int, int]:
        """How many real batches and latent batches one step draws (as the loop draws them)."""
        cfg = self.t.cfg
        return (1, 1) if cfg.update == "simultaneous" else (cfg.d_steps, cfg.d_steps + 1)

    def _body(self) -> torch.Tensor:
        self.feed = {"real": iter(self.reals), "z": iter(self.zs)}
        try:
            metrics = self.t.measure()
        finally:
            self.feed = None
        self.keys = list(metrics)
        return torch.stack([v.float() for v in metrics.values()])

    def _fill(self) -> None:
        for buf in self.reals:
            buf.copy_(self.t.sampler.next())
        for buf in self.zs:
            buf.copy_(self.t.latent(self.t.cfg.batch_size))

    def metrics(self) -> dict[str, torch.Tensor]:
        """One step's ``(K,)`` metrics: eager (warm-up, on a side stream), then from the replayed graph."""
        if self.graph is None and self.eager_steps < WARMUP:
            self.eager_steps += 1
            return self._eager()
        if self.graph is None:
            n_real, n_z = self._draw_counts()
            t, b = self.t, self.t.cfg.batch_size
            self.reals = [t.sampler.data.new_empty((t.k, b, *t.sampler.point_shape)) for _ in range(n_real)]
            self.zs = [torch.empty((t.k, b, t.prior.dim), device=t.device) for _ in range(n_z)]
            self._fill()  # this step's inputs: a CUDA capture runs nothing, the replay below trains on them
            t.opt_d.zero_grad(set_to_none=True)
            t.opt_g.zero_grad(set_to_none=True)
            self.graph, self.out, ran = _capture(self._body, t.device)
            if not ran:
                self.graph.replay()
        else:
            self._fill()
            self.graph.replay()
        assert self.out is not None
        return dict(zip(self.keys, self.out.clone().unbind(0), strict=True))

    def _eager(self) -> dict[str, torch.Tensor]:
        if self.t.device.type != "cuda":
            return self.t.measure()
        stream = torch.cuda.Stream(self.t.device)
        stream.wait_stream(torch.cuda.current_stream(self.t.device))
        with torch.cuda.stream(stream):
            metrics = self.t.measure()
        torch.cuda.current_stream(self.t.device).wait_stream(stream)
        return metrics
