"""Run presets: each chapter's recommended setting as a named, partial :class:`~gantricks.config.TrainConfig`.

``python -m gantricks train --preset NAME --dataset ring8|grid25|mnist ...`` starts from one; ``python -m gantricks
presets`` lists them. Each entry of :data:`RUN_PRESETS` holds ``fields`` (TrainConfig fields, nested sections as
dicts; never ``dataset``, ``steps`` or ``seed``), ``chapter`` (the notebook that measures it), ``evidence`` (the
measured numbers that justify it), where a preset needs labels ``datasets`` (the datasets it applies to; absent means
all), and where a recipe differs per dataset ``for_dataset`` (``{dataset: {fields}}``, merged over ``fields``; it may
set ``steps``, the budget the evidence was measured at, since a learning-rate schedule is part of a recipe only
together with its length). Adding a preset is adding one entry. Precedence, lowest first: the preset's fields, its
fields for the dataset, then a config's own fields (a grid file's ``base`` and config), then command-line flags (or
:func:`run_preset`'s overrides), each merged section by section (:func:`gantricks.config.merge_fields`); the user
always picks the dataset and the seed, and may override the steps.
"""

from __future__ import annotations

import copy
from typing import Any

from .config import TrainConfig, merge_fields

__all__ = ["RUN_PRESETS", "check_dataset", "preset_fields", "run_preset"]

RUN_PRESETS: dict[str, dict[str, Any]] = {
    # Chapter 1's baseline with the recipe that "How we measure" chose on tuning seeds and measured on held-out ones:
    # the 2D GANs with their learning rates decayed linearly to 0 over their budget
    # (book/results/recipe_ring8_grid.json, recipe_grid25_grid.json), MNIST's with the width-32 DCGAN
    # (book/results/mnist_digits_grid.json, "dcgan w32").
    "baseline": {
        "fields": {},
        "for_dataset": {
            "ring8": {"steps": 6000, "schedule": {"kind": "linear"}},
            "grid25": {"steps": 14000, "batch_size": 256, "schedule": {"kind": "linear"}},
            "mnist": {"steps": 4000, "batch_size": 64, "model": "dcgan", "width": 32},
        },
        "chapter": "book/01_baseline.ipynb",
        "evidence": "How we measure, held-out seeds 100-109: ring8 (results/recipe_ring8.json) and grid25 "
                    "(results/recipe_grid25.json), their time to quality and quality at the end; MNIST: the width-32 "
                    "DCGAN against the MLP at equal training time (results/mnist_digits.json, chapter 1). The book's "
                    "trick chapters measure against TrainConfig's defaults (the plain GAN at a constant rate)",
    },
    "noise": {  # the grid's config "instance noise 0.5" (book/results/noise_mnist_grid.json, 4,000 steps)
        "fields": {"noise": {"instance_sigma": 0.5, "instance_anneal_steps": 2000}},
        "chapter": "book/02_noise_inputs.ipynb",
        "evidence": "MNIST, 4,000 steps, 5 seeds: 9.2±0.8 digits vs 7.2±1.1 (p=0.01), Frechet 235±34 vs 342±70 "
                    "(p=0.02); no significant effect on ring8/grid25",
    },
    "optim": {
        "fields": {"optim": {"preset": "ttur-sagan"}},
        "chapter": "book/03_optimizers.ipynb",
        "evidence": "grid25, 3,000 steps, 5 seeds: 23.4±1.5 modes vs 17.6±2.1 for DCGAN's Adam (p<0.05), KL 0.43 vs "
                    "1.20; ring8 8.0±0.0 vs 7.4±0.9; MNIST 8.0±1.4 digits vs 7.4±1.3 (n.s.)",
    },
    "regulate": {  # the grid's config "none + clip" (book/results/regulate_*_grid.json); the controllers stay off
        "fields": {"regulate": {"clip_g": 1.0, "clip_d": 1.0}},
        "chapter": "book/04_discriminator_regulation.ipynb",
        "evidence": "grid25, 3,000 steps, 5 seeds: KL 0.83±0.12 vs 1.20±0.18 (p=0.007), modes 19.4 vs 17.6 (n.s.); "
                    "n.s. on ring8 and MNIST; neither false-positive rule helps on all three, so both stay off",
    },
    "latent": {  # chapter 5's ACGAN config with every image labelled; a choice of class, not a quality trick
        "fields": {"n_classes": 10, "latent": {"conditioning": "acgan"}},
        "chapter": "book/05_latent_distributions.ipynb",
        "evidence": "MNIST, 2,000 steps, 3 seeds: the classifier agrees with the requested digit for 0.37±0.18 of "
                    "the samples (chance 0.10); no significant change in digits covered or Frechet; chapter 5 "
                    "recommends labels to choose the class, not for quality, and no mixture prior",
        "datasets": ("mnist",),  # the labels it conditions on exist for MNIST only
    },
}

# "How we measure": PacGAN's plain GAN on the 2D mixtures, as its code trains it (book/results/pacgan_2d_grid.json
# holds it with PacGAN's budget, 400,000 updates; "How we measure" tabulates what still differs).
RUN_PRESETS["pacgan"] = {
    "fields": {"batch_size": 100, "d_arch": "maxout", "init": "normal", "update": "simultaneous",
               "optim": {"preset": "pacgan"}},
    "chapter": "book/how_we_measure.ipynb",
    "evidence": "the published protocol, not a tuned recipe: PacGAN's code (fjxmlzn/PacGAN, synthetic_data_"
                "experiments) trains its plain GAN with these settings for 400 epochs of 100,000 points "
                "(400,000 updates) and reports ring8 6.3 modes / 98.2 % high quality, grid25 17.3 / 94.8 %",
    "datasets": ("ring8", "grid25"),
}

# Chapter 6: the tricks of chapters 2-4 together, each at its chapter's recommended setting. Chapter 5's trick is
# left out: it measured no quality gain, and ring8/grid25 have no labels (chapter 6 adds it back as a separate row).
RUN_PRESETS["all-tricks"] = {
    "fields": merge_fields(*(RUN_PRESETS[name]["fields"] for name in ("noise", "optim", "regulate"))),
    "chapter": "book/06_all_together.ipynb",
    "evidence": "the presets noise + optim + regulate merged (chapter 5's labels/mixtures left out: no measured "
                "quality gain); chapter 6's leave-one-out study over 10 seeds on ring8/grid25 and 3 on MNIST "
                "(MLP and DCGAN) measures it against each trick removed and against the baseline",
}


# Chapter 8: the stabilisers that measured best alone, on top of the baseline's recipe: on the 2D mixtures minibatch
# standard deviation (Karras et al. 2018), on MNIST R1 with gamma 10 (Mescheder et al. 2018) on the DCGAN's D without
# BatchNorm (R1 needs a D that scores each image alone). The 2D pair of minibatch std with R1 (book/results/
# pair_ring8_grid.json, the pair StyleGAN2 trains with) lost to minibatch std alone on the same seeds, so R1 is left
# out there (chapter 8's leave-one-out).
_WHAT_WORKS_2D = {"mbstd": {"group": 4}}
RUN_PRESETS["what-works"] = {
    "fields": {},
    "for_dataset": {
        "ring8": merge_fields(RUN_PRESETS["baseline"]["for_dataset"]["ring8"], _WHAT_WORKS_2D),
        "grid25": merge_fields(RUN_PRESETS["baseline"]["for_dataset"]["grid25"], _WHAT_WORKS_2D),
        "mnist": merge_fields(RUN_PRESETS["baseline"]["for_dataset"]["mnist"],
                              {"d_norm": "none", "penalty": {"r1": 10.0}}),
    },
    "chapter": "book/08_what_works.ipynb",
    "evidence": "chapter 8: each stabiliser alone on the baseline (results/stabilisers_ring8.json, seeds 100-104; "
                "results/stabilisers_grid25.json, seeds 100-104; results/stabilisers_mnist.json, seeds 0-2), "
                "the 2D pair minibatch std + R1 against each part "
                "(results/pair_ring8.json), and the preset rerun on held-out seeds (results/whatworks_*.json: "
                "ring8 and grid25 seeds 105-109, MNIST seeds 3-5). MNIST: Frechet 78 against the DCGAN "
                "baseline's 128 on seeds 0-2 and 78 on held-out seeds 3-5, all 10 digits; the 2D part is not a "
                "measured gain (ring8 high quality +1.8 points on seeds 100-104, p = 0.16, -1.7 held out; grid25 "
                "24.8 modes and 79 % high quality against 24.4 and 78 %); on grid25 R1 (gamma 1) alone was the one "
                "gain (82.5 % against 78.3 % high quality on seeds 100-104, p = 0.04), and 81.8 % against 78.2 % on "
                "held-out seeds 105-109 (p = 0.21, results/stabilisers_grid25_heldout.json): not confirmed, so not in "
                "the preset. MNIST: WGAN-GP (lambda 10) on the same BatchNorm-free D reached Frechet 90 on seeds 0-2 "
                "(every digit), second to R1; that D alone, without a penalty, reached 95",
}


def preset_fields(name: str, dataset: str | None = None) -> dict[str, Any]:
    """A copy of preset ``name``'s fields (with its fields for ``dataset`` merged over them, when given); an unknown
    name is a ``ValueError`` that lists the presets."""
    if not isinstance(name, str) or name not in RUN_PRESETS:
        raise ValueError(f"preset={name!r} is invalid: allowed values are {tuple(RUN_PRESETS)} "
                         "(python -m gantricks presets describes them)")
    entry = RUN_PRESETS[name]
    fields = copy.deepcopy(entry["fields"])
    if dataset is not None and dataset in entry.get("for_dataset", {}):
        fields = merge_fields(fields, copy.deepcopy(entry["for_dataset"][dataset]))
    return fields


def check_dataset(name: str, dataset: str) -> None:
    """Raise a ``ValueError`` when preset ``name`` does not apply to ``dataset`` (e.g. ``latent`` needs labels)."""
    allowed = RUN_PRESETS[name].get("datasets")
    if allowed is not None and dataset not in allowed:
        raise ValueError(f"preset={name!r} does not apply to dataset={dataset!r}: it applies to {tuple(allowed)} "
                         "only (python -m gantricks presets says why)")


def run_preset(name: str, /, **overrides: Any) -> TrainConfig:
    """The validated :class:`TrainConfig` of preset ``name`` with ``overrides`` merged over it section by section.

    >>> run_preset("noise", dataset="mnist", noise={"instance_anneal_steps": 10}).noise.instance_sigma
    0.5
    """
    dataset = overrides.get("dataset", TrainConfig.dataset)
    fields = merge_fields(preset_fields(name, dataset if isinstance(dataset, str) else None), overrides)
    check_dataset(name, dataset)
    return TrainConfig.from_dict(fields)
