"""The world the pod scenarios run in: ``dagster dev`` (its real ``dagster-daemon`` launching
queued runs and backfills into pods through :class:`~.launcher.PodRunLauncher`), one PostgreSQL
database for Dagster's storage and the warehouse, the demo API, and ``restsync`` commands started
in pods of their own. What it reads back comes from the shared parts only: the instance's runs
and event logs, the warehouse, ``pg_locks``.

Every pod's PostgreSQL sessions carry the pod's name as ``application_name`` (``PGAPPNAME``), so a
query on ``pg_locks`` says which pod waits for what.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pytest

from restsync_dagster import names
from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import REPO, PostgresServer, graphql_client, launch_backfill
from restsync_dagster_tests.pods.namespaces import Pod, kill_pods, start_pod

T = TypeVar("T")
#: The ``application_name`` of the test's own session in :meth:`Deployment.hold`.
HOLDER = "restsync-test-holder"
FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


def pod_dagster_yaml(root: Path, hostname: str | None = None, first_pid: int | None = None) -> str:
    """``dagster.yaml`` of a deployment whose runs each run in a pod: ``deploy/dagster.yaml``'s
    storage, queue and run monitoring, pools counted per run (what docs/deployment.md gives for
    parallel partitions), and :class:`~.launcher.PodRunLauncher` in place of ``K8sRunLauncher``."""
    launcher = f"root: {str(root)!r}"
    if hostname is not None:
        launcher += f", hostname: {hostname!r}"
    if first_pid is not None:
        launcher += f", first_pid: {first_pid}"
    return f"""
storage:
  postgres:
    postgres_db:
      hostname: {{env: DAGSTER_PG_HOST}}
      port: {{env: DAGSTER_PG_PORT}}
      username: {{env: DAGSTER_PG_USERNAME}}
      password: {{env: DAGSTER_PG_PASSWORD}}
      db_name: {{env: DAGSTER_PG_DB}}
      scheme: postgresql+psycopg2
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config: {{dequeue_interval_seconds: 1}}
run_launcher:
  module: restsync_dagster_tests.pods.launcher
  class: PodRunLauncher
  config: {{{launcher}}}
concurrency:
  pools: {{default_limit: 1, granularity: run}}
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  max_resume_run_attempts: 0
  free_slots_after_run_end_seconds: 300
telemetry: {{enabled: false}}
"""


def wait_for(what: str, probe: Callable[[], T], timeout: float = 300, interval: float = 0.2) -> T:
    """Poll ``probe()`` until it returns something true, and return that; fail after ``timeout``
    seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:.0f} s")


@dataclass
class Deployment:
    """A running deployment; ``env`` is what the daemon and every pod see."""

    url: str
    dagster_home: Path
    env: dict[str, str]
    pods_root: Path
    server: PostgresServer
    database: str
    api: DemoApi

    # -- runs ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The deployment's Dagster instance, opened from this process."""
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            yield instance

    def submit(self, job: str, tags: dict[str, str] | None = None) -> str:
        """Queue a run of ``job`` through the webserver; the daemon launches it into a pod."""
        return str(
            graphql_client(self.url).submit_job_execution(
                job,
                repository_location_name="restsync",
                repository_name="__repository__",
                tags=tags,
            )
        )

    def backfill(self, asset_path: list[str], partitions: list[str]) -> str:
        """Launch a backfill through the webserver; returns its id."""
        return launch_backfill(self.url, asset_path, partitions)

    def runs(self, **tags: str) -> list[dg.RunRecord]:
        """Run records carrying ``tags`` (all runs without), oldest first."""
        with self.instance() as instance:
            records = instance.get_run_records(dg.RunsFilter(tags=tags) if tags else None)
        return sorted(records, key=lambda r: r.create_timestamp)

    def cli_runs(self) -> list[dg.RunRecord]:
        """The runs ``restsync sync`` created, oldest first."""
        return self.runs(**{names.TAG_LAUNCHED_BY: "cli"})

    def wait_until_finished(self, run_ids: list[str], timeout: float = 600) -> list[dg.RunRecord]:
        """Poll the instance until every run in ``run_ids`` has finished; their records."""
        deadline = time.monotonic() + timeout
        records: list[dg.RunRecord] = []
        while time.monotonic() < deadline:
            with self.instance() as instance:
                records = [r for r in map(instance.get_run_record_by_id, run_ids) if r]
            if len(records) == len(run_ids) and all(
                r.dagster_run.status in FINISHED for r in records
            ):
                return records
            time.sleep(1)
        pytest.fail(
            f"runs not finished within {timeout:.0f} s: "
            f"{[(r.dagster_run.run_id[:8], r.dagster_run.status.value) for r in records]}"
        )

    def messages(self, run_id: str) -> list[str]:
        """Every message in a run's event log, in order."""
        with self.instance() as instance:
            return [entry.message or "" for entry in instance.all_logs(run_id)]

    def failures(self, run_id: str) -> list[str]:
        """The messages of the run's RUN_FAILURE and STEP_FAILURE events, with their errors."""
        kinds = {dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_FAILURE}
        with self.instance() as instance:
            entries = instance.all_logs(run_id)
        found = []
        for entry in entries:
            event = entry.dagster_event
            if event is None or event.event_type not in kinds:
                continue
            data = event.step_failure_data if event.is_step_failure else None
            error = data.error.to_string() if data and data.error else ""
            found.append(f"{entry.message} {error}".strip())
        return found

    # -- pods ----------------------------------------------------------------------------------

    def start(
        self, name: str, argv: list[str], hostname: str | None = None, first_pid: int | None = None
    ) -> Any:
        """Start ``argv`` in a new pod called ``name`` (hostname: its name unless given), with the
        deployment's environment and ``dagster.yaml``; returns its process."""
        config = self.dagster_home / "dagster.yaml"
        pod = Pod(
            name=name,
            hostname=hostname or name,
            root=self.pods_root,
            files={str(config): config.read_text()},
            first_pid=first_pid,
        )
        return start_pod(pod, argv, self.env, cwd=REPO)

    def restsync(self, name: str, *args: str, hostname: str | None = None) -> Any:
        """``restsync ARGS`` in a new pod called ``name``."""
        argv = [sys.executable, "-m", "restsync_dagster.cli", *args]
        return self.start(name, argv, hostname=hostname)

    def log(self, name: str) -> str:
        """What pod ``name`` printed."""
        path = self.pods_root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Kill every pod of the deployment still running."""
        kill_pods(str(self.pods_root))

    # -- PostgreSQL ----------------------------------------------------------------------------

    def sql(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the deployment's database."""
        return self.server.execute(sql, self.database)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts, none when the table does not exist yet (the soak's
        verification reads the warehouse through this)."""
        connection = self.server.connect(self.database)
        try:
            with connection.cursor() as cursor:
                try:
                    cursor.execute(sql)
                except Exception as exc:
                    if "does not exist" in str(exc):
                        return []
                    raise
                columns = [c.name for c in cursor.description]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            connection.close()

    def lock_waits(self) -> list[tuple[str, str, str]]:
        """Sessions waiting for a lock now: (application_name, lock type, schema.relation)."""
        rows = self.sql(
            "SELECT a.application_name, l.locktype, coalesce(n.nspname || '.' || c.relname, '') "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "LEFT JOIN pg_class c ON c.oid = l.relation "
            "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return [(str(a), str(t), str(r)) for a, t, r in rows]

    def advisory_locks(self, run_id: str) -> list[tuple[Any, ...]]:
        """Advisory locks held now by sessions naming the run (its pod's, or restsync's own
        ``application_name`` with the run id)."""
        return self.sql(
            "SELECT a.application_name, l.mode, l.classid, l.objid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            f"WHERE l.locktype = 'advisory' AND l.granted "
            f"AND a.application_name LIKE '%{run_id[:8]}%'"
        )

    @contextlib.contextmanager
    def hold(self, statement: str) -> Iterator[None]:
        """Run ``statement`` in a transaction of the test's own, held open for the block and
        rolled back after: ``LOCK TABLE t IN ACCESS EXCLUSIVE MODE`` makes a load that reaches
        the table's merge wait there; an uncommitted ``CREATE SCHEMA d`` makes every load that
        creates the dataset wait, at a moment the test chose."""
        connection = self.server.connect(self.database)
        connection.autocommit = False
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET application_name = '{HOLDER}'")
                cursor.execute(statement)
            yield
        finally:
            connection.rollback()
            connection.close()

    def blocked_by_hold(self) -> set[str]:
        """The ``application_name`` of each session waiting for the transaction of :meth:`hold`."""
        rows = self.sql(
            "SELECT a.application_name FROM pg_stat_activity a JOIN pg_stat_activity h "
            f"ON h.application_name = '{HOLDER}' AND h.pid = ANY(pg_blocking_pids(a.pid)) "
            "WHERE a.datname = current_database()"
        )
        return {str(name) for (name,) in rows}
