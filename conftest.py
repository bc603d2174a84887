"""Repository-wide pytest set-up.

- ``GANTRICKS_QUICK=1``: the chapter notebooks that nbval runs (``pytest --nbval-lax``) shrink their budgets. The
  kernels inherit this process's environment, so it is set here, before any kernel starts. An explicit value in
  the environment wins (``GANTRICKS_QUICK=0 pytest --nbval-lax book/`` runs the full budgets).
- ``MPLBACKEND=Agg`` for the tests themselves (no display). Notebook kernels are started *without* it, so
  ipykernel picks its inline backend as in Jupyter and every figure is really drawn to a PNG, as in the book
  (mathtext and layout errors only show up when a figure is drawn).
- The ``slow`` marker (the book build and the browser test): deselect with ``-m "not slow"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("GANTRICKS_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds the book or drives a browser (deselect with -m 'not slow')")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """nbval starts a notebook's kernel while setting up its first cell: start it without ``MPLBACKEND``."""
    if item.path.suffix != ".ipynb":
        yield
        return
    saved = os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
