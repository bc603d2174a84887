"""Seeds as one batched model ("Performance" page, ``book/performance.md``, section "Many seeds as one model").

The book's studies are many small runs: 5-10 seeds of one config. :class:`BatchedTrainer` trains K runs of one
:class:`~gantricks.config.TrainConfig` that differ only in their seed as one vectorised model: every parameter,
BatchNorm buffer and optimiser state gets a leading member axis of size K (``torch.func.stack_module_state``), G and
D run once per step on ``(K, N, ...)`` batches through ``torch.func.vmap`` of ``torch.func.functional_call``, and one
``torch.optim`` optimiser updates all members at once. That equals K separate optimisers because every optimiser of
:class:`~gantricks.optim.OptimConfig` (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW) acts element by element.

Each member keeps what makes its run its own: its initial weights (``torch.manual_seed(seed)``, then
:func:`~gantricks.models.build_models`, as :class:`~gantricks.train.Trainer` does), its data (the 2D mixture drawn
with its seed), its sampler's permutations (:class:`BatchedSampler`, one generator per member, as
:class:`~gantricks.data.TensorSampler`), its latent generator (seeded ``seed + 1``, drawn in the order and shapes
of ``Trainer.step``), its BatchNorm running statistics, its optimiser state and its history. The losses are each
member's mean over its own batch (the same :mod:`gantricks.losses` functions, vmapped), summed over the members, so
every member's gradients are its own run's. So member k equals ``Trainer(cfg.replace(seed=seeds[k]))`` to
floating-point rounding, including after a resume (``tests/test_batched.py``), and :meth:`BatchedTrainer.member`
hands it out as a plain ``Trainer`` for evaluation, sampling and checkpoints.

On a GPU a small network's step is bound by kernel launches, not arithmetic: K members cost about the launches of
one. :func:`batchable` says why a config cannot be batched (``None``: it can); :func:`run_batched` returns the rows
that :func:`gantricks.experiments.run_grid` would, for one config and many seeds.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .batched_graph import StepGraph
from .checkpoint import atomic_save, load_checkpoint, rng_state
from .config import TrainConfig, resolve_device
from .curves import columns, time_to_quality
from .losses import discriminator_loss, generator_loss
from .models import build_models
from .optim import build_optimizer
from .train import CHECKPOINT_FORMAT, NonFiniteLossError, Trainer, _finite, _has_batchnorm, load_data

__all__ = ["BATCHED_CHECKPOINT_NAME", "BatchedSampler", "BatchedTrainer", "batchable", "run_batched"]

BATCHED_CHECKPOINT_NAME = "batched_checkpoint.pt"
BATCHED_FORMAT = 1
ALLOWED_SECTIONS = ("optim", "schedule")
TORCH_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
GRAPH_MODES = ("cuda-graph", "cuda-graph-fused")
COMPILE_MODES = (None, *TORCH_COMPILE_MODES, *GRAPH_MODES)


def batchable(cfg: TrainConfig) -> str | None:
    """Why ``cfg``'s seeds cannot train as one :class:`BatchedTrainer` (one line naming the field), or ``None``."""
    refusals = {"n_classes": cfg.n_classes != 0, "amp": cfg.amp is not None, "compile": cfg.compile}
    for name, on in refusals.items():
        if on:
            return f"{name}={getattr(cfg, name)!r}: batching seeds does not support it yet (only its default)"
    for name, cls in cfg.section_types().items():
        if name in ALLOWED_SECTIONS:
            continue
        mine, default = getattr(cfg, name).to_dict(), cls().to_dict()
        changed = [k for k in mine if mine[k] != default[k]]
        if changed:
            return (f"{name}.{changed[0]}={mine[changed[0]]!r}: batching seeds does not support the {name} section "
                    "yet (leave it at its defaults)")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return f"WORLD_SIZE={os.environ['WORLD_SIZE']}: batching seeds does not support torchrun (distributed) yet"
    return None


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={seeds!r} is invalid: expected a non-empty list of non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r} is invalid: every seed must be distinct")
    return seeds


class BatchedSampler:
    """K :class:`~gantricks.data.TensorSampler` s in one: member k draws the batches that a ``TensorSampler`` seeded
    ``seeds[k]`` draws (a fresh ``randperm`` of its own generator per epoch), gathered in one indexing operation.

    ``data`` is ``(K, n, ...)`` (each member's own data) or, with ``shared``, ``(n, ...)`` (one dataset, e.g. MNIST).
    """

    def __init__(self, data: torch.Tensor, batch_size: int, seeds: Sequence[int], device: torch.device,
                 shared: bool = False) -> None:
        self.k, self.shared, self.device = len(seeds), shared, device
        self.n = data.shape[0] if shared else data.shape[1]
        self.point_shape = tuple(data.shape[1:] if shared else data.shape[2:])
        if batch_size > self.n:
            raise ValueError(f"BatchedSampler: batch_size={batch_size} is larger than the dataset ({self.n} rows)")
        self.data, self.batch_size = data.to(device), batch_size
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self._rows = torch.arange(self.k, device=device).unsqueeze(1)
        self._perm = torch.empty(self.k, 0, dtype=torch.long, device=device)
        self._pos = 0

    def next(self) -> torch.Tensor:
        """The next batches, ``(K, batch_size, ...)``."""
        if self._pos + self.batch_size > self._perm.shape[1]:
            self._perm = torch.stack([torch.randperm(self.n, generator=g) for g in self.generators]).to(self.device)
            self._pos = 0
        idx = self._perm[:, self._pos: self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.data[idx] if self.shared else self.data[self._rows, idx]

    def member_state(self, k: int) -> dict[str, Any]:
        """Member ``k``'s state in :meth:`TensorSampler.state_dict`'s format."""
        return {"generator": self.generators[k].get_state(), "perm": self._perm[k].cpu().clone(), "pos": self._pos}

    def state_dict(self) -> dict[str, Any]:
        return {"generators": [g.get_state() for g in self.generators], "perm": self._perm.cpu(), "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for g, s in zip(self.generators, state["generators"], strict=True):
            g.set_state(s)
        self._perm = state["perm"].to(self.device)
        self._pos = int(state["pos"])


class _Stacked:
    """One network's K members: stacked parameters and buffers, a weightless template, and its vmapped call."""

    def __init__(self, members: Sequence[nn.Module], compile_mode: str | None) -> None:
        self.params, self.buffers = stack_module_state(list(members))
        self.template = copy.deepcopy(members[0]).to("meta")
        self.has_batchnorm = _has_batchnorm(members[0])

        def call(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
            return functional_call(self.template, (params, buffers), (x,))

        fn = vmap(call)
        self.fn = torch.compile(fn, mode=compile_mode) if compile_mode else fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.params, self.buffers, x)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def requires_grad_(self, on: bool) -> None:
        for p in self.params.values():
            p.requires_grad_(on)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s ``state_dict`` (the module's own keys)."""
        return {name: t[k].detach().clone() for name, t in (*self.params.items(), *self.buffers.items())}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().clone() for name, t in (*self.params.items(), *self.buffers.items())}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, t in (*self.params.items(), *self.buffers.items()):
                t.copy_(state[name])

    def grad_norm(self) -> torch.Tensor:
        """Each member's gradient norm over all its parameters, ``(K,)`` (as the loop's ``_grad_norm``), in a few
        kernels (one concatenation, one norm accumulated in float64 so that one long sum loses nothing against the
        loop's norm of per-parameter norms) rather than two per parameter."""
        grads = [p.grad.flatten(1) for p in self.params.values() if p.grad is not None]
        if not grads:
            return torch.zeros(len(next(iter(self.params.values()))))
        wide = torch.float64 if grads[0].device.type != "mps" else torch.float32  # MPS has no float64
        return torch.linalg.vector_norm(torch.cat(grads, dim=1), dim=1, dtype=wide).float()


def _member_optimizer_state(opt: torch.optim.Optimizer, params: Sequence[torch.Tensor], k: int) -> dict[str, Any]:
    """Member ``k``'s optimiser state: every state tensor shaped like its stacked parameter is sliced at ``k``."""
    state = opt.state_dict()
    out: dict[int, dict[str, Any]] = {}
    for i, entry in state["state"].items():
        shape = params[i].shape
        out[i] = {key: (v[k].clone() if torch.is_tensor(v) and v.shape == shape else
                        v.clone() if torch.is_tensor(v) else copy.deepcopy(v)) for key, v in entry.items()}
    groups = copy.deepcopy(state["param_groups"])
    for group in groups:  # a plain Trainer's optimiser steps eagerly, on any device (cuda-graph mode set it True)
        if "capturable" in group:
            group["capturable"] = False
    return {"state": out, "param_groups": groups}


class BatchedTrainer:
    """K runs of one config, ``cfg.replace(seed=s)`` for ``s`` in ``seeds``, trained as one vectorised model.

    ``compile`` (for CUDA): ``torch.compile`` G's and D's vmapped calls with that mode (``"reduce-overhead"`` records
    them as CUDA graphs), or ``"cuda-graph"``: the whole step captured as one CUDA graph
    (:mod:`gantricks.batched_graph`), or ``"cuda-graph-fused"``: both, G's and D's calls compiled (inductor fuses
    their small kernels) and the whole step captured. Configs that :func:`batchable` refuses raise a ``ValueError``
    naming the field.
    """

    def __init__(self, cfg: TrainConfig, seeds: Sequence[int], compile: str | None = None) -> None:
        cfg.validate()
        reason = batchable(cfg)
        if reason is not None:
            raise ValueError(reason)
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile={compile!r} is invalid: allowed values are {COMPILE_MODES}")
        self.cfg, self.seeds = cfg, _check_seeds(seeds)
        self.device = resolve_device(cfg.device)
        data, shared, self.data_sources = self._data()
        gs, ds = self._members(data.shape[1:] if shared else data.shape[2:])
        torch_compile = compile if compile in TORCH_COMPILE_MODES else "default" if compile == "cuda-graph-fused" \
            else None
        self.G, self.D = _Stacked(gs, torch_compile), _Stacked(ds, torch_compile)
        self.compiled = torch_compile is not None
        if self.compiled and cfg.update == "simultaneous" and self.D.has_batchnorm:
            raise ValueError(f"compile={compile!r} with update='simultaneous' needs a discriminator without "
                             "BatchNorm (its one-backward form runs D twice on the fakes); use compile=None")
        o = cfg.optim
        self.opt_g = build_optimizer(self.G.parameters(), o, o.lr_g, self.device)
        self.opt_d = build_optimizer(self.D.parameters(), o, o.lr_d, self.device, betas=o.betas_d)
        self.sampler = BatchedSampler(data, cfg.batch_size, self.seeds, self.device, shared)
        self.prior = cfg.build_prior()
        self.z_generators = [torch.Generator(device=self.device).manual_seed(s + 1) for s in self.seeds]
        self.hooks = cfg.build_hooks()  # the schedule's LambdaLR over the stacked optimisers; nothing else passes
        for h in self.hooks:
            h.setup(self)  # type: ignore[arg-type]
        self._d_loss = vmap(functools.partial(discriminator_loss, kind=cfg.loss))
        self._g_loss = vmap(functools.partial(generator_loss, kind=cfg.loss))
        self.step_count = 0
        self.histories: list[list[dict[str, float]]] = [[] for _ in self.seeds]
        self._pending: list[dict[str, Any]] = []
        self._elapsed, self._t0 = 0.0, None
        self._graph = StepGraph(self) if compile in GRAPH_MODES else None

    @property
    def k(self) -> int:
        return len(self.seeds)

    def member_config(self, k: int) -> TrainConfig:
        return self.cfg.replace(seed=self.seeds[k])

    def _data(self) -> tuple[torch.Tensor, bool, list[str]]:
        """``(data, shared, sources)``: MNIST once for all members; a 2D mixture drawn with each member's seed."""
        if self.cfg.dataset == "mnist":
            (images, _), source = load_data(self.cfg)
            return images, True, [source] * self.k
        drawn = [load_data(self.member_config(k)) for k in range(self.k)]
        return torch.stack([t[0][0] for t in drawn]), False, [t[1] for t in drawn]

    def _members(self, shape: Sequence[int]) -> tuple[list[nn.Module], list[nn.Module]]:
        """Each member's G and D, initialised as ``Trainer`` does: ``torch.manual_seed(seed)``, then build."""
        gs, ds = [], []
        for k, s in enumerate(self.seeds):
            torch.manual_seed(s)
            g, d = build_models(self.member_config(k), shape)
            gs.append(g.to(self.device))
            ds.append(d.to(self.device))
        return gs, ds

    # -- one step -------------------------------------------------------------------------------------------------
    def latent(self, n: int) -> torch.Tensor:
        """Each member's z from its own generator, ``(K, n, z_dim)``."""
        return torch.stack([self.prior.sample(n, self.device, g) for g in self.z_generators])

    def _real(self) -> torch.Tensor:
        """The next real batches; inside a captured step, the graph's input tensor in the order drawn."""
        return next(self._graph.feed["real"]) if self._graph is not None and self._graph.feed is not None \
            else self.sampler.next()

    def _z(self, n: int) -> torch.Tensor:
        """The next latent batches (as :meth:`_real`)."""
        return next(self._graph.feed["z"]) if self._graph is not None and self._graph.feed is not None \
            else self.latent(n)

    def _discriminate(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and fake logits ``(K, N)``: one call on ``cat(real, fake)`` unless D has BatchNorm (as the loop)."""
        if self.D.has_batchnorm:
            return self.D(real), self.D(fake)
        n = real.shape[1]
        logits = self.D(torch.cat([real, fake], dim=1))
        return logits[:, :n], logits[:, n:]

    def _parts(self, which: str) -> tuple[_Stacked, torch.optim.Optimizer]:
        return (self.D, self.opt_d) if which == "d" else (self.G, self.opt_g)

    def _backward(self, which: str, objective: torch.Tensor, only_own: bool = False) -> None:
        net, opt = self._parts(which)
        opt.zero_grad(set_to_none=True)
        if only_own:
            objective.backward(inputs=net.parameters(), retain_graph=which == "d")
        else:
            objective.backward()

    def _apply(self, which: str, record: dict[str, Any]) -> None:
        net, opt = self._parts(which)
        record[f"grad_norm_{which}"] = net.grad_norm()
        opt.step()

    def _step_alternating(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """As ``Trainer._step_alternating``: ``d_steps`` D updates (real batch, z, G(z) without gradients), then
        one G update on fresh z with D frozen."""
        n = self.cfg.batch_size
        for _ in range(self.cfg.d_steps):
            real = self._real()
            z = self._z(n)
            with torch.no_grad():
                fake = self.G(z)
            real_logits, fake_logits = self._discriminate(real, fake)
            terms = self._d_loss(real_logits.float(), fake_logits.float())
            self._backward("d", terms["loss_d"].sum())
            self._apply("d", record)
        self.D.requires_grad_(False)
        try:
            z = self._z(n)
            loss_g = self._g_loss(self.D(self.G(z)).float())
            self._backward("g", loss_g.sum())
            self._apply("g", record)
        finally:
            self.D.requires_grad_(True)
        return terms, loss_g, real_logits, fake_logits

    def _step_simultaneous(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """As ``Trainer._step_simultaneous``: one batch and one z, both gradients at the same weights, both steps."""
        real = self._real()
        z = self._z(self.cfg.batch_size)
        fake = self.G(z)
        if self.compiled:
            return self._simultaneous_one_backward(real, fake, record)
        real_logits, fake_logits = self._discriminate(real, fake)
        terms = self._d_loss(real_logits.float(), fake_logits.float())
        loss_g = self._g_loss(fake_logits.float())
        self._backward("d", terms["loss_d"].sum(), only_own=True)
        self._backward("g", loss_g.sum(), only_own=True)
        self._apply("d", record)
        self._apply("g", record)
        return terms, loss_g, real_logits, fake_logits

    def _simultaneous_one_backward(self, real: torch.Tensor, fake: torch.Tensor, record: dict[str, Any]
                                   ) -> tuple[Any, ...]:
        """The simultaneous update in one backward pass, as compiled graphs need (they run each backward once, with
        no retained graph): D's loss on ``fake`` detached, G's loss through a second D pass with D's weights
        detached. The same gradients as the loop's two backward passes, for one more D forward pass on the fakes."""
        real_logits, fake_logits = self._discriminate(real, fake.detach())
        terms = self._d_loss(real_logits.float(), fake_logits.float())
        frozen = {name: p.detach() for name, p in self.D.params.items()}
        loss_g = self._g_loss(self.D.fn(frozen, self.D.buffers, fake).float())
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        (terms["loss_d"].sum() + loss_g.sum()).backward()
        self._apply("d", record)
        self._apply("g", record)
        return terms, loss_g, real_logits, fake_logits

    def measure(self) -> dict[str, torch.Tensor]:
        """One step's updates of every member; its ``(K,)`` metrics in the loop's order (gradient norms, losses,
        mean D(x), mean D(G(z)))."""
        record: dict[str, Any] = {}
        step = self._step_simultaneous if self.cfg.update == "simultaneous" else self._step_alternating
        terms, loss_g, real_logits, fake_logits = step(record)
        with torch.no_grad():
            record.update({k: v.detach() for k, v in terms.items()})
            record.update(loss_g=loss_g.detach(), d_real=torch.sigmoid(real_logits.float()).mean(1),
                          d_fake=torch.sigmoid(fake_logits.float()).mean(1))
        return record

    def step(self) -> dict[str, Any]:
        """One training step of every member; the record holds ``(K,)`` tensors (and the shared learning rates)."""
        record: dict[str, Any] = self._graph.metrics() if self._graph is not None else self.measure()
        self.step_count += 1
        record["lr_g"] = self.opt_g.param_groups[0]["lr"]
        record["lr_d"] = self.opt_d.param_groups[0]["lr"]
        for h in self.hooks:
            h.on_step_end(self.step_count, record, self)  # type: ignore[arg-type]
        record["step"] = self.step_count
        record["time"] = self.elapsed
        self._pending.append(record)
        if self.step_count % self.cfg.sync_every == 0:
            self.flush()
        return record

    def flush(self) -> None:
        """Read the pending records back into each member's history; a non-finite loss stops all members."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        keys = [k for k, v in pending[0].items() if isinstance(v, torch.Tensor)]
        values = torch.stack([r[k].float().reshape(self.k) for r in pending for k in keys]).cpu().tolist()
        rows = iter(values)
        for rec in pending:
            per_key = {k: next(rows) for k in keys}
            for m in range(self.k):
                row = {k: (per_key[k][m] if k in per_key else float(v)) for k, v in rec.items()}
                row["step"] = int(rec["step"])
                if not (_finite(row["loss_d"]) and _finite(row["loss_g"])):
                    raise NonFiniteLossError(row["step"], {"seed": self.seeds[m], "loss_d": row["loss_d"],
                                                           "loss_g": row["loss_g"]})
                self.histories[m].append(row)

    def fit(self, steps: int | None = None) -> list[list[dict[str, float]]]:
        """Train every member until ``steps`` total steps (default ``cfg.steps``); return the histories."""
        total = self.cfg.steps if steps is None else steps
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise ValueError(f"steps={total!r} is invalid: expected a positive integer")
        self._t0 = time.perf_counter()
        try:
            while self.step_count < total:
                self.step()
            self.flush()
        finally:
            self._elapsed, self._t0 = self.elapsed, None
        return self.histories

    @property
    def elapsed(self) -> float:
        """Seconds spent in :meth:`fit` so far, for all members together."""
        return self._elapsed + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    # -- members and checkpoints ----------------------------------------------------------------------------------
    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member ``k`` as a :class:`~gantricks.train.Trainer` checkpoint (``Trainer.from_checkpoint`` resumes it)."""
        self.flush()
        if not 0 <= k < self.k:
            raise ValueError(f"k={k!r} is invalid: expected a member index in [0, {self.k})")
        return {
            "format": CHECKPOINT_FORMAT, "step": self.step_count, "config": self.member_config(k).to_dict(),
            "data_source": self.data_sources[k], "G": self.G.member_state(k), "D": self.D.member_state(k),
            "opt_g": _member_optimizer_state(self.opt_g, self.G.parameters(), k),
            "opt_d": _member_optimizer_state(self.opt_d, self.D.parameters(), k),
            "sampler": self.sampler.member_state(k), "z_generator": self.z_generators[k].get_state(),
            "hooks": {h.key: h.state_dict() for h in self.hooks}, "history": list(self.histories[k]),
            "elapsed": self.elapsed, "rng": rng_state(), "world_size": 1,
        }

    def member(self, k: int) -> Trainer:
        """Member ``k`` as a plain ``Trainer`` in the same state (evaluate it, sample from it, save it, train on)."""
        state = self.member_state_dict(k)
        trainer = Trainer(self.member_config(k))
        trainer.load_state_dict(state)
        return trainer

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "format": BATCHED_FORMAT, "config": self.cfg.to_dict(), "seeds": list(self.seeds),
            "step": self.step_count, "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "sampler": self.sampler.state_dict(),
            "z_generators": [g.get_state() for g in self.z_generators],
            "hooks": {h.key: h.state_dict() for h in self.hooks}, "histories": [list(h) for h in self.histories],
            "elapsed": self._elapsed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != BATCHED_FORMAT:
            raise ValueError(f"batched checkpoint format {state.get('format')!r} is not {BATCHED_FORMAT}")
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"the checkpoint holds seeds {state['seeds']}, this trainer has {self.seeds}")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.load_state_dict(state["sampler"])
        for g, s in zip(self.z_generators, state["z_generators"], strict=True):
            g.set_state(s)
        for h in self.hooks:
            h.load_state_dict(state["hooks"][h.key])
        self.histories = [list(h) for h in state["histories"]]
        self.step_count, self._elapsed, self._pending = int(state["step"]), float(state["elapsed"]), []
        if self._graph is not None:
            self._graph.reset()  # the optimisers' state tensors are new: capture again

    def save(self, out_dir: str | os.PathLike) -> str:
        """Write ``out_dir/batched_checkpoint.pt`` atomically; :meth:`from_checkpoint` resumes it exactly."""
        path = os.path.join(os.fspath(out_dir), BATCHED_CHECKPOINT_NAME)
        atomic_save(self.state_dict(), path)
        return path

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, compile: str | None = None, **overrides: Any
                        ) -> BatchedTrainer:
        """Rebuild from ``path`` (a file or a folder holding one); ``overrides`` change config fields (``steps``)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, BATCHED_CHECKPOINT_NAME)
        state = load_checkpoint(path)
        cfg = TrainConfig.from_dict(state["config"])
        trainer = cls(cfg.replace(**overrides) if overrides else cfg, state["seeds"], compile=compile)
        trainer.load_state_dict(state)
        return trainer


def _start(cfg: TrainConfig, seeds: Sequence[int], run_dir: str | None, compile: str | None
           ) -> tuple[BatchedTrainer, bool]:
    """``(trainer, resumed)``: resumed from ``run_dir``'s checkpoint when it holds this very config and seeds."""
    path = None if run_dir is None else os.path.join(run_dir, BATCHED_CHECKPOINT_NAME)
    if path is not None and os.path.isfile(path):
        state = load_checkpoint(path)
        if TrainConfig.from_dict(state["config"]) == cfg and list(state["seeds"]) == list(seeds):
            trainer = BatchedTrainer(cfg, seeds, compile=compile)
            trainer.load_state_dict(state)
            return trainer, True
    return BatchedTrainer(cfg, seeds, compile=compile), False


def run_batched(cfg: TrainConfig, seeds: Sequence[int], evaluate: Callable[[Trainer], Mapping[str, float]] | None
                = None, curve_steps: Sequence[int] | None = None, name: str = "config", compile: str | None = None,
                run_dir: str | os.PathLike | None = None, checkpoint_every: int = 0, target: Any = "auto"
                ) -> list[dict[str, Any]]:
    """``cfg`` with every seed of ``seeds`` trained as one :class:`BatchedTrainer`, as rows of ``run_grid``.

    Each row is ``{"config": name, "seed", metrics..., "seconds"}``, ``seconds`` being the member's share (1/K) of
    the batch's wall time in this call, with ``batch_seconds`` (the whole batch, this call), ``batch_train_seconds``
    (the batch's training time, before a resume too), ``batched`` (K) and, after a resume, ``resumed`` beside it.
    ``evaluate`` (default :func:`gantricks.experiments.evaluate`) runs on each member as a plain ``Trainer``.
    ``curve_steps``: evaluate at these steps too; the row then holds ``curve`` (columns step, seconds, metrics),
    ``train_seconds`` and, for a ``target`` (default ``"auto"``: :func:`~gantricks.curves.target_for` the dataset;
    ``None``: none), ``ttq_step`` and ``ttq_seconds`` (:mod:`gantricks.curves`), as ``run_grid`` writes them.
    With ``run_dir``, a checkpoint is written there at every curve point and every ``checkpoint_every`` steps, a
    rerun resumes from it (if it holds the same config and seeds), and it is removed when the rows are made.
    (A resumed run evaluates only the curve points still ahead of it.)
    """
    from .curves import target_for
    from .evaluation import evaluate as default_evaluate

    evaluate = evaluate or default_evaluate
    t0 = time.perf_counter()
    folder = None if run_dir is None else os.fspath(run_dir)
    bt, resumed = _start(cfg.replace(progress=False), seeds, folder, compile)
    stops = set(range(checkpoint_every, cfg.steps, checkpoint_every)) if checkpoint_every and folder else set()
    at = {*(curve_steps or ()), cfg.steps}
    points_path = None if folder is None else os.path.join(folder, "points.json")
    points: list[list[dict[str, float]]] = [[] for _ in bt.seeds]
    if bt.step_count and points_path is not None and os.path.isfile(points_path):
        with open(points_path, encoding="utf-8") as f:
            points = [[p for p in member if p["step"] <= bt.step_count] for member in json.load(f)]
    for s in sorted(at | stops):
        if s <= bt.step_count:
            continue
        bt.fit(steps=s)
        if s in at:
            for k in range(bt.k):
                metrics = {m: float(v) for m, v in evaluate(bt.member(k)).items()}
                points[k].append({"step": s, "seconds": bt.elapsed / bt.k, **metrics})
        if folder is not None and s < cfg.steps:
            bt.save(folder)
            with open(points_path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(points, f)
            os.replace(points_path + ".tmp", points_path)
    total = time.perf_counter() - t0
    goal = (target_for(cfg.dataset) if target == "auto" else target) if curve_steps else None
    rows = [_row(name, seed, points[k], total, bt, bool(curve_steps), goal) for k, seed in enumerate(bt.seeds)]
    for row in rows:
        row.update({"batch_train_seconds": bt.elapsed, **({"resumed": True} if resumed else {})})
    for path in ([] if folder is None else [os.path.join(folder, BATCHED_CHECKPOINT_NAME), points_path]):
        if os.path.isfile(path):
            os.remove(path)
    if folder is not None:
        with contextlib.suppress(OSError):  # the folder, and its parents while empty
            os.removedirs(folder)
    return rows


def _row(name: str, seed: int, points: list[dict[str, float]], total: float, bt: BatchedTrainer, curve: bool,
         goal: Any) -> dict[str, Any]:
    """One member's row in ``run_grid``'s format (with ``curve``, and time to ``goal`` when one is given)."""
    last = {m: v for m, v in points[-1].items() if m not in ("step", "seconds")}
    row: dict[str, Any] = {"config": name, "seed": seed, **last, "seconds": total / bt.k, "batch_seconds": total,
                           "batched": bt.k}
    if curve:
        row["train_seconds"] = bt.elapsed / bt.k
        row["curve"] = columns(points)
        if goal is not None:
            reached = time_to_quality(points, goal)
            row["ttq_step"] = None if reached is None else reached["step"]
            row["ttq_seconds"] = None if reached is None else reached["seconds"]
    return row
