"""The Dagster instance ``restsync sync`` and ``restsync demo`` use: ``DAGSTER_HOME`` when set,
else ``$RESTSYNC_HOME/dagster_home`` with restsync's local ``dagster.yaml`` (pools on)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from restsync_dagster.load.locks import exclusive
from restsync_dagster.settings import Settings


class open_instance:
    """The Dagster instance of ``DAGSTER_HOME``, or of ``$RESTSYNC_HOME/dagster_home``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Any:
        from dagster import DagsterInstance

        home = dagster_home(self.settings)
        # A fresh home's SQLite storages are created and stamped on first open; two syncs
        # starting at once would both stamp them (UNIQUE constraint failed: alembic_version).
        with exclusive(home / ".restsync-instance.lock"):
            self._instance = DagsterInstance.from_config(str(home))
            self._instance.get_runs_count()
        return self._instance

    def __exit__(self, *exc: object) -> None:
        self._instance.dispose()


def dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME`` when set, else ``$RESTSYNC_HOME/dagster_home`` (prepared)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else prepare_dagster_home(settings)


def prepare_dagster_home(settings: Settings) -> Path:
    """Create ``$RESTSYNC_HOME/dagster_home`` with a local ``dagster.yaml`` if it is missing."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        template = Path(__file__).parent.parent / "dagster_local.yaml"
        # Written whole, then renamed: a sync starting at the same moment never reads half.
        partial = config.with_name(f"dagster.yaml.{os.getpid()}")
        partial.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
        os.replace(partial, config)
    return home
