"""The code location: ``dagster dev`` (via ``[tool.dagster]`` or ``workspace.yaml``) loads ``defs``.

Nothing runs at import. Dagster calls :func:`defs` when it loads the code location; it reads the
connector files (a bad file fails the load with one line per problem) and builds, per connector,
a multi-asset, a ``<connector>_sync`` job, a schedule and an ``<connector>_env`` resource, plus the
``retry_transient_failures`` sensor. No secret is read and no request is made until a run starts.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from restsync_dagster.connector import file_stamps, load_connectors
from restsync_dagster.load.destination import no_dlt_telemetry
from restsync_dagster.orchestration.collector import collector_paused
from restsync_dagster.orchestration.definitions import build_definitions
from restsync_dagster.settings import Settings

__all__ = ["build_definitions", "defs", "load_definitions"]


def load_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Read the connector files named by ``settings`` and build their definitions.

    Raises:
        ConnectorFileError: one line per problem, naming file and key path.
    """
    no_dlt_telemetry()
    settings = settings or Settings.from_env()
    # The dry build of each source (~7 ms a connector) is left to `restsync validate` and to the
    # run, which builds the source anyway: the code location's load time grows with the files.
    connectors = load_connectors(settings.connector_dirs, dry_build=False, trust=settings.trust)
    return build_definitions(connectors, settings)


_LOADED: dict[tuple[Any, ...], dg.Definitions] = {}


@dg.definitions
def defs() -> dg.Definitions:
    """Entry point for Dagster.

    Dagster may call this more than once per process (``dagster definitions validate`` does):
    the result is kept while the settings and the connector files (names, sizes, times) are the
    same.
    """
    settings = Settings.from_env()
    key = (settings, *file_stamps(settings.connector_dirs))
    if key not in _LOADED:
        _LOADED.clear()
        with collector_paused(freeze=True):
            _LOADED[key] = load_definitions(settings)
    return _LOADED[key]
