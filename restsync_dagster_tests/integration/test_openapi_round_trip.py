"""Round trip: the demo API's own OpenAPI document -> ``restsync init`` -> ``restsync sync`` in a
real subprocess -> the same tables as the hand-written bundled connector of that vertical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from restsync_dagster.demo_api import DemoApi, DemoApiConfig, default_api_key
from restsync_dagster.openapi.command import run_init

WORKTREE = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo() -> Iterator[DemoApi]:
    api = DemoApi(DemoApiConfig(port=0)).start()
    yield api
    api.stop()


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without connector variables or restsync settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith(("RESTSYNC_", "DAGSTER_"))
    }
    return {**env, "PYTHONPATH": str(WORKTREE), "RESTSYNC_HOME": str(home), **extra}


def sync(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", name, "--json"],
        env=env,
        cwd=WORKTREE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = process.communicate(timeout=400)
    assert process.returncode == 0, err[-3000:]
    return list(json.loads(out))


def tables(home: Path, dataset: str) -> dict[str, tuple[set[str], list[tuple[str, ...]]]]:
    """Every data table of ``dataset``: its columns and its rows (sorted, values normalized, in
    column-name order), without dlt's bookkeeping."""
    found = {}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        names = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [dataset]
        ).fetchall()
        for (table,) in names:
            if table.startswith("_dlt"):
                continue
            relation = con.sql(f'select * from "{dataset}"."{table}"')
            # By column name: hinted columns come first in a table, inferred ones in record order.
            keep = sorted(
                (i for i, c in enumerate(relation.columns) if not c.startswith("_dlt")),
                key=lambda i: relation.columns[i],
            )
            rows = sorted(tuple(_normal(row[i]) for i in keep) for row in relation.fetchall())
            found[table] = ({relation.columns[i] for i in keep}, rows)
    return found


def _normal(value: Any) -> str:
    # DECIMAL(12,2) from schema discovery and dlt's default DECIMAL(38,9) hold the same numbers.
    return str(value.normalize()) if isinstance(value, Decimal) else repr(value)


@pytest.mark.parametrize(
    ("vertical", "exclude"),
    [("ecommerce", ()), ("database", ("/v1/databases/*/schema",))],
)
def test_a_connector_generated_from_the_demo_apis_document_loads_what_the_bundled_one_loads(
    tmp_path, demo, vertical, exclude
):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    name = f"generated_{vertical}"
    document = f"{demo.url(vertical)}/openapi.json"
    assert run_init(name, document, exclude=exclude, connectors_dir_env=str(connectors)) == 0

    generated_home, bundled_home = tmp_path / "generated", tmp_path / "bundled"
    prefix, bundled_prefix = name.upper(), vertical.upper()
    key = default_api_key(vertical)
    generated_run = sync(
        name,
        clean_env(
            generated_home,
            RESTSYNC_CONNECTORS_DIR=str(connectors),
            RESTSYNC_INCLUDE_EXAMPLES="false",
            **{f"{prefix}_BASE_URL": demo.url(vertical), f"{prefix}_API_KEY": key},
        ),
    )
    bundled_run = sync(
        vertical,
        clean_env(
            bundled_home,
            **{f"{bundled_prefix}_BASE_URL": demo.url(vertical), f"{bundled_prefix}_API_KEY": key},
        ),
    )
    generated_outcomes, bundled_outcomes = finished(generated_run), finished(bundled_run)
    assert {o["resource"] for o in generated_outcomes} == {o["resource"] for o in bundled_outcomes}
    assert all(o["status"] == "ok" for o in generated_outcomes)

    generated_tables = tables(generated_home, name)
    bundled_tables = tables(bundled_home, vertical)
    assert set(generated_tables) == set(bundled_tables)
    # The nested line items' child table, and the records read per database, are compared too.
    assert {"ecommerce": "orders__line_items", "database": "records"}[vertical] in bundled_tables
    if vertical == "database":
        assert len(generated_tables["records"][1]) == len(demo.expected_rows("database", "records"))
    for table, (columns, rows) in bundled_tables.items():
        assert generated_tables[table][0] == columns, table
        assert generated_tables[table][1] == rows, table
        assert rows, f"{table} is empty: the comparison would prove nothing"
