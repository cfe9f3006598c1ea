"""Asset checks on clean data, then on planted bad data: duplicate ids, a dropped column, a
changed type, a new nullable column."""

from __future__ import annotations

import dagster as dg

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import warehouse


def sync(instance, job: str = "generic_sync") -> dg.ExecuteInProcessResult:
    return (
        load_definitions()
        .resolve_job_def(job)
        .execute_in_process(instance=instance, raise_on_error=False)
    )


def checks_only(instance, asset: str) -> dg.ExecuteInProcessResult:
    definitions = load_definitions()
    job = dg.define_asset_job(
        "checks_only",
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey.from_user_string(asset)),
    )
    merged = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job]))
    return merged.resolve_job_def("checks_only").execute_in_process(
        instance=instance, raise_on_error=False
    )


def evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_every_check_passes_on_clean_data(demo_env, instance):
    assert sync(instance).success
    second = sync(instance)
    found = evaluations(second)
    assert set(found) == {
        ("generic/customers", "primary_key_unique_not_null"),
        ("generic/customers", "schema_drift"),
        ("generic/items", "primary_key_unique_not_null"),
        ("generic/items", "schema_drift"),
    }
    assert all(e.passed for e in found.values())
    assert found[("generic/items", "schema_drift")].description == "no change"
    assert found[("generic/items", "primary_key_unique_not_null")].metadata["rows"].value == 420


def test_duplicate_ids_fail_the_primary_key_check(demo_env, restsync_home, instance):
    assert sync(instance).success
    with warehouse(restsync_home, read_only=False) as con:
        con.execute("insert into generic.items select * from generic.items where id in (1, 2)")
    found = evaluations(checks_only(instance, "generic/items"))
    check = found[("generic/items", "primary_key_unique_not_null")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["duplicate_rows"].value == 2
    assert check.description == "2 duplicate and 0 null key row(s)"


def test_a_column_the_api_stopped_sending_is_a_drift_error(demo_env, instance):
    assert sync(instance).success
    demo_env.change_schema("generic.items", drop=["kind"])
    check = evaluations(sync(instance))[("generic/items", "schema_drift")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["diff"].value["removed"] == ["kind"]


def test_a_changed_type_is_a_drift_error(demo_env, instance):
    assert sync(instance).success
    demo_env.change_schema("generic.items", retype=["amount"])
    check = evaluations(sync(instance))[("generic/items", "schema_drift")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["diff"].value["retyped"] == {"amount": {"from": "double", "to": "text"}}


def test_a_new_nullable_column_is_a_drift_warning(demo_env, instance):
    assert sync(instance).success
    demo_env.change_schema("generic.items", add=["coupon"])
    check = evaluations(sync(instance))[("generic/items", "schema_drift")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description == "new nullable: coupon"


def test_a_run_that_loads_no_row_repeats_the_key_check_instead_of_scanning_the_table(
    demo_env, restsync_home, instance
):
    assert sync(instance, "ecommerce_sync").success
    first = evaluations(sync(instance, "ecommerce_sync"))  # cursors now at the newest records
    # Rows planted behind restsync's back are what a scan would find, and a no-op must not.
    with warehouse(restsync_home, read_only=False) as con:
        con.execute("insert into ecommerce.orders select * from ecommerce.orders limit 1")
    noop = evaluations(sync(instance, "ecommerce_sync"))
    orders = noop[("ecommerce/orders", "primary_key_unique_not_null")]
    assert orders.passed
    assert "no row loaded in this run" in (orders.description or "")
    rows = first[("ecommerce/orders", "primary_key_unique_not_null")].metadata["rows"]
    assert orders.metadata["rows"] == rows
    # The products are re-read on every run: their table is scanned each time.
    products = noop[("ecommerce/products", "primary_key_unique_not_null")]
    assert "no row loaded" not in (products.description or "")
    # A check run on its own always scans, and finds the planted duplicate.
    alone = evaluations(checks_only(instance, "ecommerce/orders"))
    assert not alone[("ecommerce/orders", "primary_key_unique_not_null")].passed
