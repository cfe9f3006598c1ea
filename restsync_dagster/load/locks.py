"""File locks that keep one writer per dlt pipeline and per DuckDB file, however runs start.

Dagster pools keep runs apart when the daemon launches them; ``restsync sync`` in a terminal
and a run launched from the UI do not share a pool slot. These locks hold in every case: the
second run of a connector waits for the first (and says so in its log) instead of corrupting the
pipeline's working directory, and DuckDB, which allows one writing process per file, never sees
two.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restsync_dagster import names

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline

    from restsync_dagster.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pools are the only guard there
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def exclusive(
    path: Path, on_wait: Callable[[], None] | None = None, *, shared: bool = False
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the duration of the block.

    Args:
        path: The lock file.
        on_wait: Called once if another process holds the lock, before waiting for it.
        shared: Take a shared lock instead: any number of holders, none while an exclusive
            holder has it.
    """
    if fcntl is None:
        yield
        return
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def try_exclusive(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block if no other holder
    has it: yields True; else yields False at once, holding nothing. One slot of a counting
    semaphore (:mod:`restsync_dagster.load.rate_slots`)."""
    if fcntl is None:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
) -> Iterator[None]:
    """The lock of ``connector``'s dlt pipeline: one run of a connector writes at a time.

    With ``partitions`` (a run whose partitions sync side by side with others, each in its own
    pipeline), the connector's lock is taken shared and each partition's lock exclusively:
    runs of different partitions overlap, runs sharing a partition never do, and neither
    overlaps a run holding the connector's lock alone. Partition locks are taken in key order,
    so two range runs cannot deadlock.
    """
    path = settings.pipelines_dir / names.pipeline_lock_name(connector)
    with contextlib.ExitStack() as stack:
        stack.enter_context(exclusive(path, on_wait, shared=bool(partitions)))
        for key in sorted(set(partitions)):
            lock = settings.pipelines_dir / names.partition_lock_name(connector, key)
            stack.enter_context(exclusive(lock, on_wait))
        yield


def load_one_at_a_time(
    pipeline: Pipeline,
    settings: Settings,
    connector: str,
    on_wait: Callable[[], None] | None = None,
) -> None:
    """Make ``pipeline``'s load step hold ``connector``'s load lock.

    Partition runs side by side extract and normalize at the same time, but two dlt loads that
    find a table missing (or a column new) both issue the DDL, and on PostgreSQL the second fails
    (measured: 1 of 4 loads started at once into a fresh dataset). Loads are short next to the
    pages they load, so they take turns. dagster-dlt calls ``pipeline.run``, which ends in
    ``self.load(...)`` (dlt 1.31): the wrapper is set on the instance, where that call finds it;
    ``unit/test_parallel_partitions.py`` fails if dlt stops calling it.
    """
    original = pipeline.load
    path = settings.pipelines_dir / names.load_lock_name(connector)

    def load(*args: Any, **kwargs: Any) -> Any:
        with exclusive(path, on_wait):
            return original(*args, **kwargs)

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
