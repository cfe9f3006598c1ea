"""What ``restsync`` shows while it works and why it stopped: progress in a pipe and on a terminal,
retries as they are decided, pagination stop reasons, the one-full-page warning, --resource and
--quiet. All through the real command, against the demo API."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from restsync_dagster.cli.demo import demo_env

HEADER_LINK = """
name: linked
source:
  client:
    base_url: "{{ env.LINKED_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.LINKED_API_KEY }}"}
  resources:
    - name: customers
      primary_key: id
      endpoint: {path: /v1/customers, data_selector: data, params: {limit: 100},
                 paginator: {type: header_link}}
"""


@pytest.fixture
def cli_env(restsync_home: Path, tmp_path: Path, start_demo_api):
    """The environment of a ``restsync`` process pointed at a demo API."""

    def make(**api: object) -> dict[str, str]:
        server = start_demo_api(**api)
        home = tmp_path / "dagster_home"
        home.mkdir(exist_ok=True)
        return {
            **os.environ,
            **demo_env(server.url()),
            "DAGSTER_HOME": str(home),
            "RESTSYNC_PROGRESS_INTERVAL_SECONDS": "0",
            "LINKED_BASE_URL": server.url("generic"),
            "LINKED_API_KEY": "demo-generic-key",
        }

    return make


def restsync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_in_a_pipe_progress_is_plain_lines_per_resource_and_a_summary(cli_env):
    result = restsync("sync", "generic", env=cli_env())
    assert result.returncode == 0, result.stderr
    assert "generic/customers: 3 pages, 250 rows" in result.stderr
    assert "generic/items:" in result.stderr and "rows/s" in result.stderr
    assert "offset reached total 250" in result.stderr, "why each resource stopped"
    assert "2 of 2 resource(s) synced in" in result.stderr
    assert "\x1b[" not in result.stderr, "no escape codes in a pipe"


def test_on_a_terminal_progress_is_a_live_table(cli_env):
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {k: v for k, v in cli_env().items() if k != "NO_COLOR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", "generic"],
        env={**env, "TERM": "xterm", "COLUMNS": "160"},
        stdout=subprocess.PIPE, stderr=slave, text=True,
    )  # fmt: skip
    out, _ = process.communicate(timeout=300)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 0, screen
    assert "resource" in screen and "rows/s" in screen and "elapsed" in screen
    assert "generic/customers" in screen and "250" in screen
    assert "\x1b[" in screen, "a terminal gets a redrawn table"
    assert "ok       generic/customers" in out


def test_retries_are_shown_as_they_are_decided(cli_env):
    env = cli_env(fault_rate=1.0, fault_statuses=(503,), fault_max_consecutive=1)
    result = restsync("sync", "generic", env=env)
    assert result.returncode == 0, result.stderr
    assert "customers: 503, retry 1/3 in 2 s" in result.stderr


def test_quiet_prints_results_and_nothing_else(cli_env):
    result = restsync("sync", "generic", "-q", env=cli_env())
    assert result.returncode == 0
    assert result.stderr.strip() == ""
    assert "ok       generic/customers" in result.stdout


def test_resource_syncs_only_that_resource(cli_env, restsync_home):
    result = restsync("sync", "generic", "--resource", "items", "--json", env=cli_env())
    assert result.returncode == 0, result.stderr
    assert [o["resource"] for o in json.loads(result.stdout)] == ["items"]
    unknown = restsync("sync", "generic", "--resource", "itemz", env=cli_env())
    assert unknown.returncode == 2 and "did you mean 'items'" in unknown.stderr


def test_a_partition_for_a_connector_without_partitions_is_a_usage_error(cli_env):
    result = restsync("sync", "generic", "--partition", "2026-01-01", env=cli_env())
    assert result.returncode == 2 and "is not partitioned" in result.stderr


def test_preview_says_why_each_resource_stopped(cli_env):
    env = cli_env()
    asked = restsync("preview", "generic", "--pages", "1", env=env)
    assert asked.returncode == 0, asked.stderr
    assert "resource customers: pagination stopped: stopped after 1 page(s), as asked" in (
        asked.stdout
    )
    whole = restsync("preview", "generic", "--resource", "customers", "--pages", "10", env=env)
    assert "resource customers: pagination stopped: offset reached total 250" in whole.stdout


def test_one_full_page_and_no_next_link_is_warned_about(cli_env, tmp_path):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "linked.yaml").write_text(HEADER_LINK)
    env = {**cli_env(), "RESTSYNC_CONNECTORS_DIR": str(connectors)}
    preview = restsync("preview", "linked", "--pages", "3", env=env)
    assert preview.returncode == 0, preview.stderr
    assert "pagination stopped: no Link rel='next' after page 1" in preview.stdout
    assert "warning: connector 'linked', resource 'customers': one full page" in preview.stdout
    synced = restsync("sync", "linked", "-v", env=env)
    assert "one full page, then no Link rel='next' after page 1" in synced.stderr
