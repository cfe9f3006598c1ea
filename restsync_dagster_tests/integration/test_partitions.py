"""Daily partitions mapped onto the incremental window: backfills load exactly their days."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster.cli import main
from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import table_count, table_rows

CONNECTOR = """
name: shop
partitions: {daily: {start: 2026-01-01}}
schedule: "15 0 * * *"
source:
  client:
    base_url: "{{ env.SHOP_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.SHOP_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: orders
      endpoint:
        path: /v1/orders
        data_selector: data
        paginator: {type: offset, limit: 100}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


@pytest.fixture
def shop(restsync_home, tmp_path, monkeypatch, demo_api):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "shop.yaml").write_text(CONNECTOR)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("SHOP_BASE_URL", demo_api.url("ecommerce"))
    monkeypatch.setenv("SHOP_API_KEY", "demo-ecommerce-key")
    return demo_api


def backfill(instance, start: str, end: str) -> dg.ExecuteInProcessResult:
    """One run over a partition range, as Dagster runs a single-run backfill."""
    return (
        load_definitions()
        .resolve_job_def("shop_sync")
        .execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
        )
    )


def ids_updated_between(api, since: str, until: str) -> list[int]:
    return [r["id"] for r in api.expected_rows("ecommerce", "orders", since=since, until=until)]


def test_a_backfill_of_three_days_loads_exactly_those_days(shop, restsync_home, instance):
    result = backfill(instance, "2026-01-02", "2026-01-04")
    assert result.success
    expected = ids_updated_between(shop, "2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z")
    assert 100 < len(expected) < 510
    assert [r["id"] for r in table_rows(restsync_home, "shop.orders")] == sorted(expected)
    windows = {(r.params["updated_since"], r.params["updated_until"]) for r in shop.requests()}
    assert windows == {("2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z")}


def test_partition_runs_are_independent_and_re_runnable(shop, restsync_home, instance):
    run = load_definitions().resolve_job_def("shop_sync")
    for day in ("2026-01-03", "2026-01-02", "2026-01-03"):
        assert run.execute_in_process(instance=instance, partition_key=day).success
    expected = ids_updated_between(shop, "2026-01-02T00:00:00Z", "2026-01-04T00:00:00Z")
    assert [r["id"] for r in table_rows(restsync_home, "shop.orders")] == sorted(expected)


def test_a_full_refresh_of_a_partitioned_connector_is_refused(shop, restsync_home, instance):
    result = (
        load_definitions()
        .resolve_job_def("shop_sync")
        .execute_in_process(
            instance=instance,
            partition_key="2026-01-02",
            tags={"restsync/full_refresh": "true"},
            raise_on_error=False,
        )
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert (
        "full refresh drops the tables of every partition"
        in failure.step_failure_data.error.to_string()
    )
    assert shop.requests() == []


def test_the_schedule_of_a_partitioned_connector_requests_the_last_complete_day(shop):
    from datetime import UTC, datetime

    definitions = load_definitions()
    schedule = definitions.get_schedule_def("shop_schedule")
    assert schedule.cron_schedule == "15 0 * * *"
    tick = datetime(2026, 1, 10, 0, 15, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=definitions.get_repository_def()
    ) as context:
        (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-01-09"


def test_the_cli_syncs_one_partition_and_refuses_an_unknown_one(
    shop, restsync_home, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["sync", "shop", "--partition", "2026-01-05"]) == 0
    expected = ids_updated_between(shop, "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z")
    assert table_count(restsync_home, "shop.orders") == len(expected)
    assert main(["sync", "shop", "--partition", "yesterday"]) == 2, (
        "a usage error, before anything runs"
    )
    assert "'yesterday' is not one of its daily partitions" in capsys.readouterr().err
