"""A step that joins a pool's queue just as the only slot is freed still gets the slot, on the
instance ``restsync sync`` uses (pools on). Found by the soak (seed 202, cycle 2: a scheduled
sync beside ``restsync sync`` waited for its checks step's slot for 300 s while the slot was
free), reduced here to the two processes' steps interleaved by hand."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import dagster as dg

from restsync_dagster.orchestration.instance import open_instance
from restsync_dagster.settings import Settings

POOL = "restsync_soakshop"


def lose_the_hand_over(storage: Any, run_id: str, step_key: str) -> None:
    """What a step's first claim and the holder's free do when they interleave: the step asks
    whether a slot is free (the holder has it), the holder frees it (nobody is queued), then the
    step queues, unassigned, behind nobody."""
    assert storage.claim_concurrency_slot(POOL, "holder", "soakshop_assets").is_claimed
    assert not storage.has_unassigned_slots(POOL)
    storage.free_concurrency_slot_for_step("holder", "soakshop_assets")
    storage.add_pending_step(POOL, run_id, step_key, should_assign=False)


def test_a_step_queued_as_the_only_slot_is_freed_claims_it(restsync_home):
    with open_instance(Settings.from_env()) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        lose_the_hand_over(storage, "waiting", "soakshop_checks")

        assert storage.claim_concurrency_slot(POOL, "waiting", "soakshop_checks").is_claimed


def test_a_step_behind_a_holder_still_waits_for_it_and_then_gets_the_slot(restsync_home):
    with open_instance(Settings.from_env()) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, "holder", "soakshop_assets").is_claimed

        assert not storage.claim_concurrency_slot(POOL, "waiting", "soakshop_checks").is_claimed
        storage.free_concurrency_slot_for_step("holder", "soakshop_assets")
        assert storage.claim_concurrency_slot(POOL, "waiting", "soakshop_checks").is_claimed


def test_a_run_whose_step_queued_as_the_slot_was_freed_runs_to_the_end(restsync_home):
    @dg.op(pool=POOL)
    def soakshop_checks() -> None:
        pass

    @dg.job
    def soakshop_sync() -> None:
        soakshop_checks()

    run_id = str(uuid.uuid4())
    with open_instance(Settings.from_env()) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        lose_the_hand_over(instance.event_log_storage, run_id, "soakshop_checks")
        results: list[dg.ExecuteInProcessResult] = []
        # Without the hand-over the run polls for its slot forever: a thread, so the test ends.
        worker = threading.Thread(
            target=lambda: results.append(
                soakshop_sync.execute_in_process(instance=instance, run_id=run_id)
            ),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=120)

        assert results, "the run still waits for a pool slot that is free"
        assert results[0].success


#: A process that loads restsync's definitions (as a run worker the daemon launches does), or
#: not, then loses a hand-over on an instance restsync did not open.
FRESH_PROCESS = r"""
import sys, tempfile
import dagster as dg
if sys.argv[1] == "load":
    from restsync_dagster.definitions import load_definitions
    load_definitions()
pool = "restsync_soakshop"
with dg.DagsterInstance.local_temp(tempfile.mkdtemp()) as instance:
    storage = instance.event_log_storage
    storage.set_concurrency_slots(pool, 1)
    assert storage.claim_concurrency_slot(pool, "holder", "soakshop_assets").is_claimed
    storage.free_concurrency_slot_for_step("holder", "soakshop_assets")
    storage.add_pending_step(pool, "waiting", "soakshop_checks", should_assign=False)
    print(storage.claim_concurrency_slot(pool, "waiting", "soakshop_checks").is_claimed)
"""


def test_a_run_worker_that_loads_the_definitions_gets_the_hand_over_on_any_instance(
    restsync_home,
):
    import os
    import subprocess
    import sys

    from restsync_dagster_tests.helpers import REPO

    def claimed(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", FRESH_PROCESS, mode],
            env=os.environ,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert claimed("load") == "True"
    assert claimed("bare") == "False", "Dagster fixed its queue: pool_queue.py can go"
