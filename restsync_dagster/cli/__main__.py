"""``python -m restsync_dagster.cli``: the ``restsync`` command."""

from restsync_dagster.cli import main

raise SystemExit(main())
