"""The code location: ``dagster dev`` (via ``[tool.dagster]`` or ``workspace.yaml``) loads ``defs``.

Nothing runs at import. Dagster calls :func:`defs` when it loads the code location; it reads the
connector files (a bad file leaves out only its own connector, shown as stand-in assets that
list its problems) and builds, per connector,
a multi-asset, a ``<connector>_sync`` job, a schedule and an ``<connector>_env`` resource, plus the
``retry_transient_failures`` sensor. No secret is read and no request is made until a run starts.
"""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg

from restsync_dagster.connector import (
    ConnectorFileError,
    file_stamps,
    read_connector_files,
    shown_path,
)
from restsync_dagster.load.destination import check_parallel_partitions, no_dlt_telemetry
from restsync_dagster.orchestration.collector import collector_paused
from restsync_dagster.orchestration.definitions import build_definitions
from restsync_dagster.settings import Settings

__all__ = ["build_definitions", "defs", "load_definitions"]

LOGGER = logging.getLogger("restsync")


def load_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Read the connector files named by ``settings`` and build their definitions. A file that
    cannot be used leaves out only its own connector: it becomes stand-in assets that say what
    is wrong (:mod:`restsync_dagster.orchestration.unusable_files`), and a warning on the
    ``restsync`` logger lists its problems.

    Raises:
        ConnectorFileError: a connector directory that does not exist.
    """
    no_dlt_telemetry()
    settings = settings or Settings.from_env()
    # The dry build of each source (~7 ms a connector) is left to `restsync validate` and to the
    # run, which builds the source anyway: the code location's load time grows with the files.
    files = read_connector_files(settings.connector_dirs, dry_build=False, trust=settings.trust)
    if files.elsewhere:
        raise ConnectorFileError(files.elsewhere)
    bad_files, connectors = dict(files.bad_files), []
    for connector in files.connectors:
        try:  # what a connector asks of the destination is its own file's problem too
            check_parallel_partitions([connector], settings)
            connectors.append(connector)
        except ConnectorFileError as exc:
            bad_files[connector.file] = exc.problems
    for path, problems in bad_files.items():
        LOGGER.warning(
            "connector file %s cannot be used; the code location loads without it:\n%s",
            shown_path(path),
            "\n".join(f"  {p}" for p in problems),
        )
    return build_definitions(connectors, settings, unusable_files=bad_files)


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
