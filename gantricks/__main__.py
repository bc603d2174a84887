"""``python -m gantricks``: see :mod:`gantricks.cli`."""

from .cli import main

raise SystemExit(main())
