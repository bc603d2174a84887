"""Checkpoints that never lose finished work and resume exactly (chapter 1, "The baseline GAN").

* :func:`atomic_save` writes to a temporary file in the target's folder, flushes it to disk, then ``os.replace``s
  it over the target: a crash during the save leaves the previous checkpoint intact.
* :func:`load_checkpoint` uses ``torch.load(weights_only=True)``: only tensors and plain containers are unpickled,
  never arbitrary objects. Everything we store is in that form (RNG states included). A file it cannot use (empty,
  truncated, not a torch file, refused by ``weights_only``, not a dict) is a :class:`CheckpointError` whose one-line
  message names the file and what is wrong.
* :func:`remove_stale_temporaries` removes the temporary files that a process killed during :func:`atomic_save` (or
  :func:`write_csv`) leaves behind; the trainer calls it on every save and resume of a run folder.
* :func:`first_non_finite` names the first tensor or number in a nested state that is NaN or infinite: the trainer
  never writes a checkpoint that has one.
* :func:`rng_state` / :func:`set_rng_state` capture and restore torch (CPU and CUDA), numpy and Python RNGs.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import random
import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["CheckpointError", "atomic_save", "first_non_finite", "load_checkpoint", "read_csv_columns",
           "remove_stale_temporaries", "rng_state", "set_rng_state", "write_csv", "write_text"]

TMP_PREFIX, TMP_SUFFIX = ".tmp-", ".pt"
"""The names of :func:`atomic_save`'s temporary files: ``.tmp-XXXXXXXX.pt`` beside the target."""


class CheckpointError(ValueError, RuntimeError):
    """A checkpoint file that cannot be used; the one-line message names the file and what is wrong.

    A ``ValueError`` (a bad input file) and, as before, a ``RuntimeError``."""


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` without ever leaving a half-written ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it the mode of the run's other outputs
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only``). A missing file is a ``FileNotFoundError``; a file that is not a
    usable checkpoint is a :class:`CheckpointError` naming the path and the reason (empty, truncated, not a torch
    file, refused by ``weights_only``, not a dict)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_TORCH_LEGACY))
    except OSError as err:
        raise CheckpointError(f"checkpoint {path!r} cannot be read ({err.strerror or type(err).__name__})") from None
    if not head:
        raise CheckpointError(f"checkpoint {path!r} is empty (0 bytes): not a checkpoint, perhaps an interrupted copy")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes one line naming the file
        raise CheckpointError(f"checkpoint {path!r} {_why_unreadable(path, head, err)}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path!r} holds a {type(state).__name__}, not a checkpoint (a dict of "
                              "the run's state)")
    return state


_TORCH_ZIP = b"PK\x03\x04"
_TORCH_LEGACY = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"  # the pickled magic number of torch's old format


def _why_unreadable(path: str, head: bytes, err: Exception) -> str:
    """Why ``torch.load`` failed on ``path`` (which starts with ``head``), in a few words (never torch's multi-line
    text)."""
    text = str(err)
    if "Weights only load failed" in text:
        if not head.startswith(_TORCH_ZIP) and not head.startswith(_TORCH_LEGACY):
            return "is not a torch checkpoint (its bytes are not a file written by torch.save)"
        found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed global| Please|\n|$)", text)
        detail = f" ({found.group(1).strip()})" if found else ""
        return ("holds objects that safe loading (torch.load with weights_only=True) refuses because unpickling "
                f"them could run code{detail}; gantricks never writes such objects, so load it only if you trust "
                "its source")
    if head.startswith(_TORCH_ZIP):
        if not zipfile.is_zipfile(path):
            return "is truncated or corrupt (its zip archive has no end record: an interrupted write or copy?)"
        return f"is corrupt ({type(err).__name__}: {_first_line(text)})"
    if head.startswith(_TORCH_LEGACY):
        return f"is truncated or corrupt ({type(err).__name__}: {_first_line(text) or 'unexpected end of file'})"
    return "is not a torch checkpoint (its bytes are not a file written by torch.save)"


def _first_line(text: str, limit: int = 160) -> str:
    """The first line of ``text``, at most ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def remove_stale_temporaries(folder: str | os.PathLike, outputs: Sequence[str] = ()) -> list[str]:
    """Remove what an interrupted save left in ``folder``: :func:`atomic_save`'s ``.tmp-*.pt`` files and, for each
    name in ``outputs``, the ``NAME.tmp`` of :func:`write_csv` / :func:`write_text`; return the removed paths.

    Call it only where no other process is saving into ``folder``."""
    folder = os.fspath(folder)
    stale = glob.glob(os.path.join(glob.escape(folder), f"{TMP_PREFIX}*{TMP_SUFFIX}"))
    stale += [os.path.join(folder, name + ".tmp") for name in outputs]
    removed = []
    for path in sorted(set(stale)):
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
            removed.append(path)
    return removed


def first_non_finite(state: Any, name: str = "") -> str | None:
    """The name (``G: net.0.weight``, ``opt_g: state.3.exp_avg``) of the first floating-point tensor or float in a
    nested state (dicts, lists, tuples) that holds a NaN or an infinity; ``None`` if every value is finite."""
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and state.numel() and not bool(torch.isfinite(state).all()):
            return name
        return None
    if isinstance(state, float):
        return None if math.isfinite(state) else name
    if isinstance(state, dict):
        items: Any = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    else:
        return None
    for key, value in items:
        sep = ": " if name and ":" not in name else "."
        found = first_non_finite(value, f"{name}{sep}{key}" if name else str(key))
        if found is not None:
            return found
    return None


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain Python values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(py_state), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Rows of dicts as CSV (columns: the union of keys, in order of appearance), written atomically."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def write_text(text: str, path: str | os.PathLike) -> None:
    """``text`` into ``path`` (UTF-8) through ``path.tmp`` and ``os.replace``: never half-written."""
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def read_csv_columns(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A CSV written by :func:`write_csv` (e.g. a run's ``history.csv``) as float columns; an empty cell is NaN and
    a cell that is not a number is a ``ValueError`` naming the file, line and column."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        for line, row in enumerate(reader, start=2):
            for name in columns:
                value = (row.get(name) or "").strip()
                try:
                    columns[name].append(float(value) if value else math.nan)
                except ValueError:
                    raise ValueError(
                        f"{os.fspath(path)}, line {line}: column {name!r} = {value!r} is not a number"
                    ) from None
    return {name: np.asarray(v, dtype=np.float64) for name, v in columns.items()}
