"""With dlt's ``truncate_staging_dataset`` set (restsync leaves it off by default, see
docs/destinations.md), after a merge load dlt's staging dataset (``<dataset>_staging``) is
emptied: its data tables no longer keep a full copy of the last load, in DuckDB or PostgreSQL (dlt's own ``_dlt_version``
row stays); the tables hold every record."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import PostgresServer, table_ids, warehouse


def sync(instance: dg.DagsterInstance) -> None:
    result = (
        load_definitions().resolve_job_def("generic_sync").execute_in_process(instance=instance)
    )
    assert result.success


def test_the_staging_dataset_is_empty_after_a_merge_into_duckdb(
    demo_env, instance, restsync_home, monkeypatch
):
    monkeypatch.setenv("LOAD__TRUNCATE_STAGING_DATASET", "true")
    sync(instance)
    demo_env.advance("generic.customers", insert=3, update=2)
    sync(instance)
    assert table_ids(restsync_home, "generic.customers") == sorted(
        r["id"] for r in demo_env.expected_rows("generic", "customers")
    )
    with warehouse(restsync_home) as con:
        staging = [
            f"{schema}.{table}"
            for schema, table in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema LIKE '%\\_staging' ESCAPE '\\' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'"
            ).fetchall()
        ]
        assert any(t.endswith(".customers") for t in staging), staging
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in staging}
    assert counts and not any(counts.values()), counts


@pytest.mark.postgres
def test_the_staging_dataset_is_empty_after_a_merge_into_postgres(
    demo_env, instance, postgres_server: PostgresServer, postgres_database: str, monkeypatch
):
    monkeypatch.setenv("LOAD__TRUNCATE_STAGING_DATASET", "true")
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    sync(instance)
    sync(instance)
    staging = [
        f'"{schema}"."{table}"'
        for schema, table in postgres_server.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema LIKE '%\\_staging' AND table_name NOT LIKE '\\_dlt%'",
            postgres_database,
        )
    ]
    assert any(t.endswith('."customers"') for t in staging), staging
    counts = {
        t: postgres_server.execute(f"SELECT count(*) FROM {t}", postgres_database)[0][0]
        for t in staging
    }
    assert counts and not any(counts.values()), counts
