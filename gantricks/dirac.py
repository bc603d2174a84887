"""The Dirac-GAN (chapter 3, "Optimisers", book/03_optimizers.ipynb): why GAN training is not minimisation.

Mescheder, Geiger and Nowozin (2018), "Which training methods for GANs do actually converge?", section 2: the real
data is a point mass at 0, the generator emits the single point ``theta`` and the discriminator is linear,
``D(x) = psi * x``. With ``f(t) = -log(1 + exp(-t))`` the GAN objective is

    L(theta, psi) = f(psi * theta) + f(0),

which D maximises and G minimises (``loss="minimax"``); with ``loss="ns"`` G instead minimises ``-f(-psi * theta)``,
the non-saturating loss (the paper's sign convention: D's logit is high on fakes). The unique equilibrium is
``(0, 0)``. The players' gradient field is ``v = (-psi f'(psi theta), theta f'(psi theta))`` (minimax): a rotation,
so the continuous flow keeps ``theta^2 + psi^2`` constant, simultaneous gradient descent multiplies it by
``1 + h^2 f'(psi theta)^2`` every step (an outward spiral) and alternating descent circles without converging.

:func:`trajectory` runs the game with real ``torch.optim`` optimisers built by :func:`gantricks.optim.build_optimizer`
(the same factory as the training loop; ``lr_g`` drives theta, ``lr_d`` drives psi), :func:`vector_field` gives the
field in closed form for a quiver or stream plot, and :func:`plot_dirac` draws the phase portrait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import OptimConfig
from .optim import build_optimizer

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DIRAC_LOSSES", "DIRAC_METHODS", "dirac_losses", "dirac_trajectories", "plot_dirac", "trajectory",
           "vector_field"]

DIRAC_LOSSES = ("minimax", "ns")

# The four methods that chapter 3 draws, as (OptimConfig fields except lr, alternating).
DIRAC_METHODS: dict[str, tuple[dict[str, Any], bool]] = {
    "simultaneous GD": ({"name": "sgd"}, False),
    "alternating GD": ({"name": "sgd"}, True),
    "momentum 0.5": ({"name": "sgd", "momentum": 0.5}, False),
    "Adam": ({"name": "adam", "betas": (0.5, 0.999)}, False),
}


def _f(t: torch.Tensor) -> torch.Tensor:
    return -F.softplus(-t)  # f(t) = -log(1 + exp(-t)), stable for large |t|


def _check_loss(loss: str) -> None:
    if loss not in DIRAC_LOSSES:
        raise ValueError(f"loss={loss!r} is invalid: allowed values are {DIRAC_LOSSES}")


def dirac_losses(theta: torch.Tensor, psi: torch.Tensor, loss: str = "minimax") -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss_g, loss_d)``, each to be minimised by its own player (D minimises ``-L``)."""
    _check_loss(loss)
    t = psi * theta
    loss_d = -(_f(t) + _f(torch.zeros_like(t)))
    loss_g = _f(t) if loss == "minimax" else -_f(-t)
    return loss_g, loss_d


def vector_field(theta: Any, psi: Any, loss: str = "minimax") -> tuple[np.ndarray, np.ndarray]:
    """The direction gradient descent moves ``(theta, psi)`` in: ``(-d loss_g / d theta, -d loss_d / d psi)``.

    Closed form, with ``f'(t) = sigmoid(-t)``; works elementwise on arrays (e.g. a ``np.meshgrid``).
    """
    _check_loss(loss)
    theta, psi = np.asarray(theta, dtype=np.float64), np.asarray(psi, dtype=np.float64)
    t = psi * theta

    def fprime(u: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 - np.tanh(u / 2.0))  # sigmoid(-u), without overflow

    d_theta = -psi * (fprime(t) if loss == "minimax" else fprime(-t))
    d_psi = theta * fprime(t)
    return d_theta, d_psi


def trajectory(optim: OptimConfig, steps: int = 300, start: Sequence[float] = (1.0, 1.0), alternating: bool = False,
               loss: str = "minimax") -> np.ndarray:
    """Train the Dirac-GAN for ``steps`` steps; return the ``(steps + 1, 2)`` array of ``(theta, psi)``.

    Both players get an optimiser from ``optim`` (``lr_g`` for theta, ``lr_d`` for psi; float64 on the CPU).
    Simultaneous: both gradients are taken at the same point, then both players step. Alternating: D steps first,
    then G steps against the updated D, as in :class:`gantricks.train.Trainer`.
    """
    _check_loss(loss)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps={steps!r} is invalid: expected a positive integer")
    optim.validate()
    theta = torch.tensor(float(start[0]), dtype=torch.float64, requires_grad=True)
    psi = torch.tensor(float(start[1]), dtype=torch.float64, requires_grad=True)
    cpu = torch.device("cpu")
    opt_g = build_optimizer([theta], optim, optim.lr_g, cpu)
    opt_d = build_optimizer([psi], optim, optim.lr_d, cpu, betas=optim.betas_d)
    path = np.empty((steps + 1, 2))
    path[0] = start
    for k in range(1, steps + 1):
        opt_g.zero_grad()
        opt_d.zero_grad()
        # each player's loss sees the other player's parameter detached, so it only reaches its own
        dirac_losses(theta.detach(), psi, loss)[1].backward()
        if alternating:
            opt_d.step()
        dirac_losses(theta, psi.detach(), loss)[0].backward()
        opt_g.step()
        if not alternating:
            opt_d.step()
        path[k] = (theta.item(), psi.item())
    return path


def dirac_trajectories(lr: float = 0.1, steps: int = 300, start: Sequence[float] = (1.0, 1.0),
                       loss: str = "minimax", methods: Mapping[str, tuple[dict[str, Any], bool]] = DIRAC_METHODS,
                       ) -> dict[str, np.ndarray]:
    """One :func:`trajectory` per method (default :data:`DIRAC_METHODS`), all with learning rate ``lr``."""
    return {name: trajectory(OptimConfig(**fields, lr_g=lr, lr_d=lr), steps, start, alternating, loss)
            for name, (fields, alternating) in methods.items()}


def plot_dirac(trajectories: Mapping[str, Any] | Any, ax: Axes | None = None, loss: str = "minimax",
               lim: float | None = None, field: str = "stream") -> Figure:
    """Phase portrait: the gradient field (``field``: ``"stream"``, ``"quiver"`` or ``"none"``) and each path.

    ``trajectories`` is one ``(n, 2)`` array or a mapping name -> array (the legend shows the names). The start
    of each path is a dot, the equilibrium ``(0, 0)`` a star. ``lim`` (default: fit the paths) bounds both axes.
    """
    from .viz import _new_axes

    if field not in ("stream", "quiver", "none"):
        raise ValueError(f"field={field!r} is invalid: allowed values are ('stream', 'quiver', 'none')")
    paths = dict(trajectories) if isinstance(trajectories, Mapping) else {"": trajectories}
    paths = {k: np.asarray(v, dtype=np.float64) for k, v in paths.items()}
    for name, p in paths.items():
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"trajectory {name!r} has shape {p.shape}; expected (n, 2) rows of (theta, psi)")
    if lim is None:
        finite = [np.abs(p[np.isfinite(p).all(axis=1)]).max(initial=0.0) for p in paths.values()]
        lim = 1.15 * max([1.0, *finite])
    fig, ax = _new_axes(ax, (5.0, 5.0))
    if field != "none":
        n = 25 if field == "stream" else 15
        g = np.linspace(-lim, lim, n)
        tt, pp = np.meshgrid(g, g)
        u, v = vector_field(tt, pp, loss)
        if field == "stream":
            ax.streamplot(tt, pp, u, v, color="0.75", density=1.0, linewidth=0.8, arrowsize=0.8)
        else:
            ax.quiver(tt, pp, u, v, color="0.6", angles="xy")
    for name, p in paths.items():
        (line,) = ax.plot(p[:, 0], p[:, 1], lw=1.2, label=name or None)
        ax.plot(p[0, 0], p[0, 1], "o", color=line.get_color(), ms=5)
    ax.plot(0.0, 0.0, "*", color="k", ms=12, label="equilibrium")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=r"generator $\theta$", ylabel=r"discriminator $\psi$",
           aspect="equal", title=f"Dirac-GAN ({loss} loss)")
    ax.legend(loc="upper right", fontsize="small")
    return fig
