"""Incremental syncs and full refresh, against the demo API's simulated clock and real DuckDB."""

from __future__ import annotations

import dagster as dg

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import table_count, table_rows, warehouse


def run(instance: dg.DagsterInstance, job: str, **kwargs) -> dg.ExecuteInProcessResult:
    return (
        load_definitions()
        .resolve_job_def(job)
        .execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    )


def cursor_params(api, path: str) -> list[dict[str, str]]:
    return [r.params for r in api.requests(path)]


def test_a_second_sync_requests_only_what_changed_and_merges_the_updates(
    demo_env, restsync_home, instance
):
    assert run(instance, "ecommerce_sync").success
    first_max = max(r["updated_at"] for r in demo_env.expected_rows("ecommerce", "orders"))
    changed = demo_env.advance("ecommerce.orders", insert=4, update=3, hours=2)
    demo_env.reset_log()

    result = run(instance, "ecommerce_sync")
    assert result.success
    requests = cursor_params(demo_env, "/ecommerce/v1/orders")
    assert requests == [{"updated_since": first_max, "offset": "0", "limit": "100"}]
    rows_loaded = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata[
            "rows_loaded"
        ].value
        for e in result.get_asset_materialization_events()
    }
    # The record at the cursor is read again (updated_since is inclusive); dlt drops it as seen.
    assert rows_loaded["ecommerce/orders"] == 4 + 3
    expected = demo_env.expected_rows("ecommerce", "orders")
    stored = table_rows(restsync_home, "ecommerce.orders")
    assert [r["id"] for r in stored] == [r["id"] for r in expected] and len(stored) == 514
    by_id = {r["id"]: r for r in stored}
    for order_id in changed["updated"]:
        served = next(r for r in expected if r["id"] == order_id)
        assert by_id[order_id]["status"] == served["status"] and served["status"].endswith("-v1")
    # Line items of updated orders are replaced, not appended.
    assert table_count(restsync_home, "ecommerce.orders__line_items") == sum(
        len(o["line_items"]) for o in expected
    )


def test_a_sync_with_nothing_new_reads_one_page_per_incremental_resource(demo_env, instance):
    assert run(instance, "communications_sync").success
    demo_env.reset_log()
    assert run(instance, "communications_sync").success
    assert len(demo_env.requests("/communications/v1/messages")) == 1
    assert len(demo_env.requests("/communications/v1/contacts")) == 1


def test_full_refresh_by_run_tag_replaces_the_tables_and_resets_the_cursors(
    demo_env, restsync_home, instance
):
    assert run(instance, "ecommerce_sync").success
    with warehouse(restsync_home, read_only=False) as con:
        con.execute("delete from ecommerce.orders where id <= 10")  # something that drifted
    demo_env.reset_log()
    result = run(instance, "ecommerce_sync", tags={"restsync/full_refresh": "true"})
    assert result.success
    first = cursor_params(demo_env, "/ecommerce/v1/orders")[0]
    assert first["updated_since"] == "2026-01-01T00:00:00Z", "the cursor started over"
    assert table_count(restsync_home, "ecommerce.orders") == 510
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["full_refresh"].value is True


def test_full_refresh_is_also_run_config_from_the_launchpad(demo_env, restsync_home, instance):
    assert run(instance, "generic_sync").success
    with warehouse(restsync_home, read_only=False) as con:
        con.execute("insert into generic.items select * from generic.items where id = 1")
    config = {"ops": {"generic_assets": {"config": {"full_refresh": True}}}}
    assert run(instance, "generic_sync", run_config=config).success
    assert table_count(restsync_home, "generic.items") == 420
