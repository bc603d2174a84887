"""The book: Colab stamps, stored outputs, a strict Jupyter Book build, and the built pages in a real browser.

The browser test opens every page of the built book in Debian's chromium, offline: requests to jsDelivr
(MathJax, require.js, the ipywidgets renderer) are answered from the npm packages that ``python .ci/fetch_js.py``
unpacked into ``.cache/js/``; every other request that is not to the local server is aborted and fails the test.
Without chromium, playwright or that cache the test is skipped, unless ``GANTRICKS_REQUIRE_BROWSER=1`` (CI).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import pytest

from gantricks import book_tools

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = book_tools.toc_notebooks(ROOT)
DOCS = [p.relative_to(ROOT).with_suffix("").as_posix() for p in book_tools.toc_documents(ROOT)]
CHROMIUM = os.environ.get("GANTRICKS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
JS_CACHE = ROOT / ".cache" / "js"
JSDELIVR = "https://cdn.jsdelivr.net/npm/"
REQUIRE_BROWSER = os.environ.get("GANTRICKS_REQUIRE_BROWSER") == "1"


# ------------------------------------------------------------------------------------------ notebooks as stored
def test_toc_lists_notebooks() -> None:
    assert NOTEBOOKS, "_toc.yml lists no notebook"
    missing = [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS if not p.exists()]
    assert not missing, f"listed in _toc.yml but missing: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_stamp_is_current(path: Path) -> None:
    config = book_tools.load_config(ROOT)
    nb = nbformat.read(path, as_version=4)
    problems = book_tools.stamp_problems(nb, config, book_tools.book_relpath(path, ROOT, config))
    assert not problems, f"{path.name}: {problems}: run python -m gantricks.book_tools stamp"
    badge = next(c for c in nb.cells if book_tools.stamp_of(c) == book_tools.BADGE)
    assert f"blob/main/book/{path.name}" in badge.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_complete(path: Path) -> None:
    problems = book_tools.output_problems(nbformat.read(path, as_version=4))
    assert not problems, (
        f"{path.name} would show incomplete outputs in the book: {problems}; "
        "refresh them with: python -m gantricks.book_tools execute " + path.relative_to(ROOT).as_posix()
    )


def _executed_notebook() -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("x = 1", execution_count=1),
        nbformat.v4.new_code_cell("x", execution_count=2, outputs=[
            nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=2),
        ]),
    ]
    return nb


def test_stamp_is_idempotent_and_keeps_outputs_in_order() -> None:
    config = {"repository": {"url": "https://github.com/org/repo", "branch": "dev", "path_to_book": ""}}
    nb = _executed_notebook()
    once = book_tools.stamp_notebook(nb, config, "book/ch.ipynb")
    assert book_tools.stamp_notebook(once, config, "book/ch.ipynb") == once
    assert [c.cell_type for c in once.cells] == ["markdown", "markdown", "code", "code", "code"]
    badge, install = once.cells[1], once.cells[2]
    assert "https://colab.research.google.com/github/org/repo/blob/dev/book/ch.ipynb" in badge.source
    assert "git+https://github.com/org/repo@dev" in install.source and "google.colab" in install.source
    assert install.metadata["tags"] == ["remove-cell"]
    # the install cell counts as run first; the others keep their outputs, shifted consistently
    assert [c.execution_count for c in once.cells if c.cell_type == "code"] == [1, 2, 3]
    assert once.cells[4].outputs[0]["execution_count"] == 3
    assert once.cells[4].outputs[0]["data"] == {"text/plain": "1"}
    assert book_tools.output_problems(once) == []
    # a changed repository makes the stamp stale, and stamping again replaces it rather than adding a copy
    moved = {"repository": {**config["repository"], "branch": "main"}}
    assert book_tools.stamp_problems(once, moved, "book/ch.ipynb")
    again = book_tools.stamp_notebook(once, moved, "book/ch.ipynb")
    assert len(again.cells) == 5 and [c.execution_count for c in again.cells if c.cell_type == "code"] == [1, 2, 3]
    assert book_tools.output_problems(nb) == [] and len(nb.cells) == 3  # the input is left alone


def test_output_problems_are_found() -> None:
    nb = _executed_notebook()
    nb.cells[1].execution_count = 3
    nb.cells.append(nbformat.v4.new_code_cell("boom"))
    nb.cells.append(nbformat.v4.new_code_cell("1/0", execution_count=9, outputs=[
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[]),
    ]))
    nb.cells.append(nbformat.v4.new_code_cell("w", execution_count=10, outputs=[nbformat.v4.new_output(
        "display_data", {book_tools.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0}},
    )]))
    problems = " | ".join(book_tools.output_problems(nb))
    for expected in ("not run top to bottom", "never executed", "ZeroDivisionError", "state is not stored"):
        assert expected in problems


# ------------------------------------------------------------------------------------------ the build
class Build(NamedTuple):
    returncode: int
    log: str
    html: Path
    seconds: float


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``jupyter-book build . -W -n --keep-going`` into a temporary folder, once per session."""
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
           "build", str(ROOT), "-W", "-n", "--keep-going", "--path-output", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    return Build(proc.returncode, log, out / "_build" / "html", time.perf_counter() - start)


@pytest.mark.slow
def test_book_builds_without_warnings(build: Build) -> None:
    if build.returncode != 0:
        warnings = [line for line in build.log.splitlines() if re.search(r"WARNING|ERROR|Error|Exception", line)]
        pytest.fail(f"jupyter-book build -W -n failed (exit {build.returncode}):\n" +
                    "\n".join(warnings or build.log.splitlines()[-40:]))
    missing = [doc for doc in DOCS if not (build.html / f"{doc}.html").exists()]
    assert not missing, f"pages not built: {missing}"
    print(f"book built in {build.seconds:.1f} s")


# ------------------------------------------------------------------------------------------ the browser
def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (GANTRICKS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def site(build: Build) -> Iterator[str]:
    """The built book over http on 127.0.0.1 (a random port), from a thread."""
    if build.returncode != 0:
        pytest.fail("the book did not build: see test_book_builds_without_warnings")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=build.html))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(build: Build) -> Iterator[Any]:
    """Debian's chromium, driven by playwright (skipped, or failed under CI, when anything is missing)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no browser at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r requirements.txt)")
    needed = set()
    for page in build.html.rglob("*.html"):
        needed |= set(re.findall(r'src="https://cdn\.jsdelivr\.net/npm/((?:@[^/"]+/)?[^/@"]+@[^/"]+)/',
                                 page.read_text(encoding="utf-8")))
    missing = sorted(spec for spec in needed if not (JS_CACHE / spec / ".complete").exists())
    if missing:
        _unavailable(f"no local copy of {missing} in {JS_CACHE} (run: python .ci/fetch_js.py)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _widget_state(doc: str) -> dict[str, Any]:
    path = ROOT / f"{doc}.ipynb"
    if not path.exists():
        return {}
    widgets = nbformat.read(path, as_version=4).metadata.get("widgets", {})
    return widgets.get(book_tools.WIDGET_STATE, {}).get("state", {})


PAGE_CHECKS = """async () => {
  const texts = (sel) => Array.from(document.querySelectorAll(sel)).map(e => e.outerHTML.slice(0, 160));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const images = Array.from(document.images);
  await Promise.all(images.map(img => { img.loading = "eager"; return img.decode().catch(() => null); }));
  const article = document.querySelector("article") || document.body;
  const prose = article.cloneNode(true);
  prose.querySelectorAll("pre, code, script, style, mjx-container").forEach(e => e.remove());
  return {
    math: document.querySelectorAll(".math").length,
    mathjax: document.querySelectorAll("mjx-container").length,
    untypeset: texts(".math:not(:has(mjx-container))"),
    texErrors: texts("mjx-merror"),
    rawTex: /\\$\\$|\\\\\\(|\\\\\\[/.test(prose.textContent),
    brokenImages: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120)),
    widgetViews: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    widgetsRendered: document.querySelectorAll(".widget-subarea .jupyter-widgets").length,
  };
}"""


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_page_renders_offline_in_a_browser(doc: str, site: str, browser: Any) -> None:
    errors: list[str] = []
    blocked: list[str] = []

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(site):
            route.continue_()
            return
        if url.startswith(JSDELIVR):
            file = JS_CACHE / urllib.parse.unquote(urllib.parse.urlsplit(url).path[len("/npm/"):])
            if file.is_file():
                route.fulfill(path=file, headers={"Access-Control-Allow-Origin": "*"})
                return
        blocked.append(url)
        route.abort()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda msg: msg.type == "error" and errors.append(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status}: {r.url}"))
    page.route("**/*", route)
    try:
        page.goto(f"{site}{doc}.html", wait_until="networkidle")
        state = _widget_state(doc)
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if state or views:  # the renderer loads with require.js after the page: give it time
            try:
                page.wait_for_function(
                    "n => document.querySelectorAll('.widget-subarea .jupyter-widgets').length >= n",
                    arg=max(views, 1), timeout=30_000,
                )
            except Exception:  # noqa: BLE001 - reported by the assertion below
                pass
        found = page.evaluate(PAGE_CHECKS)
        page.wait_for_timeout(300)  # late console errors
        if os.environ.get("GANTRICKS_SCREENSHOTS"):
            shots = Path(os.environ["GANTRICKS_SCREENSHOTS"])
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=shots / f"{doc.replace('/', '_')}.png", full_page=True)
    finally:
        page.close()

    assert not blocked, f"requests to the internet that the page needs but the test cannot serve: {blocked}"
    assert not errors, "\n".join(errors)
    if found["math"]:
        assert found["mathjax"] > 0, "MathJax did not typeset the page's math"
    assert not found["untypeset"], f"math left as TeX: {found['untypeset']}"
    assert not found["texErrors"], f"TeX errors: {found['texErrors']}"
    assert not found["rawTex"], "raw $$ or \\( \\[ delimiters in the page's text"
    assert not found["brokenImages"], f"images that did not load: {found['brokenImages']}"
    if state:
        assert found["widgetViews"] > 0, "the notebook stores widget state but the page shows no widget"
    assert found["widgetsRendered"] >= found["widgetViews"], (
        f"{found['widgetsRendered']} of {found['widgetViews']} widgets rendered (is their state stored?)"
    )


def test_execute_pins_the_thread_count_a_notebook_was_stored_with_unless_told_otherwise() -> None:
    """A chapter's live runs are bit-identical only at the torch thread count its outputs were stored with."""
    nb = nbformat.v4.new_notebook()
    env, pinned = book_tools.kernel_env(nb, base={"OMP_NUM_THREADS": "4", "MPLBACKEND": "Agg"})
    assert (pinned, env["OMP_NUM_THREADS"], "MPLBACKEND" in env) == (None, "4", False)  # nothing stored: as given
    nb.metadata["gantricks"] = {"threads": 1}
    env, pinned = book_tools.kernel_env(nb, quick=True, base={"OMP_NUM_THREADS": "4"})
    assert (pinned, env["OMP_NUM_THREADS"], env["GANTRICKS_QUICK"]) == (1, "1", "1")
    env, pinned = book_tools.kernel_env(nb, threads=2, base={})
    assert (pinned, env["OMP_NUM_THREADS"], "GANTRICKS_QUICK" in env) == (2, "2", False)
    with pytest.raises(ValueError, match=r"threads=0 is invalid: expected a whole number >= 1"):
        book_tools.kernel_env(nb, threads=0)


def test_the_chapters_record_the_thread_count_their_outputs_were_stored_with() -> None:
    """The chapters re-executed since the count is recorded carry it (chapter 7: one thread; 2 and 8: two)."""
    stored = {name: book_tools.stored_threads(nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4))
              for name in ("02_noise_inputs", "07_challenges", "08_what_works")}
    assert stored == {"02_noise_inputs": 2, "07_challenges": 1, "08_what_works": 2}


def test_a_bad_threads_flag_is_refused_by_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        book_tools.main(["execute", "--threads", "0"])
    assert "'0' is invalid: expected a whole number >= 1" in capsys.readouterr().err
