"""What a run holds while dlt loads: the connector's locks, dlt's environment defaults, and a
filter on one dlt warning that says nothing here. Each is a context manager released when the
run's load ends, so nothing outlives the run.

Which store the locks live in is load/locks.py's choice; what only this floor knows is the Dagster
instance, whose PostgreSQL storage is that choice's third option (:func:`run_lock_store`)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg

from restsync_dagster.connector import Connector
from restsync_dagster.load.lock_store import libpq_dsn
from restsync_dagster.load.locks import Hold, LockStore, lock_store, pipeline_lock, warehouse_lock
from restsync_dagster.settings import Settings


def instance_database(instance: Any) -> str | None:
    """The libpq URL of the Dagster instance's PostgreSQL storage, or None (SQLite, MySQL...).
    dagster-postgres keeps it as ``postgres_url`` on its storages (dagster-postgres 0.29)."""
    url = getattr(getattr(instance, "run_storage", None), "postgres_url", None)
    return libpq_dsn(url) if isinstance(url, str) and url.startswith("postgres") else None


def run_lock_store(instance: Any, settings: Settings) -> LockStore:
    """The lock store of runs on ``instance`` (load/locks.py says in which order it is chosen)."""
    return lock_store(settings, instance_database(instance))


class _Without(logging.Filter):
    def __init__(self, phrase: str) -> None:
        super().__init__()
        self.phrase = phrase

    def filter(self, record: logging.LogRecord) -> bool:
        return self.phrase not in record.getMessage()


@contextlib.contextmanager
def without_log_lines(logger_name: str, phrase: str) -> Iterator[None]:
    """Drop the records of logger ``logger_name`` that contain ``phrase``, for the block."""
    quiet = _Without(phrase)
    logger = logging.getLogger(logger_name)
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def quiet_arrow_hints() -> contextlib.AbstractContextManager[None]:
    """dlt warns on every Arrow table whose types differ from the column hints; restsync keeps
    incremental cursors as text on purpose (see extract/arrow.py), so that warning says nothing."""
    return without_log_lines("dlt", "when merging arrow schema with dlt schema")


@contextlib.contextmanager
def dlt_environment(defaults: dict[str, str]) -> Iterator[None]:
    """Set ``defaults`` in the environment (where unset) for the block, then restore it."""
    added = {k: v for k, v in defaults.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def connector_locks(
    log: dg.DagsterLogManager,
    connector: Connector,
    settings: Settings,
    keys: list[str],
    store: LockStore,
) -> Iterator[list[Hold]]:
    """The connector's pipeline lock (shared, with ``keys``' own locks, for partition runs that
    sync side by side), then (for DuckDB) the database file's lock. The sync step and the checks
    step both hold them: building a dlt pipeline writes to its working directory, which another
    run of the connector may be dropping. Yields the pipeline locks, to verify before a load."""
    name = connector.name
    with (
        pipeline_lock(
            settings,
            name,
            lambda: log.info(
                f"connector {name!r}: another run of this connector is syncing; waiting"
            ),
            partitions=keys,
            store=store,
        ) as holds,
        warehouse_lock(
            settings,
            lambda: log.info(
                f"connector {name!r}: another run is using {settings.duckdb_path.name} "
                "(DuckDB allows one writing process); waiting"
            ),
        ),
    ):
        yield holds
