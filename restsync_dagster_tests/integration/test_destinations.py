"""Real destinations besides DuckDB: PostgreSQL (a real server) and the filesystem destination
writing parquet files. Each gets a full sync and a re-sync of the e-commerce connector (three
resources and the child table ``orders__line_items``): exact row counts, no duplicate keys."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dlt
import duckdb
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.load.destination import DestinationConfigError, build_destination
from restsync_dagster.settings import Settings, SettingsError
from restsync_dagster_tests.helpers import PostgresServer, same_value

COLLECTIONS = ("customers", "products", "orders")


def sync(job: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = load_definitions().resolve_job_def(job).execute_in_process(instance=instance)
    assert result.success
    return result


def expected(api, collection: str) -> list[int]:
    return sorted(r["id"] for r in api.expected_rows("ecommerce", collection))


def line_items(api) -> int:
    return sum(len(o["line_items"]) for o in api.expected_rows("ecommerce", "orders"))


def logged(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(str(e.message) for e in instance.all_logs(run_id))


@pytest.mark.postgres
def test_the_postgres_destination_holds_exactly_the_apis_records_after_a_sync_and_a_resync(
    demo_env,
    instance,
    postgres_server: PostgresServer,
    postgres_database: str,
    monkeypatch,
):
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))

    def query(sql: str) -> list[tuple]:
        return postgres_server.execute(sql, postgres_database)

    for attempt in ("sync", "re-sync"):
        result = sync("ecommerce_sync", instance)
        tables = {
            e.materialization.asset_key.path[-1]: e.materialization.metadata[
                "dagster/table_name"
            ].value
            for e in result.get_asset_materialization_events()
        }
        assert tables == {c: f"ecommerce.{c}" for c in COLLECTIONS}
        for collection in COLLECTIONS:
            ids = [i for (i,) in query(f"SELECT id FROM ecommerce.{collection} ORDER BY id")]
            assert ids == expected(demo_env, collection), (attempt, collection)
        ((count, distinct),) = query(
            "SELECT count(*), count(DISTINCT (_dlt_parent_id, _dlt_list_idx)) "
            "FROM ecommerce.orders__line_items"
        )
        assert count == distinct == line_items(demo_env), attempt

    columns = [c for (c,) in query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ecommerce' "
        "AND table_name = 'customers' AND column_name NOT LIKE '\\_dlt%' ORDER BY ordinal_position"
    )]  # fmt: skip
    stored = {row[0]: dict(zip(columns, row, strict=True)) for row in query(
        f"SELECT {', '.join(columns)} FROM ecommerce.customers"
    )}  # fmt: skip
    for record in demo_env.expected_rows("ecommerce", "customers"):
        for field, value in record.items():
            if isinstance(value, str | int | float | bool):
                assert same_value(stored[record["id"]][field], value), (record["id"], field)


def parquet_ids(bucket: Path, table: str) -> list[int]:
    files = sorted((bucket / "catalog" / table).iterdir())
    assert files and all(f.name.endswith(".parquet") for f in files), [f.name for f in files]
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT id FROM read_parquet(?) ORDER BY id", [[str(f) for f in files]]
        ).fetchall()
    return [int(i) for (i,) in rows]


#: The e-commerce collections, read whole on every sync (the bundled connector is incremental,
#: which a destination that cannot merge refuses, see below).
CATALOG_CONNECTOR = """
name: catalog
source:
  client:
    base_url: "{{ env.ECOMMERCE_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.ECOMMERCE_API_KEY }}"}
  resource_defaults:
    primary_key: id
    write_disposition: merge
    endpoint: {data_selector: data, paginator: {type: offset, limit: 100}}
  resources:
    - {name: customers, endpoint: {path: /v1/customers}}
    - {name: products, endpoint: {path: /v1/products}}
    - {name: orders, endpoint: {path: /v1/orders}}
"""


def test_the_filesystem_destination_writes_parquet_with_exactly_the_apis_records_after_a_resync(
    demo_env, restsync_home, instance, tmp_path, monkeypatch
):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "catalog.yaml").write_text(CATALOG_CONNECTOR)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    bucket = tmp_path / "lake"
    monkeypatch.setenv("RESTSYNC_DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", bucket.as_uri())
    monkeypatch.setenv("RESTSYNC_LOADER_FILE_FORMAT", "parquet")

    run_ids = []
    for attempt in ("sync", "re-sync"):
        run_ids.append(sync("catalog_sync", instance).run_id)
        for collection in COLLECTIONS:
            assert parquet_ids(bucket, collection) == expected(demo_env, collection), (
                attempt,
                collection,
            )
        files = list((bucket / "catalog" / "orders__line_items").glob("*.parquet"))
        with duckdb.connect() as con:
            ((count, distinct),) = con.execute(
                "SELECT count(*), count(DISTINCT (_dlt_parent_id, _dlt_list_idx)) "
                "FROM read_parquet(?)",
                [[str(f) for f in files]],
            ).fetchall()
        assert count == distinct == line_items(demo_env), attempt
    # dlt cannot merge plain files (it would append duplicates): restsync replaces, and says so.
    for run_id in run_ids:
        assert "the destination cannot merge, so the table is replaced" in logged(instance, run_id)
    assert not (restsync_home / "warehouse.duckdb").exists()


INCREMENTAL_CONNECTOR = """
name: feed
source:
  client:
    base_url: "{{ env.FEED_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.FEED_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: events
      endpoint:
        path: /v1/events
        data_selector: data
        paginator: {type: offset, limit: 100}
        incremental: {cursor_path: occurred_at, initial_value: "2020-01-01T00:00:00Z", start_param: since}
"""


def test_an_incremental_merge_on_the_filesystem_destination_is_refused_before_any_request(
    restsync_home, instance, start_demo_api, tmp_path, monkeypatch
):
    api = start_demo_api()
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "feed.yaml").write_text(INCREMENTAL_CONNECTOR)
    for name, value in {
        "RESTSYNC_CONNECTORS_DIR": str(connectors),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
        "RESTSYNC_DESTINATION": "filesystem",
        "DESTINATION__FILESYSTEM__BUCKET_URL": (tmp_path / "lake").as_uri(),
        "FEED_BASE_URL": api.url("analytics"),
        "FEED_API_KEY": "demo-analytics-key",
    }.items():
        monkeypatch.setenv(name, value)
    result = (
        load_definitions()
        .resolve_job_def("feed_sync")
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "connector 'feed', resource 'events': the filesystem destination cannot merge" in message
    assert "table_format: delta" in message
    assert api.requests() == []


def test_a_load_file_format_the_destination_cannot_load_is_refused_with_what_it_can(
    restsync_home,
):
    settings = Settings.from_env(
        {"RESTSYNC_HOME": str(restsync_home), "RESTSYNC_LOADER_FILE_FORMAT": "csv"}
    )
    with pytest.raises(DestinationConfigError) as error:
        build_destination(settings)
    assert str(error.value) == (
        "RESTSYNC_LOADER_FILE_FORMAT='csv': the duckdb destination loads "
        "insert_values, jsonl, model, parquet"
    )


def duckdb_memory_limit(restsync_home: Path, **env: str) -> str:
    settings = Settings.from_env({"RESTSYNC_HOME": str(restsync_home), **env})
    pipeline = dlt.pipeline(
        pipeline_name="memory_limit",
        pipelines_dir=str(restsync_home / "dlt"),
        destination=build_destination(settings),
        dataset_name="memory_limit",
    )
    with pipeline.sql_client() as client:
        ((limit,),) = client.execute_sql("select current_setting('memory_limit')")
    return str(limit)


@pytest.mark.parametrize(
    ("variable", "reported"),
    [("96MB", "91.5 MiB"), ("", "122.0 MiB")],
    ids=["as set", "restsync's default of 128MB when unset"],
)
def test_the_memory_limit_reaches_duckdb(restsync_home, variable, reported):
    limit = duckdb_memory_limit(restsync_home, RESTSYNC_DUCKDB_MEMORY_LIMIT=variable)
    assert limit == reported, "DuckDB reports the limit in MiB"


def test_a_memory_limit_of_duckdb_leaves_duckdbs_own(restsync_home):
    own = duckdb.connect().execute("select current_setting('memory_limit')").fetchone()[0]
    limit = duckdb_memory_limit(restsync_home, RESTSYNC_DUCKDB_MEMORY_LIMIT="duckdb")
    assert limit == own != "122.0 MiB"


def test_a_memory_limit_that_is_not_an_amount_is_refused_naming_the_variable():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"RESTSYNC_DUCKDB_MEMORY_LIMIT": "lots"})
    assert str(error.value) == (
        "RESTSYNC_DUCKDB_MEMORY_LIMIT='lots' is not an amount of memory such as 128MB or 2GB "
        "(or 'duckdb' for DuckDB's own limit)"
    )
