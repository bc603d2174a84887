"""What G and D get besides data: z from a prior, and labels (chapter 1; chapter 5 adds labels as latent).

The loop draws G's inputs through a :class:`LatentCode`: the plain one gives z from the run's prior and no labels.
A trick that conditions the networks (chapter 5's cGAN and ACGAN, a mixture component given to G) returns another
code from its config section (:meth:`gantricks.section.Section.latent_code`); the loop has no ``if`` for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch

__all__ = ["CONDITIONINGS", "LatentCode", "ModelLabels", "Prior"]

CONDITIONINGS = ("none", "cgan", "acgan")


class Prior(Protocol):
    """What the training loop needs from a latent prior (chapter 2 has several; :mod:`gantricks.noise`)."""

    dim: int

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor: ...


class ModelLabels(NamedTuple):
    """Label sizes the networks are built with: G's label input, D's label input, D's auxiliary class head."""

    g: int = 0
    d: int = 0
    aux: int = 0


class LatentCode:
    """G's input (z and G's labels) and D's labels.

    ``conditioning``: ``none`` (no labels), ``cgan`` (G and D get the class, Mirza & Osindero 2014) or ``acgan``
    (G gets it, D predicts it, Odena et al. 2017); ``labels`` draws the fake class labels (an object with
    ``sample(n, device, generator)``; needed exactly when ``conditioning`` is not ``none``); ``component_to_g``
    passes the index of a mixture prior's ``components`` to G as its label (chapter 5).
    """

    def __init__(self, conditioning: str = "none", labels: Any = None, component_to_g: bool = False,
                 components: int = 0) -> None:
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"LatentCode: conditioning={conditioning!r} is not one of {CONDITIONINGS}")
        if (conditioning != "none") != (labels is not None):
            raise ValueError(f"LatentCode: conditioning={conditioning!r} needs labels exactly when it is not 'none'")
        self.conditioning, self.labels, self.component_to_g = conditioning, labels, component_to_g
        self.components = components

    def draw(self, prior: Prior, n: int, device: torch.device, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(z, y)``: G's latent vectors and G's labels (class, mixture component, or ``None``)."""
        if self.component_to_g:
            return prior.sample_with_components(n, device, generator)  # type: ignore[attr-defined]
        z = prior.sample(n, device, generator)
        return z, (None if self.labels is None else self.labels.sample(n, device, generator))

    def d_labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """The labels D takes as input: the class for a cGAN, nothing otherwise."""
        return y if self.conditioning == "cgan" else None

    def model_labels(self, n_classes: int) -> ModelLabels:
        """The label sizes of G and D for ``n_classes`` classes."""
        if self.conditioning == "none":
            return ModelLabels(g=self.components if self.component_to_g else 0)
        return ModelLabels(g=n_classes, d=n_classes if self.conditioning == "cgan" else 0,
                           aux=n_classes if self.conditioning == "acgan" else 0)
