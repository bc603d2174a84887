"""Where gantricks lives on GitHub: the one place a fork changes.

Every address that sends a reader to the repository is derived from :data:`URL` and :data:`BRANCH`:

* the "Open in Colab" badge and the hidden Colab install cell that ``python -m gantricks.book_tools stamp`` writes
  into every chapter (:func:`colab_url`, :func:`pip_requirement`);
* the ``repository`` section of ``_config.yml``, which Jupyter Book reads for its repository, issues and launch
  buttons: ``stamp`` writes these two values into it and ``check`` fails while it disagrees;
* :data:`gantricks.experiments.RESULTS_URL`, where a chapter opened in Colab (or run from an installed wheel)
  fetches the stored results files (:func:`raw_url`);
* the address of the published book, GitHub Pages' ``https://<owner>.github.io/<name>/`` (:func:`pages_url`).

The values live in the package rather than only in ``_config.yml`` because an installed wheel has no
``_config.yml`` and still fetches results from here. A fork sets its own two values below, runs
``python -m gantricks.book_tools stamp`` and commits what it rewrote (README, "Publishing").
"""

from __future__ import annotations

__all__ = ["BRANCH", "URL", "colab_url", "normalize", "owner_and_name", "pages_url", "pip_requirement", "raw_url"]

URL = "https://github.com/gantricks/gantricks"
"""The repository on GitHub, ``https://github.com/<owner>/<name>``."""

BRANCH = "main"
"""The branch that readers, Colab and the results fetch use."""


def normalize(url: str) -> str:
    """``url`` without a trailing ``/`` or ``.git``; a ``ValueError`` unless it is ``https://github.com/<owner>/<name>``."""
    clean = str(url).strip().rstrip("/")
    if clean.endswith(".git"):
        clean = clean[: -len(".git")]
    parts = clean.removeprefix("https://github.com/").split("/")
    if not clean.startswith("https://github.com/") or len(parts) != 2 or not all(parts):
        raise ValueError(f"repository URL {url!r}: expected https://github.com/<owner>/<name>")
    return clean


def owner_and_name(url: str | None = None) -> tuple[str, str]:
    """``(owner, name)`` of the repository (default: :data:`URL`)."""
    owner, name = normalize(URL if url is None else url).removeprefix("https://github.com/").split("/")
    return owner, name


def _branch(branch: str | None) -> str:
    value = BRANCH if branch is None else str(branch)
    if not value or any(c.isspace() for c in value) or value.startswith("/") or value.endswith("/"):
        raise ValueError(f"repository branch {value!r}: expected a branch name such as 'main'")
    return value


def colab_url(path: str, url: str | None = None, branch: str | None = None) -> str:
    """The Colab address that opens the notebook at ``path`` (relative to the repository root) from GitHub."""
    owner, name = owner_and_name(url)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{_branch(branch)}/{path.lstrip('/')}"


def raw_url(path: str, url: str | None = None, branch: str | None = None) -> str:
    """The address of the file at ``path`` (relative to the repository root) on ``raw.githubusercontent.com``."""
    owner, name = owner_and_name(url)
    return f"https://raw.githubusercontent.com/{owner}/{name}/{_branch(branch)}/{path.lstrip('/')}"


def pip_requirement(extras: str = "offline", url: str | None = None, branch: str | None = None) -> str:
    """The pip requirement that installs gantricks (with ``extras``) from the branch on GitHub."""
    extra = f"[{extras}]" if extras else ""
    return f"gantricks{extra} @ git+{normalize(URL if url is None else url)}@{_branch(branch)}"


def pages_url(url: str | None = None) -> str:
    """Where GitHub Pages publishes the book of this repository (``.github/workflows/book.yml``)."""
    owner, name = owner_and_name(url)
    if name.lower() == f"{owner.lower()}.github.io":  # a user or organisation site is served from the root
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{name}/"
