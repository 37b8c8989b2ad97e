"""``python -m lossreg`` is the ``lossreg`` command."""

from .cli import main

raise SystemExit(main())
