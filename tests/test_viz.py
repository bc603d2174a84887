"""Tests of gantricks.viz: what is plotted must be exactly the data given (pixels, line values, offsets)."""

from __future__ import annotations

import csv
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gantricks.data import mixture_2d, mixture_spec  # noqa: E402
from gantricks.viz import (  # noqa: E402
    grid_array,
    history_columns,
    moving_average,
    plot_history,
    sample_grid,
    scatter_2d,
    scatter_grid,
    snapshot_strip,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def make_history(n: int = 30) -> list[dict[str, float]]:
    rng = np.random.default_rng(0)
    return [
        {
            "step": 10.0 * i,
            "loss_d": float(rng.uniform(0.2, 1.5)),
            "loss_g": float(rng.uniform(0.5, 3.0)),
            "d_real": float(rng.uniform(0.5, 1.0)),
            "d_fake": float(rng.uniform(0.0, 0.5)),
            "lr_g": 2e-4,
            "time": 0.01 * i,
        }
        for i in range(n)
    ]


# ------------------------------------------------------------------------------------------------ grids
def test_grid_array_places_image_k_at_row_k_div_nrow_col_k_mod_nrow() -> None:
    n, h, w, nrow, pad = 10, 3, 5, 4, 2  # H != W catches a transposed tile
    images = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    grid = grid_array(images, nrow=nrow, value_range=(-1, 1), padding=pad)
    rows = math.ceil(n / nrow)
    assert grid.shape == (rows * (h + pad) + pad, nrow * (w + pad) + pad)
    covered = np.zeros(grid.shape, dtype=bool)
    for k in range(n):
        top, left = pad + (k // nrow) * (h + pad), pad + (k % nrow) * (w + pad)
        np.testing.assert_allclose(
            grid[top : top + h, left : left + w], (images[k, 0].numpy() + 1) / 2, atol=1e-6
        )
        covered[top : top + h, left : left + w] = True
    np.testing.assert_array_equal(grid[~covered], 0.5)  # padding and the two empty cells are mid-grey


def test_grid_array_value_mapping_and_clamping() -> None:
    values = torch.tensor([-1.0, 1.0, 0.0, -3.0, 5.0, 0.5]).reshape(6, 1, 1, 1)
    grid = grid_array(values, nrow=6, padding=0)
    np.testing.assert_allclose(grid[0], [0.0, 1.0, 0.5, 0.0, 1.0, 0.75])
    grid01 = grid_array(values.numpy(), nrow=6, padding=0, value_range=(0, 1))  # sigmoid-range generator
    np.testing.assert_allclose(grid01[0], [0.0, 1.0, 0.0, 0.0, 1.0, 0.5])


def test_grid_array_accepts_nchw_nhw_and_flat() -> None:
    images = torch.rand(7, 1, 6, 6) * 2 - 1
    a = grid_array(images, nrow=3)
    np.testing.assert_array_equal(a, grid_array(images[:, 0], nrow=3))
    np.testing.assert_array_equal(a, grid_array(images.reshape(7, 36).numpy(), nrow=3))
    assert grid_array(images, nrow=20).shape[1] == 7 * 8 + 2  # a single row of min(nrow, N) images


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (torch.zeros(4, 3, 8, 8), {}, r"shape \(N, 1, H, W\).*got \(4, 3, 8, 8\)"),
        (torch.zeros(4, 30), {}, "square number of pixels"),
        (torch.zeros(0, 1, 8, 8), {}, "empty"),
        (torch.zeros(4, 1, 8, 8), {"value_range": (1, -1)}, "value_range"),
        (torch.zeros(4, 1, 8, 8), {"nrow": 0}, "nrow"),
    ],
)
def test_grid_array_errors(images, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        grid_array(images, **kwargs)


def test_sample_grid_shows_grid_array_in_grey_without_ticks() -> None:
    images = torch.rand(12, 1, 8, 8) * 2 - 1
    fig = sample_grid(images, nrow=4, title="samples")
    (ax,) = fig.axes
    (im,) = ax.images
    np.testing.assert_array_equal(np.asarray(im.get_array()), grid_array(images, nrow=4))
    assert im.get_clim() == (0.0, 1.0)
    assert im.get_cmap().name == "gray"
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert ax.get_title() == "samples"
    fig2, given = plt.subplots()
    assert sample_grid(images, ax=given) is fig2 and len(given.images) == 1


def test_snapshot_strip_one_titled_grid_per_snapshot() -> None:
    snaps = [(step, torch.rand(20, 1, 6, 6) * 2 - 1) for step in (0, 500, 1000)]
    fig = snapshot_strip(snaps, nrow=4, max_images=8, ncols=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["step 0", "step 500", "step 1000"]
    for ax, (_, imgs) in zip(shown, snaps):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), grid_array(imgs[:8], nrow=4))
    assert len(fig.axes) == 4 and not fig.axes[3].axison  # 3 panels on a 2x2 grid: the last is blank


# ------------------------------------------------------------------------------------------------ curves
def test_plot_history_lines_equal_history_values() -> None:
    hist = make_history()
    fig = plot_history(hist)
    ax_loss, ax_d = fig.axes[:2]
    steps = [r["step"] for r in hist]
    for line, key in zip(ax_loss.lines, ["loss_d", "loss_g"]):
        np.testing.assert_array_equal(line.get_xdata(), steps)
        np.testing.assert_array_equal(line.get_ydata(), [r[key] for r in hist])
    for line, key in zip(ax_d.lines[:2], ["d_real", "d_fake"]):
        np.testing.assert_array_equal(line.get_ydata(), [r[key] for r in hist])
    half = ax_d.lines[2]
    assert list(half.get_ydata()) == [0.5, 0.5] and half.get_linestyle() == "--"
    assert [ln.get_label() for ln in ax_loss.lines] == ["D loss", "G loss"]


def test_plot_history_smoothing_is_trailing_moving_average() -> None:
    hist = make_history(25)
    window = 4
    fig = plot_history(hist, smooth=window)
    y = np.array([r["loss_g"] for r in hist])
    expected = [y[max(0, i - window + 1) : i + 1].mean() for i in range(len(y))]
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), expected, rtol=1e-12)
    assert not np.allclose(expected, y)  # the smoothing changed something
    d = np.array([r["d_fake"] for r in hist])
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), moving_average(d, window), rtol=1e-12)


def test_moving_average_skips_nan() -> None:
    out = moving_average(np.array([1.0, np.nan, 3.0, 5.0]), 2)
    np.testing.assert_allclose(out, [1.0, 1.0, 3.0, 4.0])
    assert np.isnan(moving_average(np.array([np.nan, 1.0]), 1)[0])
    with pytest.raises(ValueError, match="window"):
        moving_average(np.ones(3), 0)


def test_plot_history_from_csv(tmp_path) -> None:
    hist = make_history(12)
    path = tmp_path / "history.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(hist[0]))
        writer.writeheader()
        writer.writerows(hist)
    for source in (path, str(path)):
        fig = plot_history(source)
        np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [r["d_real"] for r in hist], rtol=1e-15)
        np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), [r["step"] for r in hist])


def test_plot_history_from_dataframe_and_columns() -> None:
    pd = pytest.importorskip("pandas")
    hist = make_history(9)
    fig = plot_history(pd.DataFrame(hist))
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), [r["loss_d"] for r in hist])
    columns = {k: [r[k] for r in hist] for k in hist[0]}
    fig = plot_history(columns)
    np.testing.assert_array_equal(fig.axes[1].lines[1].get_ydata(), columns["d_fake"])


def test_plot_history_missing_key_names_it_and_the_keys_present(tmp_path) -> None:
    hist = [{k: v for k, v in r.items() if k != "d_fake"} for r in make_history(3)]
    with pytest.raises(ValueError, match=r"'d_fake'.*present:.*'d_real'.*'loss_d'"):
        plot_history(hist)
    path = tmp_path / "h.csv"
    path.write_text("step,loss_d\n0,1.0\n")
    with pytest.raises(ValueError, match=r"missing key 'loss_g'; keys present: \['loss_d', 'step'\]"):
        plot_history(path)
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


def test_plot_history_into_given_axes() -> None:
    fig, axes = plt.subplots(2, 1)
    assert plot_history(make_history(5), ax=axes) is fig
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 3
    with pytest.raises(ValueError, match="two Axes"):
        plot_history(make_history(5), ax=axes[0])


def test_history_columns_values() -> None:
    cols = history_columns(make_history(4))
    assert list(cols) == ["step", "loss_d", "loss_g", "d_real", "d_fake"]
    np.testing.assert_array_equal(cols["step"], [0, 10, 20, 30])


# ------------------------------------------------------------------------------------------------ scatters
def test_scatter_2d_plots_exactly_the_given_points_and_centres() -> None:
    mix = mixture_2d("grid25", 300, seed=0)
    fake = torch.randn(200, 2, generator=torch.Generator().manual_seed(1)) * 2
    fig = scatter_2d(fake, real=mix.samples, spec="grid25", title="step 0")
    (ax,) = fig.axes
    real_c, fake_c, centre_c = ax.collections
    np.testing.assert_allclose(real_c.get_offsets(), mix.samples.numpy(), rtol=1e-6)
    np.testing.assert_allclose(fake_c.get_offsets(), fake.numpy(), rtol=1e-6)
    np.testing.assert_allclose(centre_c.get_offsets(), mixture_spec("grid25").centers.numpy())
    assert [c.get_label() for c in ax.collections] == ["real", "generated", "mode centres"]
    assert ax.get_xlim() == pytest.approx((-6, 6)) and ax.get_ylim() == pytest.approx((-6, 6))
    assert ax.get_aspect() == 1.0
    assert ax.get_title() == "step 0"


def test_scatter_2d_with_centers_only_and_outside_note() -> None:
    spec = mixture_spec("ring8")
    fake = np.concatenate([spec.centers.numpy(), [[10.0, 0.0], [np.nan, 0.0]]])
    fig = scatter_2d(fake, centers=spec.centers)
    (ax,) = fig.axes
    assert len(ax.collections) == 2  # generated, centres
    assert ax.get_xlim() == pytest.approx((-1.5, 1.5))
    assert any("2/10 generated points outside" in t.get_text() for t in ax.texts)


def test_scatter_2d_errors() -> None:
    with pytest.raises(ValueError, match="either centers or spec"):
        scatter_2d(np.zeros((3, 2)), centers=np.zeros((2, 2)), spec="ring8")
    with pytest.raises(ValueError, match=r"fake must have shape \(N, 2\)"):
        scatter_2d(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="ring9"):
        scatter_2d(np.zeros((3, 2)), spec="ring9")


def test_scatter_grid_panels() -> None:
    fakes = [torch.randn(50, 2) * (i + 1) for i in range(5)]
    fig = scatter_grid(fakes, titles=[f"step {i}" for i in range(5)], spec="ring8", ncols=3)
    panels = [ax for ax in fig.axes if ax.collections]
    assert len(fig.axes) == 6 and len(panels) == 5
    for ax, f, i in zip(panels, fakes, range(5)):
        assert ax.get_title() == f"step {i}"
        np.testing.assert_allclose(ax.collections[0].get_offsets(), f.numpy(), rtol=1e-6)
        assert ax.get_legend() is None
    with pytest.raises(ValueError, match="titles has 2 entries for 5 panels"):
        scatter_grid(fakes, titles=["a", "b"])


def test_plot_curves_draws_mean_band_and_seeds():
    from gantricks.viz import plot_curves

    rows = [{"config": "a", "curve": {"step": [10, 20], "seconds": [1.0, 2.0], "modes": [4.0, 8.0]}},
            {"config": "a", "curve": {"step": [10, 20], "seconds": [3.0, 4.0], "modes": [6.0, 6.0]}},
            {"config": "b", "curve": {"step": [10, 20], "seconds": [1.0, 2.0], "modes": [1.0, 2.0]}}]
    fig = plot_curves(rows, "modes", target=8)
    ax = fig.axes[0]
    means = [line for line in ax.lines if line.get_linewidth() == 2]
    assert [list(m.get_ydata()) for m in means] == [[5.0, 7.0], [1.0, 2.0]]
    assert len(ax.lines) == 2 + 3 + 1  # two means, three seeds, the target
    assert ax.get_legend_handles_labels()[1] == ["a (n=2)", "b (n=1)"]
    by_time = plot_curves(rows, "modes", x="seconds").axes[0]
    assert list(by_time.lines[2].get_xdata()) == [2.0, 3.0]  # group a's mean seconds at steps 10 and 20
    plt.close("all")
    with pytest.raises(ValueError, match="no row has a curve of 'kl'"):
        plot_curves(rows, "kl")
    with pytest.raises(ValueError, match="x='time' is invalid"):
        plot_curves(rows, "modes", x="time")
