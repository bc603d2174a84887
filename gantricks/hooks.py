"""Hooks: how tricks plug into the training loop without editing it (chapter 1 explains the loop).

A hook overrides only what it needs. The loop calls, in order, for every step:

* ``d_input(x, step, trainer)`` on every batch D sees (real and fake alike), e.g. instance noise (chapter 2);
* ``before_optimizer_step(which, model, trainer)`` after each backward pass, with ``which`` in ``{"d", "g"}``,
  e.g. gradient clipping (chapter 4); it may return a dict of values to log;
* ``on_step_end(step, record, trainer)`` once the step is done, e.g. a learning-rate controller (chapter 4); it may
  add entries to ``record`` (0-d tensors or numbers), which end up in the history. ``trainer.d_logits`` holds the
  ``(real, fake)`` logits of the step's last D update (detached), for hooks that react to D's judgements.

A hook with state implements ``state_dict``/``load_state_dict`` so that checkpoints resume it exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["Hook"]


class Hook:
    """Base class: every method is a no-op."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Called once before the first step of :meth:`Trainer.fit` (also after a resume)."""

    def d_input(self, x: torch.Tensor, step: int, trainer: Trainer) -> torch.Tensor:
        """Transform a batch before D sees it."""
        return x

    def before_optimizer_step(self, which: str, model: torch.nn.Module, trainer: Trainer) -> dict[str, Any] | None:
        """Inspect or change gradients of ``model`` (``which`` is ``"d"`` or ``"g"``) before its update."""
        return None

    def on_step_end(self, step: int, record: dict[str, Any], trainer: Trainer) -> None:
        """React to a finished step; add values to ``record`` to log them."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
