"""What tests share, importable as plain functions: the repo's paths, warehouse reads under the
warehouse lock, the demo API's variables, a PostgreSQL server's coordinates, a ``dagster dev``
seen over GraphQL. ``conftest.py`` turns the ones with set-up and tear-down into fixtures."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import dagster as dg
import duckdb
import pytest

from restsync_dagster.cli.demo import demo_env as demo_variables
from restsync_dagster.demo_api import DemoApi
from restsync_dagster.load.locks import exclusive, warehouse_lock_path

REPO = Path(__file__).resolve().parent.parent
PRODUCTION_DAGSTER_YAML = REPO / "deploy" / "dagster.yaml"
BUNDLED_CONNECTORS = REPO / "restsync_dagster" / "connectors"
VERTICALS = ("generic", "analytics", "ecommerce", "database", "communications")


def point_connectors_at(api: DemoApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set every bundled connector's base URL and key for ``api``."""
    for name, value in demo_variables(api.url()).items():
        monkeypatch.setenv(name, value)


@contextmanager
def warehouse(home: Path, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the DuckDB file of ``home`` (read-only unless planting data), under the
    lock restsync's syncs and checks take: a run that ``dagster dev``'s scheduler starts holds
    the file read-write, and DuckDB would refuse to open it beside that run."""
    path = home / "warehouse.duckdb"
    with (
        exclusive(warehouse_lock_path(path)),
        duckdb.connect(str(path), read_only=read_only) as con,
    ):
        yield con


def table_rows(home: Path, table: str, order_by: str = "id") -> list[dict[str, Any]]:
    """Rows of ``dataset.table`` without dlt's bookkeeping columns."""
    with warehouse(home) as con:
        relation = con.sql(f"select * from {table} order by {order_by}")
        columns = relation.columns
        return [
            {k: v for k, v in zip(columns, row, strict=True) if not k.startswith("_dlt")}
            for row in relation.fetchall()
        ]


def table_count(home: Path, table: str) -> int:
    """``count(*)`` of ``dataset.table``."""
    with warehouse(home) as con:
        (result,) = con.execute(f"select count(*) from {table}").fetchall()
        assert result is not None
        return int(result[0])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


POSTGRES_DSN_VAR = "RESTSYNC_TEST_POSTGRES_DSN"
REQUIRE_POSTGRES_VAR = "RESTSYNC_REQUIRE_POSTGRES"


def required(flag: str) -> bool:
    return os.environ.get(flag, "").strip().lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class PostgresServer:
    """Where the test server listens. ``repr`` leaves the password out, so no assertion or
    traceback prints it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    def dsn(self, database: str | None = None) -> str:
        """A libpq URL for ``database`` (default: the server's own database)."""
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{database or self.database}"
        )

    def connect(self, database: str | None = None) -> Any:
        """A psycopg2 connection in autocommit mode."""
        import psycopg2

        connection = psycopg2.connect(self.dsn(database), connect_timeout=10)
        connection.autocommit = True
        return connection

    def execute(self, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; return its rows (none for DDL)."""
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()


def postgres_instance_env(server: PostgresServer, database: str) -> dict[str, str]:
    """The variables ``deploy/dagster.yaml`` reads, for ``database`` on ``server``."""
    return {
        "DAGSTER_PG_HOST": server.host,
        "DAGSTER_PG_PORT": str(server.port),
        "DAGSTER_PG_USERNAME": server.user,
        "DAGSTER_PG_PASSWORD": server.password,
        "DAGSTER_PG_DB": database,
    }


def graphql_client(url: str) -> Any:
    """A ``DagsterGraphQLClient`` for the ``dagster dev`` at ``url``."""
    from dagster_graphql import DagsterGraphQLClient

    host, port = urlsplit(url).hostname, urlsplit(url).port
    return DagsterGraphQLClient(host or "127.0.0.1", port_number=port)


def wait_for_run(client: Any, run_id: str, timeout_seconds: float = 300) -> dg.DagsterRunStatus:
    """Poll the run's status over GraphQL until it is finished; return that status."""
    finished = {
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    }
    deadline = time.monotonic() + timeout_seconds
    status = None
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status in finished:
            return status
        time.sleep(2)
    pytest.fail(f"run {run_id} not finished within {timeout_seconds:.0f} s (last status {status})")


def same_value(stored: Any, served: Any) -> bool:
    """dlt lands ISO-8601 strings as timestamps and JSON numbers as doubles or decimals."""
    if isinstance(stored, datetime):
        return stored == datetime.fromisoformat(str(served).replace("Z", "+00:00"))
    if isinstance(served, float) and not isinstance(served, bool):
        return abs(float(stored) - served) < 1e-9
    return bool(stored == served)


def files_holding(root: Path, secret: str) -> list[str]:
    """Files under ``root`` that hold ``secret`` (as is or URL-quoted), relative to ``root``."""
    if not root.exists():
        return []
    needles = {secret.encode(), quote(secret, safe="").encode()}
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and any(n in path.read_bytes() for n in needles)
    ]


SHAPE_SECRET = "shape-secret-7d1c9e0b"


def use_connector(
    directory: Path, monkeypatch: pytest.MonkeyPatch, api: DemoApi, name: str, text: str
) -> None:
    """Make ``text`` the only connector (file ``<name>.yaml`` in ``directory``), pointed at
    ``api`` through ``<NAME>_BASE_URL`` with the key :data:`SHAPE_SECRET` in ``<NAME>_API_KEY``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(directory))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv(f"{name.upper()}_BASE_URL", api.url())
    monkeypatch.setenv(f"{name.upper()}_API_KEY", SHAPE_SECRET)


def sync_job(connector: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Run ``<connector>_sync`` in process, as ``restsync sync`` does, on ``instance``."""
    from restsync_dagster.definitions import load_definitions

    job = load_definitions().resolve_job_def(f"{connector}_sync")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def step_failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    """The message and ``restsync/*`` metadata of a run's one failed step."""
    (event,) = [e for e in result.all_events if e.is_step_failure]
    data = event.step_failure_data
    assert data is not None
    user = data.user_failure_data
    metadata = {k: v.value for k, v in ((user.metadata if user else None) or {}).items()}
    return data.error.to_string() if data.error else "", metadata
