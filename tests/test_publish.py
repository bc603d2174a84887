"""Publishing: the GitHub workflows (linted offline, and doing what the README says), and the repository URL
written in one place (gantricks/repository.py) that every badge, install cell, ``_config.yml`` and results fetch
follows.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import yaml

from gantricks import book_tools, repository
from gantricks.experiments import RESULTS_URL, load_results

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
STRICT_BUILD = "jupyter-book build . -W -n --keep-going"  # the README's (and tests/test_book.py's) strict build


def _workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job: dict) -> list[str]:
    return [step["uses"] for step in job["steps"] if "uses" in step]


# ------------------------------------------------------------------------------------------ the workflows
def test_workflows_pass_the_schema_linter() -> None:
    """check-jsonschema with SchemaStore's GitHub workflow schema, which it ships (no network)."""
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert [Path(f).name for f in files] == ["book.yml", "tests.yml"]
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_linter_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    step:\n      - run: echo hi\n")
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "'step' was unexpected" in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not on PATH (the schema linter ran)")
def test_workflows_pass_actionlint() -> None:
    proc = subprocess.run(["actionlint", "-no-color", *sorted(map(str, WORKFLOWS.glob("*.yml")))],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_book_workflow_builds_strictly_and_deploys_main_to_pages() -> None:
    wf = _workflow("book.yml")
    assert set(wf["on"]) == {"push", "pull_request", "workflow_dispatch"}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert STRICT_BUILD in _runs(build)
    assert STRICT_BUILD in (ROOT / "README.md").read_text(encoding="utf-8")  # the tests' build, as the README says
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and any(u.startswith("actions/deploy-pages@") for u in _uses(deploy))
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    # every push and pull request builds; only a push to the default branch (gantricks.repository.BRANCH) deploys
    assert "github.event_name != 'pull_request'" in deploy["if"] and "default_branch" in deploy["if"]
    assert wf["permissions"] == {"contents": "read"}


def test_tests_workflow_runs_ci_on_every_push_and_pull_request() -> None:
    wf = _workflow("tests.yml")
    assert {"push", "pull_request"} <= set(wf["on"])
    job = wf["jobs"]["tests"]
    assert "bash .ci/run" in _runs(job) and any(u.startswith("actions/checkout@") for u in _uses(job))
    assert "pytest --nbval-lax" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")  # the README's command
    # .ci/run installs Debian's chromium with apt: a Debian container with the Python the project is tested on
    assert job["container"].startswith("python:3.11-bookworm")


# ------------------------------------------------------------------------------------------ the repository URL
def test_repository_helpers() -> None:
    url = "https://github.com/Org/Repo"
    assert repository.normalize(url + ".git/") == url
    assert repository.colab_url("book/a.ipynb", url, "dev") == (
        "https://colab.research.google.com/github/Org/Repo/blob/dev/book/a.ipynb")
    assert repository.raw_url("book/results/", url, "dev") == "https://raw.githubusercontent.com/Org/Repo/dev/book/results/"
    assert repository.pip_requirement("offline", url, "dev") == "gantricks[offline] @ git+https://github.com/Org/Repo@dev"
    assert repository.pages_url(url) == "https://org.github.io/Repo/"
    assert repository.pages_url("https://github.com/org/org.github.io") == "https://org.github.io/"
    for bad in ("http://github.com/a/b", "https://gitlab.com/a/b", "https://github.com/a", "https://github.com/a/b/c"):
        with pytest.raises(ValueError, match="expected https://github.com/<owner>/<name>"):
            repository.normalize(bad)
    with pytest.raises(ValueError, match="branch 'a b'"):
        repository.raw_url("x", url, "a b")


def test_the_repository_is_named_in_one_place() -> None:
    config = book_tools.load_config(ROOT)
    assert book_tools.config_problems(config) == []
    assert RESULTS_URL == repository.raw_url("book/results/")
    # every other copy is written by `book_tools stamp` (notebooks, _config.yml) and checked by `check`
    owner, name = repository.owner_and_name()
    pattern = re.compile(rf"github\.com/{owner}/{name}\b|githubusercontent\.com/{owner}/{name}\b")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    stamped = {"_config.yml", "gantricks/repository.py"} | {
        p.relative_to(ROOT).as_posix() for p in book_tools.toc_notebooks(ROOT)}
    elsewhere = sorted(f for f in listed.stdout.split() if f not in stamped and (ROOT / f).is_file()
                       and (ROOT / f).suffix in (".py", ".yml", ".yaml", ".toml", ".md", ".ipynb", ".cfg", ".txt")
                       and pattern.search((ROOT / f).read_text(encoding="utf-8", errors="replace")))
    assert not elsewhere, f"the repository URL is written out in {elsewhere}: derive it from gantricks.repository"


def test_set_repository_keeps_the_rest_of_config_yml() -> None:
    text = "title: x  # a title\nrepository:\n  url: https://github.com/a/b  # where\n  path_to_book: ''\n\nhtml: {}\n"
    new = book_tools.set_repository(text, {"url": "https://github.com/c/d", "branch": "dev"})
    assert new == ("title: x  # a title\nrepository:\n  branch: dev\n  url: https://github.com/c/d  # where\n"
                   "  path_to_book: ''\n\nhtml: {}\n")
    assert book_tools.set_repository("title: x\n", {"url": "https://github.com/c/d"}) == (
        "title: x\n\nrepository:\n  url: https://github.com/c/d\n")
    with pytest.raises(ValueError, match="write the section in block style"):
        book_tools.set_repository("repository: {url: https://github.com/a/b}\n", {"url": "https://github.com/c/d"})


FORK_SCRIPT = textwrap.dedent("""
    import json, sys, urllib.request
    import gantricks
    from gantricks import book_tools

    assert gantricks.__file__.startswith(sys.argv[1]), gantricks.__file__  # the edited copy, not the repo's
    report = {"check_before": book_tools.main(["check"])}
    report["stamp"] = book_tools.main(["stamp"])
    report["check_after"] = book_tools.main(["check"])

    fetched = []

    class Response:
        def __init__(self, url):
            fetched.append(url)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
        def read(self):
            return b'{"rows": []}'

    urllib.request.urlopen = lambda url, timeout=None: Response(url)
    from gantricks.experiments import RESULTS_URL, load_results
    assert load_results("optim_ring8.json", folder="fetched") == {"rows": []}
    report.update(results_url=RESULTS_URL, fetched=fetched)
    print("REPORT " + json.dumps(report))
""")


def test_changing_the_url_in_its_one_place_changes_badges_install_cells_config_and_fetch(tmp_path: Path) -> None:
    """A fork edits gantricks/repository.py, runs `book_tools stamp`, and everything follows; `check` sees the
    mismatch before the stamp and none after."""
    shutil.copytree(ROOT / "gantricks", tmp_path / "gantricks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    chapter = "how_we_measure.ipynb"
    shutil.copy(ROOT / "book" / chapter, tmp_path / "book" / chapter)
    (tmp_path / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n  - file: book/{chapter}\n")
    source = tmp_path / "gantricks" / "repository.py"
    text = source.read_text(encoding="utf-8")
    edited = re.sub(r'^URL = ".*"$', 'URL = "https://github.com/forker/gan-fork"', text, count=1, flags=re.M)
    edited = re.sub(r'^BRANCH = ".*"$', 'BRANCH = "dev"', edited, count=1, flags=re.M)
    assert edited.count("forker/gan-fork") == 1 and 'BRANCH = "dev"' in edited
    source.write_text(edited, encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT, str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.split("REPORT ", 1)[1])
    assert report["check_before"] == 1 and report["stamp"] == 0 and report["check_after"] == 0
    assert f"_config.yml: repository.url is {repository.URL!r}, but" in proc.stderr
    assert f"_config.yml: repository.branch is {repository.BRANCH!r}, but" in proc.stderr and "stale" in proc.stderr

    config_lines = (tmp_path / "_config.yml").read_text(encoding="utf-8").splitlines()
    before_lines = (ROOT / "_config.yml").read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before_lines, config_lines) if a != b]
    assert len(config_lines) == len(before_lines) and sorted(b.strip() for _, b in changed) == [
        "branch: dev", "url: https://github.com/forker/gan-fork"]  # only those two lines; comments kept

    nb = nbformat.read(tmp_path / "book" / chapter, as_version=4)
    badge = next(c for c in nb.cells if book_tools.stamp_of(c) == book_tools.BADGE)
    install = next(c for c in nb.cells if book_tools.stamp_of(c) == book_tools.INSTALL)
    assert f"colab.research.google.com/github/forker/gan-fork/blob/dev/book/{chapter}" in badge.source
    assert '"gantricks[offline] @ git+https://github.com/forker/gan-fork@dev"' in install.source
    owner, name = repository.owner_and_name()
    assert f"/{owner}/{name}/" not in badge.source and f"{repository.URL}@" not in install.source
    assert report["results_url"] == "https://raw.githubusercontent.com/forker/gan-fork/dev/book/results/"
    assert report["fetched"] == [report["results_url"] + "optim_ring8.json"]


# ------------------------------------------------------------------------------------------ the results fetch
@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server over tmp_path/site (no internet needed)."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_load_results_fetches_a_missing_file_and_says_why_when_it_cannot(served: str, tmp_path: Path) -> None:
    (tmp_path / "site" / "a.json").write_text(json.dumps({"rows": [{"config": "x"}]}))
    folder = tmp_path / "results"
    assert load_results("a.json", folder=folder, url=served) == {"rows": [{"config": "x"}]}
    assert json.loads((folder / "a.json").read_text()) == {"rows": [{"config": "x"}]}  # kept for next time
    with pytest.raises(FileNotFoundError) as info:
        load_results("missing.json", folder=folder, url=served)
    message = str(info.value)
    assert "\n" not in message and "missing.json" in message and served + "missing.json" in message
    assert "HTTPError" in message
    (tmp_path / "site" / "bad.json").write_text("<html>not json</html>")
    with pytest.raises(FileNotFoundError, match="bad.json.*JSONDecodeError"):
        load_results("bad.json", folder=folder, url=served)
    assert sorted(p.name for p in folder.iterdir()) == ["a.json"]  # nothing half-written
