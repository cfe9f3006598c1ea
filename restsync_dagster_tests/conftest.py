"""Fixtures (set-up and tear-down around the plain helpers of ``helpers.py``): a real demo API on 127.0.0.1, an isolated RESTSYNC_HOME, a real DagsterInstance,
and, where the machine has them, a real PostgreSQL server and Debian's chromium."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from restsync_dagster.cli.demo import stop_process_group
from restsync_dagster.demo_api import DemoApi, DemoApiConfig
from restsync_dagster.load.destination import no_dlt_telemetry
from restsync_dagster.orchestration.instance import prepare_dagster_home
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    POSTGRES_DSN_VAR,
    PRODUCTION_DAGSTER_YAML,
    REPO,
    REQUIRE_PODS_VAR,
    REQUIRE_POSTGRES_VAR,
    PostgresServer,
    free_port,
    point_connectors_at,
    postgres_instance_env,
    required,
    unshare_works,
    write_defs_project,
)


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
        port = free_port()
        dagster_home = prepare_dagster_home(Settings.from_env())
        if dagster_yaml is not None:
            (dagster_home / "dagster.yaml").write_text(dagster_yaml)
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home), **extra_env}
        log = open(restsync_home / "dagster_dev.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-p", str(port), "-h", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, (restsync_home / "dagster_dev.log").read_text()
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    return url
            except requests.ConnectionError:
                pass
            time.sleep(1)
        pytest.fail("dagster dev did not answer within 180 s")

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


@pytest.fixture
def unshare_allowed() -> None:
    """Skip where ``unshare`` is refused, unless ``RESTSYNC_REQUIRE_PODS=1`` (CI runs as root)."""
    if not unshare_works():
        message = "unshare --mount --uts --pid is refused here (run as root)"
        if required(REQUIRE_PODS_VAR):
            pytest.fail(f"{REQUIRE_PODS_VAR}=1 but {message}", pytrace=False)
        pytest.skip(message)


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
