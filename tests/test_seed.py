"""The seed's loop as written: its generator never learns; with the loss fixed it does."""

from __future__ import annotations

import torch

from gantricks.seed import SeedDiscriminator, SeedGenerator, train_seed


def _images(n: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.8).float()


def test_seed_models_end_in_sigmoid():
    x = SeedGenerator()(torch.randn(4, 64))
    assert x.shape == (4, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    p = SeedDiscriminator()(x)
    assert p.shape == (4, 1) and 0 <= p.min() and p.max() <= 1


def test_the_seeds_generator_gets_no_gradient_and_never_changes():
    torch.manual_seed(0)
    untouched = SeedGenerator().state_dict()
    g, d, hist = train_seed(_images(), steps=6, batch_size=64, log_every=1)
    weights = {k: v for k, v in g.state_dict().items() if k.endswith("weight") or k.endswith("bias")}
    assert all(torch.equal(v, untouched[k]) for k, v in weights.items())
    assert all(r["grad_norm_g"] == 0.0 for r in hist)


def test_fixing_the_generator_loss_makes_it_learn():
    torch.manual_seed(0)
    untouched = SeedGenerator().state_dict()
    g, _, hist = train_seed(_images(), steps=6, batch_size=64, log_every=1, fix_generator_loss=True)
    assert not torch.equal(g.state_dict()["model.0.weight"], untouched["model.0.weight"])
    assert all(r["grad_norm_g"] > 0 for r in hist)
