"""``python -m cli``: the ``sqlsage`` command."""

from cli.main import main

raise SystemExit(main())
