"""What tests share, importable as plain functions: the repo's paths, warehouse reads under the
warehouse lock, the demo API's variables, a PostgreSQL server's coordinates, a ``dagster dev``
seen over GraphQL. ``conftest.py`` turns the ones with set-up and tear-down into fixtures."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit

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


def assert_matches_api(
    home: Path, api: DemoApi, vertical: str, collection: str, table: str | None = None
) -> None:
    """``table`` (default ``vertical.collection``) holds exactly what the API serves."""
    expected = api.expected_rows(vertical, collection)
    rows = table_rows(home, table or f"{vertical}.{collection}")
    assert [r["id"] for r in rows] == sorted(r["id"] for r in expected)
    by_id = {r["id"]: r for r in expected}
    for row in rows:
        source = by_id[row["id"]]
        for name, value in source.items():
            if isinstance(value, str | int | float | bool):
                assert same_value(row[name], value), (vertical, collection, row["id"], name)
            elif value is None:
                assert row.get(name) is None, (vertical, collection, row["id"], name)


def same_value(stored: Any, served: Any) -> bool:
    """dlt lands ISO-8601 strings as timestamps and JSON numbers as doubles or decimals."""
    if isinstance(stored, datetime):
        return stored == datetime.fromisoformat(str(served).replace("Z", "+00:00"))
    if isinstance(served, float) and not isinstance(served, bool):
        return abs(float(stored) - served) < 1e-9
    return bool(stored == served)


def describe_code_location(definitions: dg.Definitions) -> dict[str, Any]:
    """The user-visible shape of ``definitions``, as plain, sorted JSON values."""
    repository = definitions.get_repository_def()
    assets: dict[str, Any] = {}
    for spec in definitions.resolve_all_asset_specs():
        assets[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "owners": sorted(spec.owners),
            "tags": dict(sorted(spec.tags.items())),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "metadata": {k: _plain(k, v) for k, v in sorted(spec.metadata.items())},
            "partitions": type(spec.partitions_def).__name__ if spec.partitions_def else None,
            "freshness": spec.freshness_policy is not None,
        }
    checks = sorted(
        f"{key.asset_key.to_user_string()}:{key.name}"
        for key in repository.asset_graph.asset_check_keys
    )
    ops = {
        assets_def.node_def.name: {
            "pool": getattr(assets_def.node_def, "pool", None),
            "tags": dict(sorted(assets_def.node_def.tags.items())),
            "keys": sorted(
                [k.to_user_string() for k in assets_def.keys]
                + [f"{k.asset_key.to_user_string()}:{k.name}" for k in assets_def.check_keys]
            ),
        }
        for assets_def in repository.asset_graph.assets_defs
        if assets_def.is_executable
    }
    jobs = {}
    for job in repository.get_all_jobs():
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "tags": dict(sorted(job.tags.items())),
            "executor": job.executor_def.name,
            "assets": sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys),
            "partitioned": job.partitions_def is not None,
        }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value,
        }
        for schedule in repository.schedule_defs
    }
    sensors = {
        sensor.name: {
            "jobs": sorted(target.job_name for target in sensor.targets),
            "default_status": sensor.default_status.value,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
        for sensor in repository.sensor_defs
    }
    resources = {
        key: {
            "type": type(resource).__name__,
            "fields": sorted(getattr(type(resource), "model_fields", {})),
        }
        for key, resource in sorted((definitions.resources or {}).items())
    }
    return {
        "assets": assets,
        "checks": checks,
        "ops": dict(sorted(ops.items())),
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": sensors,
        "resources": resources,
    }


def _plain(key: str, value: Any) -> Any:
    if key.startswith("dagster_dlt/"):
        return "<object>"  # dagster-dlt's reprs of its pipeline, source and translator objects
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str | int | float | bool) or raw is None else str(raw)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


POSTGRES_DSN_VAR = "RESTSYNC_TEST_POSTGRES_DSN"
REQUIRE_POSTGRES_VAR = "RESTSYNC_REQUIRE_POSTGRES"


def required(flag: str) -> bool:
    return os.environ.get(flag, "").strip().lower() in {"1", "true", "yes"}


#: Tests in their own mount, UTS and PID namespaces fail instead of skipping when it is set.
REQUIRE_PODS_VAR = "RESTSYNC_REQUIRE_PODS"


def line_process(
    command: list[str], env: dict[str, str], *, stdin: bool = False
) -> subprocess.Popen[str]:
    """``command`` started from the repository, its output (stderr merged) read line by line as
    text: the shape of every test's "start it, wait for the line it prints when ready" child.
    ``stdin`` gives it a pipe to read, which tests close to tell it to finish."""
    return subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def in_pod(host: str, command: list[str], *, private_home: bool = True) -> list[str]:
    """``command`` in a pod (``pods/namespaces.py``): its own mount, UTS and PID namespaces, host
    name ``host`` and, with ``private_home``, a tmpfs over ``$RESTSYNC_HOME`` that no other
    process sees. Killing the process started ends the whole pod."""
    from restsync_dagster_tests.pods.namespaces import Pod, pod_command

    private = ("RESTSYNC_HOME",) if private_home else ()
    return pod_command(Pod(name=host, hostname=host, root=Path()), command, private)


@dataclass(frozen=True)
class PostgresServer:
    """Where the test server listens. ``repr`` leaves the password out, so no assertion or
    traceback prints it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    @classmethod
    def from_dsn(cls, dsn: str) -> PostgresServer:
        """The server a libpq URL names (its database ``postgres`` when the URL names none)."""
        url = urlsplit(dsn)
        return cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or 5432,
            user=unquote(url.username or ""),
            password=unquote(url.password or ""),
            database=url.path.lstrip("/") or "postgres",
        )

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


def start_dagster_dev_process(
    env: dict[str, str], log: IO[bytes], timeout_seconds: float = 180
) -> tuple[subprocess.Popen[bytes], str | None]:
    """Start ``dagster dev`` in the repo root (a session of its own, output to ``log``) with
    ``env``; returns the process and its URL once it answers, or None for the URL if it ended or
    did not answer within ``timeout_seconds`` (stop it with ``stop_process_group``)."""
    import requests

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-p", str(port), "-h", "127.0.0.1"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return process, url
        except requests.ConnectionError:
            pass
        time.sleep(1)
    return process, None


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


_BACKFILL = """
mutation($names: [String!]!, $path: [String!]!) {
  launchPartitionBackfill(backfillParams: {
    partitionNames: $names, assetSelection: [{path: $path}]
  }) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


def launch_backfill(url: str, asset_path: list[str], partitions: list[str]) -> str:
    """Launch a backfill of ``partitions`` of one asset through the webserver at ``url``;
    returns its id (runs carry it in the tag ``dagster/backfill``)."""
    answer = graphql_client(url)._execute(_BACKFILL, {"names": partitions, "path": asset_path})
    result = answer["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return str(result["backfillId"])


def wait_for_backfill(
    home: str, backfill_id: str, runs: int, timeout_seconds: float = 600
) -> list[dg.RunRecord]:
    """The run records of backfill ``backfill_id`` in the instance at ``home``, once all ``runs``
    of them are finished; fails the test after ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    records: list[dg.RunRecord] = []
    with dg.DagsterInstance.from_config(home) as instance:
        while time.monotonic() < deadline:
            records = list(
                instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            )
            if len(records) == runs and all(r.dagster_run.is_finished for r in records):
                return records
            time.sleep(2)
    pytest.fail(f"backfill not finished within {timeout_seconds:.0f} s: {len(records)} runs")


def most_in_flight(records: list[dg.RunRecord]) -> int:
    """The most runs between their start and their end at any one moment."""
    edges = sorted(
        [(r.start_time, 1) for r in records] + [(r.end_time, -1) for r in records],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def files_holding(root: Path, secret: str) -> list[str]:
    # The one scan for a secret on disk (test_secrets, the shapes, the component flow).
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


@dataclass
class DgProject:
    """A Dagster project made by ``create-dagster``, driven with ``dg`` in subprocesses.

    Its environment is this test's: ``create-dagster project --no-uv-sync`` makes no ``.venv``,
    so ``dg`` runs from this interpreter's ``bin`` (where restsync is installed editable, as
    ``uv add restsync-dagster`` would install it), and ``PYTHONPATH=src`` stands in for the
    editable install of the project's own package that ``uv sync`` would make.
    """

    root: Path
    package: str
    env: dict[str, str]
    #: Everything every ``dg`` command printed, for searching it afterwards.
    output: list[str] = field(default_factory=list)

    @property
    def defs(self) -> Path:
        """The project's ``defs`` folder."""
        return self.root / "src" / self.package / "defs"

    def dg(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``dg ARGS`` in the project; fail the test, showing its output, if it fails."""
        done = subprocess.run(
            [dg_tool("dg"), *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.output.append(done.stdout + done.stderr)
        if check and done.returncode != 0:
            pytest.fail(
                f"dg {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done


def dg_environment(home: Path, python_path: Path | None = None) -> dict[str, str]:
    """This process's environment for ``dg``, without any restsync or connector variable: this
    interpreter's ``bin`` first on ``PATH``, ``DAGSTER_HOME`` and ``RESTSYNC_HOME`` under
    ``home``, no telemetry and no update check."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RESTSYNC_", "DAGSTER_", "VIRTUAL_ENV", "PYTHONPATH"))
        and not k.endswith(("_API_KEY", "_BASE_URL"))
    }
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DAGSTER_HOME=str(dagster_home),
        RESTSYNC_HOME=str(home / "restsync"),
        DAGSTER_DG_UPDATE_CHECK_ENABLED="0",
    )
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    return env


def dg_tool(name: str) -> str:
    """``dg`` or ``create-dagster`` beside this interpreter (the test group installs both)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the test group (dagster-dg-cli, create-dagster)")
    return str(path)


def create_dg_project(parent: Path, name: str, home: Path) -> DgProject:
    """``create-dagster project --no-uv-sync NAME`` in ``parent``, as a new user starts."""
    env = dg_environment(home, parent / name / "src")
    subprocess.run(
        [dg_tool("create-dagster"), "project", "--no-uv-sync", name],
        cwd=parent,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return DgProject(root=parent / name, package=name, env=env)


def component_yaml(component: str, attributes: str) -> str:
    """A ``defs.yaml`` of ``component`` whose attributes are ``attributes`` (YAML) indented."""
    indented = "\n".join(f"  {line}" if line else "" for line in attributes.splitlines())
    return f"type: {component}\nattributes:\n{indented}\n"


def write_defs_project(root: Path, package: str, files: dict[str, str]) -> Path:
    """A minimal dg project in ``root`` whose ``src/<package>/defs/`` holds ``files`` (path in
    ``defs`` -> text: ``billing/defs.yaml``, ``own.py``...). Returns its ``defs`` folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "{package}"\n'
    )
    defs = root / "src" / package / "defs"
    defs.mkdir(parents=True)
    (defs.parent / "__init__.py").write_text("")
    (defs / "__init__.py").write_text("")
    for name, text in files.items():
        (defs / name).parent.mkdir(parents=True, exist_ok=True)
        (defs / name).write_text(text, encoding="utf-8")
    return defs


def table_ids(home: Path, table: str) -> list[int]:
    """The ``id`` column of ``dataset.table`` in ``home``'s DuckDB file, in order."""
    with warehouse(home) as con:
        return [r[0] for r in con.execute(f"select id from {table} order by id").fetchall()]


def assert_no_secret_written(home: Path, instance: dg.DagsterInstance, secret: str) -> None:
    """``secret`` is in no file of ``RESTSYNC_HOME`` nor of the instance's directory."""
    assert files_holding(home, secret) == []
    assert files_holding(Path(instance.root_directory), secret) == []


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process descended from it now (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended while we looked
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in tree:
            tree.add(current)
            todo.extend(children.get(current, []))
    return tree


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (zombies excluded: they hold nothing but a pid)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def kill_all(pids: set[int]) -> None:
    """SIGKILL every one of ``pids`` still running: a test's last word, so it leaves nothing."""
    import signal

    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``127.0.0.1:port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def clean_env(**extra: str) -> dict[str, str]:
    """A second terminal's environment: no connector variable, no restsync setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL"))
        and not k.startswith(("RESTSYNC_", "DAGSTER_HOME", "DLT_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def shell(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in bash (``-euo pipefail``), as typed in a terminal, in ``cwd``."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def most_spans_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans open at any one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def rate_budget_report(stats: dict[str, Any], limit: int) -> str:
    """The demo API's 429s, requests and busiest window of its rate budget (``stats()``)."""
    windows = stats["rate_windows"]
    return (
        f"429s: {stats['status_counts'].get('429', 0)}, requests: {stats['requests']}, "
        f"windows: {sum(len(w) for w in windows)}, most asked in one window: "
        f"{max((max(w) for w in windows if w), default=0)} (limit {limit})"
    )


def partitions_requesting_at_once(api: DemoApi, path: str, days: list[str]) -> int:
    """The most daily partition runs whose requests to ``path`` (told apart by the day their
    ``updated_since`` names) were under way at one moment."""
    seen = api.requests(path)
    spans = [
        (min(r.at for r in mine), max(r.at for r in mine))
        for day in days
        if (mine := [r for r in seen if r.params.get("updated_since", "").startswith(day)])
    ]
    return most_spans_at_once(spans)


def assert_rate_budget_kept(api: DemoApi, limit: int) -> str:
    """The demo API refused no request (429) and no window of its budget was asked for more than
    ``limit`` (one key); returns the report of its budget."""
    stats = api.stats()
    report = rate_budget_report(stats, limit)
    assert stats["status_counts"].get("429", 0) == 0, report
    (windows,) = stats["rate_windows"]
    assert max(windows) <= limit, windows
    return report


def assert_tenant_budgets_kept(api: DemoApi, limit: int) -> str:
    """No tenant of the demo API was sent a 429 and no window of any tenant's key was asked for
    more than ``limit`` (the budget is counted per key); returns the report of their budgets."""
    records = api.tenant_records()
    refused = {name: r["rate_limited"] for name, r in records.items() if r["rate_limited"]}
    most = max((max(r["rate_windows"], default=0) for r in records.values()), default=0)
    report = (
        f"{len(records)} tenants, {sum(r['requests'] for r in records.values())} requests, "
        f"429s: {sum(refused.values())}, most asked in one window by one key: {most} "
        f"(limit {limit})"
    )
    details = ", ".join(f"{name}: {count} 429s" for name, count in sorted(refused.items()))
    assert not refused, f"{report}; {details}"
    assert most <= limit, report
    return report


def tenants_requesting_at_once(api: DemoApi) -> int:
    """The most tenants of the demo API whose requests (first to last) were under way at one
    moment: how many tenants' runs overlapped."""
    records = api.tenant_records().values()
    return most_spans_at_once([(r["first_at"], r["last_at"]) for r in records if r["requests"]])


def land_pages(
    home: Path, name: str, runs: list[list[list[dict[str, Any]]]], arrow: bool, **hints: Any
) -> Path:
    """Load ``runs`` (each a list of pages of records) into a DuckDB file of its own with dlt's
    pipeline, as plain dlt does, or (``arrow``) through restsync's Arrow step; returns the file."""
    import copy

    import dlt

    from restsync_dagster.extract.arrow import ArrowPages

    path = home / f"{name}.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(home / f"{name}_pipelines"),
        destination=dlt.destinations.duckdb(credentials=str(path)),
        dataset_name="landed",
    )
    for pages in runs:
        resource = dlt.resource(copy.deepcopy(pages), name="records", **hints)
        if arrow:
            resource.add_step(ArrowPages("records"))
        pipeline.run(resource)
    return path


def landed_tables(path: Path, dataset: str = "landed") -> dict[str, Any]:
    """Each table of ``dataset``: its columns in order with their types, its rows keyed by where
    they sit (the root record's ``id`` and the list positions down to the row), and how many
    rows break dlt's own id formulas (``_dlt_id`` = ``get_nested_row_hash`` of the parent id,
    table and list index; ``_dlt_root_id`` = the root row's ``_dlt_id``; a root row's
    ``_dlt_load_id`` one of ``_dlt_loads``)."""
    from dlt.common.normalizers.json.helpers import get_nested_row_hash

    shapes: dict[str, Any] = {}
    where: dict[str, tuple[Any, ...]] = {}
    roots: dict[str, str] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        loads = {
            load_id
            for (load_id,) in con.execute(f"select load_id from {dataset}._dlt_loads").fetchall()
        }
        names = [
            name
            for (name,) in con.execute(
                f"select table_name from information_schema.tables where table_schema = '{dataset}'"
            ).fetchall()
            if not name.startswith("_dlt")
        ]
        for table in sorted(names, key=lambda name: (name.count("__"), name)):
            columns = con.execute(
                "select column_name, data_type from information_schema.columns where "
                f"table_schema = '{dataset}' and table_name = '{table}' order by ordinal_position"
            ).fetchall()
            relation = con.sql(f'select * from {dataset}."{table}"')
            rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
            placed, broken = [], 0
            for row in rows:
                if "_dlt_parent_id" in row:
                    parent = row["_dlt_parent_id"]
                    place = (*where[parent], row["_dlt_list_idx"])
                    roots[row["_dlt_id"]] = roots[parent]
                    expected = get_nested_row_hash(parent, table, row["_dlt_list_idx"])
                    broken += row["_dlt_id"] != expected
                    if "_dlt_root_id" in row:
                        broken += row["_dlt_root_id"] != roots[parent]
                else:
                    place = (row["id"],)
                    roots[row["_dlt_id"]] = row["_dlt_id"]
                    broken += row["_dlt_load_id"] not in loads
                where[row["_dlt_id"]] = place
                values = {k: v for k, v in row.items() if not k.startswith("_dlt")}
                placed.append((place, sorted(values.items(), key=lambda kv: kv[0])))
            shapes[table] = (columns, sorted(placed, key=repr), broken)
    return shapes


def tenant_variables(
    api: DemoApi, connector: str, tenants: Sequence[str], vertical: str
) -> dict[str, str]:
    """Each tenant's ``<CONNECTOR>_<TENANT>_BASE_URL`` and ``_API_KEY`` for the demo API's
    tenant routes of ``vertical`` (a file with ``tenants:`` and the default variable prefix)."""
    env = {}
    for tenant in tenants:
        prefix = f"{connector.upper()}_{tenant.upper().replace('-', '_')}_"
        env[f"{prefix}BASE_URL"] = api.tenant_url(tenant, vertical)
        env[f"{prefix}API_KEY"] = api.tenant_key(tenant)
    return env


def tenant_runs(instance: dg.DagsterInstance) -> dict[str, list[dg.RunRecord]]:
    """Every run of ``instance`` by its partition (a tenant's key), oldest first: a backfill's
    runs are Dagster's asset job's, the sensors' the connector's ``<connector>_sync``."""
    records = instance.get_run_records(ascending=True)
    found: dict[str, list[dg.RunRecord]] = {}
    for record in records:
        found.setdefault(record.dagster_run.tags.get("dagster/partition", ""), []).append(record)
    return found


def assert_tenant_rows_exact(
    home: Path, api: DemoApi, table: str, vertical: str, resource: str, tenants: Sequence[str]
) -> dict[str, int]:
    """Each tenant's rows in the shared ``table`` (its ``tenant`` column) are exactly what the
    demo API serves that tenant, once each; returns the row count per tenant."""
    counts = {}
    for tenant in tenants:
        expected = api.expected_rows(vertical, resource, tenant=tenant)
        with warehouse(home) as con:
            stored = con.execute(
                f"select id, count(*) from {table} where tenant = ? group by id order by id",
                [tenant],
            ).fetchall()
        assert [row[0] for row in stored] == sorted(r["id"] for r in expected), tenant
        assert all(row[1] == 1 for row in stored), f"{tenant}: duplicated ids"
        counts[tenant] = len(stored)
    return counts
