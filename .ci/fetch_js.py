#!/usr/bin/env python3
"""Fetch the JavaScript the built book loads from jsDelivr into .cache/js/, with `npm pack`.

The book's pages load MathJax, require.js and the ipywidgets renderer from https://cdn.jsdelivr.net/npm/<spec>/...,
which serves the files of npm packages unchanged. This script packs each <spec> from the npm registry and unpacks
it to .cache/js/<spec>/ (outside git), so the browser test (tests/test_book.py) can answer those requests offline
with the very same bytes. The specs are read from _config.yml (sphinx.config.nb_ipywidgets_js, mathjax_path) and
Sphinx's default MathJax URL, so changing the config changes what is fetched.

Usage: python .ci/fetch_js.py [--dest .cache/js]     (run with the project's venv Python: it imports sphinx, yaml)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml
from sphinx.ext.mathjax import MATHJAX_URL

JSDELIVR = "https://cdn.jsdelivr.net/npm/"
ROOT = Path(__file__).resolve().parent.parent


def cdn_urls(root: Path) -> list[str]:
    """The CDN script URLs the built pages reference, read from the book's configuration."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    sphinx_config = (config.get("sphinx") or {}).get("config") or {}
    urls = [sphinx_config.get("mathjax_path", MATHJAX_URL)]
    urls += list((sphinx_config.get("nb_ipywidgets_js") or {}).keys())
    return [url for url in urls if url.startswith(("http://", "https://"))]  # "" is an inline script


def npm_spec(url: str) -> str:
    """`https://cdn.jsdelivr.net/npm/@scope/name@1.2/dist/x.js` -> `@scope/name@1.2`."""
    if not url.startswith(JSDELIVR):
        raise SystemExit(f"fetch_js: {url} is not on {JSDELIVR}: point it there in _config.yml")
    match = re.match(r"((?:@[^/]+/)?[^/@]+@[^/]+)/", url[len(JSDELIVR) :])
    if not match:
        raise SystemExit(f"fetch_js: cannot find an exact <package>@<version> in {url}")
    return match.group(1)


def fetch(spec: str, dest: Path) -> None:
    """npm pack `spec` and unpack the package's files into dest/spec/ (skipped when already there)."""
    target = dest / spec
    if (target / ".complete").exists():
        print(f"fetch_js: {spec} already in {target}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", "--json", "--pack-destination", tmp, spec],
            check=True, capture_output=True, text=True,
        ).stdout
        tgz = Path(tmp) / Path(json.loads(out)[0]["filename"]).name
        if target.exists():
            shutil.rmtree(target)
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tgz) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(unpacked, **safe)
        package = next(p for p in unpacked.iterdir() if p.is_dir())  # "package/" (a few use another name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(package), target)
    (target / ".complete").write_text(spec + "\n")
    print(f"fetch_js: {spec} -> {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".cache" / "js")
    args = parser.parse_args()
    for spec in dict.fromkeys(npm_spec(url) for url in cdn_urls(ROOT)):
        fetch(spec, args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
