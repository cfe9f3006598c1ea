"""Python's cyclic garbage collector paused while Dagster and dlt set up.

Importing Dagster, dlt and Dagster's storages, and building definitions, makes about a million
objects that live as long as the process, and almost no garbage cycles. The collector walks
every tracked object at each full collection, and a growing heap triggers several of them: five
took 0.6-0.9 s of a 3 s ``restsync sync`` of 100 records, three took 0.5-0.7 s of the 1.9 s that
building 200 connectors' definitions costs. Paused, set-up costs no more memory; the collector
runs again as soon as the block ends. Pure standard library: any floor may use it.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """No automatic collection inside the block.

    Args:
        freeze: Afterwards, move every object alive to the collector's permanent generation
            (``gc.freeze``), so later collections see only what the rest of the process makes
            (objects without cycles are still freed as usual). Given back at exit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
            atexit.register(collector_released)
        if enabled:
            gc.enable()


def collector_released() -> None:
    """Give back what :func:`collector_paused` froze: at exit, native extensions (DuckDB's
    nanobind types) report objects still frozen as leaked."""
    gc.unfreeze()


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Everything alive when the block starts (imports, Dagster's and dlt's set-up, the run's
    pipeline) out of the collector's scans while it runs: a sync makes millions of short-lived
    dicts, and each full collection would walk the whole heap again. Given back afterwards unless
    an outer freeze (:func:`collector_paused`) holds it."""
    outer = gc.get_freeze_count()
    gc.freeze()
    try:
        yield
    finally:
        if not outer:
            gc.unfreeze()
