"""DuckDB's memory during a load: bounded by default, unbounded again when a load cannot fit.

A DuckDB merge deduplicates and joins the whole load package; under DuckDB's own limit (80% of
RAM) a merge of 1M rows peaks 420 MiB above one of 100k (measured, docs/throughput.md). Under a
limit DuckDB spills to ``<file>.tmp`` instead, but some values cannot spill: a merge of 420 rows
of 100 kB strings fails at 128MB with ``OutOfMemoryException``.

dlt treats that error as transient and retries the job (``load.raise_on_max_retries``, 5 by
default) under the same limit, then stops with ``LoadClientJobRetry`` and leaves the package
pending ("You can still rerun the load package"). What restsync adds: when the limit is its own
default (``RESTSYNC_DUCKDB_MEMORY_LIMIT`` unset), the run loads that same pending package once
more with credentials that carry no limit, and says so in the run's log. A limit the user set is
kept, and its failure says which variable to raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from restsync_dagster.failures.classify import iter_chain
from restsync_dagster.failures.errors import DestinationConfigError
from restsync_dagster.settings import MEMORY_LIMIT_VARIABLE, Settings

__all__ = ["fall_back_on_duckdb_memory", "is_out_of_memory"]

#: DuckDB's words for the error (``duckdb.OutOfMemoryException``), also in dlt's retry message.
_OUT_OF_MEMORY = ("Out of Memory Error", "OutOfMemoryException")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether DuckDB ran out of memory anywhere in ``exc``'s chain."""
    return any(
        any(w in f"{type(e).__name__}: {e}" for w in _OUT_OF_MEMORY) for e in iter_chain(exc)
    )


def fall_back_on_duckdb_memory(
    pipeline: Any, settings: Settings, on_fallback: Callable[[str], None]
) -> None:
    """Make ``pipeline``'s load step retry once without a memory limit (see the module).

    dagster-dlt calls ``pipeline.run``, which ends in ``self.load(...)`` (dlt 1.31): the wrapper
    is set on the instance, where that call finds it, as :func:`~restsync_dagster.load.locks.
    load_one_at_a_time` does. ``on_fallback`` gets one line for the run's log.

    Raises:
        DestinationConfigError: a limit the user set was too small for this load.
    """
    if settings.destination != "duckdb" or not settings.duckdb_memory_limit:
        return
    original = pipeline.load

    def load(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if not settings.duckdb_memory_limit_is_default:
                raise DestinationConfigError(
                    f"DuckDB ran out of memory loading into {settings.duckdb_path.name} under "
                    f"{MEMORY_LIMIT_VARIABLE}={settings.duckdb_memory_limit}; raise it, or unset "
                    "it for restsync's default (which falls back to DuckDB's own limit). "
                    "Nothing of this load was written: the next sync loads it."
                ) from exc
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        on_fallback(
            f"DuckDB ran out of memory under restsync's default limit of "
            f"{settings.duckdb_memory_limit} (values it cannot spill to disk); loading the same "
            f"package again under DuckDB's own limit. Set {MEMORY_LIMIT_VARIABLE} to choose."
        )
        return original(
            *args, **{**kwargs, "credentials": DuckDbCredentials(str(settings.duckdb_path))}
        )

    pipeline.load = load
