"""Dagster's own storage down: the production ``deploy/dagster.yaml`` on a PostgreSQL server of
the test's own (``scripts/test_postgres.py``), stopped as a crash would stop it and started again.

- Down when a sync starts: ``restsync sync`` fails with one line saying Dagster's storage is
  unreachable, and no run is left behind.
- Down while a run works, and its worker dies before the storage is back: the run stays STARTED
  in the storage (no process is left to end it, and the default run launcher cannot tell a dead
  worker); the daemon's run monitoring, with ``max_runtime_seconds`` as ``deploy/dagster.yaml``
  sets it (shortened here), marks it failed, which frees the connector's place in the queue.

The server is the test's own, not ``RESTSYNC_TEST_POSTGRES_DSN``'s: other tests share that one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from restsync_dagster_tests.helpers import (
    REPO,
    PostgresServer,
    point_connectors_at,
    postgres_instance_env,
    required,
)

pytestmark = pytest.mark.slow
SCRIPT = REPO / "scripts" / "test_postgres.py"


@pytest.fixture
def own_postgres() -> Iterator[tuple[Path, PostgresServer]]:
    """A throwaway PostgreSQL server this test may stop and start; skipped without PostgreSQL."""
    # Not under pytest's tmp_path: its folders are private to us, and the server runs as the
    # postgres user when we are root.
    root = Path(tempfile.mkdtemp(prefix="restsync-pg-"))
    started = subprocess.run(
        [sys.executable, str(SCRIPT), "start", str(root)], capture_output=True, text=True
    )
    if started.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        message = f"cannot start a PostgreSQL server: {started.stderr.strip()[-300:]}"
        if required("RESTSYNC_REQUIRE_POSTGRES"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    dsn = (root / "env").read_text().split("=", 1)[1].strip()
    server = PostgresServer.from_dsn(dsn)
    try:
        yield root, server
    finally:
        subprocess.run([sys.executable, str(SCRIPT), "stop", str(root)], check=False)


def postgres(command: str, root: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), command, str(root)], check=True)


@pytest.fixture
def production(
    own_postgres, tmp_path: Path, restsync_home, start_demo_api, monkeypatch
) -> dict[str, object]:
    """``deploy/dagster.yaml`` verbatim in a DAGSTER_HOME on the test's server, and the demo API
    (each page a little slow, so a sync lasts a few seconds)."""
    root, server = own_postgres
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for name, value in postgres_instance_env(server, server.database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    api = start_demo_api(latency_ms=50)
    point_connectors_at(api, monkeypatch)
    return {"root": root, "server": server, "home": home, "api": api}


def start_sync(connector: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", connector],
        env=dict(os.environ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_statuses(home: Path) -> dict[str, dg.DagsterRunStatus]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {r.dagster_run.run_id: r.dagster_run.status for r in instance.get_run_records()}


def test_storage_down_when_a_sync_starts_fails_in_one_line_and_leaves_no_run(production):
    root, server, home = production["root"], production["server"], production["home"]
    assert isinstance(home, Path) and isinstance(root, Path) and isinstance(server, PostgresServer)
    postgres("pause", root)
    try:
        process = start_sync("ecommerce")
        _, stderr = process.communicate(timeout=600)
    finally:
        postgres("resume", root)
    assert process.returncode == 1
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"restsync: Dagster's instance storage is unreachable (DAGSTER_HOME={home}): "
    ), last
    assert "run monitoring" in last
    assert server.password not in stderr
    assert run_statuses(home) == {}, "no run left behind"


def test_a_run_whose_worker_died_while_storage_was_down_is_failed_by_the_daemon(
    production, tmp_path
):
    root, home, api = production["root"], production["home"], production["api"]
    assert isinstance(home, Path) and isinstance(root, Path)
    process = start_sync("ecommerce")
    deadline = time.monotonic() + 120
    while len(api.requests("/ecommerce/")) < 3:  # type: ignore[attr-defined]
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the sync never started requesting"
        time.sleep(0.05)
    postgres("pause", root)
    try:
        process.send_signal(signal.SIGKILL)  # the worker dies before it can record an end
        process.wait(timeout=60)
    finally:
        postgres("resume", root)
    (run_id, status), *others = run_statuses(home).items()
    assert not others and status == dg.DagsterRunStatus.STARTED, "left looking started"

    # The daemon with deploy/dagster.yaml's run monitoring, its times shortened for the test.
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_runtime_seconds"] > 0
    config["run_monitoring"].update(poll_interval_seconds=1, max_runtime_seconds=1)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-daemon"),
            "run",
            "-w",
            str(REPO / "workspace.yaml"),
        ],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("w"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while run_statuses(home)[run_id] != dg.DagsterRunStatus.FAILURE:
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        messages = [e.message or "" for e in instance.all_logs(run_id)]
    # Whichever daemon comes first says why: run monitoring (the maximum runtime), or the retry
    # sensor's tick, which fails a run whose lock in PostgreSQL is free (orchestration/dead_runs.py).
    by_monitoring = any("exceeding maximum runtime" in m for m in messages) and any(
        "forcibly marked as failed" in m for m in messages
    )
    by_liveness = any("no longer holds its lock" in m for m in messages)
    assert by_monitoring or by_liveness, ("the daemon says why", messages[-6:])
