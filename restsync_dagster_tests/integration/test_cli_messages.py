"""What the ``restsync`` command prints, as a real subprocess: Ctrl-C in the middle of a sync, a
typo in a connector file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from restsync_dagster.cli.demo import demo_env


def restsync_process(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``restsync ARGS`` in a session of its own: its process group is what a terminal's Ctrl-C
    reaches (restsync and every process it started)."""
    return subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def group_gone(pgid: int, timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_during_a_sync_prints_one_line_and_exits_130(
    restsync_home, tmp_path, start_demo_api
):
    api = start_demo_api(latency_ms=300)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, **demo_env(api.url()), "DAGSTER_HOME": str(home)}
    process = restsync_process("sync", "generic", env=env)
    try:
        deadline = time.monotonic() + 120
        while len(api.requests("/generic")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.requests("/generic"), "the sync started"
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "DagsterExecutionInterruptedError" not in out + err
    lines = [line for line in err.splitlines() if line.startswith("restsync:")]
    assert lines == [lines[0]] and lines[0].startswith(
        "restsync: interrupted (Ctrl-C): connector 'generic' stopped; its run "
    ), err
    assert "FAILED" not in out
    assert group_gone(process.pid, 15), "restsync left processes behind"


def test_a_typo_under_resource_defaults_gets_a_did_you_mean(restsync_home, tmp_path: Path):
    (tmp_path / "typo.yaml").write_text(
        """
name: typo
source:
  client: {base_url: "http://127.0.0.1:9/"}
  resource_defaults: {primery_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint: {path: items, paginator: single_page}
"""
    )
    env = {**os.environ, "RESTSYNC_CONNECTORS_DIR": str(tmp_path)}
    process = restsync_process("validate", "typo", env=env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)
    assert (
        "source.resource_defaults.primery_key: unknown key (did you mean 'primary_key'?); "
        "allowed: columns, endpoint, "
    ) in err, err
