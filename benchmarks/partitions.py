"""Benchmark case: a 32-day backfill on PostgreSQL with partitions synced one at a time versus
four side by side (``partitions.max_concurrent``), over an API answering in 50 ms.

Each side runs the same 32 daily partitions of a connector into a fresh PostgreSQL database.
``max_concurrent`` workers (processes, as Dagster's run launcher starts runs) each execute their
share of the partitions with ``execute_in_process``, so the figure is the sync itself: the
per-partition dlt pipelines, staging datasets and locks, not the launch of a run worker. The
PostgreSQL server is ``RESTSYNC_TEST_POSTGRES_DSN`` when set; else a throwaway one started with
``scripts/test_postgres.py``; without PostgreSQL binaries the row is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAYS = 32
LATENCY_MS = 50
#: One generic item every 10 minutes: 144 a day, 36 pages of 4, so 1.8 s of latency a day.
PAGE_SIZE = 4
CONNECTOR = """
name: days
partitions: {{daily: {{start: 2026-01-01}}, max_concurrent: {concurrent}}}
source:
  client:
    base_url: "{{{{ env.DAYS_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.DAYS_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint:
        path: /v1/items
        data_selector: data
        paginator: {{type: offset, limit: {page}}}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


def days() -> list[str]:
    from datetime import date, timedelta

    return [(date(2026, 1, 1) + timedelta(days=d)).isoformat() for d in range(DAYS)]


@contextlib.contextmanager
def postgres_server() -> Iterator[str | None]:
    """A libpq URL of a PostgreSQL server, or None (with a line saying why) when there is none."""
    given = os.environ.get("RESTSYNC_TEST_POSTGRES_DSN", "").strip()
    if given:
        yield given
        return
    if not shutil.which("initdb") and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        print("partitions: skipped, no PostgreSQL binaries (apt-get install -y postgresql)")
        yield None
        return
    script = ROOT / "scripts" / "test_postgres.py"
    with tempfile.TemporaryDirectory() as tmp:
        # The server runs as the postgres user when we are root: it must reach the directory.
        Path(tmp).chmod(0o711)
        root = Path(tmp) / "pg"
        subprocess.run([sys.executable, script, "start", root], check=True, capture_output=True)
        try:
            env = dict(
                line.removeprefix("export ").split("=", 1)
                for line in (root / "env").read_text().splitlines()
                if "=" in line
            )
            yield env["RESTSYNC_TEST_POSTGRES_DSN"].strip("'\"")
        finally:
            subprocess.run([sys.executable, script, "stop", root], check=False, capture_output=True)


@contextlib.contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A new database on the server of ``dsn``; its URL. Dropped after."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    name = f"restsync_bench_{secrets.token_hex(4)}"
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def backfill_seconds(url: str, api_key: str, database: str, concurrent: int) -> tuple[float, float]:
    """Wall time and CPU time (the workers', user and system) of syncing every day,
    ``concurrent`` worker processes side by side. With the CPU time, a ratio above the target on
    a busy machine tells whether the cores or the design were short."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "connectors").mkdir()
        (home / "connectors" / "days.yaml").write_text(
            CONNECTOR.format(concurrent=concurrent, page=PAGE_SIZE)
        )
        env = {
            **os.environ,
            "RESTSYNC_HOME": str(home / "state"),
            "RESTSYNC_CONNECTORS_DIR": str(home / "connectors"),
            "RESTSYNC_INCLUDE_EXAMPLES": "false",
            "RESTSYNC_DESTINATION": "postgres",
            "DESTINATION__POSTGRES__CREDENTIALS": database,
            "DAYS_BASE_URL": f"{url}/generic",
            "DAYS_API_KEY": api_key,
        }
        keys = days()
        shares = [keys[i::concurrent] for i in range(concurrent)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        workers = [
            subprocess.Popen([sys.executable, __file__, "--worker", *share], env=env)
            for share in shares
        ]
        codes = [w.wait() for w in workers]
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if any(codes):
        raise RuntimeError(f"a backfill worker failed: exit codes {codes}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def rows_loaded(database: str) -> int:
    import psycopg2

    with contextlib.closing(psycopg2.connect(database)) as connection, connection.cursor() as c:
        c.execute("SELECT count(*) FROM days.items")
        return int(c.fetchone()[0])


def run_case(demo_api: Any, api_key: str) -> dict[str, Any] | None:
    """The case's figures, or None when there is no PostgreSQL. Same size in ``--quick``: the
    case is bounded by its 32 x 36 pages of latency, not by data."""
    records = DAYS * 144
    with postgres_server() as dsn:
        if dsn is None:
            return None
        seconds, cpu, loaded = {}, {}, {}
        with demo_api(records, latency_ms=LATENCY_MS) as url:
            for concurrent in (1, 4):
                with fresh_database(dsn) as database:
                    seconds[concurrent], cpu[concurrent] = backfill_seconds(
                        url, api_key, database, concurrent
                    )
                    loaded[concurrent] = rows_loaded(database)
    # The last items are updated after the 32nd day: both sides load the same days' rows.
    assert loaded[1] == loaded[4] > records * 0.99, (loaded, records)
    return {
        "partitions": DAYS,
        "latency_ms": LATENCY_MS,
        "records": loaded[4],
        "max_concurrent_1_s": seconds[1],
        "max_concurrent_4_s": seconds[4],
        "ratio": seconds[4] / seconds[1],
        "cpu_1_s": cpu[1],
        "cpu_4_s": cpu[4],
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


def table_rows(result: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The case's lines in the benchmark's table."""
    if result is None:
        return [("32-partition backfill on PostgreSQL", "skipped: no PostgreSQL", "")]
    return [
        (
            f"{result['partitions']}-partition backfill, PostgreSQL, {result['latency_ms']} ms API",
            f"{result['max_concurrent_1_s']:.1f} s / {result['max_concurrent_4_s']:.1f} s",
            "",
        ),
        ("  max_concurrent 4 / 1 (wall time)", f"{result['ratio']:.2f}", "<= 0.4"),
        (
            f"  CPU of the syncs, 1 / 4 (load avg {result['load_average']:.1f}, {result['cpus']} cores)",
            f"{result['cpu_1_s']:.1f} s / {result['cpu_4_s']:.1f} s",
            "",
        ),
    ]


def worker(keys: list[str]) -> int:
    """Sync ``keys``, one partition after the other, in this process."""
    import dagster as dg

    from restsync_dagster.definitions import load_definitions
    from restsync_dagster.load.destination import no_dlt_telemetry

    no_dlt_telemetry()
    job = load_definitions().resolve_job_def("days_sync")
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with dg.instance_for_test() as instance:
        for key in keys:
            result = job.execute_in_process(
                instance=instance, partition_key=key, run_config=quiet, raise_on_error=False
            )
            if not result.success:
                return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker(sys.argv[2:]))
    sys.exit("run through benchmarks/run.py")
