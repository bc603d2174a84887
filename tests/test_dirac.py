"""The Dirac-GAN (Mescheder et al. 2018, chapter 3): closed forms against autograd and real torch.optim paths."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gantricks import OptimConfig  # noqa: E402
from gantricks.dirac import (  # noqa: E402
    DIRAC_METHODS,
    dirac_losses,
    dirac_trajectories,
    plot_dirac,
    trajectory,
    vector_field,
)


def _sgd(lr: float, **kw) -> OptimConfig:
    return OptimConfig(name="sgd", lr_g=lr, lr_d=lr, **kw)


def _radius(path: np.ndarray) -> np.ndarray:
    return np.hypot(path[:, 0], path[:, 1])


@pytest.mark.parametrize("loss", ["minimax", "ns"])
@pytest.mark.parametrize("point", [(1.0, 1.0), (-0.7, 2.0), (3.0, -0.2)])
def test_vector_field_is_minus_each_players_own_gradient(loss, point):
    theta = torch.tensor(point[0], dtype=torch.float64, requires_grad=True)
    psi = torch.tensor(point[1], dtype=torch.float64, requires_grad=True)
    loss_g, loss_d = dirac_losses(theta, psi, loss)
    (g_theta,) = torch.autograd.grad(loss_g, theta, retain_graph=True)
    (g_psi,) = torch.autograd.grad(loss_d, psi)
    v_theta, v_psi = vector_field(*point, loss)
    assert v_theta == pytest.approx(-g_theta.item(), abs=1e-12) and v_psi == pytest.approx(-g_psi.item(), abs=1e-12)


def test_the_field_at_a_point_in_closed_form():
    # f'(t) = sigmoid(-t); at (theta, psi) = (1, 2): t = 2
    s = 1.0 / (1.0 + np.exp(2.0))
    assert vector_field(1.0, 2.0) == pytest.approx((-2.0 * s, 1.0 * s))
    assert vector_field(1.0, 2.0, "ns") == pytest.approx((-2.0 * (1.0 - s), 1.0 * s))
    assert vector_field(0.0, 0.0) == (0.0, 0.0)  # the equilibrium


@pytest.mark.parametrize("loss", ["minimax", "ns"])
def test_first_steps_follow_the_field(loss):
    h, start = 0.2, np.array([0.8, -1.3])
    sim = trajectory(_sgd(h), 1, start, loss=loss)
    assert sim[1] == pytest.approx(start + h * np.array(vector_field(*start, loss)), abs=1e-14)
    alt = trajectory(_sgd(h), 1, start, alternating=True, loss=loss)
    psi1 = start[1] + h * vector_field(*start, loss)[1]  # D first ...
    theta1 = start[0] + h * vector_field(start[0], psi1, loss)[0]  # ... then G against the new D
    assert alt[1] == pytest.approx([theta1, psi1], abs=1e-14)


def test_simultaneous_gd_spirals_out_exactly_as_the_closed_form_says():
    h = 0.1
    path = trajectory(_sgd(h), 300, (1.0, 1.0))
    r2 = _radius(path) ** 2
    fprime = 1.0 / (1.0 + np.exp(path[:-1, 0] * path[:-1, 1]))
    np.testing.assert_allclose(r2[1:], r2[:-1] * (1.0 + h**2 * fprime**2), rtol=1e-12)
    assert np.all(np.diff(r2) > 0) and r2[-1] > 1.5 * r2[0]
    assert (np.diff(np.sign(path[:, 0])) != 0).sum() >= 3  # it circles the equilibrium while moving out


def test_simultaneous_gd_leaves_the_equilibrium_with_the_ns_loss_too():
    path = trajectory(_sgd(0.3), 300, (0.1, 0.1), loss="ns")
    assert _radius(path)[-1] > 3 * _radius(path)[0]


def test_alternating_gd_circles_without_converging_or_diverging():
    path = trajectory(_sgd(0.1), 1000, (1.0, 1.0), alternating=True)
    r = _radius(path) / _radius(path)[0]
    assert r.max() < 1.05 and r.min() > 0.97
    assert (np.diff(np.sign(path[:, 0])) != 0).sum() >= 10


def test_momentum_and_adam_use_torch_and_do_not_converge():
    paths = dirac_trajectories(lr=0.1, steps=300)
    assert list(paths) == list(DIRAC_METHODS)
    r = {k: _radius(p)[-1] / _radius(p)[0] for k, p in paths.items()}
    assert r["momentum 0.5"] > r["simultaneous GD"] > 1.3  # heavy-ball momentum makes the spiral worse
    assert r["Adam"] > 1.3
    # Adam's first step is lr * sign(field) per coordinate (up to eps): the torch.optim.Adam update on the right sign
    adam = trajectory(OptimConfig(name="adam", lr_g=0.05, lr_d=0.2), 1, (1.0, 1.0))
    assert adam[1] == pytest.approx([1.0 - 0.05, 1.0 + 0.2], abs=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="loss='hinge' is invalid"):
        vector_field(0.0, 1.0, "hinge")
    with pytest.raises(ValueError, match="steps=0 is invalid"):
        trajectory(_sgd(0.1), 0)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        plot_dirac(np.zeros(3))
    with pytest.raises(ValueError, match="field='arrows'"):
        plot_dirac(np.zeros((3, 2)), field="arrows")


@pytest.mark.parametrize("field", ["stream", "quiver", "none"])
def test_plot_dirac_draws_the_field_every_path_and_the_equilibrium(field):
    paths = {"sim": trajectory(_sgd(0.1), 50), "alt": trajectory(_sgd(0.1), 50, alternating=True)}
    fig = plot_dirac(paths, field=field)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["sim", "alt", "equilibrium"]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), paths["sim"])
    assert (len(ax.collections) > 0) == (field != "none")
    lo, hi = ax.get_xlim()
    assert lo < -np.abs(paths["sim"]).max() and hi > np.abs(paths["sim"]).max()
    plt.close(fig)
