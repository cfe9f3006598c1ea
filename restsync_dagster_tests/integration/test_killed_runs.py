"""A sync killed in the middle of its run, on the instance ``restsync sync`` uses (pools on):
the next sync of the connector is not left waiting for the dead run's pool slot. Found by the
soak (seed 1, cycle 3: a SIGKILL while the run wrote its materializations), reduced here to a
kill during extract and one more sync."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from restsync_dagster.names import TAG_CONNECTOR
from restsync_dagster_tests.helpers import REPO, point_connectors_at, table_ids
from restsync_dagster_tests.integration.test_crashes import kill_when


def restsync_sync(connector: str) -> subprocess.Popen[str]:
    """``restsync sync CONNECTOR`` on ``$RESTSYNC_HOME/dagster_home`` (restsync's own
    ``dagster.yaml``: one pool slot per connector)."""
    return subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", connector, "--quiet"],
        env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_the_sync_after_a_killed_one_gets_the_pool_slot_and_the_dead_run_is_marked_failed(
    start_demo_api, restsync_home, monkeypatch
):
    api = start_demo_api(latency_ms=50)
    point_connectors_at(api, monkeypatch)
    killed = restsync_sync("generic")
    kill_when(killed, lambda: len(api.requests("/generic/v1/")) >= 2)

    after = restsync_sync("generic")
    try:
        output, _ = after.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        after.kill()
        pytest.fail("the next sync waited for the killed run's pool slot")
    assert after.returncode == 0, output

    instance = dg.DagsterInstance.from_config(str(restsync_home / "dagster_home"))
    try:
        dead, done = reversed(
            instance.get_runs(filters=dg.RunsFilter(tags={TAG_CONNECTOR: "generic"}))
        )
        assert (dead.status, done.status) == (
            dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.SUCCESS,
        )
        failure = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "is gone (killed or crashed)" in (failure[0].message or "")
        assert not instance.event_log_storage.get_concurrency_info("restsync_generic").claimed_slots
    finally:
        instance.dispose()
    assert table_ids(restsync_home, "generic.items") == list(range(1, 421))


WORKER = """
import os, sys
import dagster as dg
from dagster._core.events import EngineEventData
instance = dg.DagsterInstance.from_config(sys.argv[1])
run = instance.get_run_by_id(sys.argv[2])
# What Dagster's in-process executor writes before any step claims a slot.
instance.report_engine_event(f"Executing steps in process (pid: {os.getpid()})", run,
    EngineEventData(metadata={"pid": dg.MetadataValue.text(str(os.getpid()))}))
instance.handle_run_event(run.run_id, dg.DagsterEvent(
    event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
instance.event_log_storage.claim_concurrency_slot("restsync_generic", run.run_id, "generic_assets")
"""


@dg.op
def generic_assets() -> None:
    """Stands for the connector's sync step (never executed here)."""


@dg.job
def generic_sync() -> None:
    generic_assets()


def test_a_run_killed_before_its_sync_step_began_is_told_dead_by_its_events(tmp_path):
    """The window the soak found second (seed 7, cycle 2): a run launched by a schedule, killed
    after it claimed its pool slot and before its step recorded its process."""
    from restsync_dagster.orchestration.dead_runs import release_dead_runs

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots("restsync_generic", 1)
        run = instance.create_run_for_job(
            job_def=generic_sync,
            tags={TAG_CONNECTOR: "generic"},
        )
        # The run's worker: starts the run, claims the slot, and is gone.
        subprocess.run([sys.executable, "-c", WORKER, str(tmp_path), run.run_id], check=True)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        pool = instance.event_log_storage.get_concurrency_info("restsync_generic")
        assert pool.claimed_slots, "the dead worker holds the slot"

        assert release_dead_runs(instance, ["generic"]) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        pool = instance.event_log_storage.get_concurrency_info("restsync_generic")
        assert not pool.claimed_slots
        assert release_dead_runs(instance, ["generic"]) == [], "once"
