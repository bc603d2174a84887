"""Generators and discriminators (chapter 1, "The baseline GAN"). Discriminators return logits of shape (N,).

* :class:`MLPGenerator` / :class:`MLPDiscriminator`: the seed's MLP GAN (z=64; G 128-256-512-1024 with
  BatchNorm and LeakyReLU 0.2; D 512-256-1). The seed writes ``BatchNorm1d(out, 0.8)``: the second positional
  argument of ``BatchNorm1d`` is ``eps``, so its epsilon is 0.8 (not a momentum of 0.8, as was probably meant). We
  keep ``bn_eps=0.8`` as the default to reproduce the seed and let it be changed.
* :class:`DCGANGenerator` / :class:`DCGANDiscriminator`: a DCGAN (Radford et al. 2016) sized for 28x28 images.
* :class:`MLP2DGenerator` / :class:`MLP2DDiscriminator`: small MLPs for the 2D mixtures, after PacGAN's synthetic
  experiments (Lin et al. 2018): G with four hidden layers of 400 units, D with three of 200: LeakyReLU units
  (``d_arch="mlp"``) or, as PacGAN's code has them, maxout units with 5 pieces (``d_arch="maxout"``,
  Goodfellow et al. 2013; :class:`Maxout`).

:func:`init_weights` is the ``init`` option: PyTorch's default initialisation, or weights drawn from N(0, 0.02)
with zero biases, as DCGAN (Radford et al. 2016, section 4) and PacGAN's code (``weights_init_std`` 0.02,
``biases_init`` 0) do. "How we measure" lists the protocol these options reproduce.

Every model takes ``n_classes`` (0 = unconditional). When it is >= 1 the model also takes integer labels ``y``
and concatenates a learned label embedding to its input (Mirza & Osindero 2014); chapter 5 uses this. Every
discriminator also takes ``aux_classes`` (0 = none): an auxiliary head on its last hidden features that predicts
the class (ACGAN, Odena et al. 2017). ``D(x, y)`` returns logits (N,) always; ``D(x, y, with_aux=True)`` returns
``(logits, class_logits)``, with ``None`` for the class logits when there is no head (:mod:`gantricks.latent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLP2DDiscriminator",
    "MLP2DGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "Maxout",
    "build_models",
    "init_weights",
]

D_ARCHS = ("mlp", "maxout")
D_NORMS = ("batch", "none")
INITS = ("torch", "normal")


class _Conditioned(nn.Module):
    """Holds an optional label embedding and checks the labels it is given."""

    def __init__(self, n_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.embed_dim = embed_dim if n_classes else 0

    def _label_features(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.embed is None:
            if y is not None:
                raise ValueError(f"{type(self).__name__}: got labels y but n_classes=0 (unconditional model)")
            return None
        if y is None:
            raise ValueError(f"{type(self).__name__}: n_classes={self.n_classes} needs labels y of shape ({n},)")
        if y.shape != (n,):
            raise ValueError(f"{type(self).__name__}: labels y have shape {tuple(y.shape)}, expected ({n},)")
        return self.embed(y)


class _Discriminator(_Conditioned):
    """A discriminator whose ``net`` ends with the linear logit layer, with an optional auxiliary class head."""

    def _add_aux(self, width: int, aux_classes: int) -> None:
        if isinstance(aux_classes, bool) or not isinstance(aux_classes, int) or aux_classes == 1 or aux_classes < 0:
            raise ValueError(f"{type(self).__name__}: aux_classes={aux_classes!r} must be 0 (no head) or >= 2")
        self.aux_classes = aux_classes
        self.aux = nn.Linear(width, aux_classes) if aux_classes else None

    def _logits(self, h: torch.Tensor, with_aux: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        if self.aux is None:
            logits = self.net(h).squeeze(1)
            return (logits, None) if with_aux else logits
        features = self.net[:-1](h)
        logits = self.net[-1](features).squeeze(1)
        return (logits, self.aux(features)) if with_aux else logits


def _output_layer(output: str) -> nn.Module:
    if output == "tanh":
        return nn.Tanh()
    if output == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"output={output!r} is not one of ('tanh', 'sigmoid')")


class MLPGenerator(_Conditioned):
    """The seed's MLP generator: z -> 128 -> 256 -> 512 -> 1024 -> image, BatchNorm on all but the first block."""

    def __init__(self, z_dim: int = 64, img_shape: Sequence[int] = (1, 28, 28),
                 hidden: Sequence[int] = (128, 256, 512, 1024), bn_eps: float = 0.8, output: str = "tanh",
                 n_classes: int = 0, embed_dim: int = 10) -> None:
        super().__init__(n_classes, embed_dim)
        self.z_dim = z_dim
        self.img_shape = tuple(img_shape)
        layers: list[nn.Module] = []
        width = z_dim + self.embed_dim
        for i, h in enumerate(hidden):
            layers.append(nn.Linear(width, h))
            if i > 0:
                layers.append(nn.BatchNorm1d(h, eps=bn_eps))
            layers.append(nn.LeakyReLU(0.2))
            width = h
        layers += [nn.Linear(width, int(torch.tensor(self.img_shape).prod())), _output_layer(output)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        e = self._label_features(y, z.shape[0])
        h = z if e is None else torch.cat([z, e], dim=1)
        return self.net(h).view(z.shape[0], *self.img_shape)


class MLPDiscriminator(_Discriminator):
    """The seed's MLP discriminator: image -> 512 -> 256 -> 1 logit, LeakyReLU 0.2, no Sigmoid."""

    def __init__(self, img_shape: Sequence[int] = (1, 28, 28), hidden: Sequence[int] = (512, 256),
                 n_classes: int = 0, embed_dim: int = 10, aux_classes: int = 0) -> None:
        super().__init__(n_classes, embed_dim)
        width = int(torch.tensor(tuple(img_shape)).prod()) + self.embed_dim
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self._add_aux(width, aux_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, with_aux: bool = False) -> Any:
        h = x.flatten(1)
        e = self._label_features(y, x.shape[0])
        if e is not None:
            h = torch.cat([h, e], dim=1)
        return self._logits(h, with_aux)


class DCGANGenerator(_Conditioned):
    """DCGAN generator for 28x28: z -> 2c x 7 x 7 -> c x 14 x 14 -> 1 x 28 x 28 (BatchNorm + ReLU, tanh out)."""

    def __init__(self, z_dim: int = 64, channels: int = 64, out_channels: int = 1, output: str = "tanh",
                 n_classes: int = 0, embed_dim: int = 10) -> None:
        super().__init__(n_classes, embed_dim)
        self.z_dim = z_dim
        c = channels
        self.fc = nn.Sequential(nn.Linear(z_dim + self.embed_dim, 2 * c * 7 * 7, bias=False),
                                nn.BatchNorm1d(2 * c * 7 * 7), nn.ReLU(True))
        self.net = nn.Sequential(
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
            nn.ConvTranspose2d(c, out_channels, 4, 2, 1), _output_layer(output),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        e = self._label_features(y, z.shape[0])
        h = z if e is None else torch.cat([z, e], dim=1)
        return self.net(self.fc(h))


class DCGANDiscriminator(_Discriminator):
    """DCGAN discriminator for 28x28: conv 4x4 stride 2 (c, then 2c with BatchNorm), LeakyReLU 0.2, linear logit.

    ``norm="none"`` drops the BatchNorm (the second convolution then has a bias), as SN-GAN's discriminator (Miyato et
    al. 2018) and the per-sample gradient penalties of chapter 8 need: BatchNorm mixes a batch's samples.
    With labels, the embedding is reshaped to a 28x28 map and stacked as an extra input channel.
    """

    def __init__(self, channels: int = 64, in_channels: int = 1, n_classes: int = 0, aux_classes: int = 0,
                 norm: str = "batch") -> None:
        super().__init__(n_classes, 28 * 28)
        if norm not in D_NORMS:
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        c = channels
        extra = 1 if n_classes else 0
        batch = norm == "batch"
        first = nn.Conv2d(in_channels + extra, c, 4, 2, 1)  # made first: layers draw their init in this order
        second = [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=not batch)] + ([nn.BatchNorm2d(2 * c)] if batch else [])
        self.net = nn.Sequential(
            first, nn.LeakyReLU(0.2, True),
            *second, nn.LeakyReLU(0.2, True),
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, 1),
        )
        self._add_aux(2 * c * 7 * 7, aux_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, with_aux: bool = False) -> Any:
        e = self._label_features(y, x.shape[0])
        if e is not None:
            x = torch.cat([x, e.view(-1, 1, 28, 28)], dim=1)
        return self._logits(x, with_aux)


class MLP2DGenerator(_Conditioned):
    """G for the 2D mixtures: z -> 4 x (Linear 400, BatchNorm, ReLU) -> 2 (linear output)."""

    def __init__(self, z_dim: int = 2, hidden: Sequence[int] = (400, 400, 400, 400), batch_norm: bool = True,
                 n_classes: int = 0, embed_dim: int = 4) -> None:
        super().__init__(n_classes, embed_dim)
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        width = z_dim + self.embed_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(True))
            width = h
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        e = self._label_features(y, z.shape[0])
        return self.net(z if e is None else torch.cat([z, e], dim=1))


class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al. 2013): ``pieces`` affine maps per unit, the unit's output is their maximum.

    As ``LinearMaxout`` in Blocks, which PacGAN's 2D discriminator uses: one ``Linear(in, out * pieces)`` whose
    outputs are grouped ``pieces`` at a time per unit.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 5) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"Maxout: pieces={pieces!r} must be >= 1")
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(dim=-1)


class MLP2DDiscriminator(_Discriminator):
    """D for the 2D mixtures: 2 -> 3 x (Linear 200, LeakyReLU 0.2) -> 1 logit; ``arch="maxout"``: 3 x (maxout,
    200 units, ``pieces`` = 5) -> 1 logit, PacGAN's discriminator (no BatchNorm, no dropout)."""

    def __init__(self, hidden: Sequence[int] = (200, 200, 200), n_classes: int = 0, embed_dim: int = 4,
                 aux_classes: int = 0, arch: str = "mlp", pieces: int = 5) -> None:
        super().__init__(n_classes, embed_dim)
        if arch not in D_ARCHS:
            raise ValueError(f"MLP2DDiscriminator: arch={arch!r} is not one of {D_ARCHS}")
        layers: list[nn.Module] = []
        width = 2 + self.embed_dim
        for h in hidden:
            layers += [Maxout(width, h, pieces)] if arch == "maxout" else [nn.Linear(width, h), nn.LeakyReLU(0.2, True)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self._add_aux(width, aux_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, with_aux: bool = False) -> Any:
        e = self._label_features(y, x.shape[0])
        return self._logits(x if e is None else torch.cat([x, e], dim=1), with_aux)


def init_weights(model: nn.Module, scheme: str = "torch") -> nn.Module:
    """Initialise ``model`` in place by ``scheme`` and return it.

    ``"torch"`` leaves PyTorch's default initialisation. ``"normal"``: the weights of every linear, convolution and
    transposed-convolution layer (maxout's included) drawn from N(0, 0.02^2), their biases 0, BatchNorm scales 1
    and shifts 0 (DCGAN, Radford et al. 2016, section 4; PacGAN's code: IsotropicGaussian(0.02), Constant(0)).
    Label embeddings keep PyTorch's N(0, 1). Draws come from torch's global generator, so seed it first.
    """
    if scheme not in INITS:
        raise ValueError(f"init={scheme!r} is invalid: allowed values are {INITS}")
    if scheme == "torch":
        return model
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def build_models(cfg: TrainConfig, data_shape: Sequence[int]) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` for a config and the shape of one data point; a mismatch is a ``ValueError`` naming both.

    G's input size is the dimension of the config's latent prior; the label sizes of G, D and D's auxiliary class
    head come from the config's :class:`~gantricks.code.LatentCode` (chapter 5: the class, a mixture component).
    ``cfg.d_arch`` chooses the 2D discriminator's units and ``cfg.init`` the initialisation (:func:`init_weights`);
    the config's sections then change the initialised networks (:meth:`~gantricks.config.TrainConfig.prepare_models`,
    e.g. spectral normalisation of D).
    """
    shape = tuple(int(s) for s in data_shape)
    name, z = cfg.resolved_model, cfg.build_prior().dim
    labels = cfg.build_latent_code().model_labels(cfg.n_classes)
    kg, d = labels.g, {"n_classes": labels.d, "aux_classes": labels.aux}
    if name in ("mlp", "dcgan") and shape != (1, 28, 28):
        raise ValueError(f"model={name!r} expects data points of shape (1, 28, 28), got {shape}")
    if name == "mlp2d" and shape != (2,):
        raise ValueError(f"model='mlp2d' expects 2D points of shape (2,), got {shape}")
    if name == "mlp":
        g, dis = MLPGenerator(z, shape, output=cfg.output, n_classes=kg), MLPDiscriminator(shape, **d)
    elif name == "dcgan":
        c = cfg.width or 64
        g, dis = DCGANGenerator(z, c, output=cfg.output, n_classes=kg), DCGANDiscriminator(c, **d, norm=cfg.d_norm)
    else:
        g, dis = MLP2DGenerator(z, n_classes=kg), MLP2DDiscriminator(**d, arch=cfg.d_arch)
    return cfg.prepare_models(init_weights(g, cfg.init), init_weights(dis, cfg.init))
