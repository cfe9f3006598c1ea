"""What the soak runs against: the demo API in this process, a restsync home, a destination.

The API's truth is changed through :class:`~restsync_dagster.demo_api.server.DemoApi` directly.
On PostgreSQL the soak starts a throwaway server of its own (``scripts/test_postgres.py``), so
it can stop and restart it mid-load without disturbing anyone else's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from restsync_dagster.demo_api.server import DemoApi, DemoApiConfig
from restsync_dagster.load.locks import exclusive, warehouse_lock_path
from restsync_dagster_tests.soak.connectors import connector_env, write_connectors

REPO = Path(__file__).resolve().parents[2]
#: Records each collection starts with: enough pages that a kill lands inside a phase.
START_COUNTS = {"ecommerce.customers": 150, "ecommerce.orders": 600, "generic.items": 200}


class Postgres:
    """A throwaway PostgreSQL server the soak may stop and restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        script = REPO / "scripts" / "test_postgres.py"
        subprocess.run([sys.executable, script, "start", root], check=True, capture_output=True)
        line = (root / "env").read_text(encoding="utf-8").strip()
        self.dsn = line.split("=", 1)[1]
        sys.path.insert(0, str(REPO / "scripts"))
        import test_postgres  # the script's own helpers: binaries, the server's user

        self._script = test_postgres

    def _pg_ctl(self, *args: str) -> None:
        data = self.root / "cluster" / "data"
        command = [*self._script.as_server_user(), self._script.binaries() / "pg_ctl"]
        log = self.root / "cluster" / "postgres.log"
        # The server outlives pg_ctl: it must not hold a pipe of ours open (its log is a file).
        subprocess.run(
            [*command, "-D", data, "-l", log, *args],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """Gone at once, as a crash or a failover would leave it (``-m immediate``)."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        """Back, with the options it was started with (``postmaster.opts``)."""
        self._pg_ctl("-w", "-t", "60", "restart")

    def close(self) -> None:
        script = REPO / "scripts" / "test_postgres.py"
        subprocess.run([sys.executable, script, "stop", self.root], check=False)


class World:
    """The demo API, the soak's connectors and a destination, under ``root``."""

    def __init__(self, root: Path, seed: int, destination: str) -> None:
        self.root = root
        self.destination = destination
        self.api = DemoApi(DemoApiConfig(port=0, seed=seed, counts=START_COUNTS)).start()
        write_connectors(root / "connectors")
        self.home = root / "home"
        if destination == "postgres":
            root.chmod(0o711)  # mkdtemp's 0700: the server's own user must reach its cluster
        self.postgres = Postgres(root / "pg") if destination == "postgres" else None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RESTSYNC_", "DAGSTER"))},
            **connector_env(self.api.url()),
            "RESTSYNC_HOME": str(self.home),
            "RESTSYNC_CONNECTORS_DIR": str(root / "connectors"),
            "RESTSYNC_INCLUDE_EXAMPLES": "false",
            "RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS": "0.5",
            "PYTHONPATH": str(REPO),
        }
        if self.postgres is not None:
            self.env["RESTSYNC_DESTINATION"] = "postgres"
            self.env["DESTINATION__POSTGRES__CREDENTIALS"] = self.postgres.dsn

    def close(self) -> None:
        self.api.stop()
        if self.postgres is not None:
            self.postgres.close()

    @property
    def pipelines_dir(self) -> Path:
        return self.home / "dlt"

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of ``sql`` on the warehouse, as dicts (an empty list if the table is missing)."""
        with self._connection() as con:
            try:
                if self.postgres is not None:
                    cursor = con.cursor()
                    cursor.execute(sql)
                    columns = [c.name for c in cursor.description]
                    rows = cursor.fetchall()
                else:
                    relation = con.sql(sql)
                    columns, rows = relation.columns, relation.fetchall()
            except Exception as exc:  # a table not created yet
                if "does not exist" in str(exc) or "not exist" in str(exc).lower():
                    return []
                raise
        return [dict(zip(columns, row, strict=True)) for row in rows]

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        if self.postgres is not None:
            import psycopg2

            con = psycopg2.connect(self.postgres.dsn)
            try:
                yield con
            finally:
                con.close()
            return
        path = self.home / "warehouse.duckdb"
        if not path.exists():
            yield duckdb.connect(":memory:")
            return
        with exclusive(warehouse_lock_path(path)), duckdb.connect(str(path), read_only=True) as con:
            yield con
