"""Syncs through real Dagster execution, from the real demo API into a real DuckDB file."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import (
    assert_matches_api,
    point_connectors_at,
    table_count,
    table_rows,
    warehouse,
)

COLLECTIONS = [
    ("generic", "customers"), ("generic", "items"),
    ("analytics", "events"), ("analytics", "sessions"),
    ("ecommerce", "customers"), ("ecommerce", "products"), ("ecommerce", "orders"),
    ("database", "databases"), ("database", "records"),
    ("communications", "contacts"), ("communications", "messages"),
]  # fmt: skip


def run_job(name: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = load_definitions().resolve_job_def(name)
    return job.execute_in_process(instance=instance, raise_on_error=False)


def materialize_everything(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    definitions = load_definitions()
    return dg.materialize(
        list(definitions.assets or []),
        resources=definitions.resources,
        instance=instance,
        raise_on_error=False,
    )


def failure_of(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    """The step failure's message and the metadata of its ``dagster.Failure``."""
    (event,) = [e for e in result.all_events if e.is_step_failure]
    data = event.step_failure_data
    metadata = {k: v.value for k, v in (data.user_failure_data.metadata or {}).items()}
    return data.error.to_string(), metadata


def test_syncing_every_connector_lands_exactly_the_demo_apis_records(
    demo_env, restsync_home, instance
):
    result = materialize_everything(instance)
    assert result.success
    for vertical, collection in COLLECTIONS:
        assert_matches_api(restsync_home, demo_env, vertical, collection)
    line_items = sum(len(o["line_items"]) for o in demo_env.expected_rows("ecommerce", "orders"))
    assert table_count(restsync_home, "ecommerce.orders__line_items") == line_items
    records = table_rows(restsync_home, "database.records")
    assert {r["database_id"] for r in records} == {1, 2, 3}


def test_a_second_sync_leaves_the_row_counts_unchanged(demo_env, restsync_home, instance):
    assert run_job("ecommerce_sync", instance).success
    before = {
        t: table_count(restsync_home, f"ecommerce.{t}")
        for t in ("customers", "orders", "orders__line_items")
    }
    assert run_job("ecommerce_sync", instance).success
    after = {t: table_count(restsync_home, f"ecommerce.{t}") for t in before}
    assert after == before


def test_materializations_name_the_real_table_its_rows_and_the_load_id(
    demo_env, restsync_home, instance
):
    result = run_job("analytics_sync", instance)
    assert result.success
    by_key = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    events = by_key["analytics/events"]
    assert events["dagster/table_name"].value == "warehouse.analytics.events"
    assert events["rows_loaded"].value == 640
    columns = {c.name for c in events["dagster/column_schema"].value.columns}
    assert {"id", "customer_id", "event_type", "occurred_at"} <= columns
    assert events["http_requests"].value == 7  # 640 records in pages of 100
    assert by_key["analytics/sessions"]["http_requests"].value == 2

    with warehouse(restsync_home) as con:
        table = events["dagster/table_name"].value
        assert con.execute(f"select count(*) from {table}").fetchall() == [(640,)]
        load_ids = {r[0] for r in con.sql("select load_id from analytics._dlt_loads").fetchall()}
    assert events["load_id"].value in load_ids


def test_a_missing_api_key_fails_before_any_request_and_names_the_variable(
    demo_env, instance, monkeypatch
):
    monkeypatch.delenv("ANALYTICS_API_KEY")
    with pytest.raises(dg.DagsterInvalidConfigError, match="ANALYTICS_API_KEY"):
        run_job("analytics_sync", instance)
    assert demo_env.requests() == []


def test_a_rejected_key_fails_with_connector_resource_status_and_redacted_url(
    demo_env, restsync_home, instance, monkeypatch
):
    assert run_job("analytics_sync", instance).success
    before = table_rows(restsync_home, "analytics.events")
    secret = "wrong-key-8d1f0c2e9b"
    monkeypatch.setenv("ANALYTICS_API_KEY", secret)
    result = run_job("analytics_sync", instance)
    assert not result.success
    message, metadata = failure_of(result)
    assert "connector 'analytics', resource 'events': the API answered HTTP 401" in message
    assert "api_key=***" in message and secret not in message
    assert metadata["restsync/status"] == 401 and metadata["restsync/transient"] is False
    assert table_rows(restsync_home, "analytics.events") == before, "previous rows are kept"
    assert len(demo_env.requests("/analytics/v1/events")) == 7 + 1, "a 401 is not retried"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("non_json", "The response body is not valid JSON"),
        ("html", "with an HTML page"),
        (
            "missing_data",
            "the response has no 'data' (data_selector); lists of records in it: items (",
        ),
        ("data_not_list", "'data' (data_selector) is a dict, not a list of records"),
    ],
)
def test_a_broken_body_fails_clearly_and_keeps_the_previous_rows(
    mode, expected, demo_env, restsync_home, instance
):
    assert run_job("analytics_sync", instance).success
    before = table_rows(restsync_home, "analytics.events")
    demo_env.misbehave("/analytics/v1/events", mode, from_offset=300)
    result = run_job("analytics_sync", instance)
    assert not result.success
    message, metadata = failure_of(result)
    assert "connector 'analytics', resource 'events'" in message
    assert expected in message
    assert "offset=300" in message or "offset 300" in message
    assert metadata["restsync/kind"] == "bad_response"
    assert table_rows(restsync_home, "analytics.events") == before


def test_with_a_fifth_of_requests_failing_a_sync_still_loads_exactly_the_records(
    start_demo_api, restsync_home, instance, monkeypatch
):
    api = start_demo_api(fault_rate=0.2, fault_statuses=(429, 503), fault_retry_after=1, seed=11)
    point_connectors_at(api, monkeypatch)
    result = materialize_everything(instance)
    assert result.success
    faults = api.stats()["status_counts"]
    assert faults.get("429", 0) + faults.get("503", 0) >= 5, faults
    retries = sum(
        e.materialization.metadata["http_retries"].value
        for e in result.get_asset_materialization_events()
    )
    assert retries == faults.get("429", 0) + faults.get("503", 0)
    for vertical, collection in COLLECTIONS:
        assert_matches_api(restsync_home, api, vertical, collection)


def test_restsync_destination_switches_to_another_dlt_destination(
    demo_env, restsync_home, instance, tmp_path, monkeypatch
):
    bucket = tmp_path / "lake"
    monkeypatch.setenv("RESTSYNC_DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", bucket.as_uri())
    result = run_job("generic_sync", instance)
    assert result.success
    tables = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata[
            "dagster/table_name"
        ].value
        for e in result.get_asset_materialization_events()
    }
    assert tables == {"generic/customers": "generic.customers", "generic/items": "generic.items"}
    assert list((bucket / "generic" / "customers").iterdir()), "files landed in the bucket"
    assert not (restsync_home / "warehouse.duckdb").exists()
