"""Checkpoints that never lose finished work and resume exactly (chapter 1, "The baseline GAN").

* :func:`atomic_save` writes to a temporary file in the target's folder, flushes it to disk, then ``os.replace``s
  it over the target: a crash during the save leaves the previous checkpoint intact.
* :func:`load_checkpoint` uses ``torch.load(weights_only=True)``: only tensors and plain containers are unpickled,
  never arbitrary objects. Everything we store is in that form (RNG states included).
* :func:`rng_state` / :func:`set_rng_state` capture and restore torch (CPU and CUDA), numpy and Python RNGs.
"""

from __future__ import annotations

import csv
import math
import os
import random
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["atomic_save", "load_checkpoint", "read_csv_columns", "rng_state", "set_rng_state", "write_csv"]


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` without ever leaving a half-written ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
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
    """Load a checkpoint safely; a missing or corrupt file is a clear error naming the path."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise RuntimeError(f"checkpoint {path!r} could not be read ({type(err).__name__}: {err})") from err


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
