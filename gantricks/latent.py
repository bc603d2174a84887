"""Trick 4 (chapter 5, "More latent-space distributions"): labels as latent, partly labelled data, mixture priors.

* Labels as latent. ``cgan``: G and D both get a learned label embedding (conditional GAN, Mirza & Osindero
  2014). ``acgan``: G gets the label, D gets an auxiliary head that predicts it (ACGAN, Odena et al. 2017, eq. 2-3:
  D maximises L_S + L_C, G maximises L_C - L_S, L_C the log-likelihood of the right class on real *and* fake
  images). Fake labels come from :class:`CategoricalLabels` (uniform unless ``latent.label_probs`` says otherwise).
* Partly labelled data: :func:`labelled_mask` keeps exactly round(fraction * N) labels, at least one per class
  when that many are kept, chosen reproducibly from a seed; :func:`partial_labels` writes -1 for the others. The
  real batches then carry -1 where the label is hidden: every real image trains the adversarial term, labelled
  ones also the class term (:func:`class_loss` ignores -1). This is why partial labels need ``acgan``: a cGAN's D
  takes the label as input, so it cannot look at an unlabelled image. At a small fraction the main batch holds few
  labelled reals (1.3 of 128 at 1 %), so ``latent.labelled_batch`` > 0 draws a separate batch from the labelled
  subset on every D update (as Salimans et al. 2016 do for semi-supervised GANs); it trains only the class head
  (:meth:`LatentCode.d_loss` says how the terms are weighted; the trainer says how D's BatchNorm treats it).
* Mixture priors: :class:`MixturePrior`, z from K Gaussians with diagonal scales, fixed or learnt with G through
  the reparameterisation z = mu_k + sigma_k * eps (DeLiGAN, Gurumurthy et al. 2017: means from U[-1, 1], sigma
  0.2, and a penalty on (1 - sigma)^2 so that the scales do not collapse). ``mixture_to_g`` also gives G the
  component index as a label, so a 2D run (``n_classes`` stays 0 there) can condition on the component.

How it plugs in (:mod:`gantricks.train`): the loop asks a :class:`LatentCode` for G's input (z and G's labels),
for the labels D gets, and for the extra loss terms, so it has no ``if acgan`` branch. Discriminators take
``with_aux=True`` and then return ``(logits, class_logits or None)``; the plain call still returns logits (N,).
A :class:`MixturePrior` is an ``nn.Module``; the trainer registers it as ``G.latent_prior``, so its parameters
are in G's optimiser, its gradient norm and clipping, data-parallel gradient averaging and G's checkpoint.
``TrainConfig(n_classes=10)`` with ``latent.conditioning=None`` is the cGAN that came before trick 4, draw for
draw: defaults reproduce earlier runs bit for bit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig
    from .noise import Prior

__all__ = ["CategoricalLabels", "LatentCode", "MixturePrior", "build_latent", "build_mixture", "class_accuracy",
           "class_loss", "labelled_mask", "partial_labels"]


_LABEL_STREAM = 0x1ABE11ED


class CategoricalLabels:
    """Fake labels from a categorical over ``n_classes`` (``probs=None``: uniform, drawn with ``torch.randint``)."""

    def __init__(self, n_classes: int, probs: Any = None) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"CategoricalLabels: n_classes={n_classes!r} must be a positive integer")
        self.n_classes = n_classes
        self.probs: torch.Tensor | None = None
        if probs is not None:
            p = torch.as_tensor(probs, dtype=torch.float64)
            if p.shape != (n_classes,) or not bool((p >= 0).all()) or abs(float(p.sum()) - 1) > 1e-6:
                raise ValueError(f"CategoricalLabels: probs={probs!r} must be {n_classes} numbers >= 0 summing to 1")
            self.probs = p.float()

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.probs is None:
            return torch.randint(self.n_classes, (n,), device=device, generator=generator)
        return torch.multinomial(self.probs.to(device), n, replacement=True, generator=generator)

    def __repr__(self) -> str:
        probs = "uniform" if self.probs is None else [round(p, 4) for p in self.probs.tolist()]
        return f"CategoricalLabels(n_classes={self.n_classes}, probs={probs})"


def labelled_mask(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """A bool mask keeping exactly ``max(1, floor(fraction * N + 0.5))`` of ``labels`` (N,), chosen from ``seed``.

    One image per class present comes first (in a seeded random order), when that many are kept; the rest follow a
    seeded random permutation, independent of the batch order of a :class:`~gantricks.data.TensorSampler`. The same
    labels, fraction and seed give the same mask on every machine.
    """
    if labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32) or bool((labels < 0).any()):
        raise ValueError("labelled_mask: labels must be a 1D integer tensor of class indices >= 0")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"labelled_mask: fraction={fraction!r} must be a number in (0, 1]")
    labels = labels.cpu().long()
    n = labels.numel()
    m = max(1, min(n, math.floor(fraction * n + 0.5)))
    # a stream of its own: a generator seeded with ``seed`` itself would draw the permutation that a TensorSampler
    # with the same seed walks through, so the labelled images would come first in every epoch
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) + _LABEL_STREAM))
    key = torch.arange(n)
    classes = labels[perm]
    first = torch.full((int(classes.max()) + 1,), n).scatter_reduce(0, classes, key, "amin")
    first = first[first < n]  # the position in perm of each present class's first image
    if m >= first.numel():
        key[first] -= n  # those positions sort first
    chosen = perm[torch.argsort(key, stable=True)[:m]]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[chosen] = True
    return mask


def partial_labels(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """``labels`` with -1 wherever :func:`labelled_mask` hides the label (a copy; fraction 1 keeps every label)."""
    return torch.where(labelled_mask(labels, fraction, seed).to(labels.device), labels, torch.full_like(labels, -1))


def class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled entries (label >= 0); 0 when there are none. No host sync."""
    known = labels >= 0
    ce = F.cross_entropy(class_logits.float(), labels.clamp_min(0), reduction="none")
    return (ce * known).sum() / known.sum().clamp_min(1)


def class_accuracy(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Accuracy over the labelled entries, as a 0-d tensor; NaN when there are none (average with nanmean)."""
    known = labels >= 0
    right = ((class_logits.argmax(1) == labels) & known).sum()
    return right.float() / known.sum().float()


class MixturePrior(nn.Module):
    """z from a mixture of ``k`` diagonal Gaussians in ``dim`` dimensions (DeLiGAN, Gurumurthy et al. 2017).

    Means start in U[-``spread``, ``spread``]^dim (drawn from ``seed``), scales at ``scale``; ``weights`` (default
    uniform) pick the component. ``learnable``: means and log-scales are parameters and z = mu_k + sigma_k * eps
    carries their gradients (the reparameterisation); otherwise they are buffers. :meth:`penalty` is DeLiGAN's
    mean((1 - sigma)^2).
    """

    def __init__(self, dim: int, k: int, learnable: bool = False, spread: float = 1.0, scale: float = 0.2,
                 weights: Any = None, seed: int = 0) -> None:
        super().__init__()
        for name, v in (("dim", dim), ("k", k)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"MixturePrior: {name}={v!r} must be a positive integer")
        for name, v in (("spread", spread), ("scale", scale)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise ValueError(f"MixturePrior: {name}={v!r} must be a positive finite number")
        self.dim, self.k, self.learnable = dim, k, bool(learnable)
        gen = torch.Generator().manual_seed(int(seed))
        means = (torch.rand(k, dim, generator=gen) * 2 - 1) * spread
        log_scales = torch.full((k, dim), math.log(scale))
        w = torch.full((k,), 1.0 / k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if w.shape != (k,) or not bool((w >= 0).all()) or abs(float(w.sum()) - 1) > 1e-5:
            raise ValueError(f"MixturePrior: weights={weights!r} must be {k} numbers >= 0 summing to 1")
        if self.learnable:
            self.means, self.log_scales = nn.Parameter(means), nn.Parameter(log_scales)
        else:
            self.register_buffer("means", means)
            self.register_buffer("log_scales", log_scales)
        self.register_buffer("weights", w)

    @property
    def scales(self) -> torch.Tensor:
        return self.log_scales.exp()

    def sample_components(self, n: int, device: torch.device, generator: torch.Generator | None = None
                          ) -> torch.Tensor:
        """``n`` component indices drawn with the mixture weights."""
        return torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)

    def sample_with_components(self, n: int, device: torch.device, generator: torch.Generator | None = None,
                               components: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, k)``: ``n`` latent vectors and the component each came from (``components`` fixes them)."""
        if components is None:
            components = self.sample_components(n, device, generator)
        components = components.to(device=device, dtype=torch.long)
        if components.shape != (n,) or bool((components < 0).any() | (components >= self.k).any()):
            raise ValueError(f"MixturePrior: components must be {n} indices in [0, {self.k})")
        eps = torch.randn(n, self.dim, device=device, generator=generator)
        return self.means[components] + self.scales[components] * eps, components

    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_with_components(n, device, generator)[0]

    def penalty(self) -> torch.Tensor:
        """DeLiGAN's guard against collapsing scales: mean over components and dimensions of (1 - sigma)^2."""
        return (1 - self.scales).square().mean()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, k={self.k}, learnable={self.learnable}"


class LatentCode:
    """What the loop asks about labels and latents: G's input, D's labels, and the extra loss terms.

    ``conditioning`` is ``none``, ``cgan`` or ``acgan``; ``labels`` draws the fake class labels (``None``: none);
    ``component_to_g`` passes the mixture component as G's label; ``aux_weight`` weights ACGAN's class terms;
    ``sigma_penalty`` weights :meth:`MixturePrior.penalty` in G's loss.
    """

    def __init__(self, conditioning: str = "none", labels: CategoricalLabels | None = None,
                 component_to_g: bool = False, aux_weight: float = 1.0, sigma_penalty: float = 0.0) -> None:
        if conditioning not in ("none", "cgan", "acgan"):
            raise ValueError(f"LatentCode: conditioning={conditioning!r} is not one of ('none', 'cgan', 'acgan')")
        if (conditioning != "none") != (labels is not None):
            raise ValueError(f"LatentCode: conditioning={conditioning!r} needs labels exactly when it is not 'none'")
        self.conditioning, self.labels, self.component_to_g = conditioning, labels, component_to_g
        self.aux_weight, self.sigma_penalty = float(aux_weight), float(sigma_penalty)

    def draw(self, prior: Prior, n: int, device: torch.device, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(z, y)``: G's latent vectors and G's labels (class, mixture component, or ``None``)."""
        if self.component_to_g:
            return prior.sample_with_components(n, device, generator)
        z = prior.sample(n, device, generator)
        return z, (None if self.labels is None else self.labels.sample(n, device, generator))

    def d_labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """The labels D takes as input: the class for a cGAN, nothing otherwise."""
        return y if self.conditioning == "cgan" else None

    def d_loss(self, loss_d: torch.Tensor, real_cls: torch.Tensor | None, y_real: torch.Tensor | None,
               fake_cls: torch.Tensor | None, y_fake: torch.Tensor | None,
               labelled_cls: torch.Tensor | None = None, y_labelled: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's objective and the terms to log: ACGAN adds ``aux_weight`` x (CE on labelled reals + CE on fakes).

        ``labelled_cls``/``y_labelled``: D's class logits on the extra batch of labelled reals
        (``latent.labelled_batch``) and its labels. They join the real class term, which becomes the mean
        cross-entropy over *every* labelled real image of this D update, the labelled ones of the main batch and the
        whole extra batch alike (each image weighs the same; the fake term is unchanged and weighs as much as the
        real term, as before); ``aux_acc_labelled`` is the accuracy on the extra batch. They never enter ``loss_d``,
        the adversarial term: the caller passes that in computed from the main batch alone, so the adversarial
        batch, its size and its statistics are what they are without the extra batch.
        """
        if self.conditioning != "acgan":
            return loss_d, {}
        if labelled_cls is None:
            real = class_loss(real_cls, y_real)
        else:
            real = class_loss(torch.cat([real_cls, labelled_cls]), torch.cat([y_real, y_labelled]))
        fake = class_loss(fake_cls, y_fake)
        terms = {"loss_aux_d": real + fake, "loss_aux_d_real": real, "loss_aux_d_fake": fake,
                 "aux_acc_real": class_accuracy(real_cls.detach(), y_real),
                 "aux_acc_fake": class_accuracy(fake_cls.detach(), y_fake)}
        if labelled_cls is not None:
            terms["aux_acc_labelled"] = class_accuracy(labelled_cls.detach(), y_labelled)
        return loss_d + self.aux_weight * terms["loss_aux_d"], terms

    def g_loss(self, loss_g: torch.Tensor, fake_cls: torch.Tensor | None, y_fake: torch.Tensor | None,
               prior: Prior) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's objective and the terms to log: ACGAN's CE on fakes, DeLiGAN's scale penalty, the mean scale."""
        terms: dict[str, torch.Tensor] = {}
        if self.conditioning == "acgan":
            terms["loss_aux_g"] = class_loss(fake_cls, y_fake)
            loss_g = loss_g + self.aux_weight * terms["loss_aux_g"]
        if isinstance(prior, MixturePrior) and prior.learnable:
            terms["mixture_sigma"] = prior.scales.detach().mean()
            if self.sigma_penalty:
                terms["loss_sigma"] = prior.penalty()
                loss_g = loss_g + self.sigma_penalty * terms["loss_sigma"]
        return loss_g, terms


def build_latent(cfg: TrainConfig) -> LatentCode:
    """The :class:`LatentCode` that ``cfg.latent`` (and ``cfg.n_classes``) describe."""
    lc, cond = cfg.latent, cfg.conditioning
    labels = CategoricalLabels(cfg.n_classes, lc.label_probs) if cond != "none" else None
    return LatentCode(cond, labels, lc.mixture_to_g, lc.aux_weight, lc.mixture_sigma_penalty)


def build_mixture(cfg: TrainConfig) -> MixturePrior:
    """The :class:`MixturePrior` of ``cfg.latent`` (``mixture_k`` >= 1), means drawn from ``cfg.seed + 6``."""
    lc = cfg.latent
    return MixturePrior(cfg.resolved_z_dim, lc.mixture_k, lc.mixture_learnable, lc.mixture_spread,
                        lc.mixture_scale, seed=cfg.seed + 6)
