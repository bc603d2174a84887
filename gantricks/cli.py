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
Bad values are reported argparse-style (``error: ...``, exit status 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import TrainConfig
from .flags import add_config_flags, config_fields, given_flags
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


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import distributed
    from .train import CHECKPOINT_NAME, NonFiniteLossError, Trainer

    flags = config_fields(args)
    if args.resume:
        ckpt = os.path.join(args.resume, CHECKPOINT_NAME)
        if not os.path.isfile(ckpt):
            parser.error(f"--resume {args.resume}: no {CHECKPOINT_NAME} there")
        fixed = (["--preset"] if args.preset else []) + given_flags(args, _RESUMABLE)
        if fixed:
            parser.error(f"--resume continues a run with its own config; these flags cannot change it: {fixed} "
                         f"(allowed with --resume: --steps, --device, --checkpoint-every, --sync-every, --no-progress)")
        try:
            trainer = Trainer.from_checkpoint(args.resume, **flags)
        except ValueError as err:
            parser.error(str(err))
        out = args.resume
    else:
        out = args.out
        if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
            parser.error(f"--out {out}: it already holds a run; use --resume {out} or another folder")
        try:
            cfg = run_preset(args.preset, **flags) if args.preset else TrainConfig.from_dict(flags)
            trainer = Trainer(cfg)
        except ValueError as err:
            parser.error(str(err))
        trainer.preset = args.preset
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
    except NonFiniteLossError as err:  # its message says the step and that the last checkpoint is intact
        print(f"python -m gantricks train: {err}", file=sys.stderr)
        return 1
    finally:
        distributed.cleanup()
    last = trainer.history[-1]
    if is_main:
        print(f"step {last['step']}: loss_d={last['loss_d']:.4f} loss_g={last['loss_g']:.4f} "
              f"D(x)={last['d_real']:.3f} D(G(z))={last['d_fake']:.3f}; wrote {out}")
    return 0


def _load_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Trainer:
    """The trained run in ``args.run_dir`` on ``args.device``, or an argparse error saying what is missing."""
    from .train import CHECKPOINT_NAME, Trainer

    if not os.path.isfile(os.path.join(args.run_dir, CHECKPOINT_NAME)):
        parser.error(f"RUN_DIR {args.run_dir}: no {CHECKPOINT_NAME} there (train with --out {args.run_dir} first)")
    try:
        return Trainer.from_checkpoint(args.run_dir, device=args.device, progress=False)
    except ValueError as err:
        parser.error(str(err))


def _sample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
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
    trainer = _load_run(args, parser)
    gen = torch.Generator(device=trainer.device).manual_seed(args.seed)
    if args.drs:
        from .drs import DiscriminatorRejectionSampler

        drs = DiscriminatorRejectionSampler.from_trainer(trainer, gamma_percentile=args.drs_percentile)
        result = drs.sample(args.n, max_draws=args.drs_max_draws, generator=gen)
        samples = result.samples
        print(f"DRS: kept {result.accepted} of {result.drawn} fakes (acceptance {result.acceptance_rate:.2%}, "
              f"max logit {result.max_logit:.3f}, gamma {result.gamma:.3f})")
    else:
        samples = trainer.sample(args.n, generator=gen)
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
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
        print(json.dumps({"run": args.run_dir, "step": trainer.step_count, "dataset": trainer.cfg.dataset,
                          "data_source": trainer.data_source, **scores, "torch": torch.__version__}, indent=2))
        return 0
    out = {"run": args.run_dir, "step": trainer.step_count, "dataset": trainer.cfg.dataset,
           "data_source": trainer.data_source, **evaluate(trainer, args.n, args.seed)}
    if trainer.cfg.dataset == "mnist":
        from .mnist_metrics import get_classifier

        out["classifier"] = get_classifier(trainer.cfg.mnist_source, trainer.cfg.mnist_root).describe()
    else:
        out["protocol"] = "PacGAN: 3 std high quality, nearest-mode capture, KL of mode histogram to uniform"
    out["n"] = args.n or (2000 if trainer.cfg.dataset == "mnist" else 2500)
    out["torch"] = torch.__version__
    print(json.dumps(out, indent=2))
    return 0


def _read_history(run_dir: str) -> list[dict[str, float]]:
    """The rows of ``run_dir/history.csv`` as floats (``step`` as int); else the history in its checkpoint."""
    from .checkpoint import load_checkpoint, read_csv_columns
    from .train import CHECKPOINT_NAME

    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        return list(load_checkpoint(os.path.join(run_dir, CHECKPOINT_NAME))["history"])
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
    except ValueError as err:
        parser.error(f"RUN_DIR {run}: {err}")
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

    if args.seeds <= 0:
        parser.error(f"--seeds {args.seeds}: expected a positive integer")
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
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    command = "python -m gantricks " + " ".join(shlex.quote(a) for a in args.argv)
    target = target_mnist(args.frechet_target) if args.frechet_target is not None else "auto"
    rows = run_grid(configs, seeds, results=args.out, command=command, curve_every=args.curve_every,
                    target=target, checkpoint_every=args.checkpoint_every, batch_seeds=args.batch_seeds)
    save_csv([{k: v for k, v in r.items() if k != "curve"} for r in rows], args.out[: -len(".json")] + ".csv")
    skip = ("config", "seed", "seconds", "train_seconds", "curve", "ttq_step", "ttq_seconds", "resumed",
            "batch_seconds", "batch_train_seconds", "batched")
    metrics = [k for k in rows[0] if k not in skip]
    print(format_table(summarize(rows, metrics), {m: ".3f" for m in metrics}))
    ttq = summarize_time_to_quality(rows)
    if ttq:
        print("\ntime to quality (median over seeds; a run that never got there counts as inf)")
        for t in ttq:
            print(f"  {t['config']}: {t['reached']}/{t['n']} reached, step {t['ttq_step_median']:.0f}, "
                  f"{t['ttq_seconds_median']:.1f} s")
    return 0


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
    return commands[args.command](args, parser)
