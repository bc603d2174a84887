"""The seed's MLP GAN and its training loop, kept as written so chapter 1 can show what goes wrong.

Chapter 1 ("The baseline GAN") runs this module next to :mod:`gantricks.train` and shows its two defects:

1. **Sigmoid + ``BCELoss``**: the discriminator ends in ``nn.Sigmoid`` and the loss takes probabilities. Once D is
   confident, sigmoid saturates in float32 (``sigmoid(17) == 1.0`` exactly), ``BCELoss`` has to clamp its log at
   -100 and the gradient through the saturated sigmoid vanishes. ``gantricks`` outputs logits and uses
   ``binary_cross_entropy_with_logits`` instead.
2. **The generator never learns**: the generator's loss reuses ``dis_pred_fake``, D's prediction on
   ``fake_imgs.detach()``. Detaching cuts the graph between D's input and G, so ``g_loss.backward()`` gives every
   generator parameter a gradient of ``None`` and ``optimizer_G.step()`` changes nothing.

``fix_generator_loss=True`` repairs defect 2 only (G's loss on ``D(fake_imgs)``), which is the seed's architecture
and data range ([0, 1], Sigmoid output) with a working loop. The loop uses a ``DataLoader`` over the images, as the
seed does; :mod:`gantricks.train` keeps the data on the device instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["SeedDiscriminator", "SeedGenerator", "train_seed"]


class SeedGenerator(nn.Module):
    """The seed's generator: z (64) -> 128 -> 256 -> 512 -> 1024 -> 784, ``BatchNorm1d(out, 0.8)`` (eps 0.8)."""

    def __init__(self, z_dim: int = 64) -> None:
        super().__init__()

        def block(n_in: int, n_out: int, normalize: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
            if normalize:
                layers.append(nn.BatchNorm1d(n_out, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(*block(z_dim, 128, normalize=False), *block(128, 256), *block(256, 512),
                                   *block(512, 1024), nn.Linear(1024, 784), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.shape[0], 1, 28, 28)


class SeedDiscriminator(nn.Module):
    """The seed's discriminator: 784 -> 512 -> 256 -> 1, ending in ``nn.Sigmoid`` (a probability, not a logit)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2, inplace=True), nn.Linear(512, 256),
                                   nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, 1), nn.Sigmoid())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.model(img.view(img.shape[0], -1))


def train_seed(images: torch.Tensor | Dataset, steps: int, batch_size: int = 128, lr: float = 2e-4,
               betas: tuple[float, float] = (0.5, 0.999), z_dim: int = 64, fix_generator_loss: bool = False,
               seed: int = 0, log_every: int = 50, device: str | torch.device = "cpu",
               models: tuple[nn.Module, nn.Module] | None = None,
               on_step: Callable[[int], None] | None = None) -> tuple[nn.Module, nn.Module, list[dict[str, float]]]:
    """Train the seed's GAN on ``images`` (N, 1, 28, 28) in [0, 1] for ``steps`` batches, as the seed's loop does.

    ``images`` may also be a ``Dataset`` whose items start with an image, e.g. torchvision's MNIST with the seed's
    per-image ``ToTensor`` transform. ``device`` moves the models and each batch there, as the seed does on CUDA.
    ``models`` replaces the seed's ``(G, D)`` (D must output probabilities of shape (N, 1)); ``on_step(step)`` is
    called after every step. The benchmark ``benchmarks/bench_loop.py`` (the "Performance" page) uses all three.

    Returns ``(G, D, history)``; the history holds, every ``log_every`` steps, both losses, mean D(x), mean
    D(G(z)) and the total gradient norm G received (0.0 when no generator parameter has a gradient).
    """
    if isinstance(images, torch.Tensor):
        if images.min() < 0 or images.max() > 1:
            raise ValueError("train_seed: images must be in [0, 1] (the seed's Sigmoid output range)")
        images = TensorDataset(images)
    torch.manual_seed(seed)
    generator, discriminator = models if models is not None else (SeedGenerator(z_dim), SeedDiscriminator())
    generator.to(device)
    discriminator.to(device)
    adversarial_loss = nn.BCELoss()
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    loader = DataLoader(images, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    history: list[dict[str, float]] = []
    step = 0
    while step < steps:
        for batch in loader:
            real_imgs = batch[0].to(device)
            valid = torch.ones(real_imgs.shape[0], 1, device=device)
            fake = torch.zeros(real_imgs.shape[0], 1, device=device)
            z = torch.randn(real_imgs.shape[0], z_dim, device=device)
            fake_imgs = generator(z)

            # --- the generator, as the seed writes it ---
            optimizer_G.zero_grad()
            dis_pred_fake = discriminator(fake_imgs.detach())
            if fix_generator_loss:
                g_loss = adversarial_loss(discriminator(fake_imgs), valid)
            else:
                g_loss = adversarial_loss(dis_pred_fake, valid)  # the bug: no path from g_loss back to G
            g_loss.backward()
            g_grads = [p.grad.norm() for p in generator.parameters() if p.grad is not None]
            g_norm = float(torch.stack(g_grads).norm()) if g_grads else 0.0
            optimizer_G.step()

            # --- the discriminator ---
            optimizer_D.zero_grad()
            dis_pred_real = discriminator(real_imgs)
            dis_pred_fake = discriminator(fake_imgs.detach())
            d_loss = (adversarial_loss(dis_pred_real, valid) + adversarial_loss(dis_pred_fake, fake)) / 2
            d_loss.backward()
            optimizer_D.step()

            step += 1
            if step % log_every == 0 or step == steps:
                history.append({"step": step, "loss_d": d_loss.item(), "loss_g": g_loss.item(),
                                "d_real": dis_pred_real.mean().item(), "d_fake": dis_pred_fake.mean().item(),
                                "grad_norm_g": g_norm})
            if on_step is not None:
                on_step(step)
            if step >= steps:
                break
    return generator, discriminator, history
