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
