"""The locks that keep one writer per dlt pipeline, one load per dataset and one process per
DuckDB file, however runs start and wherever they run.

Dagster pools keep runs apart when the daemon launches them; ``restsync sync`` in a terminal
and a run launched from the UI do not share a pool slot. These locks hold in every case: the
second run of a connector waits for the first (and says so in its log) instead of corrupting the
pipeline's state, loads into one dataset take turns, and DuckDB, which allows one writing process
per file, never sees two.

Where they live (:func:`lock_store`, the ``LockStore`` of load/lock_store.py):

1. ``RESTSYNC_LOCK_DATABASE`` (a ``postgresql://`` URL), when set: the user's choice wins;
2. else the destination, when it is PostgreSQL: a restart of it drops the locks and aborts the
   writes they guard at once;
3. else the Dagster instance's PostgreSQL storage (the orchestration floor passes its URL);
4. else ``flock`` files in dlt's pipelines directory: one machine (a SQLite instance).

The DuckDB file's lock is always a file beside it: DuckDB is one machine by construction, and
other programs opening the file can take the same ``flock``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restsync_dagster import names
from restsync_dagster.load.lock_store import (
    FileLockStore,
    Hold,
    LockStore,
    PostgresLockStore,
    flock,
    libpq_dsn,
    safe_dsn,
)

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline

    from restsync_dagster.settings import Settings

__all__ = [
    "Hold",
    "LockStore",
    "exclusive",
    "load_one_at_a_time",
    "lock_store",
    "pipeline_lock",
    "process_exists",
    "warehouse_lock",
]

#: ``exclusive(path, on_wait, shared=False)``: a ``flock`` on one file, for the block.
exclusive = flock

#: One PostgreSQL store (one session) per lock database, per process.
_STORES: dict[str, PostgresLockStore] = {}


def lock_store(settings: Settings, instance_database: str | None = None) -> LockStore:
    """The store of this deployment's locks (see the module's docstring for the order).

    Args:
        settings: Deployment settings (``RESTSYNC_LOCK_DATABASE``, the destination).
        instance_database: The URL of the Dagster instance's PostgreSQL storage, if it has one.
    """
    dsn = settings.lock_database or destination_database(settings) or instance_database
    if not dsn:
        return FileLockStore(settings.pipelines_dir)
    key = libpq_dsn(dsn)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = PostgresLockStore(dsn)
    return store


def destination_database(settings: Settings) -> str | None:
    """The destination's libpq URL when it is PostgreSQL, else None."""
    if settings.destination == "duckdb":
        return None
    from restsync_dagster.failures.errors import DestinationConfigError
    from restsync_dagster.load.destination import build_destination

    try:
        destination = build_destination(settings)
    except DestinationConfigError:
        return None  # said where the destination is built, at the first run
    if destination.destination_type.rsplit(".", 1)[-1] != "postgres":
        return None
    config = destination.configuration(destination.spec(), accept_partial=True)
    credentials = getattr(config, "credentials", None)
    if credentials is None or not credentials.is_resolved():
        return None  # the load itself will say which credentials are missing
    return str(credentials.to_native_representation())


def destination_identity(settings: Settings) -> str:
    """The destination as a lock name sees it, without secrets: the DuckDB file's path, the
    PostgreSQL server and database, or the destination's name."""
    if settings.destination == "duckdb":
        return str(settings.duckdb_path)
    database = destination_database(settings)
    if database:
        url = safe_dsn(database).split("@", 1)[-1]
        return f"postgres://{url.split('?', 1)[0]}"
    return settings.destination


@contextlib.contextmanager
def warehouse_lock(settings: Settings, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """The DuckDB file's lock (nothing for other destinations): DuckDB lets one process open a
    file read-write, and dlt's SQL client opens it read-write even to read, so syncs and the
    asset checks that query the table both take it."""
    if settings.destination != "duckdb":
        yield
        return
    path = settings.duckdb_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(warehouse_lock_path(path), on_wait):
        yield


def warehouse_lock_path(duckdb_path: Path) -> Path:
    """The lock file beside a DuckDB file (``warehouse.duckdb.lock``). Anything else that opens
    the file while syncs may run (a notebook, a BI extract) can take it with ``flock``."""
    return duckdb_path.with_name(duckdb_path.name + ".lock")


@contextlib.contextmanager
def pipeline_lock(
    settings: Settings,
    connector: str,
    on_wait: Callable[[], None] | None = None,
    *,
    partitions: Sequence[str] = (),
    store: LockStore | None = None,
) -> Iterator[list[Hold]]:
    """The lock of ``connector``'s dlt pipeline: one run of a connector writes at a time.

    With ``partitions`` (a run whose partitions sync side by side with others, each in its own
    pipeline), the connector's lock is taken shared and each partition's lock exclusively:
    runs of different partitions overlap, runs sharing a partition never do, and neither
    overlaps a run holding the connector's lock alone. Partition locks are taken in key order,
    so two range runs cannot deadlock.

    Yields:
        The locks held, for :meth:`Hold.verify` before a load.
    """
    store = store or lock_store(settings)
    with contextlib.ExitStack() as stack:
        holds = [
            stack.enter_context(
                store.hold(names.pipeline_lock_name(connector), on_wait, shared=bool(partitions))
            )
        ]
        for key in sorted(set(partitions)):
            lock = names.partition_lock_name(connector, key)
            holds.append(stack.enter_context(store.hold(lock, on_wait)))
        yield holds


def load_one_at_a_time(
    pipeline: Pipeline,
    settings: Settings,
    connector: str,
    on_wait: Callable[[], None] | None = None,
    *,
    store: LockStore | None = None,
    held: Sequence[Hold] = (),
) -> None:
    """Make ``pipeline``'s load step hold its dataset's load lock, check that the run's other
    locks (``held``) are still held, and retry a schema update that raced a writer outside
    restsync's locks.

    Two dlt loads into one dataset that find a schema or table missing (or a column new) both
    issue the DDL, and on PostgreSQL the second fails (measured: 4 of 16 loads started at once
    into a fresh dataset; dlt's ``SchemaUpdateTerminalError``). The lock is the dataset's (the
    destination and the dataset name), not the connector's: connectors sharing a dataset take
    turns too. Loads are short next to the pages they load.

    A run whose pipeline lock is gone (its lock database session ended: a restart, a network
    cut) may no longer be the pipeline's only writer: it raises ``LockLost`` (transient) before
    writing. dlt's own ``retry_schema_update`` decides which failures to retry (up to 3 loads).

    dagster-dlt calls ``pipeline.run``, which ends in ``self.load(...)`` (dlt 1.31): the wrapper
    is set on the instance, where that call finds it; ``unit/test_parallel_partitions.py`` fails
    if dlt stops calling it.
    """
    from dlt.pipeline.helpers import retry_schema_update
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

    original = pipeline.load
    store = store or lock_store(settings)
    name = names.load_lock_name(destination_identity(settings), pipeline.dataset_name)

    def load(*args: Any, **kwargs: Any) -> Any:
        with store.hold(name, on_wait) as hold:
            for lock in (*held, hold):
                lock.verify()
            for attempt in Retrying(
                stop=stop_after_attempt(3),
                retry=retry_if_exception(retry_schema_update()),
                wait=wait_fixed(1),
                reraise=True,
            ):
                with attempt:
                    return original(*args, **kwargs)
        return None  # pragma: no cover - Retrying re-raises the last failure

    pipeline.load = load  # type: ignore[method-assign]


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
