"""What every ``restsync`` command shares: exit codes, the error it prints as is, loading files."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from restsync_dagster.connector import Connector, ConnectorFileError, load_connectors
from restsync_dagster.load.destination import check_parallel_partitions
from restsync_dagster.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An error to print as is (no traceback) before exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load(settings: Settings) -> list[Connector]:
    """Every connector of the settings' directories, or a :class:`CliError` listing problems."""
    try:
        connectors = load_connectors(settings.connector_dirs)
        check_parallel_partitions(connectors, settings)
        return connectors
    except ConnectorFileError as exc:
        raise CliError(str(exc)) from None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a command sets up, and what the setup built
    frozen out of its reach afterwards (``gc.freeze``).

    Importing Dagster, dlt and their storages, and building the definitions, makes about a million
    objects that live as long as the process. The collector walks all of them at each full
    collection: five of those took 0.6-0.9 s of a 3 s ``restsync sync`` of 100 records. Set-up
    makes almost no garbage cycles, so pausing costs no memory; later collections see only what
    the run itself makes. :func:`collector_released` gives the frozen objects back at the end.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def collector_released() -> None:
    """Return the objects :func:`collector_paused` froze to the collector: at exit, native
    extensions (DuckDB's nanobind types) report frozen objects of theirs as leaked."""
    gc.unfreeze()
