"""Command line: ``python -m gantricks train|sample|evaluate|diagnose|ablate|presets ...`` (chapter 1, "How we
measure").

``train`` writes ``checkpoint.pt``, ``history.csv``, ``config.json`` and ``samples.png`` into ``--out``;
``--preset NAME`` starts from a chapter's recommended setting (:mod:`gantricks.presets`; ``presets`` lists them),
which the other flags override;
``--resume DIR`` continues a run to ``--steps`` total steps; ``torchrun --nproc_per_node N -m gantricks train``
trains data-parallel on N GPUs/processes (:mod:`gantricks.distributed`). ``sample RUN_DIR --n N --out FILE``
loads a run's checkpoint and writes N samples: ``.npy`` holds the raw array in the data's own space, ``.png`` a picture;
``--drs`` keeps only the samples that discriminator rejection sampling accepts (chapter 4).
``evaluate RUN_DIR`` prints a run's metrics as JSON; ``diagnose RUN_DIR [--window N]`` prints the symptoms that
:mod:`gantricks.diagnose` finds in the run's ``history.csv`` (else the checkpoint's history) and in its metrics
(evaluated from the checkpoint as ``evaluate`` does; ``--no-metrics``: history only) (chapter 7);
``ablate --grid FILE --seeds N --out FILE.json`` runs named
configs x seeds and writes tidy results (JSON with the command and versions, and CSV).
Bad values are reported argparse-style (``error: ...``, exit status 2), never as a traceback; so are bad files (a
corrupt, truncated, empty or foreign checkpoint, a malformed grid) and output paths that cannot be written, which
``train``, ``sample`` and ``ablate`` check before their first step (one line, ``python -m gantricks CMD: error:
...``, exit status 2). A run that diverges (:class:`~gantricks.train.NonFiniteLossError`, of which
:class:`~gantricks.train.DivergenceError` is a kind) is one line on stderr and exit status 1; its last checkpoint is
intact.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from .checkpoint import CheckpointError
from .config import TrainConfig
from .flags import add_config_flags, config_fields, given_flags
from .outputs import OutputPathError, check_output_dir, check_output_file
from .presets import RUN_PRESETS, run_preset

if TYPE_CHECKING:  # pragma: no cover
    from .train import Trainer

__all__ = ["build_parser", "main"]


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN", description="Train a GAN and write its run folder. Every config "
                       "field has a flag (generated from gantricks.config.TrainConfig and the tricks' sections).")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="new run folder (checkpoint, history.csv, config.json, "
                       "samples.png)")
    where.add_argument("--resume", metavar="DIR", help="continue the run in DIR to --steps total steps")
    p.add_argument("--preset", choices=tuple(RUN_PRESETS), default=None, metavar="NAME",
                   help=f"start from a chapter's recommended setting ({', '.join(RUN_PRESETS)}; 'python -m gantricks "
                   "presets' lists them with their evidence); every other flag overrides it")
    add_config_flags(p)


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample from a trained run",
                       description="Load RUN_DIR's checkpoint and write N generated samples.")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help=".npy: the raw samples in the data's own space; .png: an image grid or a 2D scatter")
    p.add_argument("--drs", action="store_true",
                   help="discriminator rejection sampling (Azadi et al. 2019; trick 3): keep fakes D judges real")
    p.add_argument("--drs-percentile", type=float, default=95.0,
                   help="gamma = this percentile of F on 10,000 held-out fakes; higher: stricter (default 95)")
    p.add_argument("--drs-max-draws", type=int, default=None, help="fakes to draw at most (default 100 x --n)")
    _add_run_args(p)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """RUN_DIR, --seed and --device, shared by the commands that load a trained run."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'train'")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default 0)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="measure a trained run",
                       description="Load RUN_DIR's checkpoint and print its metrics as JSON: for 2D mixtures "
                       "PacGAN's modes / high_quality / kl; for MNIST digits_covered / kl / frechet under the "
                       "digit classifier (named in the output).")
    p.add_argument("--n", type=int, default=None, help="generated samples (default 2,500 for 2D, 2,000 for MNIST)")
    p.add_argument("--metric", choices=("default", "fid"), default="default",
                   help="default: the metrics above; fid: FID and KID with Inception-v3 (Heusel et al. 2017; "
                   "Binkowski et al. 2018) against torchvision's MNIST test digits (default --n 10,000); needs "
                   "pip install 'gantricks[fid]' and the Inception weights and MNIST downloadable (e.g. Colab)")
    _add_run_args(p)


def _add_diagnose(sub: argparse._SubParsersAction) -> None:
    from .diagnose import METRIC_THRESHOLDS

    p = sub.add_parser("diagnose", help="name a run's failures (chapter 7)",
                       description="Read RUN_DIR's history (history.csv, else the checkpoint's) and print the symptoms "
                       "gantricks.diagnose finds in it (the discriminator wins, vanishing or exploding gradients, "
                       "D(G(z)) stuck, a learning rate pinned at its bound) and in the run's metrics, evaluated from "
                       "its checkpoint as 'evaluate' does (mode collapse; 2D: high-quality fraction below "
                       f"{METRIC_THRESHOLDS['min_high_quality']}), each with advice naming a chapter. Exits 0.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'train'")
    p.add_argument("--window", type=int, default=200, help="steps per trailing window (default 200)")
    p.add_argument("--no-metrics", action="store_true",
                   help="history only: do not evaluate the checkpoint (MNIST's metrics need the digit classifier, "
                   "trained once and cached)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation's latent draws (default 0)")
    p.add_argument("--device", default="cpu", help="device of the evaluation (default cpu)")


def _add_ablate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="run named configs x seeds and tabulate mean +/- std",
                       description="Train every config of a JSON grid file with every seed, evaluate each run and "
                       "write a results JSON (rows + the command, versions, device, date) and a CSV beside it. "
                       "Finished runs already in --out are not rerun; an unfinished run resumes from the checkpoint "
                       "it left in OUT.runs/ (removed once its row is saved), so a killed study continues where it "
                       "stopped.")
    p.add_argument("--grid", required=True, metavar="FILE",
                   help='JSON: {"base": {fields}, "configs": {"name": {fields}, ...}} (TrainConfig fields; '
                   '"preset": NAME in base or a config starts from that run preset, which the fields override)')
    p.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..N-1 from --first-seed (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--config", action="append", default=None, metavar="NAME",
                   help="run only this config of the grid (repeatable; default: all), e.g. to split a study over "
                   "processes with one --out each")
    p.add_argument("--out", required=True, metavar="FILE", help="results file (.json); the CSV goes beside it")
    p.add_argument("--steps", type=int, default=None, help="override every config's steps")
    p.add_argument("--device", default=None, help="override every config's device")
    p.add_argument("--curve-every", type=int, default=0, metavar="N",
                   help="evaluate every run every N steps and at its end: learning curves and time to quality in "
                   "the results (default 0: at the end only)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="also checkpoint unfinished runs every N steps (they always are at each curve point)")
    p.add_argument("--frechet-target", type=float, default=None, metavar="F",
                   help="MNIST time to quality: the first step with all 10 digits and Frechet <= F")
    p.add_argument("--diagnose", type=int, default=0, metavar="WINDOW",
                   help="read every run's history with 'diagnose' at this window and record its symptoms (first "
                   "step of each); a run whose loss turns non-finite is then recorded as diverged and the grid goes "
                   "on (default 0: off; chapter 8)")
    p.add_argument("--batch-seeds", action="store_true",
                   help="train a config's seeds as one vectorised model where it allows (for GPUs; see the "
                   "Performance page); other configs run seed by seed")


def _add_presets(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("presets", help="list the run presets of 'train --preset'",
                   description="List the run presets (gantricks.presets.RUN_PRESETS): each chapter's recommended "
                   "setting, with its fields, its chapter and the measurements behind it.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gantricks",
                                     description="gantricks: GAN training tricks, switchable in one loop.")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{train,sample,evaluate,diagnose,ablate,presets}")
    _add_train(sub)
    _add_sample(sub)
    _add_evaluate(sub)
    _add_diagnose(sub)
    _add_ablate(sub)
    _add_presets(sub)
    return parser


_RESUMABLE = {"steps", "device", "progress", "checkpoint_every", "sync_every"}


def _fail(args: argparse.Namespace, message: str, code: int = 2) -> NoReturn:
    """One line on stderr, ``python -m gantricks CMD: error: message``, and exit ``code`` (2: a bad input)."""
    print(f"python -m gantricks {args.command}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON ``null``: an undefined metric)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _open_resume(args: argparse.Namespace, parser: argparse.ArgumentParser, flags: dict[str, Any]) -> Trainer:
    """The run in ``--resume DIR``, its folder checked writable, crash leftovers removed and ``history.csv`` /
    ``config.json`` rewritten to describe the checkpoint's step."""
    from .checkpoint import remove_stale_temporaries
    from .train import CHECKPOINT_NAME, RUN_FILES, Trainer

    if not os.path.isfile(os.path.join(args.resume, CHECKPOINT_NAME)):
        parser.error(f"--resume {args.resume}: no {CHECKPOINT_NAME} there")
    fixed = (["--preset"] if args.preset else []) + given_flags(args, _RESUMABLE)
    if fixed:
        parser.error(f"--resume continues a run with its own config; these flags cannot change it: {fixed} "
                     f"(allowed with --resume: --steps, --device, --checkpoint-every, --sync-every, --no-progress)")
    check_output_dir(args.resume, "--resume", RUN_FILES)
    try:
        trainer = Trainer.from_checkpoint(args.resume, **flags)
    except CheckpointError:
        raise
    except ValueError as err:
        parser.error(str(err))
    if trainer.dist.is_main:
        remove_stale_temporaries(args.resume, RUN_FILES)
        trainer.write_records(args.resume)
    return trainer


def _open_new(args: argparse.Namespace, parser: argparse.ArgumentParser, flags: dict[str, Any]) -> Trainer:
    """A new run for ``--out DIR``, after checking that DIR holds no run and can be written."""
    from .train import CHECKPOINT_NAME, RUN_FILES, Trainer

    out = args.out
    if not out.strip():
        parser.error(f"--out {out!r}: expected a folder name, not an empty one (which would write into the current "
                     "folder)")
    if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
        parser.error(f"--out {out}: it already holds a run; use --resume {out} or another folder")
    try:
        cfg = run_preset(args.preset, **flags) if args.preset else TrainConfig.from_dict(flags)
        trainer = Trainer(cfg)
    except ValueError as err:
        parser.error(str(err))
    check_output_dir(out, "--out", RUN_FILES)
    trainer.preset = args.preset
    return trainer


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import distributed
    from .train import NonFiniteLossError

    flags = config_fields(args)
    trainer = _open_resume(args, parser, flags) if args.resume else _open_new(args, parser, flags)
    out = args.resume or args.out
    if trainer.step_count >= trainer.cfg.steps:
        print(f"{out}: already at step {trainer.step_count} >= --steps {trainer.cfg.steps}; nothing to do")
        return 0
    is_main = trainer.dist.is_main  # under torchrun rank 0 alone prints and writes (gantricks.distributed)
    if is_main:
        ranks = f" x {trainer.dist.world_size} ranks" if trainer.dist.enabled else ""
        print(f"training on {trainer.data_source}, device {trainer.device}{ranks}, {trainer.cfg.steps} steps "
              f"-> {out}", file=sys.stderr)
    try:
        trainer.fit(out_dir=out)
    except NonFiniteLossError as err:  # its message says the step, the quantity, and that the checkpoint is intact
        print(f"python -m gantricks train: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # e.g. a full disk: the previous checkpoint is intact (atomic saves)
        print(f"python -m gantricks train: error: writing into {out} failed at step {trainer.step_count} "
              f"({err.strerror or err}); the last checkpoint on disk is intact", file=sys.stderr)
        return 1
    finally:
        distributed.cleanup()
    last = trainer.history[-1]
    if is_main:
        print(f"step {last['step']}: loss_d={last['loss_d']:.4f} loss_g={last['loss_g']:.4f} "
              f"D(x)={last['d_real']:.3f} D(G(z))={last['d_fake']:.3f}; wrote {out}")
    return 0


def _run_folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """An argparse error unless ``args.run_dir`` holds a checkpoint file."""
    from .train import CHECKPOINT_NAME

    if not os.path.isfile(os.path.join(args.run_dir, CHECKPOINT_NAME)):
        parser.error(f"RUN_DIR {args.run_dir}: no {CHECKPOINT_NAME} there (train with --out {args.run_dir} first)")


def _load_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Trainer:
    """The trained run in ``args.run_dir`` on ``args.device``; an argparse error saying what is missing, a
    :class:`CheckpointError` (one line, exit 2 in :func:`main`) for a checkpoint that cannot be used."""
    from .train import Trainer

    _run_folder(args, parser)
    try:
        return Trainer.from_checkpoint(args.run_dir, device=args.device, progress=False)
    except CheckpointError:
        raise
    except ValueError as err:
        parser.error(str(err))


def _count_non_finite(samples: Any) -> int:
    """How many samples (rows) hold a NaN or an infinity."""
    import torch

    return int((~torch.isfinite(samples.flatten(1)).all(dim=1)).sum())


def _sample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import math

    import numpy as np
    import torch

    if args.n <= 0:
        parser.error(f"--n {args.n}: expected a positive integer")
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".npy", ".png"):
        parser.error(f"--out {args.out}: expected a .npy or .png file name")
    if args.drs and not 0 <= args.drs_percentile <= 100:
        parser.error(f"--drs-percentile {args.drs_percentile}: expected a number in [0, 100]")
    if args.drs_max_draws is not None and args.drs_max_draws <= 0:
        parser.error(f"--drs-max-draws {args.drs_max_draws}: expected a positive integer")
    _run_folder(args, parser)
    check_output_file(args.out, "--out")
    trainer = _load_run(args, parser)
    gen = torch.Generator(device=trainer.device).manual_seed(args.seed)
    if args.drs:
        from .drs import DiscriminatorRejectionSampler

        drs = DiscriminatorRejectionSampler.from_trainer(trainer, gamma_percentile=args.drs_percentile)
        drs.calibrate(generator=gen)  # what sample() does first, from the same generator
        if not (math.isfinite(drs.gamma) and math.isfinite(drs.max_logit)):
            _fail(args, f"DRS: D's logits on the fakes are NaN or infinite (max logit {drs.max_logit}, gamma "
                  f"{drs.gamma}): the run in {args.run_dir} (step {trainer.step_count}) has diverged; nothing "
                  f"was written to {args.out}", code=1)
        result = drs.sample(args.n, max_draws=args.drs_max_draws, generator=gen)
        samples = result.samples
        print(f"DRS: kept {result.accepted} of {result.drawn} fakes (acceptance {result.acceptance_rate:.2%}, "
              f"max logit {result.max_logit:.3f}, gamma {result.gamma:.3f})")
    else:
        samples = trainer.sample(args.n, generator=gen)
    bad = _count_non_finite(samples)
    if bad:
        _fail(args, f"{bad} of {len(samples)} samples are NaN or infinite: the generator of {args.run_dir} (step "
              f"{trainer.step_count}) has diverged; nothing was written to {args.out}", code=1)
    if ext == ".npy":
        np.save(args.out, samples.numpy())
    else:
        import matplotlib

        matplotlib.use("Agg")
        trainer.save_samples_png(samples, args.out)
    print(f"wrote {len(samples)} samples (step {trainer.step_count}) to {args.out}")
    return 0


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import json

    import torch

    from .experiments import evaluate

    if args.n is not None and args.n <= 0:
        parser.error(f"--n {args.n}: expected a positive integer")
    trainer = _load_run(args, parser)
    if args.metric == "fid":
        from .fid import FIDUnavailable, fid_metrics

        try:
            scores = fid_metrics(trainer, args.n, args.seed)
        except (FIDUnavailable, ValueError) as err:
            parser.error(str(err))
        print(json.dumps(_json_safe({"run": args.run_dir, "step": trainer.step_count, "dataset": trainer.cfg.dataset,
                                     "data_source": trainer.data_source, **scores, "torch": torch.__version__}),
                         indent=2, allow_nan=False))
        return 0
    out = {"run": args.run_dir, "step": trainer.step_count, "dataset": trainer.cfg.dataset,
           "data_source": trainer.data_source, **evaluate(trainer, args.n, args.seed)}
    if trainer.cfg.dataset == "mnist":
        from .mnist_metrics import get_classifier

        out["classifier"] = get_classifier(trainer.cfg.mnist_source, trainer.cfg.mnist_root).describe()
    else:
        out["protocol"] = "PacGAN: 3 std high quality, nearest-mode capture, KL of mode histogram to uniform"
    out["n"] = args.n or (2000 if trainer.cfg.dataset == "mnist" else 2500)
    drawn = trainer.sample(out["n"], generator=torch.Generator(device=trainer.device).manual_seed(args.seed))
    out["non_finite_samples"] = _count_non_finite(drawn)  # the samples the metrics saw; > 0: G has diverged
    out["torch"] = torch.__version__
    if out["non_finite_samples"]:
        print(f"python -m gantricks evaluate: warning: {out['non_finite_samples']} of {out['n']} samples are NaN or "
              "infinite (the generator has diverged): metrics that they make undefined are null", file=sys.stderr)
    print(json.dumps(_json_safe(out), indent=2, allow_nan=False))
    return 0


def _read_history(run_dir: str) -> list[dict[str, float]]:
    """The rows of ``run_dir/history.csv`` as floats (``step`` as int); else the history in its checkpoint."""
    from .checkpoint import load_checkpoint, read_csv_columns
    from .train import CHECKPOINT_NAME

    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        ckpt = os.path.join(run_dir, CHECKPOINT_NAME)
        history = load_checkpoint(ckpt).get("history")
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            raise CheckpointError(f"checkpoint {ckpt!r} is not a gantricks checkpoint: it has no history (a list of "
                                  "rows)")
        return history
    columns = read_csv_columns(path)
    n = len(next(iter(columns.values()), ()))
    rows = [{k: float(v[i]) for k, v in columns.items()} for i in range(n)]
    return [{**r, "step": int(r["step"])} if "step" in r else r for r in rows]


def _diagnose(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .diagnose import diagnose, diagnose_metrics, report
    from .train import CHECKPOINT_NAME

    run = args.run_dir
    if not os.path.isdir(run):
        parser.error(f"RUN_DIR {run}: no such folder")
    has_ckpt = os.path.isfile(os.path.join(run, CHECKPOINT_NAME))
    if not has_ckpt and not os.path.isfile(os.path.join(run, "history.csv")):
        parser.error(f"RUN_DIR {run}: no history.csv or {CHECKPOINT_NAME} there (train with --out {run} first)")
    try:
        history = _read_history(run)
    except CheckpointError:
        raise
    except ValueError as err:
        parser.error(f"RUN_DIR {run}: {err}")
    if len(history) < 2:
        parser.error(f"RUN_DIR {run}: the run has {len(history)} step(s) in its history; diagnose needs at least 2 "
                     "(train it further with --resume)")
    if args.window > len(history):
        parser.error(f"--window {args.window}: the run has only {len(history)} steps; pass --window <= {len(history)}")
    try:
        findings = diagnose(history, window=args.window)
    except ValueError as err:
        parser.error(str(err))
    line = f"{run}: {len(history)} steps"
    if not args.no_metrics and has_ckpt:
        from .experiments import evaluate

        trainer = _load_run(args, parser)
        metrics = {"step": trainer.step_count, **evaluate(trainer, seed=args.seed)}
        findings += diagnose_metrics(metrics, trainer.cfg.dataset)
        shown = ", ".join(f"{k}={v:.3g}" for k, v in metrics.items() if k != "step")
        line += f", {trainer.cfg.dataset}, metrics at step {trainer.step_count}: {shown}"
    print(line)
    print(report(findings))
    return 0


def _ablate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import shlex

    from .curves import summarize_time_to_quality, target_mnist
    from .experiments import format_table, load_grid, run_grid, save_csv, summarize
    from .train import NonFiniteLossError

    if args.seeds <= 0:
        parser.error(f"--seeds {args.seeds}: expected a positive integer")
    if args.diagnose == 1 or args.diagnose < 0:
        parser.error(f"--diagnose {args.diagnose}: expected 0 (off) or a window of at least 2 steps")
    for flag, value in (("--curve-every", args.curve_every), ("--checkpoint-every", args.checkpoint_every)):
        if value < 0:
            parser.error(f"{flag} {value}: expected 0 (off) or a positive number of steps")
    if args.frechet_target is not None and not args.frechet_target > 0:
        parser.error(f"--frechet-target {args.frechet_target}: expected a positive number")
    if not args.out.endswith(".json"):
        parser.error(f"--out {args.out}: expected a .json file name")
    if not os.path.isfile(args.grid):
        parser.error(f"--grid {args.grid}: no such file")
    overrides = {k: v for k, v in (("steps", args.steps), ("device", args.device)) if v is not None}
    try:
        configs = load_grid(args.grid, progress=False, **overrides)
    except ValueError as err:
        parser.error(str(err))
    unknown = [name for name in args.config or () if name not in configs]
    if unknown:
        parser.error(f"--config {unknown[0]!r}: the grid {args.grid} has no such config; it has {list(configs)}")
    if args.config:
        configs = {name: cfg for name, cfg in configs.items() if name in args.config}
    csv_path = args.out[: -len(".json")] + ".csv"
    for path in (args.out, csv_path):
        check_output_file(path, "--out")
    _check_results_file(args.out)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    command = "python -m gantricks " + " ".join(shlex.quote(a) for a in args.argv)
    target = target_mnist(args.frechet_target) if args.frechet_target is not None else "auto"
    try:
        rows = run_grid(configs, seeds, results=args.out, command=command, curve_every=args.curve_every,
                        target=target, checkpoint_every=args.checkpoint_every, batch_seeds=args.batch_seeds,
                        diagnose_window=args.diagnose)
    except NonFiniteLossError as err:
        _fail(args, f"a run diverged; the finished rows are saved in {args.out}: {err}", code=1)
    save_csv([{k: (_symptom_cell(v) if k == "symptoms" else v) for k, v in r.items() if k != "curve"} for r in rows],
             csv_path)
    skip = ("config", "seed", "seconds", "train_seconds", "curve", "ttq_step", "ttq_seconds", "resumed",
            "batch_seconds", "batch_train_seconds", "batched", "symptoms", "diverged_step")
    metrics = list(dict.fromkeys(k for r in rows for k in r if k not in skip))
    print(format_table(summarize(rows, metrics), {m: ".3f" for m in metrics}))
    if args.diagnose:
        print(f"\nsymptoms (diagnose, window {args.diagnose}): runs that show each, per config")
        for name in dict.fromkeys(r["config"] for r in rows):
            runs = [r for r in rows if r["config"] == name]
            found = [s for r in runs for s in r.get("symptoms", {})]  # rows stored without --diagnose have none
            found += ["diverged"] * sum("diverged_step" in r for r in runs)
            counts = ", ".join(f"{s} {found.count(s)}/{len(runs)}" for s in dict.fromkeys(found)) or "none"
            print(f"  {name}: {counts}")
    ttq = summarize_time_to_quality(rows)
    if ttq:
        print("\ntime to quality (median over seeds; a run that never got there counts as inf)")
        for t in ttq:
            print(f"  {t['config']}: {t['reached']}/{t['n']} reached, step {t['ttq_step_median']:.0f}, "
                  f"{t['ttq_seconds_median']:.1f} s")
    return 0


def _symptom_cell(symptoms: dict[str, int]) -> str:
    """A row's symptoms as one CSV cell: ``d_wins@224 vanishing_g_grad@443`` (empty when none)."""
    return " ".join(f"{k}@{v}" for k, v in symptoms.items())


def _check_results_file(path: str) -> None:
    """An existing ``ablate --out`` file must be a results file (its finished rows are kept): JSON with a list
    ``rows`` of objects with ``config`` and ``seed``; else an :class:`OutputPathError` naming it."""
    import json

    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f).get("rows")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise OutputPathError(f"--out {path}: it exists but is not a results file of 'ablate' ({type(err).__name__}: "
                              f"{' '.join(str(err).split())}); move it away or choose another name") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"config", "seed"} <= set(r) for r in rows):
        raise OutputPathError(f"--out {path}: it exists but has no list 'rows' of results (each with 'config' and "
                              "'seed'); move it away or choose another name")


def _presets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import json

    for name, entry in RUN_PRESETS.items():
        only = f"\n  datasets: {', '.join(entry['datasets'])} only" if "datasets" in entry else ""
        per = "".join(f"\n  {d}: {json.dumps(f)}" for d, f in entry.get("for_dataset", {}).items())
        print(f"{name}  ({entry['chapter']})\n  fields:   {json.dumps(entry['fields'])}{per}\n"
              f"  evidence: {entry['evidence']}{only}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": _train, "sample": _sample, "evaluate": _evaluate, "diagnose": _diagnose,
                "ablate": _ablate, "presets": _presets}
    try:
        return commands[args.command](args, parser)
    except (CheckpointError, OutputPathError) as err:  # a bad file or output path: one line, exit 2
        _fail(args, str(err))
