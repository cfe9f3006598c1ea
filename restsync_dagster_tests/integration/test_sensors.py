"""The retry sensor on a real DagsterInstance, with runs that really failed against the demo API."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import table_rows
from restsync_dagster_tests.retry_flow import (
    launch,
    run,
    tick,
    wait_until_due,
    write_quick_connectors,
)


@pytest.fixture
def shop(restsync_home, tmp_path: Path, monkeypatch, start_demo_api):
    """Connectors ``shop`` (and ``depot``) on the demo API's generic vertical, quick to fail."""
    api = start_demo_api()
    write_quick_connectors(tmp_path / "connectors", api.url("generic"), monkeypatch)
    return api


def test_a_503_outage_is_retried_after_the_backoff_and_the_retry_loads_exactly_the_rows(
    shop, instance, restsync_home
):
    shop.start_outage(60)
    first = run(instance, "shop_sync")
    assert not first.success

    early = tick(instance)
    assert early.run_requests == [] and "retry 1 due in" in (early.skip_message or "")

    wait_until_due()
    (request,) = tick(instance).run_requests
    assert request.run_key == f"restsync-retry:{first.run_id}:shop:1"
    assert request.tags["restsync/retry_of"] == first.run_id
    assert request.tags["restsync/attempt"] == "1"
    assert {k.to_user_string() for k in request.asset_selection} == {"shop/customers", "shop/items"}
    again = tick(instance).run_requests
    assert [r.run_key for r in again] == [request.run_key], (
        "a second tick asks for the same run key"
    )

    shop.start_outage(0)
    retry = launch(instance, request)
    assert retry.success
    assert [r["id"] for r in table_rows(restsync_home, "shop.items")] == [
        r["id"] for r in shop.expected_rows("generic", "items")
    ]
    assert tick(instance).run_requests == []
    settled = instance.get_run_by_id(first.run_id)
    assert settled is not None and settled.tags["restsync/retry/shop"] == "retried", (
        "a retried run is settled, so later ticks skip it without reading its events"
    )


def test_a_rejected_key_is_never_retried_and_the_run_says_why(shop, instance, monkeypatch):
    monkeypatch.setenv("SHOP_API_KEY", "wrong-key")
    failed = run(instance, "shop_sync")
    assert not failed.success
    wait_until_due()
    result = tick(instance)
    assert result.run_requests == []
    tags = instance.get_run_by_id(failed.run_id).tags
    assert tags["restsync/retry/shop"] == "not_retried"
    assert tags["restsync/retry_reason/shop"] == "permanent failure: 401"
    assert len(shop.requests("/generic/v1/customers")) == 1, "one request, no HTTP retry of a 401"


def test_a_permanent_outage_stops_after_max_retry_runs_and_tags_the_last_run(shop, instance):
    shop.start_outage(600)
    runs = [run(instance, "shop_sync")]
    for _ in range(5):
        wait_until_due(0.3 * 2 ** len(runs) * 1.2 + 0.05)
        requests = tick(instance).run_requests
        if not requests:
            break
        (request,) = requests
        runs.append(launch(instance, request))
    assert [r.success for r in runs] == [False, False, False], "the original run and 2 retries"
    attempts = [instance.get_run_by_id(r.run_id).tags.get("restsync/attempt") for r in runs]
    assert attempts == [None, "1", "2"]
    last = instance.get_run_by_id(runs[-1].run_id).tags
    assert last["restsync/retry/shop"] == "exhausted"
    assert (
        last["restsync/retry_reason/shop"]
        == "gave up after 2 retry run(s); last cause: 503 on customers"
    )


def test_an_ad_hoc_run_retries_only_the_connector_that_failed(
    shop, instance, monkeypatch, start_demo_api
):
    down = start_demo_api(outage_seconds=600)  # depot's API answers 503 to everything
    monkeypatch.setenv("DEPOT_BASE_URL", down.url("generic"))
    definitions = load_definitions()
    result = dg.materialize(
        list(definitions.assets or []),
        resources=definitions.resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    wait_until_due()
    (request,) = tick(instance).run_requests
    assert request.job_name == "depot_sync"
    assert {k.to_user_string() for k in request.asset_selection} == {
        "depot/customers",
        "depot/items",
    }
    assert request.tags["restsync/retry_reason"].startswith("retry 1 after 503")


def test_a_refused_connection_is_not_retried_and_names_the_variable_to_check(
    shop, instance, monkeypatch
):
    monkeypatch.setenv("DEPOT_BASE_URL", "http://127.0.0.1:9/generic")  # nothing listens there
    result = run(instance, "depot_sync")
    assert not result.success
    (event,) = [e for e in result.all_events if e.is_step_failure]
    message = event.step_failure_data.error.to_string()
    assert "Connection refused at 127.0.0.1:9. Check DEPOT_BASE_URL." in message
    assert "Retrying will not help" in message
    wait_until_due()
    assert tick(instance).run_requests == []
    assert instance.get_run_by_id(result.run_id).tags["restsync/retry/depot"] == "not_retried"


def test_no_retry_when_a_newer_run_has_already_materialized_the_assets(shop, instance):
    shop.start_outage(60)
    failed = run(instance, "shop_sync")
    shop.start_outage(0)
    assert run(instance, "shop_sync").success
    wait_until_due()
    assert tick(instance).run_requests == []
    assert instance.get_run_by_id(failed.run_id).tags["restsync/retry/shop"] == "superseded"


def test_at_most_one_retry_of_a_connector_is_requested_per_tick(shop, instance):
    shop.start_outage(60)
    first, second = run(instance, "shop_sync"), run(instance, "shop_sync")
    assert not first.success and not second.success
    wait_until_due()
    requests = tick(instance).run_requests
    assert [r.tags["restsync/retry_of"] for r in requests] == [first.run_id]
