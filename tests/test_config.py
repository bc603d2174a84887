"""Config: defaults are the plain GAN, every bad value names its field, round trips through dicts/JSON."""

from __future__ import annotations

import json

import pytest

from gantricks import OptimConfig, TrainConfig
from gantricks.config import resolve_device


def test_defaults_are_the_plain_gan():
    cfg = TrainConfig()
    assert (cfg.dataset, cfg.loss, cfg.smoothing.real, cfg.n_classes, cfg.amp) == ("ring8", "ns", 0.0, 0, None)
    assert cfg.resolved_model == "mlp2d" and cfg.resolved_z_dim == 2
    mnist = TrainConfig(dataset="mnist")
    assert mnist.resolved_model == "mlp" and mnist.resolved_z_dim == 64


@pytest.mark.parametrize("field, value", [
    ("dataset", "cifar10"), ("model", "resnet"), ("steps", 0), ("steps", 1.5), ("batch_size", -1),
    ("d_steps", 0), ("loss", "lsgan"), ("z_dim", 0), ("output", "relu"),
    ("n_classes", 1), ("seed", -3), ("device", "tpu"), ("amp", "fp8"), ("sync_every", 0),
    ("checkpoint_every", -1), ("mnist_source", "web"), ("data_size", 0), ("compile", "yes"),
])
def test_every_bad_value_names_its_field(field, value):
    with pytest.raises(ValueError) as err:
        TrainConfig(**{field: value})
    assert f"{field}={value!r}" in str(err.value)


def test_model_must_fit_the_dataset():
    with pytest.raises(ValueError, match="model='dcgan'.*dataset 'ring8' needs one of"):
        TrainConfig(dataset="ring8", model="dcgan")


def test_labels_only_where_the_data_has_them():
    with pytest.raises(ValueError, match="n_classes=10.*no labels"):
        TrainConfig(dataset="grid25", n_classes=10)
    assert TrainConfig(dataset="mnist", n_classes=10).n_classes == 10


@pytest.mark.parametrize("changes, field", [
    ({"name": "adamax"}, "optim.name"), ({"lr_g": 0.0}, "optim.lr_g"), ({"lr_d": -1e-3}, "optim.lr_d"),
    ({"betas": (0.5, 1.0)}, "optim.betas"), ({"momentum": 1.2}, "optim.momentum"),
])
def test_optimiser_errors_name_the_field_and_the_choices(changes, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        TrainConfig(optim=OptimConfig(**changes))


def test_unknown_optimiser_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed values are .*'adam'.*'sgd'"):
        OptimConfig(name="lion").validate()


def test_cuda_that_does_not_exist_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda'.*not available"):
        TrainConfig(device="cuda")
    assert resolve_device("auto").type == "cpu"


def test_round_trip_through_json():
    cfg = TrainConfig(dataset="mnist", steps=7, optim=OptimConfig(lr_d=4e-4, betas=(0.0, 0.9)))
    back = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['stepz'\]"):
        TrainConfig.from_dict({"stepz": 3})


def test_replace_validates():
    cfg = TrainConfig()
    assert cfg.replace(steps=5, optim={"lr_g": 1e-3}).optim.lr_g == 1e-3
    with pytest.raises(ValueError, match="steps=0"):
        cfg.replace(steps=0)
