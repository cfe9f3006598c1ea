"""Fixtures (set-up and tear-down around the plain helpers of ``helpers.py``): a real demo API on 127.0.0.1, an isolated RESTSYNC_HOME, a real DagsterInstance,
and, where the machine has them, a real PostgreSQL server and Debian's chromium."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from restsync_dagster.cli.demo import stop_process_group
from restsync_dagster.connector import load_connectors
from restsync_dagster.demo_api import DemoApi, DemoApiConfig
from restsync_dagster.load.destination import no_dlt_telemetry
from restsync_dagster.orchestration.instance import apply_pool_limits, prepare_dagster_home
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    POSTGRES_DSN_VAR,
    PRODUCTION_DAGSTER_YAML,
    REPO,
    REQUIRE_PODS_VAR,
    REQUIRE_POSTGRES_VAR,
    PostgresServer,
    point_connectors_at,
    postgres_instance_env,
    required,
    start_dagster_dev_process,
    write_defs_project,
)
from restsync_dagster_tests.pods.deployment import Deployment, pod_dagster_yaml
from restsync_dagster_tests.pods.namespaces import kill_pods, pods_unavailable


@pytest.fixture
def start_demo_api() -> Iterator[Callable[..., DemoApi]]:
    """Start demo APIs on free ports with the given config; all are stopped after the test."""
    started: list[DemoApi] = []

    def start(**config: Any) -> DemoApi:
        api = DemoApi(DemoApiConfig(port=0, **config)).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


@pytest.fixture
def restsync_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty RESTSYNC_HOME, and no connector variable or restsync setting in the environment."""
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name.startswith(
            ("RESTSYNC_", "DAGSTER_HOME")
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "restsync"
    monkeypatch.setenv("RESTSYNC_HOME", str(home))
    return home


@pytest.fixture
def demo_api(start_demo_api: Callable[..., DemoApi]) -> DemoApi:
    """The demo API with its default data."""
    return start_demo_api()


@pytest.fixture
def demo_env(restsync_home: Path, demo_api: DemoApi, monkeypatch: pytest.MonkeyPatch) -> DemoApi:
    """The bundled connectors pointed at ``demo_api``, with its keys."""
    point_connectors_at(demo_api, monkeypatch)
    return demo_api


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real, persistent DagsterInstance in a temporary directory."""
    with dg.instance_for_test() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def defs_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, str]], Callable[[], dg.Definitions]]]:
    """Write a dg project (``helpers.write_defs_project``) under a package name of its own, put
    its ``src`` on ``sys.path``; get back a function that loads its defs folder. Its modules are
    forgotten after the test."""
    packages = []

    def create(files: dict[str, str]) -> Callable[[], dg.Definitions]:
        package = f"project_{secrets.token_hex(4)}"
        packages.append(package)
        root = tmp_path / package
        defs = write_defs_project(root, package, files)
        monkeypatch.syspath_prepend(str(root / "src"))
        return lambda: dg.load_from_defs_folder(path_within_project=defs.parent)

    yield create
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            del sys.modules[name]


@pytest.fixture
def start_dagster_dev(restsync_home: Path) -> Iterator[Callable[..., str]]:
    """Start ``dagster dev`` in the repo root (no arguments but host and port) with extra
    environment variables; return its URL once it answers. Stopped, with its children, after."""
    started: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(extra_env: dict[str, str], dagster_yaml: str | None = None) -> str:
        dagster_home = prepare_dagster_home(Settings.from_env())
        if dagster_yaml is not None:
            (dagster_home / "dagster.yaml").write_text(dagster_yaml)
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home), **extra_env}
        log = open(restsync_home / "dagster_dev.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        process, url = start_dagster_dev_process(env, log)
        started.append(process)
        if url is None:
            pytest.fail((restsync_home / "dagster_dev.log").read_text()[-5000:])
        return url

    yield start
    for process in started:
        stop_process_group(process)
    for log in logs:
        log.close()


# ------------------------------------------------------------------------------------------------
# A real PostgreSQL server (CI starts one with scripts/test_postgres.py)


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The server named by ``RESTSYNC_TEST_POSTGRES_DSN``; without it the test is skipped, or
    fails when ``RESTSYNC_REQUIRE_POSTGRES=1`` (CI sets both, so a broken setup cannot hide)."""
    dsn = os.environ.get(POSTGRES_DSN_VAR, "").strip()
    if not dsn:
        message = (
            f"set {POSTGRES_DSN_VAR} to a PostgreSQL server to run this test "
            "(python3 scripts/test_postgres.py start DIR starts one)"
        )
        if required(REQUIRE_POSTGRES_VAR):
            pytest.fail(f"{REQUIRE_POSTGRES_VAR}=1 but {message}", pytrace=False)
        pytest.skip(message)
    server = PostgresServer.from_dsn(dsn)
    try:
        server.execute("SELECT 1")
    except Exception as exc:
        # psycopg2's messages name host and user, never the password.
        pytest.fail(
            f"{POSTGRES_DSN_VAR} is set but the server does not answer: {exc}", pytrace=False
        )
    return server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database on the test server, dropped after the test."""
    name = f"restsync_test_{secrets.token_hex(6)}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def production_dagster_home(
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A ``DAGSTER_HOME`` holding the production ``deploy/dagster.yaml`` verbatim, its variables
    pointing at a fresh database on the test server."""
    home = tmp_path / "dagster_home_production"
    home.mkdir()
    shutil.copy(PRODUCTION_DAGSTER_YAML, home / "dagster.yaml")
    for name, value in postgres_instance_env(postgres_server, postgres_database).items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture
def production_instance(production_dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    """A DagsterInstance loaded from the production ``dagster.yaml``: storage in PostgreSQL."""
    with dg.DagsterInstance.from_config(str(production_dagster_home)) as dagster_instance:
        yield dagster_instance


# ------------------------------------------------------------------------------------------------
# Pods: runs on hosts of their own (restsync_dagster_tests/pods/)


@pytest.fixture(scope="session")
def pods_available() -> None:
    """Pods need ``unshare`` with mount, UTS and PID namespaces (root); without it the test is
    skipped with the reason, or fails when ``RESTSYNC_REQUIRE_PODS=1`` (CI runs as root)."""
    reason = pods_unavailable()
    if reason is None:
        return
    if required(REQUIRE_PODS_VAR):
        pytest.fail(f"{REQUIRE_PODS_VAR}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def unshare_allowed(pods_available: None) -> None:
    """A test that starts processes in namespaces of its own (see ``pods_available``)."""


@pytest.fixture
def pods_root(tmp_path: Path) -> Iterator[Path]:
    """Where a test's pods keep their mount points and logs; every pod of it still running is
    killed at the end (after ``dagster dev``, which may launch one while stopping)."""
    root = tmp_path / "pods"
    root.mkdir()
    yield root
    kill_pods(str(root))


@pytest.fixture
def pod_deployment(
    pods_available: None,
    postgres_server: PostgresServer,
    postgres_database: str,
    pods_root: Path,
    start_dagster_dev: Callable[..., str],
    start_demo_api: Callable[..., DemoApi],
    restsync_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Deployment]]:
    """Start a deployment whose runs each run in a pod (``pods/deployment.py``): one connector
    file ``connector`` (named ``shop``, reading the demo API's e-commerce vertical), the
    warehouse and Dagster's storage in one PostgreSQL database (or the warehouse in DuckDB,
    ``destination="duckdb"``), ``dagster dev`` launching queued runs through the pod launcher
    (``hostname``, ``first_pid``: its pods'), the demo API started with ``api`` settings, and
    ``partitions.max_concurrent`` set as pool limits."""
    started: list[Deployment] = []

    def start(
        connector: str,
        destination: str = "postgres",
        hostname: str | None = None,
        first_pid: int | None = None,
        **api: Any,
    ) -> Deployment:
        demo = start_demo_api(**api)
        connectors = tmp_path / "connectors"
        connectors.mkdir(exist_ok=True)
        (connectors / "shop.yaml").write_text(connector)
        for name, value in postgres_instance_env(postgres_server, postgres_database).items():
            monkeypatch.setenv(name, value)
        env = {
            "RESTSYNC_CONNECTORS_DIR": str(connectors),
            "RESTSYNC_INCLUDE_EXAMPLES": "false",
            "RESTSYNC_DESTINATION": destination,
            "SHOP_BASE_URL": demo.url("ecommerce"),
            "SHOP_API_KEY": "demo-ecommerce-key",
            "PYTHONPATH": str(REPO),
        }
        if destination == "postgres":
            env["DESTINATION__POSTGRES__CREDENTIALS"] = postgres_server.dsn(postgres_database)
        url = start_dagster_dev(env, dagster_yaml=pod_dagster_yaml(pods_root, hostname, first_pid))
        home = Settings.from_env().dagster_home
        deployment = Deployment(
            url=url,
            dagster_home=home,
            env={**os.environ, "DAGSTER_HOME": str(home), **env},
            pods_root=pods_root,
            server=postgres_server,
            database=postgres_database,
            api=demo,
        )
        started.append(deployment)
        with deployment.instance() as instance:
            apply_pool_limits(instance, load_connectors([connectors]))
        return deployment

    yield start
    for deployment in started:
        deployment.close()


def pytest_configure(config: pytest.Config) -> None:
    # Tests that build plain dlt pipelines (the comparisons) must not report usage to dlthub
    # either: tests talk to 127.0.0.1 only.
    no_dlt_telemetry()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that start ``dagster dev`` (a webserver, a daemon, code servers, run workers) run
    one after another on one xdist worker: two at once would fight over the machine's 2 cores."""
    for item in items:
        if "start_dagster_dev" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("dagster_dev"))
