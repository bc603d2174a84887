"""Run presets: each chapter's recommended setting as a named, partial :class:`~gantricks.config.TrainConfig`.

``python -m gantricks train --preset NAME --dataset ring8|grid25|mnist ...`` starts from one; ``python -m gantricks
presets`` lists them. Each entry of :data:`RUN_PRESETS` holds ``fields`` (TrainConfig fields, nested sections as
dicts; never ``dataset``, ``steps`` or ``seed``, which the user picks), ``chapter`` (the notebook that measures it)
and ``evidence`` (the measured numbers that justify it). Adding a preset is adding one entry. Precedence, lowest
first: the preset's fields, then a config's own fields (a grid file's ``base`` and config), then command-line flags
(or :func:`run_preset`'s overrides), each merged section by section (:func:`gantricks.config.merge_fields`).
"""

from __future__ import annotations

import copy
from typing import Any

from .config import TrainConfig, merge_fields

__all__ = ["RUN_PRESETS", "preset_fields", "run_preset"]

RUN_PRESETS: dict[str, dict[str, Any]] = {
    "baseline": {
        "fields": {},
        "chapter": "book/01_baseline.ipynb",
        "evidence": "chapter 1's baseline",
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
}


def preset_fields(name: str) -> dict[str, Any]:
    """A copy of preset ``name``'s fields; an unknown name is a ``ValueError`` that lists the presets."""
    if name not in RUN_PRESETS:
        raise ValueError(f"preset={name!r} is invalid: allowed values are {tuple(RUN_PRESETS)} "
                         "(python -m gantricks presets describes them)")
    return copy.deepcopy(RUN_PRESETS[name]["fields"])


def run_preset(name: str, /, **overrides: Any) -> TrainConfig:
    """The validated :class:`TrainConfig` of preset ``name`` with ``overrides`` merged over it section by section.

    >>> run_preset("noise", dataset="mnist", noise={"instance_anneal_steps": 10}).noise.instance_sigma
    0.5
    """
    return TrainConfig.from_dict(merge_fields(preset_fields(name), overrides))
