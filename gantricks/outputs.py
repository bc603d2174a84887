"""Check a command's output paths before any work (chapter 1, "How we measure": never lose a run to a bad path).

``train``, ``sample`` and ``ablate`` call these before their first step: a folder that cannot be created, a path
that is a file where a folder is needed (or the reverse), a read-only folder or file, a full disk are each an
:class:`OutputPathError` whose one-line message names the flag, the path and the reason. Writability is tested by
doing it: a small probe file is created in the folder, written, and removed (permission bits alone do not tell, e.g.
for root or a read-only file system).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

__all__ = ["OutputPathError", "check_output_dir", "check_output_file"]


class OutputPathError(ValueError):
    """An output path that cannot be created or written; the message names the flag, the path and why."""


def _reason(err: OSError) -> str:
    """An ``OSError`` in a few words: its ``strerror`` ("Permission denied", "Read-only file system")."""
    return err.strerror or type(err).__name__


def _make_folder(folder: str, flag: str) -> None:
    """Create ``folder`` (and its parents) unless it exists; it must be a folder."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputPathError(f"{flag} {folder}: it is a file, not a folder; pass a folder's name")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise OutputPathError(f"{flag} {folder}: the folder cannot be created ({_reason(err)})") from None


def _probe(folder: str, flag: str) -> None:
    """Create, write and remove a small file in ``folder``: proof that the outputs can be written there."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    except OSError as err:
        raise OutputPathError(f"{flag} {folder}: no file can be created in this folder ({_reason(err)})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"gantricks output probe\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise OutputPathError(f"{flag} {folder}: writing a file in this folder fails ({_reason(err)})") from None
    finally:
        if os.path.exists(probe):
            os.unlink(probe)


def _check_existing(path: str, flag: str) -> None:
    """An output about to be replaced must be a file that can be opened for writing (it is not changed here)."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise OutputPathError(f"{flag} {path}: it is a folder, not a file; remove it or choose another name")
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        raise OutputPathError(f"{flag} {path}: the file cannot be overwritten ({_reason(err)})") from None


def check_output_dir(folder: str | os.PathLike, flag: str, files: Sequence[str] = ()) -> str:
    """Make sure run folder ``folder`` exists (creating it) and takes new files; each of ``files`` already in it must
    be a writable file. Returns the folder; ``flag`` (e.g. ``"--out"``) names it in the error."""
    folder = os.fspath(folder)
    if not folder.strip():
        raise OutputPathError(f"{flag} {folder!r}: expected a folder name, not an empty one (which would write into "
                              "the current folder)")
    _make_folder(folder, flag)
    _probe(folder, flag)
    for name in files:
        _check_existing(os.path.join(folder, name), flag)
    return folder


def check_output_file(path: str | os.PathLike, flag: str) -> str:
    """Make sure file ``path`` can be written: its folder exists (it is created) and takes new files, and ``path``
    is not a folder nor a file that cannot be overwritten. Returns the path."""
    path = os.fspath(path)
    if not path.strip() or path.endswith(os.sep):
        raise OutputPathError(f"{flag} {path!r}: expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    _make_folder(folder, flag)
    _probe(folder, flag)
    _check_existing(path, flag)
    return path
