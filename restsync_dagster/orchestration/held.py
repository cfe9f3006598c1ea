"""What a run holds while dlt loads: the connector's locks, a slot of its rate key, dlt's
environment defaults, and a filter on one dlt warning that says nothing here. Each is a context
manager released when the run's load ends, so nothing outlives the run.

Which store the locks live in is load/locks.py's choice; what only this floor knows is the Dagster
instance, whose PostgreSQL storage is that choice's third option (:func:`run_lock_store`)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from restsync_dagster.connector import Connector
from restsync_dagster.extract.share import RateShare
from restsync_dagster.load.lock_store import libpq_dsn
from restsync_dagster.load.locks import Hold, LockStore, lock_store, pipeline_lock, warehouse_lock
from restsync_dagster.load.rate_slots import rate_slot
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
            connector.pipeline_scope,  # a tenant's own lock: tenants' runs overlap
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


@contextlib.contextmanager
def rate_share(
    log: dg.DagsterLogManager, connector: Connector, store: LockStore
) -> Iterator[RateShare]:
    """Hold a slot of the connector's rate key (``rate_limit.key``) and yield the share of the
    key's limits it gives; wait (saying so) while other runs hold every slot.

    Taken after :func:`connector_locks`, always in that order, so a run holding a slot never
    waits for a lock that a run waiting for a slot holds.
    """
    config = connector.config
    rate, key = config.rate_limit, config.rate_key
    slots = RateShare.slot_count(config.rate_runs, rate.requests_per_second)

    def waiting() -> None:
        log.info(
            f"connector {connector.name!r}: the {slots} run(s) that may spend rate key {key!r} "
            "at once are running; waiting for one to end"
        )

    with rate_slot(store, key, slots, waiting) as index:
        share = RateShare(index, slots)
        if slots > 1:
            per_second = share.requests_per_second(rate.requests_per_second)
            log.info(
                f"connector {connector.name!r}: rate key {key!r}, {share.describe()}: "
                + (f"{per_second:g} requests per second, " if per_second else "")
                + f"{share.concurrency(rate.max_concurrency)} in flight"
                + (", its part of each window the API's headers tell" if rate.from_headers else "")
            )
        yield share


#: The longest a run keeps its rate slot after its requests, for their windows to end.
SLOT_LINGER_CAP_SECONDS = 10.0


def linger_in_slot(counted_until: Callable[[], float]) -> None:
    """Wait until this run's requests count in no window of its rate key any more (at most
    :data:`SLOT_LINGER_CAP_SECONDS`; usually no wait, the load having taken longer), so that the
    next run to hold the slot does not spend the slot's part again in a window this run spent it
    in. Called just before the slot is released; run termination interrupts it."""
    time.sleep(max(0.0, min(SLOT_LINGER_CAP_SECONDS, counted_until() - time.monotonic())))
