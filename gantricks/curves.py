"""Learning curves and time to quality ("How we measure"): a run evaluated at fixed steps, not only at its end.

A GAN's metrics at one budget say little about a recipe: two runs with the same end point may have got there at very
different speeds, and a run still improving steeply has not converged. :func:`fit_with_curve` trains a
:class:`~gantricks.train.Trainer` to each of a list of steps in turn and evaluates it there (fixed latent draws, G in
eval mode, as :func:`gantricks.experiments.evaluate` does), so a curve point is a function of the weights at that
step only. Evaluation and checkpoint writes happen between :meth:`~gantricks.train.Trainer.fit` calls, so a point's
``seconds`` is training time alone (:attr:`~gantricks.train.Trainer.elapsed`).

The points live in the run's checkpoint (the :class:`CurveRecord` hook keeps them), so a killed study resumes an
unfinished run from its last checkpoint with the curve it had. **Time to quality** (:func:`time_to_quality`) is the
first point that meets a target: for the 2D mixtures every mode captured with at least 90 % high-quality samples
(:func:`target_2d`, the level PacGAN's plain GAN reports: 98.2 % on ring8, 94.8 % on grid25); for MNIST a Frechet
distance and a number of digits (:func:`target_mnist`). A run that never meets it has no time, and tables count it
as such rather than leaving it out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .hooks import Hook

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["HQ_TARGET", "CurveRecord", "Target", "curve_steps", "fit_with_curve", "summarize_curves",
           "summarize_time_to_quality", "target_2d", "target_for", "target_mnist", "time_to_quality", "value_at"]

HQ_TARGET = 0.9
"""The high-quality share a 2D run must reach (with every mode captured) to count as having reached quality."""

Target = Callable[[Mapping[str, float]], bool]


class CurveRecord(Hook):
    """Holds a run's curve points so that its checkpoint keeps them; it changes nothing in training."""

    key = "curve"

    def __init__(self) -> None:
        self.points: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"points": [dict(p) for p in self.points]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.points = [dict(p) for p in state["points"]]

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Any) -> dict[str, Any]:
        return {"points": []}


def curve_steps(steps: int, every: int) -> list[int]:
    """``every``, ``2 * every``, ... up to ``steps``, and ``steps`` itself.

    >>> curve_steps(1000, 300)
    [300, 600, 900, 1000]
    """
    for name, v in (("steps", steps), ("every", every)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"curve_steps: {name}={v!r} is invalid: expected a positive integer")
    return sorted({*range(every, steps + 1, every), steps})


def fit_with_curve(trainer: Trainer, at: Sequence[int], evaluate: Callable[[Trainer], Mapping[str, float]],
                   save: Callable[[Trainer], None] | None = None) -> list[dict[str, float]]:
    """Train ``trainer`` to each step in ``at`` (ascending), evaluate it there and return the curve points.

    A point is ``{"step", "seconds", **metrics}``, ``seconds`` being training time so far. The trainer must carry a
    :class:`CurveRecord` hook (``Trainer(cfg, hooks=[CurveRecord()])``): points already in it (a resumed run) are
    kept, and steps the trainer has passed are not trained again. ``save(trainer)`` runs after each point (e.g. a
    checkpoint), so the checkpoint always holds the curve up to its step.
    """
    record = trainer.hook(CurveRecord.key)
    assert isinstance(record, CurveRecord)
    steps = sorted(set(at))
    if not steps or steps[0] <= 0:
        raise ValueError(f"fit_with_curve: at={list(at)!r}: expected positive steps")
    for s in steps:
        if any(p["step"] == s for p in record.points):
            continue
        if trainer.step_count > s:
            continue  # a resumed run that passed s without its point (cannot happen when save follows every point)
        if trainer.step_count < s:
            trainer.fit(steps=s)
        metrics = {k: float(v) for k, v in evaluate(trainer).items()}
        record.points.append({"step": s, "seconds": trainer.elapsed, **metrics})
        if save is not None:
            save(trainer)
    return [dict(p) for p in record.points]


def target_2d(n_modes: int, high_quality: float = HQ_TARGET) -> Target:
    """Every one of ``n_modes`` modes captured and at least ``high_quality`` of the samples high quality."""
    def reached(point: Mapping[str, float]) -> bool:
        return point.get("modes", 0) >= n_modes and point.get("high_quality", 0.0) >= high_quality
    reached.__doc__ = f"all {n_modes} modes and high_quality >= {high_quality}"
    return reached


def target_mnist(frechet: float, digits: int = 10) -> Target:
    """A Frechet distance (the book's digit classifier) at most ``frechet`` with at least ``digits`` digits drawn."""
    def reached(point: Mapping[str, float]) -> bool:
        f = point.get("frechet", math.inf)
        return point.get("digits_covered", 0) >= digits and not math.isnan(f) and f <= frechet
    reached.__doc__ = f"frechet <= {frechet} and digits_covered >= {digits}"
    return reached


def target_for(dataset: str, frechet: float | None = None) -> Target | None:
    """The default target of a dataset: :func:`target_2d` for the mixtures; for MNIST :func:`target_mnist` when a
    ``frechet`` threshold is given, else ``None`` (no time to quality)."""
    from .data import mixture_spec

    if dataset == "mnist":
        return None if frechet is None else target_mnist(frechet)
    return target_2d(int(mixture_spec(dataset).centers.shape[0]))


def time_to_quality(points: Sequence[Mapping[str, float]], target: Target) -> dict[str, float] | None:
    """``{"step", "seconds"}`` of the first point (in step order) that meets ``target``; ``None`` if none does."""
    for p in sorted(points, key=lambda p: p["step"]):
        if target(p):
            return {"step": int(p["step"]), "seconds": float(p["seconds"])}
    return None


def _quantile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation (numpy's default); ``inf`` entries sort last."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = sorted_values[lo], sorted_values[hi]
    if lo == hi or a == b:
        return a
    if math.isinf(b):
        return math.inf if pos > lo else a
    return a + (b - a) * (pos - lo)


def summarize_time_to_quality(rows: Sequence[Mapping[str, Any]], by: str = "config") -> list[dict[str, Any]]:
    """Per group: runs, runs that reached the target, and the median, 25 % and 75 % quantiles of ``ttq_step`` and
    ``ttq_seconds`` with runs that never reached it counted as infinitely slow (so a median is ``inf`` when half or
    more never got there)."""
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        if "ttq_step" in r:
            groups.setdefault(r[by], []).append(r)
    out = []
    for key, members in groups.items():
        entry: dict[str, Any] = {by: key, "n": len(members),
                                 "reached": sum(r["ttq_step"] is not None for r in members)}
        for col in ("ttq_step", "ttq_seconds"):
            vals = sorted(math.inf if r[col] is None else float(r[col]) for r in members)
            entry[f"{col}_median"] = _quantile(vals, 0.5)
            entry[f"{col}_q25"] = _quantile(vals, 0.25)
            entry[f"{col}_q75"] = _quantile(vals, 0.75)
        out.append(entry)
    return out


def summarize_curves(rows: Sequence[Mapping[str, Any]], metric: str, by: str = "config"
                     ) -> dict[Any, dict[str, list[float]]]:
    """Per group, the steps at which every run of the group has a point, and the mean, std, min and max of
    ``metric`` over the runs there: ``{group: {"step", "mean", "std", "min", "max", "n"}}``."""
    groups: dict[Any, list[dict[int, float]]] = {}
    for r in rows:
        curve = r.get("curve")
        if curve and metric in curve:
            groups.setdefault(r[by], []).append(dict(zip(curve["step"], curve[metric])))
    out: dict[Any, dict[str, list[float]]] = {}
    for key, runs in groups.items():
        steps = sorted(set.intersection(*(set(run) for run in runs)))
        entry: dict[str, list[float]] = {"step": steps, "mean": [], "std": [], "min": [], "max": [], "n": []}
        for s in steps:
            vals = [run[s] for run in runs if not math.isnan(run[s])]
            mean = sum(vals) / len(vals) if vals else math.nan
            var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
            entry["mean"].append(mean)
            entry["std"].append(math.sqrt(var))
            entry["min"].append(min(vals) if vals else math.nan)
            entry["max"].append(max(vals) if vals else math.nan)
            entry["n"].append(len(vals))
        out[key] = entry
    return out


def columns(points: Sequence[Mapping[str, float]]) -> dict[str, list[float]]:
    """Curve points as columns, ``{"step": [...], "seconds": [...], metric: [...]}``, in step order."""
    pts = sorted(points, key=lambda p: p["step"])
    keys = list(dict.fromkeys(k for p in pts for k in p))
    return {k: [p.get(k, math.nan) for p in pts] for k in keys}


def value_at(curve: Mapping[str, Sequence[float]], metric: str, at: float,
             x: str = "seconds") -> dict[str, float] | None:
    """What a stored curve (a row's ``curve``: columns ``step``, ``seconds``, metrics) had reached by ``at``: the point
    of the last evaluation with ``x <= at`` (``x`` is ``"seconds"`` of training or ``"step"``), as ``{"step",
    "seconds", metric}``; ``None`` when the first evaluation came later. Used to compare models at equal training
    time (chapter 1: the DCGAN and the MLP); no value between two evaluations is invented.

    >>> value_at({"step": [10, 20], "seconds": [1.0, 2.5], "frechet": [90.0, 70.0]}, "frechet", 2.0)
    {'step': 10, 'seconds': 1.0, 'frechet': 90.0}
    """
    if x not in ("seconds", "step"):
        raise ValueError(f"value_at: x={x!r} is invalid: expected 'seconds' or 'step'")
    for name in (x, metric):
        if name not in curve:
            raise ValueError(f"value_at: the curve has no {name!r} column (it has {sorted(curve)})")
    best = None
    for i, v in enumerate(curve[x]):
        if v <= at and (best is None or v >= curve[x][best]):
            best = i
    if best is None:
        return None
    return {"step": int(curve["step"][best]), "seconds": float(curve["seconds"][best]),
            metric: float(curve[metric][best])}
