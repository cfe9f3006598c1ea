"""dlt's normalize step in worker processes, when asked for and the load is big enough to pay.

Pages travel as Arrow tables, which dlt's normalize step only imports (``extract/arrow.py``);
records that still go through dlt's per-record normalizer (``arrow: false``, a resource whose
records a step or column hint must see, what the vectorized normalizer leaves to dlt) can use
worker processes. dlt can normalize the extracted files of a package in worker processes
(``normalize.workers``), but it starts the pool for any package, one file or many, and under
Dagster it spawns them (dlt's ``get_default_start_method``): each worker imports dlt again, and
the parent polls them every 0.3 s. That would put a second or more on every small sync.

It is off by default (``RESTSYNC_NORMALIZE_WORKERS=1``) because it can land other types than
plain dlt does. dlt types a new column by the first value it meets, and coerces later values to
that type or puts them in a variant column. Plain dlt extracts a table into one file, read in
order. Split into files (which workers need), the order is lost twice: dlt normalizes a table's
files in the order of their random names, and with workers, when two type a column differently
(``4`` in one file, ``4.5`` in another), the one that ends first wins and the other's files are
normalized again to that type (dlt's ``Normalize.map_parallel``). Plain dlt lands ``bigint``
with a ``__v_double`` variant column; split files land that or ``double``, from run to run.
``integration/test_nested_tables_equal_plain_dlt.py`` found this (2026-12-01).

What restsync adds, with ``RESTSYNC_NORMALIZE_WORKERS=auto``: extracted files hold at most
:data:`FILE_MAX_ITEMS` items (dlt's ``sources.data_writer.file_max_items``, in
:data:`~restsync_dagster.load.destination.PARALLEL_NORMALIZE_DLT_DEFAULTS`: extracted files
only; more load files made a 1M-row DuckDB merge peak 30 MiB higher), and a run with at least :data:`MIN_FILES`
extracted files of records for dlt's normalizer (Arrow tables need none) asks dlt for a worker
per file, up to the cores this process may use. Smaller syncs normalize in their own process.
Measured on 2 cores (nested tickets, dlt's normalize step alone, two runs each): 200k records
(4 files) 11.3-11.9 s in one process, 7.7-8.4 s with two workers; 100k (2 files) 5.8-6.0 s in
one, 5.9-6.2 s with two, which is why two files are not enough. ``NORMALIZE__WORKERS`` in the
environment wins over both settings, as it does in dlt.

A worker process outlives a run killed by SIGKILL (the out-of-memory killer, ``kill -9``): it
finishes the file it holds, then waits for more forever, its parent gone (measured with
``concurrent.futures`` on Python 3.11). Workers inherit :data:`PARENT_VARIABLE`, naming the run's
process and the pipeline's working directory; before each normalize, :func:`stop_orphaned_workers`
ends that pipeline's workers whose run's process no longer exists (Linux: it reads ``/proc``;
elsewhere it does nothing). Another pipeline's orphans are left to that pipeline's next normalize.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from restsync_dagster.load.locks import process_exists

__all__ = ["FILE_MAX_ITEMS", "MIN_FILES", "normalize_on_every_core", "normalize_workers"]

#: Items per extracted file: the unit dlt hands one normalize worker.
FILE_MAX_ITEMS = 50_000
#: Files of records below which the worker processes cost what they save.
MIN_FILES = 3
#: Set while a run normalizes, to ``<run's process id>:<pipeline's working directory>``: its
#: worker processes inherit it.
PARENT_VARIABLE = "RESTSYNC_NORMALIZE_PARENT"


def parent_marker(pid: int, working_dir: str) -> str:
    """The value of :data:`PARENT_VARIABLE` for run ``pid`` normalizing in ``working_dir``."""
    return f"{pid}:{working_dir}"


def normalize_workers(extracted_files: list[str], cores: int) -> int:
    """Workers for a package of ``extracted_files`` (dlt's file names): one per file of records
    for dlt's normalizer, at most ``cores``; 1 below :data:`MIN_FILES` such files."""
    records = _record_files(extracted_files)
    return max(1, min(cores, len(records))) if len(records) >= MIN_FILES else 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which container limits set)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def normalize_on_every_core(
    pipeline: Any, on_parallel: Callable[[str], None], *, auto: bool = True
) -> None:
    """Wrap ``pipeline``'s normalize step: with ``auto``, it asks for :func:`normalize_workers`
    workers; always, it first ends this pipeline's orphaned workers and marks its own.

    dagster-dlt calls ``pipeline.run``, which calls ``self.normalize()`` (dlt 1.31): the wrapper
    is set on the instance, where that call finds it, as ``load/locks.py`` does for the load.
    ``on_parallel`` gets one line for the run's log when more than one worker is asked for.
    Without ``auto``, dlt's own setting (``NORMALIZE__WORKERS``, default 1) decides, and a user
    who sets it gets the sweep of orphaned workers too.
    """
    original = pipeline.normalize

    def normalize(*args: Any, **kwargs: Any) -> Any:
        if auto and not args and "workers" not in kwargs:
            files = [
                os.path.basename(job.file_path)
                for load_id in pipeline.list_extracted_load_packages()
                for job in pipeline.get_load_package_info(load_id).jobs.get("new_jobs", [])
            ]
            workers = normalize_workers(files, usable_cores())
            if workers > 1:
                records = len(_record_files(files))
                on_parallel(f"normalizing {records} files of records in {workers} processes")
            kwargs["workers"] = workers
        working_dir = str(pipeline.working_dir)
        stop_orphaned_workers(working_dir)
        saved = os.environ.get(PARENT_VARIABLE)
        os.environ[PARENT_VARIABLE] = parent_marker(os.getpid(), working_dir)
        try:
            return original(*args, **kwargs)
        finally:
            if saved is None:
                os.environ.pop(PARENT_VARIABLE, None)
            else:
                os.environ[PARENT_VARIABLE] = saved

    pipeline.normalize = normalize


def _record_files(extracted_files: list[str]) -> list[str]:
    """The files of records for dlt's normalizer: not Arrow's, not dlt's own state rows."""
    return [f for f in extracted_files if not f.endswith(".parquet") and not f.startswith("_dlt")]


def orphaned_workers(working_dir: str, proc: Path = Path("/proc")) -> list[int]:
    """Processes carrying :data:`PARENT_VARIABLE` for ``working_dir`` whose named parent no longer
    exists."""
    marker = f"{PARENT_VARIABLE}=".encode()
    found = []
    for entry in proc.glob("[0-9]*") if proc.is_dir() else []:
        with contextlib.suppress(OSError):
            for item in (entry / "environ").read_bytes().split(b"\0"):
                if item.startswith(marker):
                    parent, _, directory = (
                        item[len(marker) :].decode(errors="replace").partition(":")
                    )
                    if (
                        directory == working_dir
                        and parent.isdigit()
                        and not process_exists(int(parent))
                    ):
                        found.append(int(entry.name))
                    break
    return found


def stop_orphaned_workers(working_dir: str) -> list[int]:
    """End the :func:`orphaned_workers` of ``working_dir`` (SIGKILL: they hold no lock and no open
    load); returns them."""
    stopped = []
    for pid in orphaned_workers(working_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
    return stopped
