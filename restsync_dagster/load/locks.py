"""File locks that keep one writer per dlt pipeline and per DuckDB file, however runs start.

Dagster pools keep runs apart when the daemon launches them; ``restsync sync`` in a terminal
and a run launched from the UI do not share a pool slot. These locks hold in every case: the
second run of a connector waits for the first (and says so in its log) instead of corrupting the
pipeline's working directory, and DuckDB, which allows one writing process per file, never sees
two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from restsync_dagster import names

if TYPE_CHECKING:
    from restsync_dagster.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pools are the only guard there
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def exclusive(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the duration of the block.

    Args:
        path: The lock file.
        on_wait: Called once if another process holds the lock, before waiting for it.
    """
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
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
    settings: Settings, connector: str, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """The lock of ``connector``'s dlt pipeline: one run of a connector writes at a time."""
    with exclusive(settings.pipelines_dir / names.pipeline_lock_name(connector), on_wait):
        yield
