"""The slots of an API key's rate budget: at most N runs spend a key at once, whatever starts them
and wherever they run.

A counting semaphore over N locks (``rate_slot_lock_name(key, 0..N-1)``) of the deployment's lock
store (load/locks.py: PostgreSQL advisory locks across hosts, ``flock`` files on one machine): a
run takes the first free one with a try-lock and holds it for as long as it sends requests; with
none free it says so once and tries again every quarter second, in a sleep that run termination
interrupts. A run that dies frees its slot with its locks. Which slot a run holds picks its part
of the key's limits (:class:`~restsync_dagster.extract.share.RateShare`). Dagster's pools count
runs too, but per pool, not per API key, and at run granularity only runs the daemon launches.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from restsync_dagster import names
from restsync_dagster.load.locks import LockStore, try_hold

#: How often a run waiting for a slot tries again.
POLL_SECONDS = 0.25


@contextlib.contextmanager
def rate_slot(
    store: LockStore, key: str, slots: int, on_wait: Callable[[], None] | None = None
) -> Iterator[int]:
    """Hold one of rate key ``key``'s ``slots`` for the block; yield its index (0-based).

    Args:
        store: The deployment's lock store.
        key: The rate key (``rate_limit.key``).
        slots: How many runs may hold the key at once.
        on_wait: Called once if every slot is held, before waiting for one.
    """
    lock_names = [names.rate_slot_lock_name(key, i) for i in range(slots)]
    told = False
    while True:
        for index, name in enumerate(lock_names):
            with try_hold(store, name) as hold:
                if hold is not None:
                    yield index
                    return
        if not told and on_wait is not None:
            on_wait()
        told = True
        time.sleep(POLL_SECONDS)
