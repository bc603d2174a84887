"""The training loop (chapter 1, "The baseline GAN"): k discriminator updates, then one generator update.

The loop reads like the algorithm of Goodfellow et al. (2014, Algorithm 1) with the non-saturating generator loss;
tricks plug in through a latent prior object (chapter 2), the optimiser factory (chapter 3), :class:`Hook`s
(chapters 2 and 4) and a :class:`~gantricks.latent.LatentCode` that says what G and D get as labels and which
class terms join the losses (chapter 5), never through ``if`` branches here. Per step it records every loss term,
mean D(x), mean D(G(z)), both learning rates, both gradient norms (before any clipping) and the wall time (``loss_d``
and ``loss_g`` are the adversarial terms; ACGAN's class terms are logged beside them); values stay on the device
and are read back every ``cfg.sync_every`` steps, so a CUDA run does not wait for the host each step.

Checkpoints hold the models, optimisers, sampler(s), latent RNG, hook states, history, global RNG states and the
step; training N steps straight and training k, saving, resuming and finishing give identical parameters on the CPU.
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
from .checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state, write_csv
from .config import TrainConfig, resolve_device
from .data import TensorSampler, load_mnist, mixture_2d
from .hooks import Hook
from .latent import LatentCode, build_latent, partial_labels
from .losses import discriminator_loss, generator_loss
from .models import build_models
from .noise import Prior, build_prior, noise_hooks
from .optim import build_optimizers
from .regulate import regulate_hooks

__all__ = ["CHECKPOINT_NAME", "NonFiniteLossError", "Trainer", "config_hooks", "load_data", "train"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; ``step`` is the first step where it happened."""

    def __init__(self, step: int, values: dict[str, float]) -> None:
        self.step = step
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        super().__init__(
            f"training stopped: non-finite loss at step {step} ({shown}). No checkpoint was written after it; "
            "the last checkpoint on disk is intact. Try a lower learning rate, gradient clipping or fp32."
        )


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
    return noise_hooks(cfg) + regulate_hooks(cfg)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@contextlib.contextmanager
def _batch_stats_only(model: nn.Module) -> Any:
    """BatchNorm layers of ``model`` normalise with the batch's own statistics and leave their running stats alone.

    For the extra labelled batch (``latent.labelled_batch``): in training mode a BatchNorm layer normalises with the
    statistics of the batch in front of it whatever we do, so the labelled batch is normalised by its own statistics,
    as the real and the fake batches are by theirs (DCGAN's separate batches); switching ``track_running_stats``
    off for that forward keeps the running mean/variance and ``num_batches_tracked`` exactly what the adversarial
    batches make them, as if the extra batch did not exist (they are what D uses in eval mode).
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


def _grad_norm(model: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class Trainer:
    """Holds a run: config, data sampler, G, D, optimisers, prior, hooks, history; :meth:`fit` trains it.

    ``data`` may replace the configured dataset: a tensor of data points, or a tuple ``(points, labels)``.
    ``prior`` replaces the prior that ``cfg.noise`` describes; ``hooks`` are added after the hooks the config
    switches on (:func:`config_hooks`; see :mod:`gantricks.hooks`). A prior that is an ``nn.Module`` (e.g. a
    :class:`~gantricks.latent.MixturePrior`) becomes ``G.latent_prior``: G's optimiser trains its parameters and G's
    checkpoint holds them. With ``latent.labelled_fraction`` < 1 the real labels outside the labelled subset are -1
    (:func:`~gantricks.latent.partial_labels`, seed ``latent.label_seed`` or the run's seed). With
    ``latent.labelled_batch`` > 0, :attr:`labelled_sampler` draws that many images per D update (per rank; under
    ``torchrun`` the ranks take disjoint slices of one global batch, as the main sampler does) from the labelled
    subset alone, from seed ``seed + 7``; it yields ``(images, labels, index into the dataset)`` and its state is in
    the checkpoint. Otherwise :attr:`labelled_sampler` is ``None``. :attr:`preset` names the run preset the config
    came from (:mod:`gantricks.presets`; ``None``: none, or not recorded), a label only: the checkpoint and
    ``config.json`` keep it, and it changes nothing in training.
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
        lc = cfg.latent
        if lc.labelled_fraction < 1:
            seed = cfg.seed if lc.label_seed is None else lc.label_seed
            tensors = (tensors[0], partial_labels(tensors[1], lc.labelled_fraction, seed), *tensors[2:])
        torch.manual_seed(cfg.seed)
        self.G, self.D = build_models(cfg, tensors[0].shape[1:])
        self.G.to(self.device)
        self.D.to(self.device)
        self.prior: Prior = prior if prior is not None else build_prior(cfg)
        if self.prior.dim != self.G.z_dim:
            raise ValueError(f"prior.dim={self.prior.dim} does not match the generator's z_dim={self.G.z_dim}")
        self.latent: LatentCode = build_latent(cfg)
        if self.latent.component_to_g and not hasattr(self.prior, "sample_with_components"):
            raise ValueError(f"latent.mixture_to_g needs a prior with sample_with_components, not {self.prior!r}")
        if isinstance(self.prior, nn.Module):  # learnt latent parameters train, sync and save with G
            self.G.add_module("latent_prior", self.prior.to(self.device))
        self.opt_g, self.opt_d = build_optimizers(self.G, self.D, cfg.optim, self.device)
        self.sampler = TensorSampler(*tensors[: 2 if cfg.n_classes else 1], batch_size=cfg.batch_size,
                                     seed=cfg.seed, device=self.device, rank=self.dist.rank,
                                     world_size=self.dist.world_size)
        self.labelled_sampler: TensorSampler | None = None
        if lc.labelled_batch:
            index = torch.nonzero(tensors[1] >= 0).squeeze(1)
            w = self.dist.world_size
            if lc.labelled_batch * w > index.numel():
                raise ValueError(f"latent.labelled_batch={lc.labelled_batch!r} is invalid: the labelled subset holds "
                                 f"{index.numel()} images, fewer than labelled_batch x world_size = "
                                 f"{lc.labelled_batch} x {w}; use at most {index.numel() // w}")
            self.labelled_sampler = TensorSampler(tensors[0][index], tensors[1][index], index,
                                                  batch_size=lc.labelled_batch, seed=cfg.seed + 7,
                                                  device=self.device, rank=self.dist.rank, world_size=w)
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

    # -- one step ---------------------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.amp == "bf16":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _latent(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.dist.world_size  # every rank draws the global batch and keeps its own slice
        z, y = self.latent.draw(self.prior, n * w, self.device, self.z_generator)
        return distributed.rank_slice(z, self.dist), None if y is None else distributed.rank_slice(y, self.dist)

    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        for h in self.hooks:
            x = h.d_input(x, self.step_count, self)
        return x

    def _before_update(self, which: str, model: nn.Module, record: dict[str, Any]) -> None:
        record[f"grad_norm_{which}"] = _grad_norm(model)
        for h in self.hooks:
            extra = h.before_optimizer_step(which, model, self)
            if extra:
                record.update(extra)

    def _discriminate(self, real: torch.Tensor, y_real: torch.Tensor | None, fake: torch.Tensor,
                      y_fake: torch.Tensor | None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """``((real logits, real class logits), (fake logits, fake class logits))``; class logits may be None."""
        if not self.joint_d:  # BatchNorm in D: separate real and fake batches, as DCGAN does
            return self._d_update(real, y_real, with_aux=True), self._d_update(fake, y_fake, with_aux=True)
        y = None if y_real is None else torch.cat([y_real, y_fake])
        n = real.shape[0]
        logits, cls = self._d_update(torch.cat([real, fake]), y, with_aux=True)
        return (logits[:n], None if cls is None else cls[:n]), (logits[n:], None if cls is None else cls[n:])

    def _labelled_class_logits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """D's class logits on the next extra batch of labelled reals, and its labels (``latent.labelled_batch``).

        A forward of its own (never in the adversarial batch), through the same input hooks as the reals (instance
        noise: the class head sees what it sees on real images) and, for a D with BatchNorm, with the running
        statistics left alone (:func:`_batch_stats_only`).
        """
        x, y, _ = self.labelled_sampler.next()
        with self._autocast(), _batch_stats_only(self.D):
            _, cls = self._d_update(self._d_input(x), None, with_aux=True)
        return cls, y

    def step(self) -> dict[str, Any]:
        """One training step: ``cfg.d_steps`` D updates, then one G update. Returns the (device) record."""
        cfg, n = self.cfg, self.cfg.batch_size
        record: dict[str, Any] = {}
        for _ in range(cfg.d_steps):
            real, *rest = self.sampler.next()
            y_real = rest[0] if rest else None
            z, y_fake = self._latent(n)
            with torch.no_grad(), self._autocast():
                fake = self._g(z, y_fake)
            d_labels = self.latent.d_labels
            with self._autocast():
                (real_logits, real_cls), (fake_logits, fake_cls) = self._discriminate(
                    self._d_input(real), d_labels(y_real), self._d_input(fake), d_labels(y_fake))
            terms = discriminator_loss(real_logits.float(), fake_logits.float(), cfg.label_smoothing)
            extra = self._labelled_class_logits() if self.labelled_sampler is not None else ()
            loss_d, aux_terms = self.latent.d_loss(terms["loss_d"], real_cls, y_real, fake_cls, y_fake, *extra)
            self.d_logits = (real_logits.detach(), fake_logits.detach())
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self._before_update("d", self.D, record)
            self.opt_d.step()
        self.D.requires_grad_(False)  # G's backward pass needs no gradients for D's weights
        try:
            z, y_fake = self._latent(n)
            with self._autocast():
                g_logits, g_cls = self._d(self._d_input(self._g(z, y_fake)), self.latent.d_labels(y_fake),
                                          with_aux=True)
            loss_g = generator_loss(g_logits.float(), cfg.loss)
            objective_g, aux_g = self.latent.g_loss(loss_g, g_cls, y_fake, self.prior)
            self.opt_g.zero_grad(set_to_none=True)
            objective_g.backward()
            self._before_update("g", self.G, record)
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        self.step_count += 1
        with torch.no_grad():
            record.update({k: v.detach() for k, v in (*terms.items(), *aux_terms.items(), *aux_g.items())})
            record.update(loss_g=loss_g.detach(), d_real=torch.sigmoid(real_logits.float()).mean(),
                          d_fake=torch.sigmoid(fake_logits.float()).mean())
        record["lr_g"] = self.opt_g.param_groups[0]["lr"]
        record["lr_d"] = self.opt_d.param_groups[0]["lr"]
        for h in self.hooks:
            h.on_step_end(self.step_count, record, self)
        record["step"] = self.step_count
        record["time"] = self.elapsed
        self._pending.append(record)
        if self.step_count % cfg.sync_every == 0:
            self.flush()
        return record

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
            self.history.append(row)

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
        if self.latent.component_to_g:
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
        return self.generate(z, k if self.latent.component_to_g else None), k.cpu()

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """G(z[, y]) in eval mode, on the CPU, in the data's own space, for latent vectors chosen by the caller."""
        if z.dim() != 2 or z.shape[1] != self.G.z_dim:
            raise ValueError(f"z has shape {tuple(z.shape)}: expected (n, {self.G.z_dim}), the generator's z_dim")
        if self.G.n_classes and y is None:
            raise ValueError(f"this generator is conditional (it takes {self.G.n_classes} labels): pass labels y")
        z = z.to(self.device)
        was_training = self.G.training
        self.G.eval()
        try:
            out = self.G(z, None if y is None else y.to(self.device))
        finally:
            self.G.train(was_training)
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
            "hooks": [h.state_dict() for h in self.hooks],
            "history": self.history,
            "elapsed": self._elapsed,
            "rng": rng_state(),
            "world_size": self.dist.world_size,
        }
        if self.labelled_sampler is not None:
            state["labelled_sampler"] = self.labelled_sampler.state_dict()
        if self.preset is not None:
            state["preset"] = self.preset
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        if len(state["hooks"]) != len(self.hooks):
            raise ValueError(f"the checkpoint holds {len(state['hooks'])} hook state(s) but this trainer has "
                             f"{len(self.hooks)} hook(s): pass the same hooks, in the same order, to resume")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.load_state_dict(state["sampler"])
        if self.labelled_sampler is not None:
            self.labelled_sampler.load_state_dict(state["labelled_sampler"])
        self.z_generator.set_state(state["z_generator"])
        for h, s in zip(self.hooks, state["hooks"]):
            h.load_state_dict(s)
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
        """Write ``out_dir/checkpoint.pt`` atomically (after checking every pending loss is finite).

        Under ``torchrun`` every rank must call it (the pending records are averaged over the ranks); rank 0 writes,
        and every rank returns once the file is on disk.
        """
        path = os.path.join(os.fspath(out_dir), CHECKPOINT_NAME)
        state = self.state_dict()
        if self.dist.is_main:
            atomic_save(state, path)
        distributed.barrier(self.dist)
        return path

    def write_outputs(self, out_dir: str | os.PathLike) -> None:
        """``config.json`` (the config, ``data_source`` and, if set, ``preset``), ``history.csv`` and ``samples.png``
        (a grid or a 2D scatter) in ``out_dir`` (rank 0)."""
        if not self.dist.is_main:
            return
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
            preset = {} if self.preset is None else {"preset": self.preset}
            json.dump({**self.cfg.to_dict(), "data_source": self.data_source, **preset}, f, indent=2, sort_keys=True)
        write_csv(self.history, os.path.join(out_dir, "history.csv"))
        samples = self.sample(fixed=True) if self.cfg.dataset == "mnist" else self.sample(2500)
        self.save_samples_png(samples, os.path.join(out_dir, "samples.png"))

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

        ``overrides`` change config fields (e.g. ``steps`` to train further, ``progress``); ``device`` moves it.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, CHECKPOINT_NAME)
        state = load_checkpoint(path)
        cfg = TrainConfig.from_dict(state["config"])
        if device is not None:
            overrides["device"] = device
        if overrides:
            cfg = cfg.replace(**overrides)
        trainer = cls(cfg, hooks=hooks, prior=prior, data=data)
        trainer.load_state_dict(state)
        return trainer


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


def train(cfg: TrainConfig | None = None, out_dir: str | os.PathLike | None = None, hooks: Iterable[Hook] = (),
          prior: Prior | None = None, **fields: Any) -> Trainer:
    """Build a :class:`Trainer` from ``cfg`` (or ``TrainConfig(**fields)``), train it, and return it."""
    cfg = cfg.replace(**fields) if cfg is not None else TrainConfig(**fields)
    trainer = Trainer(cfg, hooks=hooks, prior=prior)
    trainer.fit(out_dir=out_dir)
    return trainer
