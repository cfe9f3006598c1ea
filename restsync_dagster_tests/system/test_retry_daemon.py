"""End to end under ``dagster dev`` and its daemon: an outage longer than the HTTP retries heals
with no human action. Prints the timeline (run ids, attempts, delays)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from restsync_dagster.cli.demo import demo_env
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import table_rows

OUTAGE_SECONDS = 30


@pytest.mark.slow
def test_an_outage_longer_than_the_http_retries_heals_by_itself(
    start_dagster_dev, start_demo_api, restsync_home
):
    api = start_demo_api()
    url = start_dagster_dev(
        {
            **demo_env(api.url()),
            "RESTSYNC_RETRY_SENSOR_INTERVAL_SECONDS": "5",
            "RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS": "5",
        }
    )
    host, port = url.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port))
    api.start_outage(OUTAGE_SECONDS)
    outage_started = time.time()
    first_id = client.submit_job_execution(
        "analytics_sync", repository_location_name="restsync", repository_name="__repository__"
    )

    dagster_home = str(Settings.from_env().dagster_home)
    deadline = time.monotonic() + 300
    chain: list[dg.DagsterRun] = []
    while time.monotonic() < deadline:
        with dg.DagsterInstance.from_config(dagster_home) as instance:
            retries = instance.get_runs(filters=dg.RunsFilter(tags={"restsync/retry_of": first_id}))
            records = [instance.get_run_record_by_id(first_id)] + [
                instance.get_run_record_by_id(r.run_id) for r in retries
            ]
        records = sorted((r for r in records if r), key=lambda r: r.create_timestamp)
        if records[-1].dagster_run.status == dg.DagsterRunStatus.SUCCESS:
            break
        time.sleep(3)
    else:
        pytest.fail(f"no successful retry within 300 s: {[r.dagster_run.status for r in records]}")

    print(
        f"\noutage: {OUTAGE_SECONDS}s from {datetime.fromtimestamp(outage_started, UTC):%H:%M:%S}"
    )
    previous_end = None
    for record in records:
        run = record.dagster_run
        attempt = run.tags.get("restsync/attempt", "0")
        start = record.start_time or record.create_timestamp.timestamp()
        waited = (
            f" (launched {start - previous_end:.1f}s after the previous failure)"
            if previous_end
            else ""
        )
        print(
            f"attempt {attempt}: run {run.run_id[:8]} {run.status.value:<8} "
            f"t+{start - outage_started:5.1f}s .. t+{(record.end_time or start) - outage_started:5.1f}s{waited}"
        )
        previous_end = record.end_time
        chain.append(run)

    statuses = [r.status for r in chain]
    assert (
        statuses[0] == dg.DagsterRunStatus.FAILURE and statuses[-1] == dg.DagsterRunStatus.SUCCESS
    )
    attempts = [int(r.tags.get("restsync/attempt", "0")) for r in chain]
    assert attempts == list(range(len(chain))), "exactly one run per attempt"
    assert all(r.tags.get("dagster/sensor_name") == "retry_transient_failures" for r in chain[1:])
    assert [r["id"] for r in table_rows(restsync_home, "analytics.events")] == [
        r["id"] for r in api.expected_rows("analytics", "events")
    ]
