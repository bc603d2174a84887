"""Fixtures shared by the test modules."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gantricks.config import TrainConfig
from gantricks.train import Trainer


@pytest.fixture
def straight_and_resumed(tmp_path: Path) -> Callable[[TrainConfig, int], tuple[Trainer, Trainer]]:
    """Train ``cfg`` twice: straight through, and stopped after ``stop`` steps, checkpointed to ``tmp_path`` and
    resumed from that checkpoint to the end. Returns ``(straight, resumed)`` for the test to compare: training
    never loses finished work, and a resumed run must equal the straight one bit for bit."""

    def train(cfg: TrainConfig, stop: int) -> tuple[Trainer, Trainer]:
        straight = Trainer(cfg)
        straight.fit()
        Trainer(cfg).fit(steps=stop, out_dir=tmp_path)
        resumed = Trainer.from_checkpoint(tmp_path)
        resumed.fit()
        return straight, resumed

    return train
