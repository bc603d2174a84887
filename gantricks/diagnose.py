"""Diagnose a GAN run (chapter 7, "Challenges"): name its failure from the history and the metrics.

The failures are the classic ones: the discriminator wins and the generator's gradient vanishes (Goodfellow et al.
2014, section 3; Arjovsky & Bottou 2017, "Towards principled methods for training GANs"), gradients explode
(Pascanu et al. 2013), the game stops moving, a learning-rate controller runs to its bound (chapter 4), and the
generator drops modes or misses them (Salimans et al. 2016; VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al.
2018). :func:`diagnose` reads :attr:`gantricks.train.Trainer.history` (one row per step); :func:`diagnose_metrics`
reads :func:`gantricks.experiments.evaluate`'s metrics; :func:`report` prints what they found, with advice that
names the chapter whose trick treats it (:data:`SYMPTOMS` is the table).

History symptoms, over trailing windows of ``window`` rows (steps). A finding's ``step`` is the last step of the first
window in which the symptom holds (the step at which a monitor watching the run would have raised it):

* ``d_wins``: mean ``loss_d`` < ``d_loss_floor`` (0.2) and mean ``d_fake`` < ``d_fake_floor`` (0.05); a balanced
  non-saturating GAN sits near ``loss_d`` = 2 ln 2 = 1.39 and D(G(z)) = 0.5.
* ``vanishing_g_grad``: the median of ``grad_norm_g`` < ``vanish_ratio`` (0.01) x its largest window median so far
  (the first window's, unless G's gradient grew first), or < ``vanish_floor`` (1e-3).
* ``exploding_grad``: one step's ``grad_norm_g`` or ``grad_norm_d`` > ``explode_ratio`` (100) x the largest median
  of up to ``window`` steps before any earlier step (at least min(3, ``window``) of them), or not finite; the finding
  names the network. The reference follows the run because a healthy ring8 run's G gradient grows steadily: its
  window median reached 67-107x the first window's by step 1,500 and 293x by step 5,000; and it is the *largest*
  median so far, so that a gradient coming back after a spell near zero is not an explosion.
* ``d_fake_stuck``: the standard deviation of ``d_fake`` < ``stuck_std`` (5e-4); the finding says where it stuck.
* ``lr_at_bound``: ``lr_g`` (or ``lr_d``, when the rows have it) constant for a whole window, at the highest or lowest
  value it has taken and at least ``lr_ratio`` (5) x away from its first value: chapter 4's source rule running G's
  learning rate to its ceiling. A window no longer than the controller's interval (50 steps in chapter 4) sees each
  stair of its climb as a plateau.

A history with fewer rows than ``window`` or without one of :data:`HISTORY_COLUMNS` is a ``ValueError`` that says
what to pass; for a run stopped by :class:`~gantricks.train.NonFiniteLossError`, pass a smaller ``window``.
Non-finite values never crash it: a non-finite gradient norm is ``exploding_grad``; a window holding a non-finite
loss or D(G(z)) trips nothing.

Metric symptoms (:func:`diagnose_metrics`): ``mode_collapse`` (ring8 ``modes`` < 6 of 8, grid25 < 20 of 25, MNIST
``digits_covered`` < 8 of 10; ``min_modes`` overrides) and ``low_quality`` (2D ``high_quality`` < 0.05, the fraction
of samples within 3 standard deviations of a mode as VEEGAN and PacGAN count it; see :mod:`gantricks.metrics`).

Calibration (CPU, one thread). Healthy runs with :class:`~gantricks.config.TrainConfig`'s defaults: ring8 1,500 steps
x 5 seeds and 5,000 steps, grid25 1,500 steps x 2 seeds, MNIST (MLP) 1,000 steps x 2 seeds; none has a finding at
window 50, 100 or 200. Their extremes over every 200-step window: mean ``loss_d`` >= 1.01 (threshold 0.2); mean
``d_fake`` >= 0.39 (0.05); median ``grad_norm_g`` >= 0.24 x its largest so far (0.01) and >= 0.07 (1e-3); one step's
gradient norm <= 4.8 x the median of the 200 steps before it (100); std of ``d_fake`` >= 1.8e-3 (ring8 around steps
300-650, while G and D both sit near 0.5; MNIST >= 0.047; threshold 5e-4); ``lr_g`` constant. Metrics, from the
stored grids of chapters 1-5 (5 seeds, 3,000-5,000 steps): the baselines give ring8 6-8 modes, grid25 14-24 (PacGAN's
GAN: 17.3, which it calls partial collapse, so 20 flags it) and MNIST 6-9 digits (the plain GAN's 7.2 that instance
noise lifts to 9.2 in chapter 2); ``high_quality`` is >= 0.083 for every config that trains and <= 0.031 for those
that fail (SGD with momentum 0.9: ring8 0.003, grid25 0.016; the source's Adam and torch's default Adam on grid25:
0.015 and 0.021). PacGAN's own bar of 0.5 would flag every grid25 run in the book. Metrics after 1,500 steps are not
converged: the default ring8 run then had 7-8 modes with ``high_quality`` 0.05-0.43, grid25 11-15 modes.

Recipes that trip each history symptom (CPU, seed 0 unless said, ``progress=False``; window 200 unless said):

* ``d_wins``: ring8, ``d_steps=5, loss="minimax", optim={"lr_d": 2e-3}``: step 224-226 (seeds 0-2; window 100:
  129-160). MNIST, ``loss="minimax", d_steps=5``: step 200 (the first window), mean ``loss_d`` 0.05-0.06.
* ``vanishing_g_grad`` and ``d_fake_stuck``: MNIST, ``loss="minimax", d_steps=5``, 600 steps: D(G(z)) falls to 4e-5
  and G's gradient from 0.4 to 3e-4; ``d_fake_stuck`` at step 289-300 (D(G(z)) stuck at 7e-4), ``vanishing_g_grad``
  at 443-453 (seeds 0-1). The same with ``loss="ns"`` (chapter 1's loss): ``d_wins`` at 368, no vanishing.
* ``exploding_grad``: ring8, ``optim={"name": "sgd", "lr_g": 0.02, "lr_d": 0.02, "momentum": 0.9}``: losses turn
  non-finite at step 174-386 (seeds 2, 1, 0); ``diagnose(trainer.history, window=50)`` finds it at 160-384. At lr 0.1
  they turn non-finite at step 27; window 10 finds it at step 15. Adam at ``lr_g = lr_d = 0.05`` never does: D's
  gradient reaches 1.1e5 at step 570 (any window 50-200) and G ends on 1 mode.
* ``lr_at_bound``: MNIST, ``regulate={"fp_control": "source"}``: lr_g climbs x1.25 every 50 steps to its 2e-3
  ceiling at step 551 (seeds 0-1); found at step 750 (window 100: 650). On ring8 the rule never moved lr_g in 1,500
  steps: the false-positive rate stayed inside its band.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HISTORY_COLUMNS", "HISTORY_THRESHOLDS", "METRIC_THRESHOLDS", "MIN_MODES", "SYMPTOMS", "Finding", "diagnose",
           "diagnose_metrics", "report"]

SYMPTOMS: dict[str, dict[str, str]] = {
    "d_wins": {"description": "the discriminator wins: D's loss near 0 and D(G(z)) near 0, every fake rejected",
               "chapter": "chapter 3 (Optimisers: TTUR), chapter 2 (Noise inputs: instance noise)"},
    "vanishing_g_grad": {"description": "the generator's gradient vanishes: G stops learning",
                         "chapter": "chapter 1 (The baseline GAN: the non-saturating loss), chapter 2 (instance "
                                    "noise)"},
    "exploding_grad": {"description": "a gradient norm jumps by orders of magnitude or becomes NaN/inf",
                       "chapter": "chapter 4 (D regulates G: gradient clipping), chapter 3 (Optimisers)"},
    "d_fake_stuck": {"description": "D(G(z)) stops moving: the game has frozen",
                     "chapter": "chapter 3 (Optimisers), chapter 2 (Noise inputs)"},
    "lr_at_bound": {"description": "a learning-rate controller pinned the learning rate at its bound",
                    "chapter": "chapter 4 (D regulates G: the false-positive controller)"},
    "mode_collapse": {"description": "the samples cover too few modes (2D) or digits (MNIST)",
                      "chapter": "chapter 2 (instance noise), chapter 3 (TTUR), chapter 4 (the balance rule)"},
    "low_quality": {"description": "few samples fall within 3 std of a mode (2D)",
                    "chapter": "chapter 3 (Optimisers), chapter 2 (truncation at sampling time)"},
}
"""Every symptom :func:`diagnose` and :func:`diagnose_metrics` can report: what it means, which chapter treats it."""

_ADVICE = {
    "d_wins": "chapter 3: give D a lower learning rate than G or fewer d_steps (TTUR, preset 'optim'); chapter 2: "
              "instance noise on D's inputs (preset 'noise') so real and fake overlap",
    "vanishing_g_grad": "chapter 1: use the non-saturating generator loss (loss='ns'), whose gradient does not vanish "
                        "when D wins; weaken D (chapter 3: lower lr_d, d_steps=1) or blur its view (chapter 2: "
                        "instance noise)",
    "exploding_grad": "chapter 4: clip the gradient norms (regulate clip_g=clip_d=1.0, preset 'regulate'); "
                      "chapter 3: a smaller learning rate, no momentum, or Adam/RMSprop instead of SGD",
    "d_fake_stuck": "stuck near 0, D has won (see d_wins: chapter 3's TTUR, chapter 2's instance noise); stuck "
                    "elsewhere, both players stopped learning: chapter 3: check the optimiser, learning rates and "
                    "d_steps",
    "lr_at_bound": "chapter 4: the source's false-positive rule is positive feedback; use fp_control='balance' or "
                   "'off' (preset 'regulate'), or narrow [lr_min, lr_max]",
    "mode_collapse": "chapter 2: instance noise (MNIST 9.2 against 7.2 digits); chapter 3: two time-scales "
                     "(grid25 23.4 against 17.6 modes); chapter 4: the balance rule (grid25 21.0 modes)",
    "low_quality": "chapter 3: a working optimiser (DCGAN's Adam or TTUR, not momentum 0.9) and more steps; chapter "
                   "2: sample from a truncated prior (experiments.truncation_sweep)",
}

HISTORY_COLUMNS = ("step", "loss_d", "d_fake", "grad_norm_g", "grad_norm_d", "lr_g")
"""The columns :func:`diagnose` needs; every :class:`~gantricks.train.Trainer` history has them (and ``lr_d``)."""

HISTORY_THRESHOLDS: dict[str, float] = {
    "d_loss_floor": 0.2,
    "d_fake_floor": 0.05,
    "vanish_ratio": 1e-2,
    "vanish_floor": 1e-3,
    "explode_ratio": 100.0,
    "stuck_std": 5e-4,
    "lr_ratio": 5.0,
}
"""Defaults of :func:`diagnose`'s thresholds (the module docstring says what each means and how it was calibrated)."""

MIN_MODES = {"ring8": 6, "grid25": 20, "mnist": 8}
"""``mode_collapse`` below this many modes (MNIST: digits) by default."""

METRIC_THRESHOLDS: dict[str, float | None] = {"min_modes": None, "min_high_quality": 0.05}
"""Defaults of :func:`diagnose_metrics`'s thresholds; ``min_modes=None`` takes :data:`MIN_MODES` of the dataset."""

_N_MODES = {"ring8": 8, "grid25": 25, "mnist": 10}
_MODE_KEY = {"ring8": "modes", "grid25": "modes", "mnist": "digits_covered"}
_MIN_REFERENCE = 3  # earlier steps an exploding-gradient reference needs at least
_CHUNK = 4096  # windows per block of a rolling statistic, to bound memory on long histories


@dataclass(frozen=True)
class Finding:
    """One symptom found: where it first held, the value that tripped it, and what to try."""

    symptom: str
    step: int
    value: float
    threshold: float
    message: str
    advice: str


# -- argument checks --------------------------------------------------------------------------------------------
def _number(name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
    return float(value)


_HISTORY_CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "d_loss_floor": (lambda v: v > 0, "a positive number"),
    "d_fake_floor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "vanish_ratio": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "vanish_floor": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "explode_ratio": (lambda v: v > 1, "a number > 1"),
    "stuck_std": (lambda v: v > 0, "a positive number"),
    "lr_ratio": (lambda v: v > 1, "a number > 1"),
}


def _thresholds(given: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: unknown threshold(s) {unknown}; allowed are {sorted(defaults)}")
    return {**defaults, **given}


def _window(window: Any) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window={window!r} is invalid: expected an integer >= 2 (steps per window)")
    return window


# -- rolling statistics over trailing windows -------------------------------------------------------------------
def _rolling(x: np.ndarray, window: int, fn: Callable[..., np.ndarray]) -> np.ndarray:
    """``fn(x[i : i + window])`` for every full window, as an array of ``len(x) - window + 1`` values."""
    views = np.lib.stride_tricks.sliding_window_view(x, window)
    return np.concatenate([fn(views[i:i + _CHUNK], axis=1) for i in range(0, len(views), _CHUNK)])


def _ptp(a: np.ndarray, axis: int) -> np.ndarray:
    return np.max(a, axis=axis) - np.min(a, axis=axis)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


class _History:
    """The history as float columns, with the step numbers to name windows by."""

    def __init__(self, rows: Sequence[Mapping[str, float]], window: int) -> None:
        if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
            raise ValueError(f"history must be a sequence of rows (dicts), such as Trainer.history, not "
                             f"{type(rows).__name__}")
        if not rows:
            raise ValueError("history is empty: diagnose needs the rows of a run that trained")
        if len(rows) < 2:
            raise ValueError(f"history has {len(rows)} row: diagnose needs at least 2 (a window is >= 2 steps)")
        if len(rows) < window:
            raise ValueError(f"history has {len(rows)} rows, fewer than window={window}: pass window <= "
                             f"{len(rows)} (e.g. diagnose(history, window={max(2, len(rows) // 2)}))")
        missing = [c for c in HISTORY_COLUMNS if any(c not in r for r in rows)]
        if missing:
            raise ValueError(f"history rows lack column(s) {missing}: diagnose needs {list(HISTORY_COLUMNS)}, as "
                             "Trainer.history records them")
        self.window = window
        self.steps = [int(r["step"]) for r in rows]
        self.columns = {c: np.array([float(r[c]) for r in rows]) for c in {*HISTORY_COLUMNS, "lr_d"}
                        if all(c in r for r in rows)}

    def span(self, end: int) -> str:
        """``"a-b"``: the steps of the window that ends at row ``end``."""
        return f"{self.steps[end - self.window + 1]}-{self.steps[end]}"


# -- history symptoms -------------------------------------------------------------------------------------------
def _d_wins(h: _History, t: Mapping[str, float]) -> Finding | None:
    with np.errstate(invalid="ignore"):
        loss = _rolling(h.columns["loss_d"], h.window, np.mean)
        fake = _rolling(h.columns["d_fake"], h.window, np.mean)
        i = _first((loss < t["d_loss_floor"]) & (fake < t["d_fake_floor"]))
    if i is None:
        return None
    end = i + h.window - 1
    return Finding("d_wins", h.steps[end], float(loss[i]), t["d_loss_floor"],
                   f"loss_d averaged {loss[i]:.3g} and D(G(z)) {fake[i]:.3g} over steps {h.span(end)} "
                   f"(< {t['d_loss_floor']:g} and < {t['d_fake_floor']:g}): D rejects every fake",
                   _ADVICE["d_wins"])


def _vanishing(h: _History, t: Mapping[str, float]) -> Finding | None:
    med = _rolling(h.columns["grad_norm_g"], h.window, np.median)
    with np.errstate(invalid="ignore"):
        ref = np.fmax.accumulate(med)  # the largest window median so far (NaN windows skipped)
        i = _first((med < t["vanish_ratio"] * ref) | (med < t["vanish_floor"]))
    if i is None:
        return None
    end = i + h.window - 1
    top = int(np.nanargmax(med[:i + 1])) if np.isfinite(ref[i]) else 0
    relative = bool(med[i] < t["vanish_ratio"] * ref[i])
    threshold = t["vanish_ratio"] * ref[i] if relative else t["vanish_floor"]
    why = (f"{med[i] / ref[i]:.2g}x its median {ref[i]:.3g} over steps {h.span(top + h.window - 1)} "
           f"(< {t['vanish_ratio']:g}x)" if relative else f"below the floor {t['vanish_floor']:g}")
    return Finding("vanishing_g_grad", h.steps[end], float(med[i]), float(threshold),
                   f"grad_norm_g had median {med[i]:.3g} over steps {h.span(end)}, {why}: G gets almost no gradient",
                   _ADVICE["vanishing_g_grad"])


def _trailing_median(x: np.ndarray, window: int) -> np.ndarray:
    """``ref[i]`` = median of the (up to ``window``) values before ``x[i]``; NaN with fewer than 3 of them."""
    ref = np.full(len(x), np.nan)
    for i in range(_MIN_REFERENCE, min(window, len(x))):
        ref[i] = np.median(x[:i])
    if len(x) > window:
        ref[window:] = _rolling(x[:-1], window, np.median)
    return ref


def _exploding(h: _History, t: Mapping[str, float]) -> Finding | None:
    hits = []
    for net in ("g", "d"):
        x = h.columns[f"grad_norm_{net}"]
        with np.errstate(invalid="ignore"):
            ref = np.fmax.accumulate(_trailing_median(x, h.window))  # the largest trailing median so far
            i = _first(~np.isfinite(x) | (x > t["explode_ratio"] * ref))
        if i is not None:
            hits.append((i, net, x[i], ref[i]))
    if not hits:
        return None
    i, net, value, ref = min(hits)
    who = {"g": "G", "d": "D"}[net]
    also = [f"{'G' if n == 'g' else 'D'}'s too, from step {h.steps[j]}" for j, n, _, _ in hits if n != net]
    if math.isfinite(value):
        what = (f"grad_norm_{net} reached {value:.3g} at step {h.steps[i]}, {value / ref:.3g}x the largest median "
                f"{ref:.3g} of up to {h.window} earlier steps (> {t['explode_ratio']:g}x)")
    else:
        what = f"grad_norm_{net} was {value} at step {h.steps[i]}"
    extra = f" ({also[0]})" if also else ""
    return Finding("exploding_grad", h.steps[i], float(value), float(t["explode_ratio"] * ref),
                   f"{what}: {who}'s gradient explodes{extra}", _ADVICE["exploding_grad"])


def _stuck(h: _History, t: Mapping[str, float]) -> Finding | None:
    x = h.columns["d_fake"]
    with np.errstate(invalid="ignore"):
        std = _rolling(x, h.window, np.std)
        i = _first(std < t["stuck_std"])
    if i is None:
        return None
    end = i + h.window - 1
    level = float(np.mean(x[i:end + 1]))
    return Finding("d_fake_stuck", h.steps[end], float(std[i]), t["stuck_std"],
                   f"D(G(z)) stayed at {level:.3g} with std {std[i]:.2g} over steps {h.span(end)} "
                   f"(< {t['stuck_std']:g}): the game has stopped moving", _ADVICE["d_fake_stuck"])


def _lr_at_bound(h: _History, t: Mapping[str, float]) -> Finding | None:
    hits = []
    for col in ("lr_g", "lr_d"):
        if col not in h.columns:
            continue
        lr = h.columns[col]
        start, tol = lr[0], 1e-9
        if not (math.isfinite(start) and start > 0):
            continue
        last = lr[h.window - 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            flat = _rolling(lr, h.window, _ptp) <= tol * np.abs(last)
            at_max = last >= np.maximum.accumulate(lr)[h.window - 1:] * (1 - tol)
            at_min = last <= np.minimum.accumulate(lr)[h.window - 1:] * (1 + tol)
            far = (last >= t["lr_ratio"] * start) | (last * t["lr_ratio"] <= start)
            i = _first(flat & (at_max | at_min) & far)
        if i is not None:
            hits.append((i, col, float(last[i]), float(start)))
    if not hits:
        return None
    i, col, value, start = min(hits)
    end = i + h.window - 1
    up = value > start
    threshold = t["lr_ratio"] * start if up else start / t["lr_ratio"]
    return Finding("lr_at_bound", h.steps[end], value, threshold,
                   f"{col} stayed at {value:.3g} over steps {h.span(end)}, {value / start:.3g}x its first value "
                   f"{start:.3g} and the {'highest' if up else 'lowest'} it reached ({'>=' if up else '<='} "
                   f"{threshold:.3g}): a controller ran it to its bound", _ADVICE["lr_at_bound"])


_HISTORY_SYMPTOMS = (_d_wins, _vanishing, _exploding, _stuck, _lr_at_bound)


def diagnose(history: Sequence[Mapping[str, float]], *, window: int = 200, **thresholds: float) -> list[Finding]:
    """The history symptoms of a run (one :class:`Finding` per symptom at most), in order of their first step.

    ``history``: :attr:`gantricks.train.Trainer.history` or rows read back from ``history.csv``. ``window``: steps
    per trailing window (>= 2; the history needs at least that many rows). ``thresholds``: any of
    :data:`HISTORY_THRESHOLDS` (``d_loss_floor``, ``d_fake_floor``, ``vanish_ratio``, ``vanish_floor``,
    ``explode_ratio``, ``stuck_std``, ``lr_ratio``); the module docstring gives each default and its calibration.
    """
    window = _window(window)
    t = _thresholds(thresholds, HISTORY_THRESHOLDS, "diagnose")
    t = {k: _number(k, v, *_HISTORY_CHECKS[k]) for k, v in t.items()}
    h = _History(history, window)
    found = [f for check in _HISTORY_SYMPTOMS if (f := check(h, t)) is not None]
    return sorted(found, key=lambda f: f.step)


# -- metric symptoms --------------------------------------------------------------------------------------------
def _metric(metrics: Mapping[str, float], key: str, dataset: str) -> float:
    if key not in metrics:
        raise ValueError(f"metrics lack {key!r}, which diagnose_metrics needs for dataset {dataset!r} (it has "
                         f"{sorted(metrics)}); gantricks.experiments.evaluate gives it")
    value = metrics[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metrics[{key!r}]={value!r} is invalid: expected a number")
    return float(value)


def diagnose_metrics(metrics: Mapping[str, float], dataset: str, **thresholds: float | None) -> list[Finding]:
    """The metric symptoms of a run: ``mode_collapse`` and (2D) ``low_quality``.

    ``metrics``: :func:`gantricks.experiments.evaluate`'s dict (``modes``/``high_quality`` for ring8 and grid25,
    ``digits_covered`` for MNIST); its ``step``, if any, becomes each finding's step (else -1). ``dataset``:
    ``ring8``, ``grid25`` or ``mnist``. ``thresholds``: ``min_modes`` (default :data:`MIN_MODES` of the dataset)
    and ``min_high_quality`` (default 0.05; the module docstring says why not PacGAN's 0.5).
    """
    if dataset not in _N_MODES:
        raise ValueError(f"dataset={dataset!r} is invalid: allowed values are {tuple(_N_MODES)}")
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a mapping such as evaluate(trainer) returns, not {type(metrics).__name__}")
    t = _thresholds(thresholds, METRIC_THRESHOLDS, "diagnose_metrics")
    n_modes = _N_MODES[dataset]
    min_modes = MIN_MODES[dataset] if t["min_modes"] is None else t["min_modes"]
    min_modes = _number("min_modes", min_modes, lambda v: 0 < v <= n_modes, f"a number in (0, {n_modes}] for "
                        f"{dataset} (or None: {MIN_MODES[dataset]})")
    min_hq = _number("min_high_quality", t["min_high_quality"], lambda v: 0 < v <= 1, "a number in (0, 1]")
    step = int(metrics.get("step", -1))
    found = []
    key = _MODE_KEY[dataset]
    modes = _metric(metrics, key, dataset)
    if modes < min_modes:
        what = "digits" if dataset == "mnist" else "modes"
        message = f"{key}={modes:g} of {n_modes} (< {min_modes:g}): G misses {n_modes - modes:g} of the {what}"
        found.append(Finding("mode_collapse", step, modes, min_modes, message, _ADVICE["mode_collapse"]))
    if dataset != "mnist":
        hq = _metric(metrics, "high_quality", dataset)
        if hq < min_hq:
            found.append(Finding("low_quality", step, hq, min_hq,
                                 f"high_quality={hq:.3g} (< {min_hq:g}): few samples lie within 3 std of a mode",
                                 _ADVICE["low_quality"]))
    return found


def report(findings: Sequence[Finding]) -> str:
    """Readable lines, one block per finding (symptom, step, message, advice); ``"no symptoms found"`` if none."""
    if not findings:
        return "no symptoms found"
    lines = []
    for f in findings:
        where = f"step {f.step}" if f.step >= 0 else "metrics"
        lines += [f"{f.symptom} ({where}): {f.message}", f"    try: {f.advice}"]
    return "\n".join(lines)
