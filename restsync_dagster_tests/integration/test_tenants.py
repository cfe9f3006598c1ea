"""One connector file, many accounts (issue 25): tenants as partitions of one asset per resource,
against the demo API's tenants (each its own key, its own data, ids overlapping), real DuckDB
and real runs of the connector's job on a real DagsterInstance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster import names
from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import (
    assert_no_secret_written,
    most_spans_at_once,
    same_value,
    step_failure,
    table_count,
    table_rows,
    warehouse,
)

TENANTS = ("acme", "globex", "initech")

CONNECTOR = """
name: shop
tenants: {keys: [KEYS]TENANTS_EXTRA}
source:
  client:
    base_url: "{{ tenant.BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ tenant.API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: products
      endpoint: {path: /v1/products, data_selector: data, paginator: {type: offset, limit: 50}}
    - name: orders
      endpoint:
        path: /v1/orders
        data_selector: data
        paginator: {type: offset, limit: 50}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


def connector_text(tenants: tuple[str, ...], extra: str = "") -> str:
    return CONNECTOR.replace("KEYS", ", ".join(tenants)).replace("TENANTS_EXTRA", extra)


def point_tenant_at(api, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant ``tenant``'s own variables: its base URL (which carries it) and its key."""
    token = tenant.upper()
    monkeypatch.setenv(f"SHOP_{token}_BASE_URL", api.tenant_url(tenant, "ecommerce"))
    monkeypatch.setenv(f"SHOP_{token}_API_KEY", api.tenant_key(tenant))


@pytest.fixture
def shop(restsync_home, tmp_path, monkeypatch, start_demo_api):
    """The demo API serving three tenants (ids overlapping), and a connector file serving them."""
    api = start_demo_api(tenants=TENANTS, counts={"*": 60, "ecommerce.orders": 130})
    write_connector(tmp_path, monkeypatch, connector_text(TENANTS))
    for tenant in TENANTS:
        point_tenant_at(api, tenant, monkeypatch)
    return api


def write_connector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    connectors = tmp_path / "connectors"
    connectors.mkdir(exist_ok=True)
    (connectors / "shop.yaml").write_text(text)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")


def sync_tenant(instance: dg.DagsterInstance, tenant: str, **kwargs) -> dg.ExecuteInProcessResult:
    job = load_definitions().resolve_job_def("shop_sync")
    return job.execute_in_process(
        instance=instance, partition_key=tenant, raise_on_error=False, **kwargs
    )


def rows_of(home: Path, table: str, tenant: str) -> list[dict]:
    return [r for r in table_rows(home, table, order_by="tenant, id") if r["tenant"] == tenant]


def assert_tenant_rows_exact(home: Path, api, tenant: str, collection: str) -> None:
    """The shared table holds exactly ``tenant``'s records, as its API served them to it."""
    expected = {r["id"]: r for r in api.expected_rows("ecommerce", collection, tenant=tenant)}
    rows = rows_of(home, f"shop.{collection}", tenant)
    assert sorted(r["id"] for r in rows) == sorted(expected), (tenant, collection)
    for row in rows:
        for name, value in expected[row["id"]].items():
            if isinstance(value, str | int | float | bool):
                assert same_value(row[name], value), (tenant, collection, row["id"], name)


def test_one_asset_per_resource_whatever_the_number_of_tenants(
    restsync_home, tmp_path, monkeypatch
):
    shapes = []
    for tenants in (("acme",), tuple(f"t{n:02d}" for n in range(1, 51))):
        write_connector(tmp_path, monkeypatch, connector_text(tenants))
        definitions = load_definitions()
        graph = definitions.resolve_asset_graph()
        keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
        jobs = sorted(j.name for j in definitions.resolve_all_job_defs())
        partitions = graph.get(dg.AssetKey(["shop", "orders"])).partitions_def
        assert isinstance(partitions, dg.StaticPartitionsDefinition)
        assert partitions.get_partition_keys() == list(tenants)
        resources = sorted(definitions.resources or {})
        shapes.append((keys, jobs, resources))
    assert shapes[0] == shapes[1]
    assert shapes[0][0] == ["shop/orders", "shop/products"]


def test_each_tenant_loads_exactly_its_own_rows_tagged_with_it(shop, restsync_home, instance):
    for tenant in TENANTS:
        assert sync_tenant(instance, tenant).success, tenant
    for tenant in TENANTS:
        for collection in ("orders", "products"):
            assert_tenant_rows_exact(restsync_home, shop, tenant, collection)
    # The ids overlap: without the tenant in the key, a merge would have kept one tenant's.
    assert table_count(restsync_home, "shop.orders") == 3 * 130
    # Nested line items hang off their own tenant's orders.
    with warehouse(restsync_home) as con:
        per_tenant = con.sql(
            "select o.tenant, count(*) from shop.orders__line_items l "
            "join shop.orders o on l._dlt_root_id = o._dlt_id group by o.tenant order by 1"
        ).fetchall()
        expected = [
            (
                t,
                sum(
                    len(r["line_items"])
                    for r in shop.expected_rows("ecommerce", "orders", tenant=t)
                ),
            )
            for t in sorted(TENANTS)
        ]
        assert per_tenant == expected
        orphans = con.sql(
            "select count(*) from shop.orders__line_items l "
            "where l._dlt_root_id not in (select _dlt_id from shop.orders)"
        ).fetchall()
        assert orphans == [(0,)]


def test_a_second_sync_is_idempotent_and_a_tenant_run_touches_no_other_tenant(
    shop, restsync_home, instance
):
    for tenant in TENANTS:
        assert sync_tenant(instance, tenant).success
    before = {t: rows_of(restsync_home, "shop.orders", t) for t in TENANTS}
    items_before = table_count(restsync_home, "shop.orders__line_items")
    for tenant in TENANTS:
        assert sync_tenant(instance, tenant).success
    assert {t: rows_of(restsync_home, "shop.orders", t) for t in TENANTS} == before
    assert table_count(restsync_home, "shop.orders__line_items") == items_before

    # acme's orders change; a run of acme reads acme alone, from acme's own cursor.
    changed = shop.advance("ecommerce.orders", insert=4, update=5, tenant="acme")
    shop.reset_log()
    assert sync_tenant(instance, "acme").success
    records = shop.tenant_records()
    assert records["acme"]["requests"] > 0
    assert records["globex"]["requests"] == records["initech"]["requests"] == 0
    order_calls = [r for r in shop.requests("/t/acme/ecommerce/v1/orders")]
    assert {r.params["updated_since"] for r in order_calls} != {"2026-01-01T00:00:00Z"}
    assert_tenant_rows_exact(restsync_home, shop, "acme", "orders")
    assert len(rows_of(restsync_home, "shop.orders", "acme")) == 130 + len(changed["inserted"])
    for other in ("globex", "initech"):
        assert rows_of(restsync_home, "shop.orders", other) == before[other]


def test_a_revoked_key_fails_only_its_tenant_as_an_auth_failure(shop, restsync_home, instance):
    shop.revoke_tenant("globex")
    results = {tenant: sync_tenant(instance, tenant) for tenant in TENANTS}
    assert results["acme"].success and results["initech"].success
    assert not results["globex"].success
    message, metadata = step_failure(results["globex"])
    assert metadata[names.failure_key("status")] == 401
    assert metadata[names.failure_key("kind")] == "http_status"
    assert metadata[names.failure_key("transient")] is False
    assert "SHOP_GLOBEX_API_KEY" in message
    assert rows_of(restsync_home, "shop.orders", "globex") == []
    for tenant in ("acme", "initech"):
        assert_tenant_rows_exact(restsync_home, shop, tenant, "orders")


def test_with_confinement_each_tenant_presents_only_its_own_key(
    shop, restsync_home, instance, monkeypatch
):
    monkeypatch.setenv("RESTSYNC_CONFINE_ENV", "true")
    for tenant in TENANTS:
        result = sync_tenant(instance, tenant)
        assert result.success, tenant
        logs = "\n".join(e.message or "" for e in instance.all_logs(result.run_id) if e.message)
        for other in TENANTS:
            assert shop.tenant_key(other) not in logs
    records = shop.tenant_records()
    for tenant in TENANTS:
        assert records[tenant]["keys_seen"] == {tenant: records[tenant]["requests"]}
        assert records[tenant]["cross_tenant_attempts"] == 0
        assert records[tenant]["key_used_on"] == {}
    for tenant in TENANTS:
        assert_no_secret_written(restsync_home, instance, shop.tenant_key(tenant))


def test_a_tenant_run_reads_only_its_own_variables(shop, restsync_home, instance, monkeypatch):
    # acme's key unset: acme's run fails naming acme's variable; the others do not need it.
    monkeypatch.delenv("SHOP_ACME_API_KEY")
    failed = sync_tenant(instance, "acme")
    assert not failed.success
    message, metadata = step_failure(failed)
    assert metadata[names.failure_key("kind")] == "missing_env_var"
    assert "SHOP_ACME_API_KEY" in message
    assert sync_tenant(instance, "globex").success


def test_tenants_with_their_own_datasets_load_into_them(
    shop, restsync_home, tmp_path, monkeypatch, instance
):
    write_connector(tmp_path, monkeypatch, connector_text(TENANTS, ", tables: datasets"))
    for tenant in ("acme", "globex"):
        assert sync_tenant(instance, tenant).success
    for tenant in ("acme", "globex"):
        expected = sorted(r["id"] for r in shop.expected_rows("ecommerce", "orders", tenant=tenant))
        rows = table_rows(restsync_home, f"shop_{tenant}.orders")
        assert [r["id"] for r in rows] == expected
        assert "tenant" not in rows[0]


def test_a_dynamic_tenant_syncs_once_added_and_an_unknown_one_fails(
    shop, restsync_home, tmp_path, monkeypatch, instance
):
    write_connector(
        tmp_path, monkeypatch, CONNECTOR.replace("keys: [KEYS]TENANTS_EXTRA", "dynamic: true")
    )
    instance.add_dynamic_partitions(names.tenants_partitions_name("shop"), ["acme"])
    assert sync_tenant(instance, "acme").success
    assert_tenant_rows_exact(restsync_home, shop, "acme", "orders")
    instance.add_dynamic_partitions(names.tenants_partitions_name("shop"), ["globex"])
    shop.reset_log()
    assert sync_tenant(instance, "globex").success
    assert shop.tenant_records()["acme"]["requests"] == 0
    assert_tenant_rows_exact(restsync_home, shop, "globex", "orders")
    # A tenant removed after its run was queued: the run fails before any request.
    instance.delete_dynamic_partition(names.tenants_partitions_name("shop"), "globex")
    shop.reset_log()
    job = load_definitions().resolve_job_def("shop_sync")
    removed = job.execute_in_process(
        instance=instance, raise_on_error=False, tags={names.DAGSTER_PARTITION_TAG: "globex"}
    )
    assert not removed.success
    message, metadata = step_failure(removed)
    assert "no tenant 'globex'" in message and "restsync tenants add shop globex" in message
    assert metadata[names.failure_key("kind")] == "invalid_config"
    assert shop.requests() == []


def test_a_full_refresh_of_one_tenant_in_shared_tables_is_refused(shop, restsync_home, instance):
    assert sync_tenant(instance, "acme").success
    shop.reset_log()
    result = sync_tenant(instance, "globex", tags={names.TAG_FULL_REFRESH: "true"})
    assert not result.success
    message, _ = step_failure(result)
    assert "other tenants' rows" in message
    assert shop.requests() == []
    assert_tenant_rows_exact(restsync_home, shop, "acme", "orders")


def test_tenants_by_day_sync_one_tenant_and_one_day(
    shop, restsync_home, tmp_path, monkeypatch, instance
):
    write_connector(
        tmp_path,
        monkeypatch,
        connector_text(TENANTS).replace(
            "tenants:", "partitions: {daily: {start: 2026-01-01}}\ntenants:"
        ),
    )
    graph = load_definitions().resolve_asset_graph()
    partitions = graph.get(dg.AssetKey(["shop", "orders"])).partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    key = dg.MultiPartitionKey({"tenant": "globex", "daily": "2026-01-02"})
    assert sync_tenant(instance, key).success
    records = shop.tenant_records()
    assert records["acme"]["requests"] == records["initech"]["requests"] == 0
    expected = sorted(
        r["id"]
        for r in shop.expected_rows(
            "ecommerce", "orders", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", tenant="globex"
        )
    )
    assert expected
    assert [r["id"] for r in rows_of(restsync_home, "shop.orders", "globex")] == expected
    assert table_count(restsync_home, "shop.orders") == len(expected)


@pytest.mark.postgres
def test_tenants_syncing_at_once_into_one_postgres_dataset_keep_exactly_their_rows(
    restsync_home, tmp_path, monkeypatch, start_demo_api, postgres_server, postgres_database
):
    """Three processes, one tenant each, side by side: each its own pipeline and staging
    dataset, their loads into the shared dataset taking turns."""
    # Slow pages (40 requests of 100 ms a tenant) so that the runs overlap.
    shop = start_demo_api(
        tenants=TENANTS, counts={"*": 60, "ecommerce.orders": 130}, latency_ms=100
    )
    for tenant in TENANTS:
        point_tenant_at(shop, tenant, monkeypatch)
    text = connector_text(TENANTS, ", max_concurrent: 3").replace("limit: 50", "limit: 5")
    write_connector(tmp_path, monkeypatch, text)
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    shop.reset_log()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "restsync_dagster.cli",
                "sync",
                "shop",
                "--tenant",
                t,
                "--quiet",
            ],
            env=dict(os.environ),
        )
        for t in TENANTS
    ]
    assert [p.wait(timeout=600) for p in processes] == [0, 0, 0]
    records = shop.tenant_records()
    spans = [(records[t]["first_at"], records[t]["last_at"]) for t in TENANTS]
    assert most_spans_at_once(spans) >= 2, spans
    for tenant in TENANTS:
        ids = [
            i
            for (i,) in postgres_server.execute(
                f"SELECT id FROM shop.orders WHERE tenant = '{tenant}' ORDER BY id",
                postgres_database,
            )
        ]
        expected = sorted(r["id"] for r in shop.expected_rows("ecommerce", "orders", tenant=tenant))
        assert ids == expected, tenant
    ((count,),) = postgres_server.execute("SELECT count(*) FROM shop.orders", postgres_database)
    assert count == 3 * 130


def test_tenants_whose_syncs_commit_in_several_packages_keep_exactly_their_rows(
    shop, restsync_home, instance, monkeypatch
):
    # A package every page (50 records): each tenant's merges commit one page at a time, each
    # by the tenant's own key, so no package of one tenant may delete another's rows.
    monkeypatch.setenv("RESTSYNC_PACKAGE_ROWS", "40")
    for _ in range(2):
        for tenant in TENANTS:
            assert sync_tenant(instance, tenant).success, tenant
    for tenant in TENANTS:
        for collection in ("orders", "products"):
            assert_tenant_rows_exact(restsync_home, shop, tenant, collection)
    assert table_count(restsync_home, "shop.orders") == 3 * 130
    with warehouse(restsync_home) as con:
        loads = con.sql(
            "select tenant, count(distinct _dlt_load_id) from shop.orders group by 1 order by 1"
        ).fetchall()
    assert loads == [(t, 3) for t in sorted(TENANTS)], "each tenant's first sync in 3 packages"


FIFTY = tuple(f"t{n:02d}" for n in range(1, 51))
PRODUCTS_ONLY = """
name: shop
tenants: {keys: [KEYS]}
source:
  client:
    base_url: "{{ tenant.BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ tenant.API_KEY }}"}
  resources:
    - name: products
      primary_key: id
      write_disposition: merge
      endpoint: {path: /v1/products, data_selector: data, paginator: {type: offset, limit: 50}}
"""


def test_fifty_tenants_in_one_file_load_exactly_and_a_revoked_one_fails_alone(
    restsync_home, tmp_path, monkeypatch, start_demo_api, instance
):
    api = start_demo_api(tenants=FIFTY, counts={"*": 7})
    write_connector(tmp_path, monkeypatch, PRODUCTS_ONLY.replace("KEYS", ", ".join(FIFTY)))
    for tenant in FIFTY:
        point_tenant_at(api, tenant, monkeypatch)
    api.revoke_tenant("t13")

    results = {tenant: sync_tenant(instance, tenant) for tenant in FIFTY}
    failed = sorted(t for t, r in results.items() if not r.success)
    assert failed == ["t13"]
    _, metadata = step_failure(results["t13"])
    assert metadata[names.failure_key("status")] == 401
    assert metadata[names.failure_key("transient")] is False
    assert rows_of(restsync_home, "shop.products", "t13") == []
    for tenant in FIFTY:
        if tenant != "t13":
            assert_tenant_rows_exact(restsync_home, api, tenant, "products")
    first = table_rows(restsync_home, "shop.products", order_by="tenant, id")
    assert len(first) == 49 * 7

    # A second sync of every tenant changes nothing.
    for tenant in FIFTY:
        if tenant != "t13":
            assert sync_tenant(instance, tenant).success, tenant
    again = table_rows(restsync_home, "shop.products", order_by="tenant, id")
    assert [{k: v for k, v in r.items() if not k.startswith("_dlt")} for r in again] == [
        {k: v for k, v in r.items() if not k.startswith("_dlt")} for r in first
    ]
