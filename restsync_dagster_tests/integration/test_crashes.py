"""Crashes and concurrency: a sync killed with SIGKILL during extract or during load, and two
syncs of one connector at once. Afterwards the tables hold exactly the API's rows, and the
incremental cursor never moved past rows that were not loaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import REPO, point_connectors_at, table_rows, warehouse


def start_sync(connector: str, dagster_home: Path) -> subprocess.Popen[str]:
    """``restsync sync CONNECTOR`` in its own process, as a person or a scheduler would run it."""
    dagster_home.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", connector],
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_when(
    process: subprocess.Popen[str], condition: Callable[[], bool], limit: float = 120
) -> None:
    """SIGKILL ``process`` as soon as ``condition()`` holds; fail if it never does."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the sync ended (exit {process.returncode}) before it could be killed")
        if condition():
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.01)
    process.kill()
    pytest.fail("the sync never reached the point where it was to be killed")


def loading(home: Path) -> bool:
    """dlt has started a load job of a package (it is writing to the destination)."""
    return any(home.glob("dlt/*/load/normalized/*/started_jobs/*"))


def sync_in_process(instance: dg.DagsterInstance, job: str) -> None:
    result = load_definitions().resolve_job_def(job).execute_in_process(instance=instance)
    assert result.success


def assert_exactly_the_api_rows(home: Path, api) -> None:
    expected = api.expected_rows("ecommerce", "orders")
    stored = table_rows(home, "ecommerce.orders")
    assert [r["id"] for r in stored] == [r["id"] for r in expected], "none lost, none duplicated"
    by_id = {r["id"]: r["status"] for r in expected}
    assert all(r["status"] == by_id[r["id"]] for r in stored), "every update applied"
    with warehouse(home) as con:
        (lines,) = con.execute("select count(*) from ecommerce.orders__line_items").fetchall()[0]
    assert lines == sum(len(o["line_items"]) for o in expected)


@pytest.fixture
def shop(start_demo_api, restsync_home, monkeypatch, instance, tmp_path):
    """The e-commerce connector, synced once, then changes on the API's side."""

    def prepare(latency_ms: float, inserts: int) -> tuple[object, str]:
        api = start_demo_api(latency_ms=latency_ms)
        point_connectors_at(api, monkeypatch)
        sync_in_process(instance, "ecommerce_sync")
        cursor = max(r["updated_at"] for r in api.expected_rows("ecommerce", "orders"))
        api.advance("ecommerce.orders", insert=inserts, update=40, hours=6)
        return api, cursor

    return prepare


@pytest.mark.slow
def test_a_sync_killed_during_extract_loses_nothing_and_keeps_the_cursor(
    shop, restsync_home, instance, tmp_path
):
    api, cursor = shop(latency_ms=100, inserts=600)
    api.reset_log()
    process = start_sync("ecommerce", tmp_path / "dagster_home")
    kill_when(process, lambda: len(api.requests("/ecommerce/v1/orders")) >= 2)
    assert not loading(restsync_home)

    api.reset_log()
    sync_in_process(instance, "ecommerce_sync")
    assert api.requests("/ecommerce/v1/orders")[0].params["updated_since"] == cursor
    assert_exactly_the_api_rows(restsync_home, api)


@pytest.mark.slow
def test_a_sync_killed_during_load_loses_nothing_and_keeps_the_cursor(
    shop, restsync_home, instance, tmp_path
):
    api, cursor = shop(latency_ms=0, inserts=15_000)
    process = start_sync("ecommerce", tmp_path / "dagster_home")
    kill_when(process, lambda: loading(restsync_home))

    api.reset_log()
    sync_in_process(instance, "ecommerce_sync")
    first = api.requests("/ecommerce/v1/orders")[0]
    assert first.params["updated_since"] == cursor, "the cursor did not move past unloaded rows"
    assert_exactly_the_api_rows(restsync_home, api)


@pytest.mark.slow
def test_two_syncs_of_one_connector_at_once_run_one_after_the_other(
    start_demo_api, restsync_home, monkeypatch, instance, tmp_path
):
    api = start_demo_api(latency_ms=40)
    point_connectors_at(api, monkeypatch)
    dagster_home = tmp_path / "dagster_home"
    first, second = start_sync("generic", dagster_home), start_sync("generic", dagster_home)
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    failed = [out for p, out in zip((first, second), outputs, strict=True) if p.returncode != 0]
    assert not failed, "\n".join(line for out in failed for line in out.splitlines()[-15:])
    pages = [(r.path, r.params.get("offset")) for r in api.requests("/generic/")]
    half = len(pages) // 2
    # Pages within one sync may come in any order (offsets are fetched concurrently); each half
    # being one whole sync means one ran, then the other.
    assert len(pages) == 2 * 8 and sorted(pages[:half]) == sorted(pages[half:]), (
        "no interleaving: one ran, then the other"
    )
    assert len(set(pages[:half])) == half, "the first half is one whole sync, each page once"
    sync_in_process(instance, "generic_sync")
    assert [r["id"] for r in table_rows(restsync_home, "generic.items")] == list(range(1, 421))
