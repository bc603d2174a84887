"""Multi-seed experiments: run named configs x seeds, evaluate each run, and summarise as mean +/- std.

Every chapter answers "did this trick help?" with this module ("How we measure" explains the protocol). A run is
one ``(config name, seed)`` pair; :func:`run_grid` returns one tidy row per run (config, seed, metrics, seconds)
and, given a ``results`` path, saves every finished row as it goes, with the package, torch and device versions
and the date, and skips rows already there (so an interrupted study resumes where it stopped).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from . import repository as _repository
from .checkpoint import write_csv as save_csv
from .config import TrainConfig, merge_fields
from .evaluation import evaluate, evaluate_2d, evaluate_mnist, label_agreement
from .presets import run_preset
from .train import NonFiniteLossError, Trainer

if TYPE_CHECKING:  # pragma: no cover
    from .curves import Target

__all__ = ["RESULTS_URL", "comparison_table", "evaluate", "evaluate_2d", "evaluate_mnist", "format_table",
           "label_agreement", "load_grid", "load_results", "run_grid", "save_csv", "summarize", "truncation_sweep",
           "versus_baseline"]

RESULTS_URL = _repository.raw_url("book/results/")
"""Where :func:`load_results` fetches a stored results file that is not on disk (e.g. in Colab): ``book/results/``
on the branch of :mod:`gantricks.repository`, the one place that names the repository."""

Evaluator = Callable[[Trainer], Mapping[str, float]]


def truncation_sweep(trainer: Trainer, thresholds: Sequence[float], n: int | None = None, seed: int = 0
                     ) -> list[dict[str, float]]:
    """The truncation trick's quality/diversity trade-off (Brock et al. 2019; chapter 2, "Noise inputs").

    For each threshold, ``n`` samples are drawn from the trained generator with z from a normal truncated at that
    threshold (``math.inf``: the untruncated normal), all from the same random stream, and evaluated. On MNIST a
    row holds ``confident_fraction`` (quality: samples the digit classifier labels with confidence >= 0.5),
    ``digits_covered``, ``kl`` and ``frechet`` (as :func:`evaluate_mnist`) and ``feature_spread`` (diversity: mean
    pairwise distance of the classifier's features of the samples over that of the real held-out digits); on a 2D
    mixture it holds :func:`evaluate_2d`'s metrics. The run must have been trained with the normal prior.
    """
    from .metrics import mode_coverage
    from .noise import NormalPrior, TruncatedNormalPrior

    if type(trainer.prior) is not NormalPrior:
        raise ValueError(f"truncation_sweep: the run's prior is {trainer.prior!r}; truncation is defined for a run "
                         "trained with the normal prior (noise.prior='normal', eps_width=0)")
    thresholds = list(thresholds)
    if not thresholds or any(not (isinstance(t, (int, float)) and t > 0) for t in thresholds):
        raise ValueError(f"truncation_sweep: thresholds={thresholds!r}: expected positive numbers (math.inf allowed)")
    mnist = trainer.cfg.dataset == "mnist"
    n = n or (2000 if mnist else 2500)
    rows = []
    for t in thresholds:
        dim = trainer.prior.dim
        prior = NormalPrior(dim) if math.isinf(t) else TruncatedNormalPrior(dim, float(t))
        x = trainer.sample(n, generator=torch.Generator(device=trainer.device).manual_seed(seed), prior=prior)
        row: dict[str, float] = {"threshold": float(t)}
        if mnist:
            from .mnist_metrics import get_classifier, mnist_metrics

            if trainer.cfg.output == "sigmoid":
                x = x * 2 - 1
            classifier = get_classifier(trainer.cfg.mnist_source, trainer.cfg.mnist_root)
            m = mnist_metrics(x, classifier)
            fake = classifier.predict(x)[1]
            real = classifier.predict(classifier.test_images)[1]
            row.update(confident_fraction=m.confident_fraction, digits_covered=float(m.digits_covered), kl=m.kl,
                       frechet=m.frechet, feature_spread=float(torch.pdist(fake).mean() / torch.pdist(real).mean()))
        else:
            m2 = mode_coverage(x, trainer.cfg.dataset)
            row.update(modes=float(m2.modes), high_quality=m2.high_quality, kl=m2.kl)
        rows.append(row)
    return rows


def _metadata() -> dict[str, Any]:
    from . import __version__

    return {"gantricks": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
            "torch_threads": torch.get_num_threads(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _load_rows(path: str) -> list[dict[str, Any]]:
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return list(json.load(f)["rows"])


def _save_rows(path: str, rows: list[dict[str, Any]], command: str | None) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"command": command, "meta": _metadata(), "rows": rows}, f, indent=1)
    os.replace(tmp, path)


def run_grid(configs: Mapping[str, TrainConfig], seeds: Iterable[int], evaluate: Evaluator = evaluate,
             results: str | os.PathLike | None = None, command: str | None = None, progress: bool = True,
             trainer_kwargs: Mapping[str, Mapping[str, Any]] | None = None, curve_every: int = 0,
             target: Target | None | str = "auto", checkpoint_every: int = 0,
             run_dir: str | os.PathLike | None = None, batch_seeds: bool = False,
             diagnose_window: int = 0) -> list[dict[str, Any]]:
    """Train every config with every seed (``cfg.replace(seed=s)``), evaluate, and return tidy rows.

    ``trainer_kwargs[name]`` passes extra :class:`Trainer` arguments (hooks, prior) to one config. With
    ``results``, finished rows are saved after each run and rows already saved are not rerun.

    ``curve_every`` > 0 evaluates each run every so many steps and at its end (:mod:`gantricks.curves`): the row
    gets ``curve`` (columns ``step``, ``seconds``, metrics), ``train_seconds`` and, for a ``target`` (default
    ``"auto"``: :func:`~gantricks.curves.target_for` the dataset; ``None``: none), ``ttq_step`` and
    ``ttq_seconds`` (``None`` when the run never reached it). A row's metrics are those of its last point.

    An unfinished run survives interruption: with ``results`` (or ``run_dir``), each run writes a checkpoint to
    ``run_dir/<config>/seed<k>`` (default ``run_dir``: the results path without ``.json`` plus ``.runs``) at every
    curve point and every ``checkpoint_every`` steps, and a rerun resumes it from there, bit for bit, with the
    curve it had. A checkpoint whose config differs from the grid's is not resumed (the run starts over). The
    folder is removed once the run's row is saved.

    ``batch_seeds``: a config's unfinished seeds train as one vectorised model
    (:func:`gantricks.batched.run_batched`; equal to separate runs up to floating-point rounding, see the
    "Performance" page) where :func:`gantricks.batched.batchable` allows it and ``trainer_kwargs`` gives that config
    nothing; other configs train one seed at a time. It pays on a GPU, not on a CPU.

    ``diagnose_window`` > 0 (chapter 8's symptom study) reads each run's history with
    :func:`gantricks.diagnose.diagnose` at that window and records ``symptoms``: ``{symptom: first step}`` (empty
    when none). A run whose loss turns non-finite is then an outcome, not an error: its row gets ``diverged_step``
    and its symptoms (no metrics, no curve) and the grid goes on; without it, the
    :class:`~gantricks.train.NonFiniteLossError` propagates. Seeds then train one at a time (``batch_seeds`` is
    ignored), since the symptoms are read from each run's own history.
    """
    from .curves import curve_steps, target_for

    seeds = list(seeds)
    path = os.fspath(results) if results is not None else None
    rows = _load_rows(path) if path else []
    done = {(r["config"], r["seed"]) for r in rows}
    if run_dir is None and path is not None:
        run_dir = (path[: -len(".json")] if path.endswith(".json") else path) + ".runs"
    for name, cfg in configs.items():
        todo = [s for s in seeds if (name, s) not in done]
        if batch_seeds and not diagnose_window and todo and not (trainer_kwargs or {}).get(name):
            from .batched import batchable, run_batched

            if batchable(cfg) is None:
                rows += run_batched(cfg.replace(progress=False), todo, evaluate, name=name,
                                    curve_steps=curve_steps(cfg.steps, curve_every) if curve_every else None,
                                    run_dir=None if run_dir is None else os.path.join(os.fspath(run_dir), _slug(name),
                                                                                    "batched"),
                                    checkpoint_every=checkpoint_every, target=target)
                if path:
                    _save_rows(path, rows, command)
                continue
        for seed in todo:
            t0 = time.perf_counter()
            run_cfg = cfg.replace(seed=seed, progress=False)
            folder = None if run_dir is None else os.path.join(os.fspath(run_dir), _slug(name), f"seed{seed}")
            kwargs = dict((trainer_kwargs or {}).get(name, {}))
            trainer, resumed = _start_run(run_cfg, folder, kwargs, curves=bool(curve_every))
            row: dict[str, Any] = {"config": name, "seed": seed}
            try:
                if curve_every or folder is not None:
                    at = curve_steps(run_cfg.steps, curve_every) if curve_every else [run_cfg.steps]
                    stops = curve_steps(run_cfg.steps, checkpoint_every) if checkpoint_every and folder else []
                    save = (lambda t, f=folder: t.save(f)) if folder is not None else None
                    points = _fit_points(trainer, at, stops, evaluate, save)
                    metrics = {k: v for k, v in points[-1].items() if k not in ("step", "seconds")}
                    row.update(metrics)
                else:
                    trainer.fit()
                    row.update({k: float(v) for k, v in evaluate(trainer).items()})
            except NonFiniteLossError as err:
                if not diagnose_window:
                    raise
                row["diverged_step"] = err.step
            row["seconds"] = time.perf_counter() - t0
            if diagnose_window:
                row["symptoms"] = _symptoms(trainer.history, diagnose_window)
            if curve_every and "diverged_step" not in row:
                from .curves import columns, time_to_quality

                row["train_seconds"] = trainer.elapsed
                row["curve"] = columns(points)
                goal = target_for(run_cfg.dataset) if target == "auto" else target
                if goal is not None:
                    reached = time_to_quality(points, goal)
                    row["ttq_step"] = None if reached is None else reached["step"]
                    row["ttq_seconds"] = None if reached is None else reached["seconds"]
                if resumed:
                    row["resumed"] = True
            rows.append(row)
            if progress:
                shown = ", ".join(f"{k}={v:.3g}" for k, v in row.items()
                                  if k not in ("config", "seed", "seconds", "curve") and isinstance(v, float))
                if "diverged_step" in row:
                    shown = f"diverged at step {row['diverged_step']}"
                if diagnose_window:
                    shown += "; symptoms: " + (", ".join(f"{k} at {v}" for k, v in row["symptoms"].items()) or "none")
                print(f"[{name} seed {seed}] {shown} ({row['seconds']:.0f} s)", flush=True)
            if path:
                _save_rows(path, rows, command)
            if folder is not None and os.path.isdir(folder):
                import shutil

                shutil.rmtree(folder)
                with contextlib.suppress(OSError):  # the config's folder and OUT.runs/, once empty
                    os.removedirs(os.path.dirname(folder))
    return [r for r in rows if r["config"] in configs and r["seed"] in seeds]


def _symptoms(history: Sequence[Mapping[str, float]], window: int) -> dict[str, int]:
    """``{symptom: first step}`` of :func:`gantricks.diagnose.diagnose` at ``window`` (shortened to the history's
    length for a run that stopped early; empty when fewer than 2 rows)."""
    from .diagnose import diagnose

    window = min(window, len(history))
    return {} if window < 2 else {f.symptom: f.step for f in diagnose(history, window=window)}


def _slug(name: str) -> str:
    """A folder name for a config name: safe characters, and a short hash so that distinct names stay distinct."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:60] or "config"
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def _start_run(cfg: TrainConfig, folder: str | None, kwargs: dict[str, Any], curves: bool) -> tuple[Trainer, bool]:
    """A trainer for one run: resumed from ``folder``'s checkpoint when it holds this very config, else new."""
    from .checkpoint import load_checkpoint
    from .curves import CurveRecord
    from .train import CHECKPOINT_NAME

    hooks = [*kwargs.pop("hooks", ()), *([CurveRecord()] if curves else [])]
    ckpt = None if folder is None else os.path.join(folder, CHECKPOINT_NAME)
    if ckpt is not None and os.path.isfile(ckpt):
        try:
            same = TrainConfig.from_dict(load_checkpoint(ckpt)["config"]) == cfg
        except (RuntimeError, ValueError, KeyError, TypeError):
            same = False
        if same:
            return Trainer.from_checkpoint(ckpt, hooks=hooks, **kwargs), True
        warnings.warn(f"run_grid: {ckpt!r} holds another config or is unreadable; that run starts over",
                      UserWarning, stacklevel=3)
    return Trainer(cfg, hooks=hooks, **kwargs), False


def _fit_points(trainer: Trainer, at: Sequence[int], stops: Sequence[int], evaluate: Evaluator,
                save: Callable[[Trainer], None] | None) -> list[dict[str, float]]:
    """Train through the curve points ``at`` (evaluating there) and the checkpoint-only ``stops``; the points."""
    from .curves import CurveRecord, fit_with_curve

    if not any(isinstance(h, CurveRecord) for h in trainer.hooks):  # checkpoints without a curve: only the end
        for s in sorted({*stops, *at}):
            if trainer.step_count < s:
                trainer.fit(steps=s)
                if save is not None:
                    save(trainer)
        return [{"step": trainer.step_count, "seconds": trainer.elapsed,
                 **{k: float(v) for k, v in evaluate(trainer).items()}}]
    points: list[dict[str, float]] = []
    pending = sorted({*stops} - set(at))
    for s in sorted(at):
        for c in [c for c in pending if c < s]:
            pending.remove(c)
            if trainer.step_count < c:
                trainer.fit(steps=c)
                if save is not None:
                    save(trainer)
        points = fit_with_curve(trainer, [p for p in at if p <= s], evaluate, save)
    return points


def _values(rows: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    """The finite-or-infinite values of ``metric`` in ``rows``: NaNs and rows without the metric are left out."""
    return [float(r[metric]) for r in rows if metric in r and not math.isnan(float(r[metric]))]


def summarize(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], by: str = "config"
              ) -> list[dict[str, Any]]:
    """Mean, sample std and count of each metric per group (order of first appearance).

    NaNs and rows without the metric (e.g. ``label_agreement`` of an unconditional run) are left out; a group with
    no value gets NaN. ``n`` counts every run of the group; ``diverged`` counts its runs recorded as diverged
    (``diverged_step``, :func:`run_grid` with ``diagnose_window``), whose metrics the means therefore leave out.
    """
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    out = []
    for key, members in groups.items():
        entry: dict[str, Any] = {by: key, "n": len(members),
                                 "diverged": sum("diverged_step" in r for r in members)}
        for m in metrics:
            vals = _values(members, m)
            mean = sum(vals) / len(vals) if vals else float("nan")
            var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
            entry[m] = mean
            entry[f"{m}_std"] = math.sqrt(var) if vals else float("nan")
        out.append(entry)
    return out


def versus_baseline(rows: Sequence[Mapping[str, Any]], baseline: str, metrics: Sequence[str], by: str = "config"
                    ) -> list[dict[str, Any]]:
    """Each group's mean minus the ``baseline`` group's mean, per metric, with Welch's t-test p-value.

    Welch's unequal-variance t-test (``scipy.stats.ttest_ind(equal_var=False)``) over the per-seed values; with 5
    seeds per arm only large, consistent differences reach p < 0.05, which is the point: chapters call a trick
    helpful only where the difference is both large and unlikely under "no effect". Rows: ``{by, metric, diff,
    p}`` for every group other than the baseline (``p`` is NaN when either arm has fewer than 2 values or both
    are constant and equal).
    """
    from scipy.stats import ttest_ind

    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    if baseline not in groups:
        raise ValueError(f"versus_baseline: baseline={baseline!r} is not a {by} of these rows: {list(groups)}")
    out = []
    for key, members in groups.items():
        if key == baseline:
            continue
        for m in metrics:
            a, b = _values(members, m), _values(groups[baseline], m)
            diff = (sum(a) / len(a) - sum(b) / len(b)) if a and b else float("nan")
            p = float("nan")
            if len(a) > 1 and len(b) > 1 and not (len(set(a)) == 1 and len(set(b)) == 1):
                with warnings.catch_warnings():  # one constant arm (e.g. 9 digits on every seed) is a valid test;
                    warnings.simplefilter("ignore", RuntimeWarning)  # scipy only warns about its zero variance
                    p = float(ttest_ind(a, b, equal_var=False).pvalue)
            out.append({by: key, "metric": m, "diff": diff, "p": p})
    return out


def format_table(summary: Sequence[Mapping[str, Any]], metrics: Mapping[str, str], by: str = "config") -> str:
    """A Markdown table of ``mean +/- std`` cells; ``metrics`` maps a metric to its format, e.g. ``{"kl": ".3f"}``.

    A group without any value of a metric (its mean is NaN) shows a dash; a group with diverged runs says how many
    in its ``n`` cell ("3 (1 diverged)"), since its means are over the others.
    """
    head = f"| {by} | n | " + " | ".join(metrics) + " |"
    rule = "|---|---|" + "---|" * len(metrics)
    lines = [head, rule]
    for s in summary:
        cells = ["—" if math.isnan(s[m]) else f"{s[m]:{f}} ± {s[m + '_std']:{f}}" for m, f in metrics.items()]
        n = f"{s['n']} ({s['diverged']} diverged)" if s.get("diverged") else f"{s['n']}"
        lines.append(f"| {s[by]} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_grid(path: str | os.PathLike, **overrides: Any) -> dict[str, TrainConfig]:
    """Named configs from a JSON grid file: ``{"base": {fields}, "configs": {name: {fields}, ...}}``.

    Each config is ``base`` updated by its own fields (the nested sections, ``optim``, ``noise``, ``regulate``...,
    merged key by key), then by ``overrides``; every config is validated, and an error names the config and the
    field. ``"preset": NAME`` in ``base`` or in a config (the config's wins) starts that config from the run preset's
    fields (:data:`gantricks.presets.RUN_PRESETS`), which ``base``, the config and ``overrides`` then override.
    """
    where = f"grid file {os.fspath(path)!r}"
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where} is not valid JSON: {err}") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{where} is not UTF-8 text (byte {err.start}): expected a JSON file") from err
    except OSError as err:
        raise ValueError(f"{where} cannot be read ({err.strerror or type(err).__name__})") from err
    if not isinstance(spec, dict) or not isinstance(spec.get("configs"), dict) or not spec["configs"]:
        raise ValueError(f"{where} needs a non-empty object 'configs': {{name: {{fields}}}}")
    unknown = sorted(set(spec) - {"base", "configs", "description"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: base, configs, description")
    base = spec.get("base", {})
    if not isinstance(base, dict):
        raise ValueError(f"{where}: 'base' is {_json_kind(base)}; expected an object of fields, e.g. "
                         '{"steps": 1000}')
    out = {}
    for name, fields in spec["configs"].items():
        if not isinstance(fields, dict):
            raise ValueError(f"{where}, config {name!r}: {_json_kind(fields)}; expected an object of fields, e.g. "
                             '{"optim": {"lr_g": 1e-4}} ({} for base as it is)')
        merged = merge_fields(base, fields)
        try:
            preset = merged.pop("preset", None)
            fields = merge_fields(merged, overrides)
            out[name] = run_preset(preset, **fields) if preset is not None else TrainConfig.from_dict(fields)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"grid file {os.fspath(path)!r}, config {name!r}: {err}") from err
    return out


def _json_kind(value: Any) -> str:
    """What a JSON value is, for an error message: ``a list [1, 2]``, ``the string 'x'``, ``null``."""
    if value is None:
        return "null"
    kinds = {list: "a list", str: "the string", bool: "the boolean", int: "the number", float: "the number"}
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{kinds.get(type(value), type(value).__name__)} {shown}"


def load_results(name: str, folder: str | os.PathLike = "results", url: str | None = RESULTS_URL) -> dict[str, Any]:
    """A stored results or grid file of the book (``folder/name``, JSON), as the chapters show it.

    When the file is missing (a chapter opened in Colab, where only the package is installed) it is downloaded from
    ``url + name`` into ``folder`` first (written whole or not at all); ``url=None`` makes a missing file a
    ``FileNotFoundError`` instead. A download that fails (offline, a fork that has not pushed its results) is a
    ``FileNotFoundError`` whose one-line message names the file, the address and the reason.
    """
    path = os.path.join(os.fspath(folder), name)
    if not os.path.isfile(path):
        if url is None:
            raise FileNotFoundError(f"load_results: {path!r} does not exist")
        import tempfile
        import urllib.request

        source = url + name
        try:
            with urllib.request.urlopen(source, timeout=60) as response:
                data = response.read()
            json.loads(data)
        except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors; ValueError: not JSON
            reason = str(getattr(err, "reason", None) or err).strip().splitlines()
            raise FileNotFoundError(
                f"load_results: {path!r} is not on disk and could not be fetched from {source} "
                f"({type(err).__name__}: {reason[0] if reason else ''}); run the chapter from a clone of the "
                "repository (python -m gantricks ablate writes results files) or pass url= where they are published"
            ) from err
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".load_results-", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def comparison_table(rows: Sequence[Mapping[str, Any]], baseline: str, metrics: Mapping[str, str],
                     deltas: Sequence[str] | None = None, by: str = "config") -> str:
    """The chapters' results table: :func:`format_table` plus a column per metric in ``deltas`` (default: the first
    and last of ``metrics``) with each group's difference of means to ``baseline`` and ``*`` where Welch's test
    (:func:`versus_baseline`) gives p < 0.05. Metrics that no row has are left out of the table.
    """
    shown = {m: f for m, f in metrics.items() if any(m in r for r in rows)}
    if not shown:
        raise ValueError(f"comparison_table: no row has any of the metrics {list(metrics)}")
    names = list(shown)
    deltas = list(deltas) if deltas is not None else list(dict.fromkeys([names[0], names[-1]]))
    marks = {(r[by], r["metric"]): f"{r['diff']:+.3g}" + (" *" if r["p"] < 0.05 else "")
             for r in versus_baseline(rows, baseline, deltas, by) if not math.isnan(r["diff"])}
    lines = format_table(summarize(rows, list(shown), by), shown, by).splitlines()
    lines[0] += "".join(f" Δ {m} |" for m in deltas)
    lines[1] += "---|" * len(deltas)
    groups = list(dict.fromkeys(r[by] for r in rows))
    for i, group in enumerate(groups, start=2):
        lines[i] += "".join(f" {marks.get((group, m), '')} |" for m in deltas)
    return "\n".join(lines)
