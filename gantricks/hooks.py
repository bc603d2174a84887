"""Hooks: the one interface through which a trick changes training (chapter 1 explains the loop it plugs into).

A hook overrides only what it needs. For every step, the loop (:meth:`gantricks.train.Trainer.step`) calls:

* ``d_input(x, step, trainer)`` on every batch D sees (real and fake alike), e.g. instance noise (chapter 2);
* ``d_loss(batch, trainer)`` after D's adversarial loss, with a :class:`DBatch` (inputs, labels, logits and D's
  auxiliary outputs); it returns :class:`LossTerms`: a term added to D's objective (or ``None``) and named values
  for the history, e.g. ACGAN's class terms (chapter 5), label smoothing, a gradient penalty;
* ``g_loss(batch, trainer)`` likewise for G's objective, with a :class:`GBatch`;
* ``before_optimizer_step(which, model, trainer)`` after each backward pass (``which`` is ``"d"`` or ``"g"``),
  e.g. gradient clipping (chapter 4); it may return a dict of values to log;
* ``on_step_end(step, record, trainer)`` once the step is done, e.g. a learning-rate controller (chapter 4); it may
  add entries to ``record`` (0-d tensors or numbers), which end up in the history. ``trainer.d_logits`` holds the
  ``(real, fake)`` logits of the step's last D update (detached), for hooks that react to D's judgements.

Around the steps: ``setup(trainer)`` once the trainer is built (e.g. a sampler of its own), ``on_train_start``
before the first step of every :meth:`~gantricks.train.Trainer.fit`, and ``sampling_generator(trainer)``, which
may return the network that sampling and evaluation use instead of G (what an exponential moving average of G's
weights needs).

State: a hook with state implements ``state_dict``/``load_state_dict``. The checkpoint keeps it under the hook's
:attr:`Hook.key` (its class name unless it says otherwise; a second hook with the same key gets ``#2``), as
Lightning's ``Callback.state_key`` does, so adding or reordering tricks never mixes states up. A hook that draws
random numbers subclasses :class:`RandomHook`: its own seeded generator, whose state is the hook's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["DBatch", "GBatch", "Hook", "LossTerms", "RandomHook"]


class LossTerms(NamedTuple):
    """What a hook adds to an objective: ``loss`` (already weighted; ``None``: nothing) and values to ``log``."""

    loss: torch.Tensor | None = None
    log: dict[str, torch.Tensor] = {}


@dataclass
class DBatch:
    """One D update as hooks see it: D's inputs (after :meth:`Hook.d_input`), labels (``None`` when the run has
    none; -1 where a real label is hidden), logits and auxiliary outputs (``None`` without an auxiliary head)."""

    real: torch.Tensor
    y_real: torch.Tensor | None
    fake: torch.Tensor
    y_fake: torch.Tensor | None
    real_logits: torch.Tensor
    fake_logits: torch.Tensor
    real_aux: torch.Tensor | None
    fake_aux: torch.Tensor | None


@dataclass
class GBatch:
    """One G update as hooks see it: z, G's labels, G's samples (D's input), D's logits and auxiliary outputs."""

    z: torch.Tensor
    y: torch.Tensor | None
    fake: torch.Tensor
    logits: torch.Tensor
    aux: torch.Tensor | None


class Hook:
    """Base class: every method is a no-op."""

    @property
    def key(self) -> str:
        """The name this hook's state is saved under in checkpoints."""
        return type(self).__name__

    def setup(self, trainer: Trainer) -> None:
        """Called once, at the end of :class:`~gantricks.train.Trainer`'s construction (before any resume)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Called once before the first step of :meth:`Trainer.fit` (also after a resume)."""

    def d_input(self, x: torch.Tensor, step: int, trainer: Trainer) -> torch.Tensor:
        """Transform a batch before D sees it."""
        return x

    def d_loss(self, batch: DBatch, trainer: Trainer) -> LossTerms | None:
        """A term for D's objective and values to log (``None``: nothing)."""
        return None

    def g_loss(self, batch: GBatch, trainer: Trainer) -> LossTerms | None:
        """A term for G's objective and values to log (``None``: nothing)."""
        return None

    def before_optimizer_step(self, which: str, model: torch.nn.Module, trainer: Trainer) -> dict[str, Any] | None:
        """Inspect or change gradients of ``model`` (``which`` is ``"d"`` or ``"g"``) before its update."""
        return None

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        """React to a finished step; add values to ``record`` to log them."""

    def sampling_generator(self, trainer: Trainer) -> torch.nn.Module | None:
        """The network to sample and evaluate with instead of ``trainer.G`` (``None``: no opinion)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """This hook's state in a format-1 checkpoint, which kept hook states as a list, in the order of the hooks.

        Hooks that existed then take the next state of that list (the default). A hook added since, which had no
        entry in the list, overrides this to read what format 1 kept elsewhere (or nothing).
        """
        return next(positional, {})


class RandomHook(Hook):
    """A hook that draws its random numbers from its own generator on the device, seeded with ``seed``; the
    generator's state is the hook's checkpointed state, so a resumed run draws what the straight one drew."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self._generator: torch.Generator | None = None
        self._state: torch.Tensor | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        """The hook's generator on ``device`` (created on first use, from the seed or a loaded state)."""
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._state is not None:
                self._generator.set_state(self._state)
        return self._generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._generator.get_state() if self._generator is not None else self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state, self._generator = state["generator"], None
