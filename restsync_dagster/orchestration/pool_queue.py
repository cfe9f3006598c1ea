"""A step waiting for a pool slot that nobody will hand it: it takes the free slot instead.

Dagster queues a step that finds its pool full (the ``pending_steps`` table), and the step that
frees a slot hands it to the head of that queue. Neither side is one transaction (dagster 1.13,
``SqlEventLogStorage``): a step asks whether a slot is free (no: the holder still has it), then
adds itself to the queue unassigned. If the holder frees its slot in between, it finds an empty
queue and hands the slot to nobody; the step waits for a hand-over that never comes, however
long, while the slot stays free. Two syncs of one connector at once (``restsync sync`` beside a
scheduled run) race this way for each of their steps; the soak hung on it (seed 202, cycle 2).

What restsync adds: on the instances it opens (:func:`open_instance`), a claim that finds its
step still unassigned asks the queue again whether a slot is free, and if one is, hands it to
the queue's head (itself, or an earlier step), as the freeing step should have. The slots stay
the semaphore (Dagster claims a slot row only if one is free), so a hand-over made twice by two
waiting steps lets one run and keeps the other waiting, assigned, for the next free slot.
"""

from __future__ import annotations

from typing import Any


def hand_over_lost_slots(instance: Any) -> None:
    """Make ``instance``'s slot claims hand a free slot to the queue's head when nobody did."""
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return
    if not all(hasattr(storage, name) for name in ("has_unassigned_slots", "assign_pending_steps")):
        return  # a storage without Dagster's SQL queue
    claim = storage.claim_concurrency_slot

    def claim_concurrency_slot(
        concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> Any:
        status = claim(concurrency_key, run_id, step_key, priority)
        if status.is_claimed or status.is_assigned:
            return status
        if not storage.has_unassigned_slots(concurrency_key):
            return status  # every slot is held or handed over: wait for the next hand-over
        storage.assign_pending_steps([concurrency_key])
        return claim(concurrency_key, run_id, step_key, priority)

    storage.claim_concurrency_slot = claim_concurrency_slot
