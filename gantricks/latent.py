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

How it plugs in: :class:`LatentConfig` is the trick's config section; it gives the loop a
:class:`~gantricks.code.LatentCode` (G's input: z and G's labels; the labels D gets), the mixture prior, the partly
labelled data, and two hooks that add the loss terms (:class:`ClassTerms`, :class:`MixtureScaleTerms`), so the loop
has no ``if acgan`` branch. Discriminators take
``with_aux=True`` and then return ``(logits, class_logits or None)``; the plain call still returns logits (N,).
A :class:`MixturePrior` is an ``nn.Module``; the trainer registers it as ``G.latent_prior``, so its parameters
are in G's optimiser, its gradient norm and clipping, data-parallel gradient averaging and G's checkpoint.
``TrainConfig(n_classes=10)`` with ``latent.conditioning=None`` is the cGAN that came before trick 4, draw for
draw: defaults reproduce earlier runs bit for bit.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .code import CONDITIONINGS, LatentCode
from .data import TensorSampler
from .hooks import DBatch, GBatch, Hook, LossTerms
from .section import Choice, Number, Section, fail, flag, non_negative_int, option, optional, positive, probabilities

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig
    from .train import Trainer

__all__ = ["CategoricalLabels", "ClassTerms", "LatentCode", "LatentConfig", "MixturePrior", "MixtureScaleTerms",
           "batch_stats_only", "build_latent", "build_mixture", "class_accuracy", "class_loss", "class_terms",
           "labelled_mask", "partial_labels"]


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


def class_terms(real_cls: torch.Tensor, y_real: torch.Tensor, fake_cls: torch.Tensor, y_fake: torch.Tensor,
                labelled_cls: torch.Tensor | None = None, y_labelled: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
    """ACGAN's class terms of one D update (Odena et al. 2017, eq. 2-3): CE on labelled reals + CE on fakes.

    ``labelled_cls``/``y_labelled``: D's class logits on the extra batch of labelled reals (``latent.labelled_batch``)
    and its labels. They join the real class term, which becomes the mean cross-entropy over *every* labelled real
    image of this D update, the labelled ones of the main batch and the whole extra batch alike (each image weighs
    the same; the fake term is unchanged and weighs as much as the real term); ``aux_acc_labelled`` is the accuracy
    on the extra batch. They never enter D's adversarial term, which the loop computes from the main batch alone.
    """
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
    return terms


@contextlib.contextmanager
def batch_stats_only(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``model`` normalise with the batch's own statistics and leave their running stats alone.

    For the extra labelled batch (``latent.labelled_batch``): in training mode a BatchNorm layer normalises with the
    statistics of the batch in front of it whatever we do, so the labelled batch is normalised by its own statistics,
    as the real and the fake batches are by theirs (DCGAN's separate batches); switching ``track_running_stats``
    off for that forward keeps the running mean/variance and ``num_batches_tracked`` exactly what the adversarial
    batches make them, as if the extra batch did not exist (they are what D uses in eval mode).
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


class ClassTerms(Hook):
    """ACGAN's class terms (chapter 5): ``aux_weight`` x (CE on labelled reals + CE on fakes) for D, x CE on fakes
    for G, every term logged; with ``labelled_batch`` > 0, an extra batch of that many labelled reals per D update.

    The extra batch (Salimans et al. 2016's separate labelled batch) comes from :attr:`sampler`, built in
    :meth:`setup` over the labelled subset of the trainer's data (real labels >= 0; under ``torchrun`` the ranks take
    disjoint slices of one global batch), seeded ``seed``; it yields ``(images, labels, index into the dataset)`` and
    its state is in the checkpoint. Its forward goes through D's input hooks (instance noise: the class head sees what
    it sees on real images) and, for a D with BatchNorm, leaves the running statistics alone
    (:func:`batch_stats_only`). It trains D's class head only, never the adversarial term.
    """

    key = "acgan"

    def __init__(self, aux_weight: float = 1.0, labelled_batch: int = 0, seed: int = 0) -> None:
        self.aux_weight, self.labelled_batch, self.seed = float(aux_weight), int(labelled_batch), int(seed)
        self.sampler: TensorSampler | None = None

    def setup(self, trainer: Trainer) -> None:
        if not self.labelled_batch:
            return
        images, labels = trainer.data[0], trainer.data[1]
        index = torch.nonzero(labels >= 0).squeeze(1)
        w = trainer.dist.world_size
        if self.labelled_batch * w > index.numel():
            fail("latent.labelled_batch", self.labelled_batch, f"the labelled subset holds {index.numel()} images, "
                 f"fewer than labelled_batch x world_size = {self.labelled_batch} x {w}; use at most "
                 f"{index.numel() // w}")
        self.sampler = TensorSampler(images[index], labels[index], index, batch_size=self.labelled_batch,
                                     seed=self.seed, device=trainer.device, rank=trainer.dist.rank, world_size=w)

    def labelled_logits(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """D's class logits on the next extra batch of labelled reals, and its labels."""
        assert self.sampler is not None
        x, y, _ = self.sampler.next()
        with trainer.autocast(), batch_stats_only(trainer.D):
            _, cls = trainer.d_forward(trainer.d_input(x), None)
        return cls, y

    def d_loss(self, batch: DBatch, trainer: Trainer) -> LossTerms:
        extra = self.labelled_logits(trainer) if self.sampler is not None else ()
        terms = class_terms(batch.real_aux, batch.y_real, batch.fake_aux, batch.y_fake, *extra)
        return LossTerms(self.aux_weight * terms["loss_aux_d"], terms)

    def g_loss(self, batch: GBatch, trainer: Trainer) -> LossTerms:
        term = class_loss(batch.aux, batch.y)
        return LossTerms(self.aux_weight * term, {"loss_aux_g": term})

    def state_dict(self) -> dict[str, Any]:
        return {} if self.sampler is None else {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Iterator[dict[str, Any]]) -> dict[str, Any]:
        return {"sampler": checkpoint["labelled_sampler"]} if "labelled_sampler" in checkpoint else {}


class MixtureScaleTerms(Hook):
    """A learnt mixture prior's scales (DeLiGAN): logs their mean, ``mixture_sigma``, and with ``penalty`` > 0 adds
    ``penalty`` x mean((1 - sigma)^2) (:meth:`MixturePrior.penalty`, logged as ``loss_sigma``) to G's objective."""

    key = "mixture"

    def __init__(self, penalty: float = 0.0) -> None:
        self.penalty = float(penalty)

    def g_loss(self, batch: GBatch, trainer: Trainer) -> LossTerms | None:
        prior = trainer.prior
        if not (isinstance(prior, MixturePrior) and prior.learnable):
            return None
        terms = {"mixture_sigma": prior.scales.detach().mean()}
        if not self.penalty:
            return LossTerms(None, terms)
        terms["loss_sigma"] = prior.penalty()
        return LossTerms(self.penalty * terms["loss_sigma"], terms)

    def state_from_format1(self, checkpoint: dict[str, Any], positional: Iterator[dict[str, Any]]) -> dict[str, Any]:
        return {}


@dataclass
class LatentConfig(Section):
    """Trick 4 (chapter 5, "More latent-space distributions"): labels as latent, partly labelled data, mixture priors.

    ``conditioning``: ``None`` follows ``n_classes`` (``cgan`` when it is > 0, else ``none``); ``cgan`` (G and D get
    the label, Mirza & Osindero 2014; every real image must be labelled); ``acgan`` (G gets the label, D an auxiliary
    class head, Odena et al. 2017; works with partial labels). ``labelled_fraction`` < 1 hides the other labels
    (:func:`partial_labels`); ``labelled_batch`` > 0 adds an extra labelled batch per D update (:class:`ClassTerms`).
    ``mixture_k`` > 0: z from a DeLiGAN mixture (:class:`MixturePrior`, Gurumurthy et al. 2017).
    """

    key: ClassVar[str] = "latent"

    conditioning: str | None = option(None, "cgan = G and D get the label; acgan = G gets it, D predicts it (needs "
                                      "--n-classes; default: cgan when --n-classes > 0)",
                                      optional(Choice(CONDITIONINGS)))
    label_probs: tuple[float, ...] | None = option(None, "probabilities of the fake labels, one per class (default "
                                                   "uniform)", optional(probabilities), metavar="P")
    labelled_fraction: float = option(1.0, "share of real images that keep their label, in (0, 1] (acgan)",
                                      Number(0, 1, lo_open=True, allowed="expected a number in (0, 1]"), metavar="F")
    label_seed: int | None = option(None, "seed of the labelled subset (default --seed)", optional(non_negative_int))
    aux_weight: float = option(1.0, "weight of ACGAN's class terms", positive)
    labelled_batch: int = option(0, "acgan with --labelled-fraction < 1: also draw N labelled reals per D update for "
                                 "the class head only (0: off)", non_negative_int, metavar="N")
    mixture_k: int = option(0, "z from a mixture of K Gaussians (DeLiGAN; 0: off)", non_negative_int, metavar="K")
    mixture_learnable: bool = option(False, "learn the mixture's means and scales with G", flag)
    mixture_spread: float = option(1.0, "initial mixture means in U[-s, s]^d", positive)
    mixture_scale: float = option(0.2, "initial mixture scales", positive)
    mixture_to_g: bool = option(False, "give G the mixture component as a label (not with class conditioning)", flag)
    mixture_sigma_penalty: float = option(0.0, "DeLiGAN's weight of mean((1 - sigma)^2) in G's loss "
                                          "(--mixture-learnable; 0: off)",
                                          Number(0, math.inf, hi_open=True, allowed="expected a number >= 0 (0: off)"))

    def resolved_conditioning(self, n_classes: int) -> str:
        """``conditioning`` with ``None`` resolved: ``cgan`` when ``n_classes`` > 0, else ``none``."""
        if self.conditioning is not None:
            return self.conditioning
        return "cgan" if n_classes else "none"

    def check(self) -> None:
        for name in ("mixture_learnable", "mixture_to_g"):
            if getattr(self, name) and not self.mixture_k:
                self.fail(name, "needs a mixture prior: set latent.mixture_k >= 1")
        if self.mixture_sigma_penalty and not self.mixture_learnable:
            self.fail("mixture_sigma_penalty", "acts on learnt scales only: set latent.mixture_learnable")

    def check_with(self, cfg: Any) -> None:
        cond, n = self.resolved_conditioning(cfg.n_classes), cfg.n_classes
        if self.conditioning in ("cgan", "acgan") and not n:
            self.fail("conditioning", "needs labels: set n_classes >= 2 (MNIST: 10)")
        if self.conditioning == "none" and n:
            self.fail("conditioning", f"n_classes={n} asks for labels: choose 'cgan' or 'acgan' (or None, which "
                      "means 'cgan'), or set n_classes=0")
        if self.label_probs is not None and cond == "none":
            self.fail("label_probs", "draws fake labels: needs conditioning 'cgan' or 'acgan'")
        if self.label_probs is not None and len(self.label_probs) != n:
            self.fail("label_probs", f"expected n_classes={n} probabilities")
        if self.labelled_fraction != 1 and cond != "acgan":
            self.fail("labelled_fraction", "partly labelled data needs conditioning 'acgan' (cgan's D needs every "
                      "real label; unconditional runs use none)")
        if self.aux_weight != 1 and cond != "acgan":
            self.fail("aux_weight", "weights ACGAN's class terms: needs conditioning 'acgan'")
        if self.labelled_batch and cond != "acgan":
            self.fail("labelled_batch", f"an extra batch of labelled reals trains ACGAN's class head: needs "
                      f"conditioning 'acgan' (not {cond!r}), or 0 (off)")
        if self.labelled_batch and self.labelled_fraction == 1:
            self.fail("labelled_batch", "needs latent.labelled_fraction < 1 (with every label kept, the main batch "
                      "is all labelled already), or 0 (off)")
        if self.mixture_to_g and cond != "none":
            self.fail("mixture_to_g", f"G already gets class labels (conditioning {cond!r}): give it either the "
                      "class or the mixture component")
        if self.mixture_k and cfg.noise.latent_prior(cfg) is not None:
            self.fail("mixture_k", "the mixture replaces the prior: keep noise.prior='normal' and noise.eps_width=0")

    def latent_code(self, cfg: Any) -> LatentCode:
        return build_latent(cfg)

    def latent_prior(self, cfg: Any) -> MixturePrior | None:
        return build_mixture(cfg) if self.mixture_k else None

    def prepare_data(self, tensors: tuple[torch.Tensor, ...], cfg: Any) -> tuple[torch.Tensor, ...]:
        """With ``labelled_fraction`` < 1, the hidden labels become -1 (:func:`partial_labels`)."""
        if self.labelled_fraction == 1:
            return tensors
        seed = cfg.seed if self.label_seed is None else self.label_seed
        return (tensors[0], partial_labels(tensors[1], self.labelled_fraction, seed), *tensors[2:])

    def hooks(self, cfg: Any) -> list[Hook]:
        hooks: list[Hook] = []
        if self.resolved_conditioning(cfg.n_classes) == "acgan":
            hooks.append(ClassTerms(self.aux_weight, self.labelled_batch, seed=cfg.seed + 7))
        if self.mixture_learnable:
            hooks.append(MixtureScaleTerms(self.mixture_sigma_penalty))
        return hooks


def build_latent(cfg: TrainConfig) -> LatentCode:
    """The :class:`~gantricks.code.LatentCode` that ``cfg.latent`` (and ``cfg.n_classes``) describe."""
    lc = cfg.latent
    cond = lc.resolved_conditioning(cfg.n_classes)
    labels = CategoricalLabels(cfg.n_classes, lc.label_probs) if cond != "none" else None
    return LatentCode(cond, labels, lc.mixture_to_g, components=lc.mixture_k)


def build_mixture(cfg: TrainConfig) -> MixturePrior:
    """The :class:`MixturePrior` of ``cfg.latent`` (``mixture_k`` >= 1), means drawn from ``cfg.seed + 6``."""
    lc = cfg.latent
    return MixturePrior(cfg.resolved_z_dim, lc.mixture_k, lc.mixture_learnable, lc.mixture_spread,
                        lc.mixture_scale, seed=cfg.seed + 6)
