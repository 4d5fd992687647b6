"""``python -m remediator ...``: the command line (see :mod:`remediator.cli`)."""

from remediator.cli import main

raise SystemExit(main())
