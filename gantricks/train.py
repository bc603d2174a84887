"""The training loop (chapter 1, "The baseline GAN"): k discriminator updates, then one generator update.

The loop reads like the algorithm of Goodfellow et al. (2014, Algorithm 1) with the non-saturating generator loss.
Tricks plug in without ``if`` branches here: the config's sections (one per trick, :mod:`gantricks.section`) give
the latent prior, the :class:`~gantricks.code.LatentCode` (G's and D's labels), the training tensors and the
:class:`~gantricks.hooks.Hook` s, which change D's inputs, add named loss terms to both objectives, act around
the optimiser steps and may choose the generator that sampling uses. Per step the loop records every loss term,
mean D(x), mean D(G(z)), both learning rates, both gradient norms (before any clipping) and the wall time
(``loss_d`` and ``loss_g`` are the adversarial terms; the hooks' terms are logged beside them); values stay on the
device and are read back every ``cfg.sync_every`` steps, so a CUDA run does not wait for the host each step.

Mixed precision: ``amp="bf16"`` autocasts to bfloat16; ``amp="fp16"`` autocasts to float16 with dynamic loss
scaling (one ``torch.amp.GradScaler`` per network, as G and D have their own backward passes and optimisers;
hooks see unscaled gradients).

Divergence guard: at every read-back (every ``cfg.sync_every`` steps, and before every checkpoint) each step's
losses must be finite (else :class:`NonFiniteLossError`; that row is not recorded) and within :data:`LOSS_BOUND`,
its gradient norms finite (not checked under fp16, whose loss scaler skips steps with overflowing gradients by
design), and G's and D's parameters and buffers finite; else the run stops with a :class:`DivergenceError` (a
:class:`NonFiniteLossError`) naming the step and the quantity, the offending row kept in the history. A checkpoint is
never written if any tensor of G, D or either optimiser's state is NaN or infinite. The guard only reads values: a
healthy run computes exactly what it computed without it.

Checkpoints hold the models, optimisers, sampler, latent RNG, hook states (by :attr:`~gantricks.hooks.Hook.key`),
loss scalers, history, global RNG states and the step; training N steps straight and training k, saving, resuming
and finishing give identical parameters on the CPU. Format-1 checkpoints (hook states by position) still load.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from . import distributed
from .checkpoint import (
    CheckpointError,
    atomic_save,
    first_non_finite,
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    set_rng_state,
    write_csv,
    write_text,
)
from .code import Prior
from .config import TrainConfig, resolve_device
from .data import TensorSampler, load_mnist, mixture_2d
from .hooks import DBatch, GBatch, Hook, LossTerms
from .losses import discriminator_loss, generator_loss
from .models import build_models
from .optim import build_optimizers

__all__ = ["CHECKPOINT_NAME", "LOSS_BOUND", "RUN_FILES", "DivergenceError", "NonFiniteLossError", "Trainer",
           "config_hooks", "load_data", "train"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 2
RUN_FILES = (CHECKPOINT_NAME, "history.csv", "config.json", "samples.png")
"""What :meth:`Trainer.fit` writes into a run folder."""
CHECKPOINT_KEYS = ("format", "step", "config", "G", "D", "opt_g", "opt_d", "sampler", "z_generator", "hooks",
                   "history", "rng")
"""The entries every checkpoint (format 1 and 2) holds."""

LOSS_BOUND = 1e10
"""A logged ``loss_d`` or ``loss_g`` beyond this magnitude stops the run as diverged. The adversarial losses are
cross-entropies of D's logits, so |loss| ~ |logit| once D saturates: a healthy run stays within about 0.01-100. The
bound sits above the most violent runs the book measures that still end on finite values, so their histories and
diagnoses (chapter 7) are unchanged: ring8 with Adam at lr 0.05 peaks at 1.3e7 (step 576) and trains on; SGD with
momentum 0.9 at lr 0.02 / 0.1 reaches 3.7e7 / 2.5e8 the step before its losses turn NaN. Adam at lr 1e3 passes it at
step 2 (7.9e15) and would otherwise train to the end at ~1e25 and exit 0."""
_ADVICE = "Try a lower learning rate, gradient clipping or fp32."


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; ``step`` is the first step where it happened. Its subclass
    :class:`DivergenceError` stops runs that diverge with finite losses."""

    def __init__(self, step: int, values: dict[str, float]) -> None:
        self.step = step
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        super().__init__(
            f"training stopped: non-finite loss at step {step} ({shown}). No checkpoint was written after it; "
            f"the last checkpoint on disk is intact. {_ADVICE}"
        )


class DivergenceError(NonFiniteLossError):
    """Training diverged with finite losses: at ``step``, ``quantity`` (a gradient norm, a loss beyond
    :data:`LOSS_BOUND`, a parameter, an optimiser state) was ``problem``. A :class:`NonFiniteLossError`, so code
    that catches one catches both."""

    def __init__(self, step: int, quantity: str, problem: str, saving: bool = False) -> None:
        self.step, self.quantity = step, quantity
        if saving:
            text = (f"refusing to write a checkpoint at step {step}: {quantity} {problem}. Nothing was written; the "
                    f"last checkpoint on disk is intact. {_ADVICE}")
        else:
            text = (f"training stopped: diverged at step {step}: {quantity} {problem}. No checkpoint was written "
                    f"after it; the last checkpoint on disk is intact. {_ADVICE}")
        RuntimeError.__init__(self, text)


def load_data(cfg: TrainConfig) -> tuple[tuple[torch.Tensor, ...], str]:
    """The training tensors for ``cfg.dataset`` (images/points, labels) and a description of their source."""
    if cfg.dataset == "mnist":
        images, labels, source = load_mnist(cfg.mnist_root, train=True, source=cfg.mnist_source,
                                            value_range="tanh" if cfg.output == "tanh" else "sigmoid")
        return (images, labels), source
    mix = mixture_2d(cfg.dataset, cfg.data_size, seed=cfg.seed)
    return (mix.samples, mix.labels), f"{cfg.dataset} mixture ({cfg.data_size} points, seed {cfg.seed})"


def config_hooks(cfg: TrainConfig) -> list[Hook]:
    """The hooks of the tricks that ``cfg`` switches on, in a fixed order (rebuilt the same way on resume)."""
    return cfg.build_hooks()


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _grad_norm(model: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _keyed(hooks: list[Hook]) -> dict[str, Hook]:
    """Hooks by :attr:`Hook.key`; a repeated key gets ``#2``, ``#3``, ... in order."""
    out: dict[str, Hook] = {}
    for h in hooks:
        key, n = h.key, 1
        while key in out:
            n += 1
            key = f"{h.key}#{n}"
        out[key] = h
    return out


class Trainer:
    """Holds a run: config, data sampler, G, D, optimisers, prior, hooks, history; :meth:`fit` trains it.

    ``data`` may replace the configured dataset: a tensor of data points, or a tuple ``(points, labels)``; the
    config's sections may change it (:meth:`TrainConfig.prepare_data`, e.g. hidden labels), and :attr:`data` holds
    the result. ``prior`` replaces the prior that the config describes; ``hooks`` are added after the hooks the
    config switches on (:func:`config_hooks`; see :mod:`gantricks.hooks`). A prior that is an ``nn.Module`` (e.g. a
    :class:`~gantricks.latent.MixturePrior`) becomes ``G.latent_prior``: G's optimiser trains its parameters and G's
    checkpoint holds them. :attr:`preset` names the run preset the config came from (:mod:`gantricks.presets`;
    ``None``: none, or not recorded), a label only: the checkpoint and ``config.json`` keep it.
    """

    def __init__(self, cfg: TrainConfig, hooks: Iterable[Hook] = (), prior: Prior | None = None,
                 data: torch.Tensor | Sequence[torch.Tensor] | None = None) -> None:
        cfg.validate()
        self.cfg = cfg
        self.dist, self.device = distributed.setup(resolve_device(cfg.device))  # torchrun: rank, device
        if cfg.amp and self.device.type != "cuda":
            raise ValueError(f"amp={cfg.amp!r} is invalid on device {str(self.device)!r}: autocast is for CUDA")
        if data is None:
            tensors, self.data_source = load_data(cfg)
        else:
            tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
            self.data_source = "user data"
        if cfg.n_classes and len(tensors) < 2:
            raise ValueError(f"n_classes={cfg.n_classes} needs labelled data: pass data=(points, labels)")
        self.data: tuple[torch.Tensor, ...] = cfg.prepare_data(tensors)
        torch.manual_seed(cfg.seed)
        self.G, self.D = build_models(cfg, self.data[0].shape[1:])
        self.G.to(self.device)
        self.D.to(self.device)
        self.prior: Prior = prior if prior is not None else cfg.build_prior()
        if self.prior.dim != self.G.z_dim:
            raise ValueError(f"prior.dim={self.prior.dim} does not match the generator's z_dim={self.G.z_dim}")
        self.code = cfg.build_latent_code()
        if self.code.component_to_g and not hasattr(self.prior, "sample_with_components"):
            raise ValueError(f"this run gives G a prior's component as its label: it needs a prior with components "
                             f"(sample_with_components), not {self.prior!r}")
        if isinstance(self.prior, nn.Module):  # learnt latent parameters train, sync and save with G
            self.G.add_module("latent_prior", self.prior.to(self.device))
        self.opt_g, self.opt_d = build_optimizers(self.G, self.D, cfg.optim, self.device)
        self.scalers = {which: torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16") for which in ("d", "g")}
        self.sampler = TensorSampler(*self.data[: 2 if cfg.n_classes else 1], batch_size=cfg.batch_size,
                                     seed=cfg.seed, device=self.device, rank=self.dist.rank,
                                     world_size=self.dist.world_size)
        self.z_generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.preset: str | None = None
        self.hooks: list[Hook] = config_hooks(cfg) + list(hooks)
        self.d_logits: tuple[torch.Tensor, torch.Tensor] | None = None  # (real, fake) of the last D update
        self.step_count = 0
        self.history: list[dict[str, float]] = []
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self._pending: list[dict[str, Any]] = []
        self._elapsed = 0.0
        self._t0: float | None = None
        self.joint_d = not _has_batchnorm(self.D)
        # G and D as the step calls them: DDP-wrapped under torchrun; D's G-step pass needs no gradient sync
        self._g = distributed.wrap(self.G, self.dist, self.device)
        self._d_update = distributed.wrap(self.D, self.dist, self.device)
        if cfg.compile:
            self._g, self._d = torch.compile(self._g), torch.compile(self.D)
            self._d_update = torch.compile(self._d_update) if self.dist.enabled else self._d
        else:
            self._d = self.D
        for h in self.hooks:
            h.setup(self)

    def hook(self, key: str) -> Hook:
        """The hook saved under ``key`` (:attr:`Hook.key`; the keys are in the checkpoint's ``hooks``)."""
        hooks = _keyed(self.hooks)
        if key not in hooks:
            raise KeyError(f"no hook {key!r}: this trainer has {sorted(hooks)}")
        return hooks[key]

    # -- one step ---------------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``cfg.amp``'s precision on CUDA (a no-op in fp32)."""
        if self.cfg.amp:
            dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
            return torch.autocast(device_type="cuda", dtype=dtype)
        return contextlib.nullcontext()

    def _latent(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.dist.world_size  # every rank draws the global batch and keeps its own slice
        z, y = self.code.draw(self.prior, n * w, self.device, self.z_generator)
        return distributed.rank_slice(z, self.dist), None if y is None else distributed.rank_slice(y, self.dist)

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as D sees it: through every hook's :meth:`~gantricks.hooks.Hook.d_input`."""
        for h in self.hooks:
            x = h.d_input(x, self.step_count, self)
        return x

    def d_forward(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, auxiliary outputs or None)`` of D on ``x`` as a D update computes them (data-parallel)."""
        return self._d_update(x, y, with_aux=True)

    def _objective(self, which: str, loss: torch.Tensor, batch: DBatch | GBatch
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``loss`` plus every hook's term for network ``which``, and the values the hooks log."""
        logged: dict[str, torch.Tensor] = {}
        for h in self.hooks:
            terms: LossTerms | None = h.d_loss(batch, self) if which == "d" else h.g_loss(batch, self)
            if terms is not None:
                if terms.loss is not None:
                    loss = loss + terms.loss
                logged.update(terms.log)
        return loss, logged

    def _update(self, which: str, objective: torch.Tensor, record: dict[str, Any]) -> None:
        """Backward pass, hooks on the gradients, optimiser step for network ``which`` (loss-scaled in fp16)."""
        self._backward(which, objective)
        self._apply(which, record)

    def _parts(self, which: str) -> tuple[nn.Module, torch.optim.Optimizer, torch.amp.GradScaler]:
        return (self.D, self.opt_d, self.scalers["d"]) if which == "d" else (self.G, self.opt_g, self.scalers["g"])

    def _backward(self, which: str, objective: torch.Tensor, only_own: bool = False) -> None:
        """Network ``which``'s gradients of ``objective`` (``only_own``: into its own weights only, keeping the
        graph for the other network's backward pass, as the simultaneous update needs)."""
        model, opt, scaler = self._parts(which)
        opt.zero_grad(set_to_none=True)
        if only_own:
            scaler.scale(objective).backward(inputs=[p for p in model.parameters() if p.requires_grad],
                                             retain_graph=which == "d")
        else:
            scaler.scale(objective).backward()

    def _apply(self, which: str, record: dict[str, Any]) -> None:
        """Hooks on network ``which``'s gradients (unscaled), then its optimiser step."""
        model, opt, scaler = self._parts(which)
        scaler.unscale_(opt)
        record[f"grad_norm_{which}"] = _grad_norm(model)
        for h in self.hooks:
            extra = h.before_optimizer_step(which, model, self)
            if extra:
                record.update(extra)
        scaler.step(opt)
        scaler.update()

    def _discriminate(self, real: torch.Tensor, y_real: torch.Tensor | None, fake: torch.Tensor,
                      y_fake: torch.Tensor | None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """``((real logits, real aux), (fake logits, fake aux))``; aux may be None."""
        if not self.joint_d:  # BatchNorm in D: separate real and fake batches, as DCGAN does
            return self.d_forward(real, y_real), self.d_forward(fake, y_fake)
        y = None if y_real is None else torch.cat([y_real, y_fake])
        n = real.shape[0]
        logits, aux = self.d_forward(torch.cat([real, fake]), y)
        return (logits[:n], None if aux is None else aux[:n]), (logits[n:], None if aux is None else aux[n:])

    def step(self) -> dict[str, Any]:
        """One training step: ``cfg.d_steps`` D updates, then one G update, or with ``cfg.update="simultaneous"``
        both networks' gradients at the same weights and then both updates. Returns the (device) record."""
        record: dict[str, Any] = {}
        if self.cfg.update == "simultaneous":
            logs = self._step_simultaneous(record)
        else:
            logs = self._step_alternating(record)
        self.step_count += 1
        terms, d_terms, g_terms, loss_g, real_logits, fake_logits = logs
        with torch.no_grad():
            record.update({k: v.detach() for k, v in (*terms.items(), *d_terms.items(), *g_terms.items())})
            record.update(loss_g=loss_g.detach(), d_real=torch.sigmoid(real_logits.float()).mean(),
                          d_fake=torch.sigmoid(fake_logits.float()).mean())
        record["lr_g"] = self.opt_g.param_groups[0]["lr"]
        record["lr_d"] = self.opt_d.param_groups[0]["lr"]
        for h in self.hooks:
            h.on_step_end(self.step_count, record, self)
        record["step"] = self.step_count
        record["time"] = self.elapsed
        self._pending.append(record)
        if self.step_count % self.cfg.sync_every == 0:
            self.flush()
        return record

    def _d_objective(self, real: torch.Tensor, y_real: torch.Tensor | None, fake: torch.Tensor,
                     y_fake: torch.Tensor | None) -> tuple[dict[str, Any], torch.Tensor, dict[str, Any], DBatch]:
        """D's logits on a real and a fake batch (as D sees them), its adversarial terms, its objective with every
        hook's terms, the values those log and the :class:`DBatch`; keeps the logits in :attr:`d_logits`."""
        d_labels = self.code.d_labels
        with self.autocast():
            (real_logits, real_aux), (fake_logits, fake_aux) = self._discriminate(
                real, d_labels(y_real), fake, d_labels(y_fake))
        terms = discriminator_loss(real_logits.float(), fake_logits.float(), kind=self.cfg.loss)
        batch = DBatch(real, y_real, fake, y_fake, real_logits, fake_logits, real_aux, fake_aux)
        loss_d, d_terms = self._objective("d", terms["loss_d"], batch)
        self.d_logits = (real_logits.detach(), fake_logits.detach())
        return terms, loss_d, d_terms, batch

    def _step_simultaneous(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """One batch, one forward pass: D's and G's gradients at the same weights (D's from its loss, G's from the
        generator loss on the same fakes), then both optimiser steps; PacGAN's code (after ALI's) trains this way."""
        cfg, n = self.cfg, self.cfg.batch_size
        real, *rest = self.sampler.next()
        y_real = rest[0] if rest else None
        z, y_fake = self._latent(n)
        with self.autocast():
            fake = self.d_input(self._g(z, y_fake))
        real = self.d_input(real)
        terms, loss_d, d_terms, batch = self._d_objective(real, y_real, fake, y_fake)
        real_logits, fake_logits = batch.real_logits, batch.fake_logits
        loss_g = generator_loss(fake_logits.float(), cfg.loss)
        objective_g, g_terms = self._objective("g", loss_g, GBatch(z, y_fake, fake, fake_logits, batch.fake_aux))
        self._backward("d", loss_d, only_own=True)
        self._backward("g", objective_g, only_own=True)
        self._apply("d", record)
        self._apply("g", record)
        return terms, d_terms, g_terms, loss_g, real_logits, fake_logits

    def _step_alternating(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """``cfg.d_steps`` D updates, each on a fresh batch and fresh z, then one G update on fresh z."""
        cfg, n, d_labels = self.cfg, self.cfg.batch_size, self.code.d_labels
        for _ in range(cfg.d_steps):
            real, *rest = self.sampler.next()
            y_real = rest[0] if rest else None
            z, y_fake = self._latent(n)
            with torch.no_grad(), self.autocast():
                fake = self._g(z, y_fake)
            real, fake = self.d_input(real), self.d_input(fake)
            terms, loss_d, d_terms, batch = self._d_objective(real, y_real, fake, y_fake)
            real_logits, fake_logits = batch.real_logits, batch.fake_logits
            self._update("d", loss_d, record)
        self.D.requires_grad_(False)  # G's backward pass needs no gradients for D's weights
        try:
            z, y_fake = self._latent(n)
            with self.autocast():
                fake = self.d_input(self._g(z, y_fake))
                g_logits, g_aux = self._d(fake, d_labels(y_fake), with_aux=True)
            loss_g = generator_loss(g_logits.float(), cfg.loss)
            objective_g, g_terms = self._objective("g", loss_g, GBatch(z, y_fake, fake, g_logits, g_aux))
            self._update("g", objective_g, record)
        finally:
            self.D.requires_grad_(True)
        return terms, d_terms, g_terms, loss_g, real_logits, fake_logits

    def flush(self) -> None:
        """Read pending records back from the device into :attr:`history`; stop on a non-finite loss."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        flat = [v.float().reshape(()) for r in pending for v in r.values() if isinstance(v, torch.Tensor)]
        values = iter(distributed.all_mean(torch.stack(flat), self.dist).cpu().tolist() if flat else [])
        for rec in pending:
            row = {k: (next(values) if isinstance(v, torch.Tensor) else float(v)) for k, v in rec.items()}
            row["step"] = int(rec["step"])
            if not (_finite(row["loss_d"]) and _finite(row["loss_g"])):
                raise NonFiniteLossError(row["step"], {"loss_d": row["loss_d"], "loss_g": row["loss_g"]})
            self.history.append(row)  # a row that trips the guard below is kept: its values are diagnose's evidence
            self._check_row(row)
        self._check_models(int(pending[-1]["step"]))

    def _check_row(self, row: dict[str, float]) -> None:
        """The divergence guard on one step's record (finite losses): within :data:`LOSS_BOUND`, finite grad norms."""
        if self.cfg.amp != "fp16":  # fp16's loss scaler skips the steps whose gradients overflow: not a divergence
            for key in ("grad_norm_d", "grad_norm_g"):
                if key in row and not _finite(row[key]):
                    raise DivergenceError(row["step"], f"{key}={row[key]}", "is not finite")
        for key in ("loss_d", "loss_g"):
            if abs(row[key]) > LOSS_BOUND:
                raise DivergenceError(row["step"], f"{key}={row[key]:.3g}",
                                      f"is beyond the divergence bound |loss| <= {LOSS_BOUND:g}")

    def _check_models(self, step: int) -> None:
        """The divergence guard on G's and D's parameters and buffers: all finite (one read-back)."""
        states = {"G": self.G.state_dict(), "D": self.D.state_dict()}
        flags = [torch.isfinite(t).all() for st in states.values() for t in st.values() if t.is_floating_point()]
        if not flags or bool(torch.stack(flags).all()):
            return
        raise DivergenceError(step, first_non_finite(states) or "a parameter", "holds NaN or infinite values")

    # -- training ---------------------------------------------------------------------------------------------
    def fit(self, steps: int | None = None, out_dir: str | os.PathLike | None = None,
            checkpoint_every: int | None = None, snapshot_every: int = 0, snapshot_n: int | None = None,
            progress: bool | None = None) -> list[dict[str, float]]:
        """Train until ``steps`` total steps (default ``cfg.steps``); return the history.

        With ``out_dir``, a checkpoint is written every ``checkpoint_every`` steps (default
        ``cfg.checkpoint_every``; 0 = only at the end) and at the end, with ``history.csv``, ``config.json`` and
        ``samples.png``. ``snapshot_every`` > 0 appends ``(step, samples)`` to :attr:`snapshots` every so many steps,
        always from the same latent vectors: the 64 fixed ones, or ``snapshot_n`` drawn from a fixed seed.
        """
        from tqdm.auto import tqdm

        total = self.cfg.steps if steps is None else steps
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise ValueError(f"steps={total!r} is invalid: expected a positive integer")
        every = self.cfg.checkpoint_every if checkpoint_every is None else checkpoint_every
        show = (self.cfg.progress if progress is None else progress) and self.dist.is_main
        for h in self.hooks:
            h.on_train_start(self)
        self._t0 = time.perf_counter()
        if snapshot_every and not self.snapshots:
            self.snapshots.append((self.step_count, self._snapshot(snapshot_n)))
        bar = tqdm(total=total, initial=self.step_count, disable=not show, desc="train", unit="step")
        try:
            while self.step_count < total:
                self.step()
                bar.update(1)
                s = self.step_count
                if snapshot_every and s % snapshot_every == 0:
                    self.snapshots.append((s, self._snapshot(snapshot_n)))
                if out_dir is not None and every and s % every == 0 and s < total:
                    self.save(out_dir)
                if s % self.cfg.sync_every == 0 and self.history:
                    last = self.history[-1]
                    bar.set_postfix(loss_d=f"{last['loss_d']:.3f}", loss_g=f"{last['loss_g']:.3f}", refresh=False)
            self.flush()
        finally:
            bar.close()
            self._elapsed = self.elapsed
            self._t0 = None
        if out_dir is not None:
            self.save(out_dir)
            self.write_outputs(out_dir)
        return self.history

    @property
    def elapsed(self) -> float:
        """Seconds spent in :meth:`fit` so far (host time; on CUDA the host runs ahead of the device)."""
        return self._elapsed + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    # -- sampling ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _sampling_latent(self, n: int, generator: torch.Generator, prior: Prior | None = None,
                         y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z and G's labels for sampling: given ``y``, else classes in turn (0, 1, 2, ...) or drawn components."""
        prior = prior or self.prior
        if self.code.component_to_g:
            return prior.sample_with_components(n, self.device, generator, components=y)
        z = prior.sample(n, self.device, generator)
        if y is None and self.G.n_classes:
            y = torch.arange(n, device=self.device) % self.G.n_classes
        return z, y

    @property
    def fixed_z(self) -> torch.Tensor:
        """The 64 fixed latent vectors of snapshots and ``samples.png`` (redrawn through the current prior)."""
        return self._fixed_latent()[0]

    @property
    def fixed_y(self) -> torch.Tensor | None:
        """G's labels for :attr:`fixed_z`: classes 0, 1, ... in turn, mixture components, or ``None``."""
        return self._fixed_latent()[1]

    def _fixed_latent(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._sampling_latent(64, torch.Generator(device=self.device).manual_seed(self.cfg.seed + 2))

    @torch.no_grad()
    def sample(self, n: int = 64, y: torch.Tensor | None = None, fixed: bool = False,
               generator: torch.Generator | None = None, prior: Prior | None = None) -> torch.Tensor:
        """``n`` samples from G in eval mode, on the CPU, in the data's own space (``fixed``: the fixed 64 z).

        ``prior`` draws z from another prior than the run's, e.g. a truncated normal at sampling time (BigGAN's
        truncation trick, chapter 2); it must have the generator's latent dimension. ``y``: G's labels (classes of a
        conditional run, by default 0, 1, 2, ... in turn; for ``latent.mixture_to_g`` the components to draw z from,
        by default drawn with the mixture's weights).
        """
        return self.sample_with_labels(n, y, fixed, generator, prior)[0]

    @torch.no_grad()
    def sample_with_labels(self, n: int = 64, y: torch.Tensor | None = None, fixed: bool = False,
                           generator: torch.Generator | None = None, prior: Prior | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As :meth:`sample`, with G's labels (on the CPU): the classes, the mixture components, or ``None``."""
        if fixed:
            z, y = self._fixed_latent()
        else:
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ValueError(f"n={n!r} is invalid: expected a positive integer")
            gen = generator or torch.Generator(device=self.device).manual_seed(self.cfg.seed + 3)
            z, y = self._sampling_latent(n, gen, prior, y)
        return self.generate(z, y), None if y is None else y.cpu()

    @torch.no_grad()
    def sample_with_components(self, n: int = 2500, generator: torch.Generator | None = None,
                               components: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(samples, k)``: samples and the mixture component each z came from (to colour a scatter by component).

        Needs a mixture prior (``latent.mixture_k`` > 0); ``components`` fixes them (e.g. ``torch.full((n,), 3)``).
        """
        if not hasattr(self.prior, "sample_with_components"):
            raise ValueError(f"sample_with_components needs a mixture prior (latent.mixture_k > 0), not {self.prior!r}")
        gen = generator or torch.Generator(device=self.device).manual_seed(self.cfg.seed + 3)
        z, k = self.prior.sample_with_components(n, self.device, gen, components=components)
        return self.generate(z, k if self.code.component_to_g else None), k.cpu()

    @property
    def sampling_G(self) -> nn.Module:
        """The generator that sampling and evaluation use: G, unless a hook chooses another (e.g. an EMA of G)."""
        for h in reversed(self.hooks):
            g = h.sampling_generator(self)
            if g is not None:
                return g
        return self.G

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """G(z[, y]) in eval mode, on the CPU, in the data's own space, for latent vectors chosen by the caller.

        G here is :attr:`sampling_G`."""
        if z.dim() != 2 or z.shape[1] != self.G.z_dim:
            raise ValueError(f"z has shape {tuple(z.shape)}: expected (n, {self.G.z_dim}), the generator's z_dim")
        if self.G.n_classes and y is None:
            raise ValueError(f"this generator is conditional (it takes {self.G.n_classes} labels): pass labels y")
        z = z.to(self.device)
        g = self.sampling_G
        was_training = g.training
        g.eval()
        try:
            out = g(z, None if y is None else y.to(self.device))
        finally:
            g.train(was_training)
        return out.float().cpu()

    def _snapshot(self, n: int | None) -> torch.Tensor:
        if n is None:
            return self.sample(fixed=True)
        return self.sample(n, generator=torch.Generator(device=self.device).manual_seed(self.cfg.seed + 4))

    # -- checkpoints ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self.flush()
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step_count,
            "config": self.cfg.to_dict(),
            "data_source": self.data_source,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sampler": self.sampler.state_dict(),
            "z_generator": self.z_generator.get_state(),
            "hooks": {key: h.state_dict() for key, h in _keyed(self.hooks).items()},
            "history": self.history,
            "elapsed": self._elapsed,
            "rng": rng_state(),
            "world_size": self.dist.world_size,
        }
        if self.cfg.amp == "fp16":
            state["scalers"] = {which: scaler.state_dict() for which, scaler in self.scalers.items()}
        if self.preset is not None:
            state["preset"] = self.preset
        return state

    def _hook_states(self, state: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The checkpoint's hook states by key; format 1 kept them as a list in hook order (see
        :meth:`Hook.state_from_format1`)."""
        hooks = _keyed(self.hooks)
        if state["format"] == 1:
            positional = iter(state["hooks"])
            states = {key: h.state_from_format1(state, positional) for key, h in hooks.items()}
            if next(positional, None) is not None:
                raise ValueError(f"the checkpoint holds {len(state['hooks'])} hook state(s), more than this trainer's "
                                 "hooks take: pass the same hooks, in the same order, to resume")
            return states
        states = dict(state["hooks"])
        if set(states) != set(hooks):
            raise ValueError(f"the checkpoint holds states for the hooks {sorted(states)} but this trainer has the "
                             f"hooks {sorted(hooks)}: pass the same hooks to resume")
        return states

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") not in (1, CHECKPOINT_FORMAT):
            raise ValueError(f"checkpoint format {state.get('format')!r} is not one of (1, {CHECKPOINT_FORMAT})")
        states = self._hook_states(state)
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.load_state_dict(state["sampler"])
        self.z_generator.set_state(state["z_generator"])
        for key, h in _keyed(self.hooks).items():
            h.load_state_dict(states[key])
        for which, scaler_state in state.get("scalers", {}).items():
            self.scalers[which].load_state_dict(scaler_state)
        self.history = list(state["history"])
        self.step_count = int(state["step"])
        self._elapsed = float(state.get("elapsed", 0.0))
        self.preset = state.get("preset")
        self._pending = []
        set_rng_state(state["rng"])
        if state.get("world_size", 1) != self.dist.world_size:
            warnings.warn(f"the checkpoint was trained with {state.get('world_size', 1)} process(es), this run has "
                          f"{self.dist.world_size}: the global batch changes from {state.get('world_size', 1)} x "
                          f"to {self.dist.world_size} x batch_size={self.cfg.batch_size}", UserWarning, stacklevel=2)

    def save(self, out_dir: str | os.PathLike) -> str:
        """Write ``out_dir/checkpoint.pt`` atomically, after the divergence guard has passed every pending step and
        every tensor of G, D and both optimisers' states is finite (else a :class:`DivergenceError`, and nothing is
        written); temporary files that an interrupted save left in ``out_dir`` are removed first.

        Under ``torchrun`` every rank must call it (the pending records are averaged over the ranks); rank 0 writes,
        and every rank returns once the file is on disk.
        """
        path = os.path.join(os.fspath(out_dir), CHECKPOINT_NAME)
        state = self.state_dict()
        bad = first_non_finite({key: state[key] for key in ("G", "D", "opt_g", "opt_d")})
        if bad is not None:
            raise DivergenceError(self.step_count, bad, "holds NaN or infinite values", saving=True)
        if self.dist.is_main:
            if os.path.isdir(out_dir):
                remove_stale_temporaries(out_dir, RUN_FILES)
            atomic_save(state, path)
        distributed.barrier(self.dist)
        return path

    def write_outputs(self, out_dir: str | os.PathLike) -> None:
        """``config.json`` and ``history.csv`` (:meth:`write_records`) and ``samples.png`` (a grid or a 2D scatter)
        in ``out_dir`` (rank 0)."""
        if not self.dist.is_main:
            return
        self.write_records(out_dir)
        samples = self.sample(fixed=True) if self.cfg.dataset == "mnist" else self.sample(2500)
        self.save_samples_png(samples, os.path.join(out_dir, "samples.png"))

    def write_records(self, out_dir: str | os.PathLike) -> None:
        """``config.json`` (the config, ``data_source`` and, if set, ``preset``) and ``history.csv`` (the history up
        to :attr:`step_count`) in ``out_dir``, each written whole or not at all (rank 0). A resume writes them first,
        so that they describe the checkpoint's step even if the resumed run is killed."""
        if not self.dist.is_main:
            return
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        preset = {} if self.preset is None else {"preset": self.preset}
        config = {**self.cfg.to_dict(), "data_source": self.data_source, **preset}
        write_text(json.dumps(config, indent=2, sort_keys=True), os.path.join(out_dir, "config.json"))
        write_csv(self.history, os.path.join(out_dir, "history.csv"))

    def save_samples_png(self, samples: torch.Tensor, path: str | os.PathLike) -> None:
        """A picture of ``samples``: an image grid (MNIST) or a scatter over the mixture's modes (2D)."""
        import matplotlib.pyplot as plt

        from . import viz

        title = f"step {self.step_count}"
        if self.cfg.dataset == "mnist":
            fig = viz.sample_grid(samples, value_range=self.value_range, title=title)
        else:
            fig = viz.scatter_2d(samples, spec=self.cfg.dataset, title=title)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)

    @property
    def value_range(self) -> tuple[float, float]:
        return (-1.0, 1.0) if self.cfg.output == "tanh" else (0.0, 1.0)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, hooks: Iterable[Hook] = (), prior: Prior | None = None,
                        data: Any = None, device: str | None = None, **overrides: Any) -> Trainer:
        """Rebuild a trainer from ``path`` (a checkpoint file or a run folder) and restore its state exactly.

        ``overrides`` change config fields (e.g. ``steps`` to train further, ``progress``); ``device`` moves it. A
        file that is not a usable checkpoint (unreadable, missing entries, an invalid config, tensors that do not fit
        the run it describes, NaN or infinite weights) is a :class:`~gantricks.checkpoint.CheckpointError` naming it.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, CHECKPOINT_NAME)
        state = load_checkpoint(path)
        _check_state(state, path)
        try:
            cfg = TrainConfig.from_dict(state["config"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path!r}: its config is invalid ({_one_line(err)})") from err
        if device is not None:
            overrides["device"] = device
        if overrides:
            cfg = cfg.replace(**overrides)
        trainer = cls(cfg, hooks=hooks, prior=prior, data=data)
        try:
            trainer.load_state_dict(state)
        except (AttributeError, IndexError, KeyError, RuntimeError, TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path!r} does not fit the run its config describes "
                                  f"({type(err).__name__}: {_one_line(err)})") from err
        return trainer


def _one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (torch's state-dict errors span several), at most ``limit`` characters."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_state(state: dict[str, Any], path: str) -> None:
    """A loaded checkpoint has every entry of :data:`CHECKPOINT_KEYS`, a known format and finite weights."""
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} is not a gantricks checkpoint: it lacks {missing}")
    if state["format"] not in (1, CHECKPOINT_FORMAT):
        raise CheckpointError(f"checkpoint {path!r} has format {state['format']!r}, not one this version reads "
                              f"(1, {CHECKPOINT_FORMAT})")
    for key in ("config", "G", "D", "opt_g", "opt_d"):
        if not isinstance(state[key], dict):
            raise CheckpointError(f"checkpoint {path!r}: its {key!r} is a {type(state[key]).__name__}, not a dict")
    bad = first_non_finite({key: state[key] for key in ("G", "D", "opt_g", "opt_d")})
    if bad is not None:
        raise CheckpointError(f"checkpoint {path!r} holds NaN or infinite values ({bad}): the run had diverged when "
                              "it was written; resume an earlier copy or train again")


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


def train(cfg: TrainConfig | None = None, out_dir: str | os.PathLike | None = None, hooks: Iterable[Hook] = (),
          prior: Prior | None = None, **fields: Any) -> Trainer:
    """Build a :class:`Trainer` from ``cfg`` (or ``TrainConfig(**fields)``), train it, and return it."""
    cfg = cfg.replace(**fields) if cfg is not None else TrainConfig(**fields)
    trainer = Trainer(cfg, hooks=hooks, prior=prior)
    trainer.fit(out_dir=out_dir)
    return trainer
