"""A step waiting for a pool slot that nobody will hand it: it takes the free slot instead.

Dagster queues a step that finds its pool full (the ``pending_steps`` table), and the step that
frees a slot hands it to the head of that queue. Neither side is one transaction (dagster 1.13,
``SqlEventLogStorage``): a step asks whether a slot is free (no: the holder still has it), then
adds itself to the queue unassigned. If the holder frees its slot in between, it finds an empty
queue and hands the slot to nobody; the step waits for a hand-over that never comes, however
long, while the slot stays free. Two syncs of one connector at once (``restsync sync`` beside a
scheduled run) race this way for each of their steps; the soak hung on it (seed 202, cycle 2).

What restsync adds: a claim that finds its step still unassigned asks the queue again whether a
slot is free, and if one is, hands it to the queue's head (itself, or an earlier step), as the
freeing step should have. The slots stay the semaphore (Dagster claims a slot row only if one is
free), so a hand-over made twice by two waiting steps lets one run and keeps the other waiting,
assigned, for the next free slot.

Wherever runs execute: the fix is installed on Dagster's ``SqlEventLogStorage`` class (dagster
1.13; SQLite and PostgreSQL storages both derive from it) by every process that loads restsync's
definitions (:func:`restsync_dagster.orchestration.definitions.build_definitions`): run workers
the daemon launches load the code location before their first step claims a slot, and
``restsync sync`` opens its instance through :func:`open_instance`, which installs it too.
``integration/test_pool_queue.py`` fails if Dagster renames the methods it calls.
"""

from __future__ import annotations

from typing import Any


def install_hand_over() -> None:
    """Make every SQL event log storage of this process hand a free slot to the queue's head
    when nobody did (once per process)."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    claim = SqlEventLogStorage.claim_concurrency_slot
    if getattr(claim, "restsync_hand_over", False):
        return

    def claim_concurrency_slot(
        storage: Any, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> Any:
        status = claim(storage, concurrency_key, run_id, step_key, priority)
        if status.is_claimed or status.is_assigned:
            return status
        if not storage.supports_global_concurrency_limits:
            return status
        if not storage.has_unassigned_slots(concurrency_key):
            return status  # every slot is held or handed over: wait for the next hand-over
        storage.assign_pending_steps([concurrency_key])
        return claim(storage, concurrency_key, run_id, step_key, priority)

    claim_concurrency_slot.restsync_hand_over = True  # type: ignore[attr-defined]
    SqlEventLogStorage.claim_concurrency_slot = claim_concurrency_slot  # type: ignore[method-assign,assignment]
