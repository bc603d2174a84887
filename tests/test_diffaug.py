"""DiffAugment (gantricks/diffaug.py): translation and cutout against the reference code's indexing (Zhao et al.
2020, ``DiffAugment_pytorch.py``, with its random draws passed in), colour in closed form, gradients, seeds, the
loop and resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gantricks import TrainConfig, Trainer
from gantricks.diffaug import augment, brightness, contrast, cut_square, cutout, saturation, shift, translation


def _reference_translation(x, tx, ty):
    """The reference code's rand_translation with its shifts given."""
    b, _, h, w = x.shape
    grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(b), torch.arange(h), torch.arange(w), indexing="ij")
    grid_x = torch.clamp(grid_x + tx.view(b, 1, 1) + 1, 0, h + 1)
    grid_y = torch.clamp(grid_y + ty.view(b, 1, 1) + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def _reference_cutout(x, ox, oy, size):
    """The reference code's rand_cutout with its offsets given."""
    b, _, h, w = x.shape
    grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(b), torch.arange(size[0]), torch.arange(size[1]),
                                                indexing="ij")
    grid_x = torch.clamp(grid_x + ox.view(b, 1, 1) - size[0] // 2, min=0, max=h - 1)
    grid_y = torch.clamp(grid_y + oy.view(b, 1, 1) - size[1] // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


def test_shift_equals_the_reference_translation():
    torch.manual_seed(0)
    x = torch.randn(40, 3, 28, 28)
    tx, ty = torch.randint(-4, 5, (40,)), torch.randint(-4, 5, (40,))
    tx[:2], ty[:2] = torch.tensor([-4, 4]), torch.tensor([4, 0])
    assert torch.equal(shift(x, tx, ty), _reference_translation(x, tx, ty))
    one = torch.arange(16.0).view(1, 1, 4, 4)
    assert shift(one, torch.tensor([1]), torch.tensor([0]))[0, 0].tolist() == [
        [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [0, 0, 0, 0]]


@pytest.mark.parametrize("size", [(14, 14), (5, 5)])
def test_cut_square_equals_the_reference_cutout(size):
    torch.manual_seed(1)
    x = torch.randn(60, 1, 28, 28)
    ox = torch.randint(0, 28 + (1 - size[0] % 2), (60,))
    oy = torch.randint(0, 28 + (1 - size[1] % 2), (60,))
    ox[:2], oy[:2] = torch.tensor([0, 28 - size[0] % 2]), torch.tensor([28 - size[1] % 2, 0])
    assert torch.equal(cut_square(x, ox, oy, size), _reference_cutout(x, ox, oy, size))


def test_colour_in_closed_form():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    u = torch.rand(8, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(brightness(x, torch.Generator().manual_seed(3)), x + u - 0.5)
    assert torch.allclose(saturation(x, torch.Generator().manual_seed(3)), x)  # one channel: nothing to saturate
    c = contrast(x, torch.Generator().manual_seed(3))
    assert torch.allclose(c.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(c, (x - mean) * (u + 0.5) + mean, atol=1e-6)


def test_random_draws_stay_in_their_ranges():
    x = torch.ones(500, 1, 28, 28)
    moved = translation(x, torch.Generator().manual_seed(0))
    zero_rows = (moved[:, 0].sum(2) == 0).sum(1)  # rows shifted out of the image
    assert zero_rows.max() == 4 and zero_rows.min() == 0
    cut = cutout(x, torch.Generator().manual_seed(0))
    assert ((cut == 0).sum(dim=(1, 2, 3)) <= 14 * 14).all() and (cut == 0).any()


def test_gradients_flow_shapes_and_seeds():
    x = torch.randn(16, 1, 28, 28, requires_grad=True)
    policy = ("color", "translation", "cutout")
    y = augment(x, policy, torch.Generator().manual_seed(5))
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(y, augment(x, policy, torch.Generator().manual_seed(5)))
    assert not torch.equal(y, augment(x, policy, torch.Generator().manual_seed(6)))
    z = torch.randn(4, 1, 28, 28, requires_grad=True)
    cy, cx = torch.tensor([3, 10, 27, 0]), torch.tensor([5, 0, 27, 14])
    cut_square(z, cy, cx, (6, 6)).sum().backward()
    assert torch.equal(z.grad, cut_square(torch.ones_like(z), cy, cx, (6, 6)))  # the gradient is the mask
    with pytest.raises(ValueError, match=r"DiffAugment needs images of shape \(n, c, h, w\), got \(4, 2\)"):
        augment(torch.randn(4, 2), policy, torch.Generator())


def test_the_loop_augments_every_batch_d_sees_and_resumes_exactly(tmp_path):
    data = torch.rand(256, 1, 28, 28) * 2 - 1
    cfg = TrainConfig(dataset="mnist", model="dcgan", width=8, steps=5, batch_size=16, sync_every=2, progress=False,
                      device="cpu", diffaug={"policy": ["translation", "cutout"]})
    assert cfg.diffaug.policy == ("translation", "cutout")
    straight = Trainer(cfg, data=data)
    seen = []
    hook = straight.hook("diffaug")
    original = hook.d_input
    hook.d_input = lambda x, step, trainer: seen.append(x.requires_grad) or original(x, step, trainer)
    straight.fit()
    assert seen == [False, False, True] * 5  # per step: D's reals and fakes, then G's fakes (with G's graph)
    first = Trainer(cfg, data=data)
    first.fit(steps=3, out_dir=tmp_path)
    resumed = Trainer.from_checkpoint(tmp_path, data=data)
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()))
    assert [r["loss_d"] for r in straight.history] == [r["loss_d"] for r in resumed.history]


def test_config_checks():
    assert TrainConfig().diffaug.policy == () and TrainConfig().build_hooks() == []
    with pytest.raises(ValueError, match=r"diffaug.policy=\('cutout',\) is invalid: DiffAugment transforms images; "
                       r"dataset 'ring8' holds 2D points"):
        TrainConfig(diffaug={"policy": ("cutout",)})
    with pytest.raises(ValueError, match=r"diffaug.policy=\('flip',\) is invalid: expected distinct names among"):
        TrainConfig(dataset="mnist", diffaug={"policy": ("flip",)})
    with pytest.raises(ValueError, match=r"diffaug.cutout=0 is invalid: expected a number in \(0, 1\]"):
        TrainConfig(dataset="mnist", diffaug={"policy": ("cutout",), "cutout": 0})
    # a size for an augmentation the policy leaves out would be silently ignored
    with pytest.raises(ValueError, match=r"diffaug.translation=0.25 is invalid: it sizes DiffAugment's translation, "
                       r"which policy=\['cutout'\] does not apply"):
        TrainConfig(dataset="mnist", diffaug={"policy": ("cutout",), "translation": 0.25})
    with pytest.raises(ValueError, match=r"diffaug.cutout=0.25 is invalid: .* policy=\[\] does not apply"):
        TrainConfig(dataset="mnist", diffaug={"cutout": 0.25})
    assert TrainConfig(dataset="mnist", diffaug={"policy": ("cutout",), "cutout": 0.25}).diffaug.cutout == 0.25


def test_the_policy_is_a_flag():
    from gantricks.cli import build_parser
    from gantricks.flags import config_fields

    args = build_parser().parse_args(["train", "--out", "x", "--dataset", "mnist", "--diffaugment", "translation",
                                      "cutout", "--diffaugment-cutout", "0.25"])
    cfg = TrainConfig(**config_fields(args))
    assert cfg.diffaug.policy == ("translation", "cutout") and cfg.diffaug.cutout == 0.25
