"""Production Dagster on a real PostgreSQL server: the documented ``deploy/dagster.yaml`` itself,
loaded verbatim, runs a full sync, the retry sensor's whole flow, and under ``dagster dev`` queues
a connector's second run until its first one ends.

Needs ``RESTSYNC_TEST_POSTGRES_DSN`` (CI starts a server; see scripts/test_postgres.py); without
it these tests are skipped with that reason, or fail when ``RESTSYNC_REQUIRE_POSTGRES=1``."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)

from restsync_dagster.cli.demo import demo_env
from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests import retry_flow as sensor_flow
from restsync_dagster_tests.helpers import PostgresServer, postgres_instance_env, table_rows

pytestmark = pytest.mark.postgres


def test_the_production_dagster_yaml_keeps_runs_events_and_schedules_in_postgres_behind_a_queue(
    production_instance: dg.DagsterInstance,
):
    assert isinstance(production_instance.run_storage, PostgresRunStorage)
    assert isinstance(production_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(production_instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(production_instance.run_coordinator, dg.QueuedRunCoordinator)
    config = production_instance.get_concurrency_config()
    assert config.pool_config.default_pool_limit == 1
    assert config.run_queue_config is not None
    assert config.run_queue_config.tag_concurrency_limits == [
        {"key": "restsync/connector", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert production_instance.run_monitoring_enabled


def test_a_full_sync_on_the_postgres_instance_lands_every_record_and_is_recorded_in_postgres(
    demo_env,
    restsync_home: Path,
    production_instance: dg.DagsterInstance,
    postgres_server: PostgresServer,
    postgres_database: str,
):
    result = (
        load_definitions()
        .resolve_job_def("ecommerce_sync")
        .execute_in_process(instance=production_instance)
    )
    assert result.success
    for collection in ("customers", "products", "orders"):
        assert [r["id"] for r in table_rows(restsync_home, f"ecommerce.{collection}")] == sorted(
            r["id"] for r in demo_env.expected_rows("ecommerce", collection)
        )

    # Read back from PostgreSQL itself, not through Dagster's API.
    (status,) = postgres_server.execute(
        f"SELECT status FROM runs WHERE run_id = '{result.run_id}'", postgres_database
    )
    assert status == ("SUCCESS",)
    materialized = postgres_server.execute(
        "SELECT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        f"AND run_id = '{result.run_id}' ORDER BY asset_key",
        postgres_database,
    )
    assert [key for (key,) in materialized] == [
        '["ecommerce", "customers"]',
        '["ecommerce", "orders"]',
        '["ecommerce", "products"]',
    ]
    # The step claimed a slot of the connector's pool, limited to 1 by the default limit.
    info = production_instance.event_log_storage.get_concurrency_info("restsync_ecommerce")
    assert info.slot_count == 1
    assert info.claimed_slots == [], "the slot is given back when the step ends"


@pytest.fixture
def quick_connectors(restsync_home, tmp_path: Path, monkeypatch, start_demo_api):
    """Connectors ``shop`` and ``depot`` on the demo API, quick to fail (see test_sensors.py)."""
    api = start_demo_api()
    sensor_flow.write_quick_connectors(tmp_path / "connectors", api.url("generic"), monkeypatch)
    return api


def test_the_retry_sensor_heals_a_503_outage_on_the_postgres_instance(
    quick_connectors, production_instance: dg.DagsterInstance, restsync_home: Path
):
    api, instance = quick_connectors, production_instance
    api.start_outage(60)
    first = sensor_flow.run(instance, "shop_sync")
    assert not first.success
    assert instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.FAILURE

    sensor_flow.wait_until_due()
    (request,) = sensor_flow.tick(instance).run_requests
    assert request.run_key == f"restsync-retry:{first.run_id}:shop:1"
    assert request.tags["restsync/retry_of"] == first.run_id

    api.start_outage(0)
    retry = sensor_flow.launch(instance, request)
    assert retry.success
    assert instance.get_run_by_id(retry.run_id).tags["restsync/attempt"] == "1"
    assert [r["id"] for r in table_rows(restsync_home, "shop.items")] == [
        r["id"] for r in api.expected_rows("generic", "items")
    ]
    assert sensor_flow.tick(instance).run_requests == [], "nothing left to retry"


@pytest.mark.slow
def test_dagster_dev_on_postgres_queues_a_connectors_second_run_until_the_first_ends(
    # The database first, so that dagster dev is stopped before the database is dropped.
    production_dagster_home: Path,
    postgres_server: PostgresServer,
    postgres_database: str,
    start_dagster_dev,
    start_demo_api,
    restsync_home: Path,
):
    api = start_demo_api()
    url = start_dagster_dev(
        {
            **demo_env(api.url()),
            **postgres_instance_env(postgres_server, postgres_database),
            "DAGSTER_HOME": str(production_dagster_home),
        }
    )
    host, port = url.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port))
    run_ids = [
        client.submit_job_execution(
            "generic_sync", repository_location_name="restsync", repository_name="__repository__"
        )
        for _ in range(2)
    ]

    deadline = time.monotonic() + 300
    with dg.DagsterInstance.from_config(str(production_dagster_home)) as instance:
        while time.monotonic() < deadline:
            records = [instance.get_run_record_by_id(run_id) for run_id in run_ids]
            if all(r and r.dagster_run.is_finished for r in records):
                break
            time.sleep(2)
        else:
            pytest.fail(
                f"runs not finished within 300 s: {[r and r.dagster_run.status for r in records]}"
            )
        first, second = (r for r in records if r)
        assert [r.dagster_run.status for r in (first, second)] == [dg.DagsterRunStatus.SUCCESS] * 2
        assert first.start_time and first.end_time
        enqueued, starting = (
            instance.get_records_for_run(run_ids[1], of_type=event_type).records[0].timestamp
            for event_type in (dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING)
        )
        assert enqueued < first.end_time, "the second run was queued while the first one ran"
        assert starting >= first.end_time, "and launched only once the first one had ended"
    assert [r["id"] for r in table_rows(restsync_home, "generic.items")] == [
        r["id"] for r in api.expected_rows("generic", "items")
    ]
