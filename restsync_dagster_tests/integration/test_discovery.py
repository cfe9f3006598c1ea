"""Many databases in one connection, with types from the API's own schema endpoint."""

import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.extract.discovery import DiscoveryError, column_hint
from restsync_dagster_tests.helpers import table_rows, warehouse


def test_api_types_become_dlt_column_hints():
    assert column_hint("decimal(12,2)", False) == {
        "data_type": "decimal", "nullable": False, "precision": 12, "scale": 2,
    }  # fmt: skip
    assert column_hint("timestamp", True) == {"data_type": "timestamp", "nullable": True}
    assert column_hint("int(11)", False) == {"data_type": "bigint", "nullable": False}, (
        "a display width, not bits"
    )
    assert column_hint("varchar(255)", True)["precision"] == 255
    with pytest.raises(DiscoveryError, match="unknown field type 'geometry'"):
        column_hint("geometry", True)


def test_the_database_connector_loads_every_database_with_discovered_types(
    demo_env, restsync_home, instance
):
    result = (
        load_definitions().resolve_job_def("database_sync").execute_in_process(instance=instance)
    )
    assert result.success
    rows = table_rows(restsync_home, "database.records")
    assert len(rows) == 3 * 210
    assert {r["database_id"] for r in rows} == {1, 2, 3}
    assert [r["id"] for r in rows] == [
        r["id"] for r in demo_env.expected_rows("database", "records")
    ]
    with warehouse(restsync_home) as con:
        columns = {
            name: (data_type, nullable)
            for name, data_type, nullable in con.execute(
                "select column_name, data_type, is_nullable from information_schema.columns "
                "where table_schema = 'database' and table_name = 'records'"
            ).fetchall()
        }
    assert columns["amount"] == ("DECIMAL(12,2)", "NO"), "a decimal, not an inferred double"
    assert columns["user_key"] == ("VARCHAR", "NO")
    assert columns["archived_at"][1] == "YES", "declared but never sent: the column still exists"
    assert all(r["archived_at"] is None for r in rows)
    schema_requests = [
        r.path for r in demo_env.requests("/database/v1/databases/") if r.path.endswith("/schema")
    ]
    assert sorted(schema_requests) == [f"/database/v1/databases/{i}/schema" for i in (1, 2, 3)]
