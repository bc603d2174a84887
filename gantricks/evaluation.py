"""A trained run's metrics ("How we measure"): PacGAN's mode coverage on the 2D mixtures, the digit classifier's
digits covered, KL and Frechet distance on MNIST, and label agreement for a class-conditional run.

Each function evaluates G in eval mode on latent vectors drawn from a fixed seed, so two evaluations of the same
weights agree. :mod:`gantricks.experiments` (multi-seed studies), :mod:`gantricks.curves` (learning curves) and
:mod:`gantricks.batched` (seeds as one model) all evaluate through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .mnist_metrics import DigitClassifier
    from .train import Trainer

__all__ = ["evaluate", "evaluate_2d", "evaluate_mnist", "label_agreement"]


def evaluate_2d(trainer: Trainer, n: int = 2500, seed: int = 0) -> dict[str, float]:
    """PacGAN's protocol on ``n`` generated samples: modes captured, high-quality fraction, KL to uniform."""
    from .metrics import mode_coverage

    gen = torch.Generator(device=trainer.device).manual_seed(seed)
    m = mode_coverage(trainer.sample(n, generator=gen), trainer.cfg.dataset)
    return {"modes": float(m.modes), "high_quality": m.high_quality, "kl": m.kl}


def evaluate_mnist(trainer: Trainer, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Digits covered, KL to uniform and Frechet distance of ``n`` samples under the cached digit classifier.

    For a class-conditional run (``n_classes`` > 0; chapter 5) the samples ask for every digit equally often and
    the row also holds ``label_agreement``: the fraction of samples that the classifier assigns to the digit G was
    asked for (0.1 is chance for 10 classes).
    """
    from .mnist_metrics import get_classifier, mnist_metrics

    gen = torch.Generator(device=trainer.device).manual_seed(seed)
    x, y = trainer.sample_with_labels(n, generator=gen)
    if trainer.cfg.output == "sigmoid":
        x = x * 2 - 1
    classifier = get_classifier(trainer.cfg.mnist_source, trainer.cfg.mnist_root)
    m = mnist_metrics(x, classifier)
    row = {"digits_covered": float(m.digits_covered), "kl": m.kl, "frechet": m.frechet}
    if trainer.cfg.n_classes:
        assert y is not None
        row["label_agreement"] = label_agreement(x, y, classifier)
    return row


def label_agreement(images: torch.Tensor, labels: torch.Tensor, classifier: DigitClassifier) -> float:
    """The fraction of ``images`` (in [-1, 1]) that ``classifier`` assigns to the class in ``labels``."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"label_agreement: {images.shape[0]} images but {labels.shape[0]} labels")
    probs, _ = classifier.predict(images)
    return float((probs.argmax(1).cpu() == labels.cpu()).double().mean())


def evaluate(trainer: Trainer, n: int | None = None, seed: int = 0) -> dict[str, float]:
    """The metrics of the run's dataset: :func:`evaluate_2d` (2,500 samples) or :func:`evaluate_mnist` (2,000)."""
    if trainer.cfg.dataset == "mnist":
        return evaluate_mnist(trainer, n or 2000, seed)
    return evaluate_2d(trainer, n or 2500, seed)
