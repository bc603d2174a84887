"""Maintenance tools for the book's chapter notebooks.

Run from the repository root (the folder with ``_config.yml`` and ``_toc.yml``)::

    python -m gantricks.book_tools stamp                 # write the Colab badge + install cell
    python -m gantricks.book_tools check                 # stamps fresh and stored outputs complete?
    python -m gantricks.book_tools execute [--quick] [book/01_baseline.ipynb ...]

``stamp`` puts two cells into every notebook listed in ``_toc.yml``, right after its title cell:

1. a Markdown cell with an "Open in Colab" badge (the badge is an inline SVG, so the book loads no image from
   the internet);
2. a code cell tagged ``remove-cell`` (hidden in the book) that installs ``gantricks`` with ``%pip`` only when
   ``google.colab`` can be imported, and does nothing anywhere else.

Both cells carry ``metadata["gantricks"]["stamp"]``, so stamping again replaces them instead of adding copies;
a notebook that is already stamped is not rewritten.

Execution counts: the install cell is meant to run first. ``execute`` stamps a notebook *before* running it, so
the install cell is stored as executed first (count 1) and the chapter's cells follow. When ``stamp`` inserts the
cell into a notebook that was executed without it, the cell gets the count just below the first following code
cell's count; if there is no room (that cell has count 1), every later count is shifted up by one (including the
counts inside ``execute_result`` outputs), which is exactly what running the install cell first would have given.
Outputs of the other cells are never touched.

The repository the badge and the install cell point at is :mod:`gantricks.repository`'s ``URL`` and ``BRANCH``
(the one place a fork changes). ``stamp`` also writes them into ``_config.yml``'s ``repository`` section (only
those two values; its comments and layout are kept), which Jupyter Book reads for its own buttons.

``check`` fails when ``_config.yml``'s repository disagrees with the package's, when a notebook's stamp is missing
or stale, or when its stored outputs are incomplete: every non-empty code cell executed, in increasing order from
top to bottom, no ``error`` output, and widget state stored for every widget the outputs show.

``execute`` re-runs notebooks in place with nbclient on a fresh kernel, with the notebook's folder (``book/``)
as the working directory; with ``--quick`` the kernel gets ``GANTRICKS_QUICK=1``. Widget state is stored by
nbclient (``store_widget_state``, on by default). Full mode has no per-cell timeout: it is the command that
refreshes the outputs the book shows.

A chapter's live runs are bit-identical only at the torch thread count they were stored with (on the CPU, the
reductions split by thread: chapter 7's exploding run stops at step 386 with one thread and at 262 with two). So a
full ``execute`` records the count in the notebook's ``metadata["gantricks"]["threads"]``, and the next one runs
the kernel with that count (``OMP_NUM_THREADS``) unless ``--threads N`` says otherwise; a notebook with no count
stored runs with the environment's.
"""

from __future__ import annotations

import argparse
import base64
import copy
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import yaml

from . import repository as repo_source

STAMP_KEY = "gantricks"
BADGE = "colab-badge"
INSTALL = "colab-install"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

_BADGE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="118" height="20" role="img" aria-label="Open in Colab">'
    '<rect width="118" height="20" rx="3" fill="#444"/>'
    '<rect x="52" width="66" height="20" rx="3" fill="#f9ab00"/>'
    '<rect x="52" width="6" height="20" fill="#f9ab00"/>'
    '<g font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">'
    '<text x="26" y="14" fill="#fff">Open in</text><text x="85" y="14" fill="#222">Colab</text></g></svg>'
)
BADGE_IMAGE = "data:image/svg+xml;base64," + base64.b64encode(_BADGE_SVG.encode()).decode()


# --------------------------------------------------------------------------------------------- configuration
def find_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above ``start`` (default: cwd) that holds ``_toc.yml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise FileNotFoundError(f"no _toc.yml and _config.yml at or above {here}: run from the repository")


def load_config(root: Path) -> dict[str, Any]:
    """Read the book's ``_config.yml``."""
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}


def _toc_files(entry: Any) -> list[str]:
    """All ``file``/``root`` entries of a ``_toc.yml`` structure, in reading order."""
    found: list[str] = []
    if isinstance(entry, dict):
        for key in ("root", "file"):
            if isinstance(entry.get(key), str):
                found.append(entry[key])
        for key in ("parts", "chapters", "sections"):
            for child in entry.get(key) or []:
                found.extend(_toc_files(child))
    elif isinstance(entry, list):
        for child in entry:
            found.extend(_toc_files(child))
    return found


def toc_documents(root: Path) -> list[Path]:
    """The documents listed in ``_toc.yml`` (absolute paths with their suffix, reading order)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")) or {}
    documents = []
    for name in _toc_files(toc):
        path = root / name
        if path.suffix not in (".ipynb", ".md"):
            path = path.with_suffix(".md") if (root / f"{name}.md").exists() else path.with_suffix(".ipynb")
        documents.append(path)
    return documents


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks listed in ``_toc.yml`` (absolute paths, reading order, existing or not)."""
    return [path for path in toc_documents(root) if path.suffix == ".ipynb"]


def repository(config: dict[str, Any]) -> tuple[str, str, str]:
    """``(url, branch, path_to_book)`` from the ``repository`` section of a book configuration."""
    repo = config.get("repository") or {}
    try:
        url = repo_source.normalize(str(repo.get("url", "")))
    except ValueError as err:
        raise ValueError(f"_config.yml repository.url: {err}") from None
    return url, str(repo.get("branch") or "main"), str(repo.get("path_to_book") or "").strip("/")


def with_package_repository(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` whose ``repository.url``/``branch`` are :mod:`gantricks.repository`'s (what stamps use)."""
    repo = dict(config.get("repository") or {})
    repo.update(url=repo_source.URL, branch=repo_source.BRANCH)
    return {**config, "repository": repo}


def config_problems(config: dict[str, Any]) -> list[str]:
    """Where ``_config.yml``'s ``repository`` section disagrees with :mod:`gantricks.repository` (empty: agrees)."""
    repo = config.get("repository") or {}
    problems = []
    for key, expected in (("url", repo_source.URL), ("branch", repo_source.BRANCH)):
        value = repo.get(key)
        if key == "url":
            try:
                value = repo_source.normalize(str(value))
            except ValueError:
                pass
        if value != expected:
            problems.append(f"_config.yml: repository.{key} is {value!r}, but gantricks/repository.py says "
                            f"{expected!r} (run: python -m gantricks.book_tools stamp)")
    return problems


def set_repository(text: str, values: dict[str, str]) -> str:
    """``_config.yml``'s text with ``repository.<key>: value`` set for each of ``values``; all else kept as it is."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"repository\s*:", line)), None)
    if start is not None and not re.match(r"repository:\s*(#.*)?$", lines[start]):
        raise ValueError(f"_config.yml: could not set repository {values}: write the section in block style, "
                         "one 'key: value' per line")
    if start is None:
        block = "".join(f"  {key}: {value}\n" for key, value in values.items())
        return text + ("" if not text or text.endswith("\n") else "\n") + "\nrepository:\n" + block
    end = start + 1
    while end < len(lines) and (lines[end][:1] in (" ", "\t") or not lines[end].strip()):
        end += 1
    indent = next((re.match(r"[ \t]*", lines[i]).group(0) for i in range(start + 1, end) if lines[i].strip()), "  ")
    for key, value in values.items():
        pattern = re.compile(rf"^([ \t]+{re.escape(key)}:)[ \t]*[^#\n]*?([ \t]+#[^\n]*)?(\r?\n)?$")
        for i in range(start + 1, end):
            m = pattern.match(lines[i])
            if m:
                lines[i] = f"{m.group(1)} {value}{m.group(2) or ''}{m.group(3) or ''}"
                break
        else:
            lines.insert(start + 1, f"{indent}{key}: {value}\n")
            end += 1
    new = "".join(lines)
    parsed = (yaml.safe_load(new) or {}).get("repository") or {}
    if any(str(parsed.get(key)) != value for key, value in values.items()):
        raise ValueError(f"_config.yml: could not set repository {values}: its section did not parse back to them")
    return new


def sync_config(root: Path) -> bool:
    """Write :mod:`gantricks.repository`'s URL and branch into ``root/_config.yml``; return whether it changed."""
    path = root / "_config.yml"
    text = path.read_text(encoding="utf-8")
    new = set_repository(text, {"url": repo_source.URL, "branch": repo_source.BRANCH})
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def colab_url(config: dict[str, Any], relpath: str) -> str:
    """The Colab URL that opens the notebook at ``relpath`` (relative to the book root) from GitHub."""
    url, branch, path_to_book = repository(config)
    path = f"{path_to_book}/{relpath}" if path_to_book else relpath
    return repo_source.colab_url(path, url, branch)


# --------------------------------------------------------------------------------------------- stamping
def badge_source(config: dict[str, Any], relpath: str) -> str:
    """Source of the "Open in Colab" badge cell (HTML: Markdown parsers refuse SVG data URIs in images)."""
    return f'<a href="{colab_url(config, relpath)}"><img src="{BADGE_IMAGE}" alt="Open in Colab"/></a>'


def install_source(config: dict[str, Any]) -> str:
    """Source of the hidden first code cell that installs gantricks on Colab only."""
    url, branch, _ = repository(config)
    requirement = repo_source.pip_requirement("offline", url, branch)
    return (
        "# Colab only: install gantricks (this cell is hidden in the book and does nothing elsewhere).\n"
        "try:\n"
        "    import google.colab  # noqa: F401\n"
        "\n"
        "    IN_COLAB = True\n"
        "except ImportError:\n"
        "    IN_COLAB = False\n"
        "if IN_COLAB:\n"
        f'    %pip install -q "{requirement}"'
    )


def stamp_of(cell: Any) -> str | None:
    """The name of the stamp a cell carries (``None`` for the chapter's own cells)."""
    meta = cell.get("metadata", {}).get(STAMP_KEY)
    return meta.get("stamp") if isinstance(meta, dict) else None


def _is_title(cell: Any) -> bool:
    return cell.get("cell_type") == "markdown" and "".join(cell.get("source", "")).lstrip().startswith("# ")


def _shift_counts(cells: list[Any], by: int) -> None:
    for cell in cells:
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None:
            cell["execution_count"] += by
            for out in cell.get("outputs", []):
                if out.get("output_type") == "execute_result" and out.get("execution_count") is not None:
                    out["execution_count"] += by


def stamp_notebook(nb: Any, config: dict[str, Any], relpath: str) -> Any:
    """Return a stamped copy of ``nb`` (an nbformat v4 notebook); ``nb`` itself is not changed."""
    nb = copy.deepcopy(nb)
    old = {stamp_of(c): c for c in nb.cells if stamp_of(c)}
    cells = [c for c in nb.cells if not stamp_of(c)]
    at = 1 if cells and _is_title(cells[0]) else 0
    with_ids = (nb.nbformat, nb.get("nbformat_minor", 0)) >= (4, 5)

    badge = nbformat.v4.new_markdown_cell(badge_source(config, relpath))
    badge.metadata[STAMP_KEY] = {"stamp": BADGE}
    install = nbformat.v4.new_code_cell(install_source(config))
    install.metadata[STAMP_KEY] = {"stamp": INSTALL}
    install.metadata["tags"] = ["remove-cell"]
    for cell, name in ((badge, BADGE), (install, INSTALL)):
        if with_ids:
            cell["id"] = name
        else:
            cell.pop("id", None)

    rest = cells[at:]
    later = [c["execution_count"] for c in rest if c.get("cell_type") == "code" and c.get("execution_count")]
    previous = old.get(INSTALL, {}).get("execution_count")
    if previous is not None and (not later or previous < later[0]):
        install.execution_count = previous
    elif later:
        if later[0] <= 1:  # no room before the first count: shift, as if the install cell had run first
            _shift_counts(rest, 1)
        install.execution_count = max(later[0], 2) - 1
    nb.cells = cells[:at] + [badge, install] + rest
    return nb


def stamp_file(path: Path, root: Path, config: dict[str, Any] | None = None) -> bool:
    """Stamp the notebook at ``path`` in place; return whether the file changed.

    ``config`` defaults to ``_config.yml`` with :mod:`gantricks.repository`'s URL and branch.
    """
    config = with_package_repository(load_config(root)) if config is None else config
    nb = nbformat.read(path, as_version=4)
    stamped = stamp_notebook(nb, config, book_relpath(path, root, config))
    if stamped == nb:
        return False
    nbformat.write(stamped, path)
    return True


def book_relpath(path: Path, root: Path, config: dict[str, Any]) -> str:
    """The notebook's path relative to the book's root (``repository.path_to_book``), as in Colab URLs."""
    _, _, path_to_book = repository(config)
    return path.resolve().relative_to((root / path_to_book).resolve()).as_posix()


# --------------------------------------------------------------------------------------------- checks
def output_problems(nb: Any) -> list[str]:
    """What is wrong with a notebook's stored outputs (empty list: complete)."""
    problems = []
    last = 0
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or not "".join(cell.get("source", "")).strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            problems.append(f"code cell {i} was never executed")
        elif count <= last:
            problems.append(f"code cell {i} has execution count {count} after {last}: not run top to bottom")
        last = count if count is not None else last
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"code cell {i} stores an error: {out.get('ename')}: {out.get('evalue')}")
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") not in state:
                problems.append(f"code cell {i} shows a widget whose state is not stored (it would render empty)")
    return problems


def stamp_problems(nb: Any, config: dict[str, Any], relpath: str) -> list[str]:
    """Whether the Colab badge and install cell are present and current."""
    stamps = [stamp_of(c) for c in nb.cells if stamp_of(c)]
    if BADGE not in stamps or INSTALL not in stamps:
        return ["Colab badge or install cell missing"]
    if stamp_notebook(nb, config, relpath) != nb:
        return ["Colab badge or install cell stale (run: python -m gantricks.book_tools stamp)"]
    return []


def check(root: Path) -> list[str]:
    """Every problem with ``_config.yml``'s repository and with every notebook in the toc, one line each."""
    on_disk = load_config(root)
    problems = config_problems(on_disk)
    config = with_package_repository(on_disk)
    for path in toc_notebooks(root):
        rel = path.relative_to(root).as_posix()
        if not path.exists():
            problems.append(f"{rel}: listed in _toc.yml but missing")
            continue
        nb = nbformat.read(path, as_version=4)
        problems += [f"{rel}: {p}" for p in stamp_problems(nb, config, book_relpath(path, root, config))]
        problems += [f"{rel}: {p}" for p in output_problems(nb)]
    return problems


# --------------------------------------------------------------------------------------------- execution
def stored_threads(nb: Any) -> int | None:
    """The torch thread count ``nb``'s outputs were stored with, or ``None`` when it was not recorded."""
    return nb.metadata.get(STAMP_KEY, {}).get("threads")


def kernel_env(nb: Any, quick: bool = False, threads: int | None = None,
               base: dict[str, str] | None = None) -> tuple[dict[str, str], int | None]:
    """The environment to execute ``nb`` in, and the thread count it pins (``threads``, else the stored one, else
    ``None``: the environment's own ``OMP_NUM_THREADS``, if any, is kept)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r} is invalid: expected a whole number >= 1 (torch threads of the kernel)")
    env = dict(os.environ if base is None else base)
    env.pop("GANTRICKS_QUICK", None)
    env.pop("MPLBACKEND", None)  # let ipykernel choose the inline backend, as in Jupyter
    if quick:
        env["GANTRICKS_QUICK"] = "1"
    pinned = threads if threads is not None else stored_threads(nb)
    if pinned is not None:
        env["OMP_NUM_THREADS"] = str(pinned)
    return env, pinned


def execute_file(path: Path, root: Path, quick: bool = False, kernel_name: str = "python3",
                 threads: int | None = None) -> None:
    """Stamp, then re-execute the notebook at ``path`` in place on a fresh kernel (cwd: its folder), with
    ``threads`` torch threads (default: the count its outputs were stored with, see the module's notes)."""
    from nbclient import NotebookClient

    stamp_file(path, root)
    nb = nbformat.read(path, as_version=4)
    env, pinned = kernel_env(nb, quick, threads)
    client = NotebookClient(
        nb,
        timeout=600 if quick else None,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=True,
    )
    client.execute(env=env)
    if not quick and pinned is not None:
        nb.metadata.setdefault(STAMP_KEY, {})["threads"] = pinned
    nbformat.write(nb, path)
    stamp_file(path, root)


# --------------------------------------------------------------------------------------------- command line
def _threads_flag(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected a whole number >= 1")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m gantricks.book_tools", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: found from cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stamp", help="write the Colab badge and install cell into every toc notebook, and the "
                   "repository (gantricks/repository.py) into _config.yml")
    sub.add_parser("check", help="fail if _config.yml's repository disagrees with the package's, a stamp is "
                   "missing/stale or stored outputs are incomplete")
    ex = sub.add_parser("execute", help="re-execute notebooks in place (default: all in the toc), then stamp")
    ex.add_argument("--quick", action="store_true", help="run with GANTRICKS_QUICK=1 (small budgets)")
    ex.add_argument("--threads", type=_threads_flag, default=None,
                    help="torch threads of the kernel (default: the count each notebook's outputs were stored with, "
                    "recorded by the last full execute)")
    ex.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    root = find_root(args.root)

    if args.command == "stamp":
        if sync_config(root):
            print(f"wrote repository {repo_source.URL} (branch {repo_source.BRANCH}) into _config.yml")
        config = with_package_repository(load_config(root))
        for path in toc_notebooks(root):
            if path.exists() and stamp_file(path, root, config):
                print(f"stamped {path.relative_to(root)}")
        return 0
    if args.command == "check":
        problems = check(root)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(toc_notebooks(root))} notebooks checked, {len(problems)} problems")
        return 1 if problems else 0
    paths = [p.resolve() for p in args.notebooks] or toc_notebooks(root)
    for path in paths:
        print(f"executing {path.relative_to(root)} ({'quick' if args.quick else 'full'})", flush=True)
        execute_file(path, root, quick=args.quick, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
