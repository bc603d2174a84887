"""Plots: sample grids, training curves, 2D scatters and samples over training.

Chapter 1 ("The baseline GAN") introduces every plot here; later chapters reuse them.

* :func:`sample_grid` / :func:`grid_array`: a batch of images as one grey grid
  (``torchvision.utils.make_grid``), mapped from the generator's value range (``[-1, 1]`` for a tanh
  output) to ``[0, 1]``.
* :func:`plot_history`: the losses and the discriminator's mean outputs ``D(x)``, ``D(G(z))`` against the
  step. At the global optimum of Goodfellow et al. (2014, "Generative adversarial nets", Prop. 1 and
  Thm. 1) ``D = 1/2`` everywhere, hence the dashed line at 0.5; a D that wins drives ``D(x) -> 1`` and
  ``D(G(z)) -> 0``.
* :func:`scatter_2d` / :func:`scatter_grid`: generated vs real points on the PacGAN 2D benchmarks (Lin et
  al. 2018), with the mode centres, where mode collapse is visible at a glance.
* :func:`snapshot_strip`: one small sample grid per training snapshot.

Every function returns the ``matplotlib.figure.Figure`` and never calls ``plt.show``. When no ``ax`` is
given, a new figure is made with ``pyplot`` (so a notebook shows it as usual); ``plt.close(fig)`` it when
making many.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .checkpoint import read_csv_columns
from .data import MixtureSpec, mixture_spec

__all__ = [
    "HISTORY_KEYS",
    "grid_array",
    "history_columns",
    "moving_average",
    "plot_history",
    "plot_results",
    "sample_grid",
    "scatter_2d",
    "scatter_grid",
    "snapshot_strip",
]

ArrayLike = Union[torch.Tensor, np.ndarray]
HISTORY_KEYS = ("step", "loss_d", "loss_g", "d_real", "d_fake")
"""The columns :func:`plot_history` needs; others (``lr_g``, ``grad_norm_d``, ``time``...) are allowed."""

REAL_COLOR, FAKE_COLOR = "tab:blue", "tab:orange"


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


# ----------------------------------------------------------------------------------------------- sample grids
def _as_image_batch(images: ArrayLike) -> torch.Tensor:
    x = images.detach() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    shape = tuple(x.shape)
    x = x.to("cpu", torch.float32)
    if x.ndim == 2:  # (N, H*W) from an MLP generator: square images
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(
                f"images of shape {tuple(x.shape)}: a flat image needs a square number of pixels"
            )
        x = x.reshape(x.shape[0], 1, side, side)
    elif x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), (N, H, W) or (N, H*W), got {shape}")
    if x.shape[0] == 0:
        raise ValueError("images is empty (N = 0)")
    return x


def grid_array(
    images: ArrayLike,
    nrow: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
    padding: int = 2,
    pad_value: float = 0.5,
) -> np.ndarray:
    """The images as one grey grid, a float array (H', W') in [0, 1].

    ``images``: (N, 1, H, W), (N, H, W) or flat (N, H*W) square images, tensor or array. Pixel values are
    mapped linearly from ``value_range`` to [0, 1] and clamped. Image ``k`` lands in grid row ``k // nrow``
    and column ``k % nrow``, its top-left pixel at ``(padding + row * (H + padding), padding + col * (W +
    padding))``; the grid has ``min(nrow, N)`` columns, and padding of grey ``pad_value`` (visible on black
    backgrounds and on white strokes).
    """
    from torchvision.utils import make_grid  # imported here: torchvision is slow to import

    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range={value_range!r} must be (low, high) with high > low")
    if not (isinstance(nrow, int) and nrow > 0):
        raise ValueError(f"nrow={nrow!r} must be a positive integer")
    x = ((_as_image_batch(images) - lo) / (hi - lo)).clamp_(0.0, 1.0)
    grid = make_grid(x, nrow=nrow, padding=padding, pad_value=pad_value)  # (3, H', W'), grey replicated
    return grid[0].numpy()


def sample_grid(
    images: ArrayLike,
    nrow: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Show a batch of generated (or real) images as one grey grid without ticks; see :func:`grid_array`."""
    grid = grid_array(images, nrow=nrow, value_range=value_range)
    h, w = grid.shape
    fig, ax = _new_axes(ax, figsize=(min(10.0, 0.4 + w / 60), min(10.0, 0.6 + h / 60)))
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def snapshot_strip(
    snapshots: Sequence[tuple[int, ArrayLike]],
    value_range: tuple[float, float] = (-1.0, 1.0),
    nrow: int = 4,
    max_images: int = 16,
    ncols: int | None = None,
    panel_size: float = 2.0,
) -> Figure:
    """Samples over training: one small grid (the first ``max_images`` images) per ``(step, images)``.

    Panels run left to right in the given order, ``ncols`` per row (default: all in one row), titled
    ``step N``. Use the same latent vectors for every snapshot so that the panels are comparable.
    """
    if len(snapshots) == 0:
        raise ValueError("snapshots is empty: give a list of (step, images)")
    ncols = len(snapshots) if ncols is None else ncols
    nrows = math.ceil(len(snapshots) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size * ncols, (panel_size + 0.3) * nrows),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        if i >= len(snapshots):
            ax.set_axis_off()
            continue
        step, images = snapshots[i]
        sample_grid(images[:max_images], nrow=nrow, value_range=value_range, ax=ax, title=f"step {step}")
    return fig


# ----------------------------------------------------------------------------------------------- curves
def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def history_columns(history: Any, keys: Sequence[str] = HISTORY_KEYS) -> dict[str, np.ndarray]:
    """The columns ``keys`` of a training history, as float arrays of equal length.

    ``history`` is a list of dicts (one per logged step, as :mod:`gantricks.train` records it), a dict of
    columns, a ``pandas.DataFrame``, or the path of a CSV file with a header row (empty cells read as NaN).
    A missing key raises a ``ValueError`` naming it and the keys present.
    """
    if isinstance(history, (str, os.PathLike)):
        columns: Mapping[str, Any] = read_csv_columns(history)
        where = f"CSV file {os.fspath(history)!r}"
    elif type(history).__module__.startswith("pandas"):
        columns = {str(c): history[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in history.columns}
        where = "DataFrame"
    elif isinstance(history, Mapping):
        columns, where = history, "history"
    elif isinstance(history, Sequence):
        if len(history) == 0:
            raise ValueError("history is empty: nothing to plot")
        out = {}
        for key in keys:
            for i, row in enumerate(history):
                if key not in row:
                    raise ValueError(
                        f"history row {i} is missing key {key!r}; keys present: {sorted(row)} "
                        f"(needed: {list(keys)})"
                    )
            out[key] = np.asarray([_float(row[key]) for row in history], dtype=np.float64)
        return out
    else:
        raise ValueError(
            f"history must be a list of dicts, a dict of columns, a pandas DataFrame or a CSV path, "
            f"got {type(history).__name__}"
        )
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ValueError(
            f"{where} is missing key {missing[0]!r}; keys present: {sorted(columns)} (needed: {list(keys)})"
        )
    out = {k: np.atleast_1d(_numpy(columns[k])).astype(np.float64) for k in keys}
    n = {len(v) for v in out.values()}
    if len(n) != 1:
        raise ValueError(f"{where}: columns {list(keys)} have different lengths {sorted(n)}")
    if n == {0}:
        raise ValueError(f"{where} is empty: nothing to plot")
    return out


def moving_average(y: ArrayLike, window: int) -> np.ndarray:
    """Trailing moving average: ``out[i]`` = mean of the finite values in ``y[max(0, i-window+1) : i+1]``.

    Same length as ``y`` (the first points average fewer values); NaN/inf values are skipped, not propagated.
    """
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"smooth/window={window!r} must be a positive integer")
    y = _numpy(y)
    if window == 1:
        return y.copy()
    finite = np.isfinite(y)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, y, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    hi = np.arange(1, len(y) + 1)
    lo = np.maximum(0, hi - window)
    count = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), np.nan)


def plot_history(history: Any, ax: Sequence[Axes] | None = None, smooth: int = 1) -> Figure:
    """Two panels against the step: losses (``loss_d``, ``loss_g``); ``D(x)``, ``D(G(z))`` with 0.5 dashed.

    ``history``: see :func:`history_columns` (needs ``step``, ``loss_d``, ``loss_g``, ``d_real``,
    ``d_fake``). ``ax``: two Axes to draw into (losses, D outputs); by default a new 1x2 figure. ``smooth``:
    window of a trailing moving average (:func:`moving_average`); 1 plots the raw values. Line order:
    ``ax[0].lines`` = [D loss, G loss]; ``ax[1].lines`` = [D(x), D(G(z)), the 0.5 line].
    """
    cols = history_columns(history)
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.5), layout="constrained")
    else:
        axes = list(ax) if isinstance(ax, (Sequence, np.ndarray)) else [ax]
        if len(axes) != 2:
            raise ValueError(f"ax must be two Axes (losses, D outputs), got {len(axes)}")
        fig = axes[0].figure
    ax_loss, ax_d = axes[0], axes[1]
    step = cols["step"]
    sm = f" (moving average of {smooth})" if smooth > 1 else ""

    ax_loss.plot(step, moving_average(cols["loss_d"], smooth), label="D loss", color="tab:red")
    ax_loss.plot(step, moving_average(cols["loss_g"], smooth), label="G loss", color="tab:green")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Losses" + sm)
    ax_loss.legend()

    ax_d.plot(step, moving_average(cols["d_real"], smooth), label="D(x)", color=REAL_COLOR)
    ax_d.plot(step, moving_average(cols["d_fake"], smooth), label="D(G(z))", color=FAKE_COLOR)
    ax_d.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax_d.set_ylim(-0.03, 1.03)
    ax_d.set_xlabel("step")
    ax_d.set_ylabel("mean sigmoid output")
    ax_d.set_title("Discriminator outputs" + sm)
    ax_d.legend()
    return fig


# ----------------------------------------------------------------------------------------------- 2D scatters
def _points(x: ArrayLike, name: str) -> np.ndarray:
    p = _numpy(x)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {p.shape}")
    return p


def _centers_and_std(
    centers: ArrayLike | None, spec: MixtureSpec | str | None
) -> tuple[np.ndarray | None, float]:
    if spec is not None and centers is not None:
        raise ValueError("give either centers or spec, not both")
    if spec is not None:
        spec = mixture_spec(spec) if isinstance(spec, str) else spec
        return _points(spec.centers, "spec.centers"), float(spec.std)
    return (None, 0.0) if centers is None else (_points(centers, "centers"), 0.0)


def scatter_2d(
    fake: ArrayLike,
    real: ArrayLike | None = None,
    centers: ArrayLike | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    s: float = 4,
    spec: MixtureSpec | str | None = None,
    legend: bool = True,
    groups: ArrayLike | None = None,
) -> Figure:
    """Generated points (orange) over real points (blue), mode centres as black crosses, equal aspect.

    ``groups``: one integer per generated point (e.g. the mixture component of its z, from
    :meth:`gantricks.train.Trainer.sample_with_components`, chapter 5) colours the generated points by group.

    ``centers`` (K, 2) or ``spec`` (a :class:`gantricks.data.MixtureSpec` or ``"ring8"`` / ``"grid25"``)
    mark the modes and fix the limits: the centres' span plus a quarter of it on each side (``[-6, 6]^2``
    for ``grid25``, as in PacGAN's plots). Generated points outside the view are counted in a corner note.
    ``ax.collections`` holds, in order: real points (if given), generated points, centres (if given).
    """
    fake_np = _points(fake, "fake")
    c, std = _centers_and_std(centers, spec)
    fig, ax = _new_axes(ax, figsize=(4.5, 4.5))
    if real is not None:
        r = _points(real, "real")
        ax.scatter(r[:, 0], r[:, 1], s=s, color=REAL_COLOR, alpha=0.25, linewidths=0, label="real")
    if groups is None:
        ax.scatter(
            fake_np[:, 0], fake_np[:, 1], s=s, color=FAKE_COLOR, alpha=0.5, linewidths=0, label="generated"
        )
    else:
        g = np.asarray(groups).reshape(-1)
        if g.shape != (len(fake_np),):
            raise ValueError(f"scatter_2d: groups has {g.size} entries for {len(fake_np)} generated points")
        ax.scatter(fake_np[:, 0], fake_np[:, 1], s=s, c=g, cmap="tab20" if g.max(initial=0) < 20 else "turbo",
                   alpha=0.6, linewidths=0, label="generated (colour: group)")
    if c is not None:
        ax.scatter(
            c[:, 0],
            c[:, 1],
            s=30,
            marker="x",
            color="black",
            alpha=0.6,
            linewidths=1,
            label="mode centres",
            zorder=0.9,
        )
        lo, hi = c.min(axis=0), c.max(axis=0)
        mid = (lo + hi) / 2
        half = max(0.75 * float((hi - lo).max()), 10 * std, 1e-3 if std else 1.0)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        inside = np.all(np.abs(fake_np - mid) <= half, axis=1)
        if (~inside).any():
            ax.text(
                0.02,
                0.02,
                f"{int((~inside).sum())}/{len(fake_np)} generated points outside",
                transform=ax.transAxes,
                fontsize=7,
                color="dimgrey",
            )
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    if legend:
        leg = ax.legend(loc="upper right", fontsize=7)
        for handle, text in zip(leg.legend_handles, leg.texts):  # readable dots whatever s and alpha
            handle.set_alpha(1.0)
            if text.get_text() != "mode centres":
                handle.set_sizes([16.0])
    return fig


def scatter_grid(
    fakes: Sequence[ArrayLike],
    titles: Sequence[str] | None = None,
    spec: MixtureSpec | str | None = None,
    ncols: int = 4,
    real: ArrayLike | None = None,
    s: float = 2,
    panel_size: float = 2.5,
) -> Figure:
    """A grid of small :func:`scatter_2d` panels, e.g. generated points at several training steps or seeds.

    ``titles`` (one per panel) default to ``0, 1, ...``; ``spec`` and ``real`` are drawn in every panel. No
    legends, no ticks.
    """
    if len(fakes) == 0:
        raise ValueError("fakes is empty: give a list of (N, 2) point sets")
    if titles is not None and len(titles) != len(fakes):
        raise ValueError(f"titles has {len(titles)} entries for {len(fakes)} panels")
    ncols = min(ncols, len(fakes))
    nrows = math.ceil(len(fakes) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size * ncols, (panel_size + 0.2) * nrows),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        if i >= len(fakes):
            ax.set_axis_off()
            continue
        title = str(titles[i]) if titles is not None else str(i)
        scatter_2d(fakes[i], real=real, spec=spec, ax=ax, title=title, s=s, legend=False)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


# ----------------------------------------------------------------------------------------------- ablation results
def plot_results(rows: Sequence[Mapping[str, Any]], metric: str, by: str = "config", ax: Axes | None = None,
                 title: str | None = None) -> Figure:
    """Multi-seed results of one metric: a bar per group at the mean, an error bar of one (sample) standard
    deviation, and every run as a dot, so the spread over seeds is visible ("How we measure" explains why)."""
    groups: dict[Any, list[float]] = {}
    for r in rows:
        if metric not in r:
            raise ValueError(f"plot_results: metric={metric!r} is not in the rows (keys: {sorted(r)})")
        groups.setdefault(r[by], []).append(float(r[metric]))
    if not groups:
        raise ValueError("plot_results: rows is empty")
    fig, ax = _new_axes(ax, (1.2 + 1.1 * len(groups), 3.2))
    for i, vals in enumerate(groups.values()):
        v = np.asarray([x for x in vals if not math.isnan(x)])
        mean = float(v.mean()) if v.size else float("nan")
        std = float(v.std(ddof=1)) if v.size > 1 else 0.0
        ax.bar(i, mean, color="0.85", edgecolor="0.4", yerr=std, capsize=4)
        ax.scatter(np.full(v.size, i) + np.linspace(-0.15, 0.15, v.size), v, s=14, color=FAKE_COLOR, zorder=3)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups], rotation=20, ha="right")
    ax.set_ylabel(metric)
    if title:
        ax.set_title(title)
    return fig


def plot_curves(rows: Sequence[Mapping[str, Any]], metric: str, by: str = "config", ax: Axes | None = None,
                title: str | None = None, x: str = "step", target: float | None = None) -> Figure:
    """Learning curves of one metric (``ablate --curve-every``; :mod:`gantricks.curves`): per group, the mean over
    seeds as a line, the band from the lowest to the highest seed, and each seed as a thin line, against ``x``
    (``"step"``, or ``"seconds"`` of training, the seeds' mean at each step). ``target`` draws a dashed level.
    """
    from .curves import summarize_curves

    if x not in ("step", "seconds"):
        raise ValueError(f"plot_curves: x={x!r} is invalid: expected 'step' or 'seconds'")
    summary = summarize_curves(rows, metric, by)
    if not summary:
        raise ValueError(f"plot_curves: no row has a curve of {metric!r} (run ablate with --curve-every)")
    fig, ax = _new_axes(ax, (5.0, 3.2))
    for i, (group, s) in enumerate(summary.items()):
        color = f"C{i}"
        members = [r["curve"] for r in rows if r[by] == group and r.get("curve") and metric in r["curve"]]
        if x == "seconds":
            secs = summarize_curves(rows, "seconds", by)[group]
            xs = dict(zip(secs["step"], secs["mean"]))
            xv = [xs[st] for st in s["step"]]
        else:
            xv = s["step"]
        for c in members:
            ax.plot(c[x], c[metric], color=color, lw=0.5, alpha=0.35)
        ax.fill_between(xv, s["min"], s["max"], color=color, alpha=0.12, lw=0)
        ax.plot(xv, s["mean"], color=color, lw=2, label=f"{group} (n={len(members)})")
    if target is not None:
        ax.axhline(target, color="0.3", ls="--", lw=1)
    ax.set_xlabel("training seconds" if x == "seconds" else "step")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return fig
