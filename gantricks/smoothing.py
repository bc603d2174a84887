"""Label smoothing of D's targets (chapter 1 names it; Salimans et al. 2016, "Improved techniques for training GANs",
section 3.4; Szegedy et al. 2016 for classifiers).

One-sided label smoothing trains D against target ``1 - real`` on real data instead of 1, so that D's confidence on
real data is capped and G keeps a gradient where D is sure. Salimans et al. smooth the real targets only ("we only
smooth positive labels to alpha, leaving negative labels set to 0"): with a fake target beta > 0 the optimal D is
(alpha p_data + beta p_model) / (p_data + p_model), which rewards samples where the data is absent. ``fake`` > 0 is
that two-sided variant, for comparison.

It is a loss term, not a change of the loop: binary cross-entropy on logits is ``softplus(x) - t x``, so moving a
real target from 1 to 1 - s adds ``s * mean(real logits)`` to D's loss, and moving a fake target from 0 to f adds
``-f * mean(fake logits)``. :class:`LabelSmoothing` adds exactly those terms (logged as ``loss_smooth_real`` and
``loss_smooth_fake``); ``loss_d`` in the history stays the unsmoothed adversarial term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .hooks import DBatch, Hook, LossTerms
from .losses import CROSS_ENTROPY_LOSSES
from .section import Number, Section, option

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["LabelSmoothing", "SmoothingConfig"]

_TARGET = Number(0, 0.5, hi_open=True, allowed="expected a number in [0, 0.5) (0: off)")


@dataclass
class SmoothingConfig(Section):
    """Label smoothing of D's targets; both 0 (off) by default."""

    key: ClassVar[str] = "smoothing"

    real: float = option(0.0, "one-sided label smoothing: D's real targets become 1 - s (Salimans et al. 2016)",
                         _TARGET, flag="--label-smoothing", metavar="S")
    fake: float = option(0.0, "D's fake targets become s (the two-sided variant Salimans et al. advise against)",
                         _TARGET, flag="--fake-label-smoothing", metavar="S")

    def check_with(self, cfg: Any) -> None:
        if (self.real or self.fake) and cfg.loss not in CROSS_ENTROPY_LOSSES:
            self.fail("real" if self.real else "fake", f"smoothing changes cross-entropy targets; loss={cfg.loss!r} "
                      f"has none (use one of {CROSS_ENTROPY_LOSSES} or switch smoothing off)")

    def hooks(self, cfg: Any) -> list[Hook]:
        return [LabelSmoothing(self.real, self.fake)] if self.real or self.fake else []


class LabelSmoothing(Hook):
    """Adds ``real * mean(real logits) - fake * mean(fake logits)`` to D's loss: BCE against smoothed targets."""

    def __init__(self, real: float = 0.0, fake: float = 0.0) -> None:
        self.real, self.fake = _TARGET("LabelSmoothing.real", real), _TARGET("LabelSmoothing.fake", fake)

    def d_loss(self, batch: DBatch, trainer: Trainer) -> LossTerms:
        terms = {}
        if self.real:
            terms["loss_smooth_real"] = self.real * batch.real_logits.float().mean()
        if self.fake:
            terms["loss_smooth_fake"] = -self.fake * batch.fake_logits.float().mean()
        return LossTerms(sum(terms.values()), terms)  # type: ignore[arg-type]

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        return {}
