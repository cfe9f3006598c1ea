"""A sync in several load packages (extract/packages.py): a run killed with SIGKILL after some
packages committed keeps them, and the next sync is exact; what may not be cut loads in one
package, and the run's log says why."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import line_process, warehouse
from restsync_dagster_tests.integration.test_crashes import kill_when

KEY = "packages-key"
TICKETS = 5_000
#: Records per package in these tests: ten packages of the API's tickets.
PACKAGE_ROWS = 500


#: The tickets read from a cursor (``updated_at``), which the API does not sort them by.
INCREMENTAL_ENDPOINT = {
    "path": "/generic/v1/tickets",
    "data_selector": "data",
    "paginator": {"type": "offset", "limit": 100},
    "incremental": {
        "cursor_path": "updated_at",
        "start_param": "updated_since",
        "initial_value": "2026-01-01T00:00:00Z",
    },
}


def connector_yaml(**resource: Any) -> str:
    """The demo API's nested tickets (a list of comments each), merged on ``id``, one page at a
    time."""
    return yaml.safe_dump(
        {
            "name": "pkg",
            "source": {
                "client": {
                    "base_url": "{{ env.PKG_BASE_URL }}",
                    "auth": {
                        "type": "api_key",
                        "name": "api_key",
                        "location": "query",
                        "api_key": "{{ env.PKG_API_KEY }}",
                    },
                },
                "resources": [
                    {
                        "name": "tickets",
                        "primary_key": "id",
                        "write_disposition": "merge",
                        "endpoint": {
                            "path": "/generic/v1/tickets",
                            "data_selector": "data",
                            "paginator": {"type": "offset", "limit": 100},
                        },
                        **resource,
                    }
                ],
            },
        }
    )


@pytest.fixture
def tickets_connector(start_demo_api, restsync_home, monkeypatch, tmp_path):
    """The connector, written for a demo API of ``TICKETS`` tickets answering in ``latency_ms``;
    packages of ``PACKAGE_ROWS``."""

    def prepare(latency_ms: float = 0, **resource: Any) -> Any:
        api = start_demo_api(
            api_keys={"*": KEY}, counts={"generic.tickets": TICKETS}, latency_ms=latency_ms
        )
        connectors = tmp_path / "connectors"
        connectors.mkdir(exist_ok=True)
        (connectors / "pkg.yaml").write_text(connector_yaml(**resource))
        monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
        monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
        monkeypatch.setenv("RESTSYNC_PACKAGE_ROWS", str(PACKAGE_ROWS))
        monkeypatch.setenv("PKG_BASE_URL", api.url())
        monkeypatch.setenv("PKG_API_KEY", KEY)
        return api

    return prepare


def start_verbose_sync(connector: str, dagster_home: Path) -> tuple[Any, list[str]]:
    """``restsync sync -v CONNECTOR`` in its own process (its run's log lines on stdout), and
    the lines it has printed so far, read by a thread."""
    dagster_home.mkdir(exist_ok=True)
    process = line_process(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", "-v", connector],
        {**os.environ, "DAGSTER_HOME": str(dagster_home)},
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def committed(lines: list[str], packages: int) -> Any:
    """A condition: the run logged that ``packages`` packages committed."""
    line = f"load package {packages} of this run committed"
    return lambda: any(line in printed for printed in list(lines))


def stored(home: Path) -> dict[str, Any]:
    """The tickets table (id -> updated_at, load id), its comments per ticket, and the loads."""
    with warehouse(home) as con:
        tickets = con.execute(
            "select id, updated_at, _dlt_id, _dlt_load_id from pkg.tickets order by id"
        ).fetchall()
        comments = con.execute(
            "select _dlt_parent_id, count(*) from pkg.tickets__comments group by 1"
        ).fetchall()
        loads = dict(con.execute("select load_id, status from pkg._dlt_loads").fetchall())
    root_ids = {dlt_id: ticket for ticket, _, dlt_id, _ in tickets}
    return {
        "ids": [ticket for ticket, *_ in tickets],
        "updated_at": {ticket: updated for ticket, updated, *_ in tickets},
        "row_loads": {load for *_, load in tickets},
        "comments": {root_ids.get(root): n for root, n in comments},
        "loads": loads,
    }


def assert_exactly_the_api_tickets(home: Path, api: Any) -> list[dict[str, Any]]:
    """The warehouse holds the API's tickets, each once, as the API serves them now (with their
    comments); returns them."""
    expected = api.expected_rows("generic", "tickets")
    after = stored(home)
    assert after["ids"] == sorted(r["id"] for r in expected), "none lost, none duplicated"
    assert {t: as_text(u) for t, u in after["updated_at"].items()} == {
        r["id"]: r["updated_at"] for r in expected
    }, "every update applied"
    assert after["comments"] == {r["id"]: len(r["comments"]) for r in expected if r["comments"]}
    return expected  # type: ignore[no-any-return]


def as_text(value: Any) -> str:
    """A stored ``updated_at`` as the API writes it."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.slow
def test_a_sync_killed_after_two_packages_keeps_them_and_the_next_sync_is_exact(
    tickets_connector, restsync_home, instance, tmp_path
):
    api = tickets_connector(latency_ms=150)
    order = [r["id"] for r in api.expected_rows("generic", "tickets")]
    process, lines = start_verbose_sync("pkg", tmp_path / "dagster_home")
    kill_when(process, committed(lines, 2), limit=300)

    kept = stored(restsync_home)
    assert len(kept["row_loads"]) >= 2, "two packages committed, each its own load"
    assert kept["row_loads"] <= {load for load, status in kept["loads"].items() if status == 0}
    assert 2 * PACKAGE_ROWS <= len(kept["ids"]) < TICKETS, "killed mid-sync, packages kept"
    assert sorted(kept["ids"]) == sorted(order[: len(kept["ids"])]), "the first pages, once each"
    assert None not in kept["comments"], "no comment without its ticket"

    api.advance("generic.tickets", insert=60, update=90, hours=1)
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success

    assert_exactly_the_api_tickets(restsync_home, api)


@pytest.mark.slow
def test_an_incremental_sync_killed_after_two_packages_keeps_them_and_the_cursor_it_started_from(
    tickets_connector, restsync_home, instance, tmp_path
):
    """The API returns changed tickets by id, not by ``updated_at``: a package that committed
    the largest cursor it saw would make the next sync skip the later pages' older changes."""
    api = tickets_connector(latency_ms=150, endpoint=INCREMENTAL_ENDPOINT)
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success
    cursor = max(r["updated_at"] for r in api.expected_rows("generic", "tickets"))
    # 2,500 changed tickets: updates spread over the hour, then inserts spread over it again.
    api.advance("generic.tickets", insert=1_000, update=1_500, hours=1)
    changed = [r for r in api.expected_rows("generic", "tickets") if r["updated_at"] > cursor]
    times = [r["updated_at"] for r in changed]
    assert len(changed) == 2_500 and times != sorted(times), "not in cursor order"

    process, lines = start_verbose_sync("pkg", tmp_path / "dagster_home")
    kill_when(process, committed(lines, 2), limit=300)
    kept = stored(restsync_home)
    changed_ids = {r["id"] for r in changed}
    reloaded = {
        t for t, u in kept["updated_at"].items() if t in changed_ids and as_text(u) > cursor
    }
    assert 2 * PACKAGE_ROWS <= len(reloaded) < len(changed), "packages committed, not all"

    api.reset_log()
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success
    first = api.requests("/generic/v1/tickets")[0]
    assert first.params["updated_since"] == cursor, "the cursor did not move past unloaded rows"
    expected = assert_exactly_the_api_tickets(restsync_home, api)

    # The next sync starts from the run's largest cursor: nothing new is read again.
    api.reset_log()
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success
    newest = max(r["updated_at"] for r in expected)
    assert api.requests("/generic/v1/tickets")[0].params["updated_since"] == newest


def test_a_sync_in_packages_commits_each_and_lands_every_record_once(
    tickets_connector, restsync_home, instance
):
    api = tickets_connector()
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success
    logs = [str(e.message) for e in instance.all_logs(result.run_id)]
    assert any("load package 10 of this run committed" in line for line in logs), logs
    expected = api.expected_rows("generic", "tickets")
    landed = stored(restsync_home)
    assert landed["ids"] == sorted(r["id"] for r in expected)
    assert len(landed["row_loads"]) == 10
    assert landed["comments"] == {r["id"]: len(r["comments"]) for r in expected if r["comments"]}
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["rows_loaded"].value == TICKETS, "rows of every package"


def test_a_slow_sync_commits_a_package_every_few_seconds_of_fetching_and_lands_every_record_once(
    tickets_connector, restsync_home, instance, monkeypatch
):
    api = tickets_connector(latency_ms=40)
    monkeypatch.setenv("RESTSYNC_PACKAGE_ROWS", "1000000")
    monkeypatch.setenv("RESTSYNC_PACKAGE_SECONDS", "0.5")
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success
    logs = [str(e.message) for e in instance.all_logs(result.run_id)]
    packages = sum("of this run committed" in line for line in logs)
    print(f"\n{packages} packages of 0.5 s for 50 pages of 40 ms")
    assert packages >= 2, "cut by time: far fewer than a million records each"
    expected = api.expected_rows("generic", "tickets")
    landed = stored(restsync_home)
    assert landed["ids"] == sorted(r["id"] for r in expected)
    assert len(landed["row_loads"]) == packages
    assert landed["comments"] == {r["id"]: len(r["comments"]) for r in expected if r["comments"]}
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["rows_loaded"].value == TICKETS


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ({"write_disposition": "append"}, "resource 'tickets' is written with 'append'"),
        ({"write_disposition": "replace"}, "resource 'tickets' is written with 'replace'"),
        (
            {"write_disposition": "append", "endpoint": INCREMENTAL_ENDPOINT},
            "resource 'tickets' is written with 'append'",
        ),
    ],
)
def test_what_may_not_be_cut_loads_in_one_package_and_says_why(
    resource, reason, tickets_connector, restsync_home, instance
):
    tickets_connector(**resource)
    result = load_definitions().resolve_job_def("pkg_sync").execute_in_process(instance=instance)
    assert result.success
    logs = [str(e.message) for e in instance.all_logs(result.run_id)]
    assert any(f"one load package for the run: {reason}" in line for line in logs), logs
    assert not any("load package" in line and "committed" in line for line in logs)
    assert len(stored(restsync_home)["row_loads"]) == 1


def paged_records(pages: int, size: int) -> Any:
    """A resource of ``pages`` pages of ``size`` nested records, merged on ``id``, each page
    noted in ``read`` as the generator reads it."""
    import dlt

    read: list[int] = []

    def generate() -> Any:
        for page in range(pages):
            read.append(page)
            yield [
                {"id": page * size + i, "tags": [{"name": f"t{j}"} for j in range(i % 3)]}
                for i in range(size)
            ]

    resource = dlt.resource(generate, name="records", write_disposition="merge", primary_key="id")
    return resource, read


@pytest.mark.parametrize("read_ahead", [False, True], ids=["in_the_extract", "read_ahead"])
def test_each_package_resumes_where_the_last_one_stopped(read_ahead, tmp_path):
    """dlt's own pipeline, without Dagster: the resource's generator is made once, each
    package takes the pages after the previous one's, and together they land every record once,
    each package's rows (child rows too, through the Arrow step) with its own load id."""
    import dlt

    from restsync_dagster.extract.arrow import ArrowPages
    from restsync_dagster.extract.packages import Packages

    resource, read = paged_records(pages=12, size=10)
    resource.add_step(ArrowPages("records", batch_rows=40))
    source = dlt.source(lambda: resource, name="paged")()
    pipeline = dlt.pipeline(
        pipeline_name="paged",
        pipelines_dir=str(tmp_path / "dlt"),
        destination=dlt.destinations.duckdb(credentials=str(tmp_path / "warehouse.duckdb")),
        dataset_name="paged",
    )
    packages = Packages.install(source, rows=25, read_ahead=read_ahead)
    loads = []
    try:
        while True:
            loads.extend(pipeline.run(source).loads_ids)
            if packages.done:
                break
            packages.next_package()
    finally:
        packages.close()
    assert read == list(range(12)), "every page read once, in order"
    assert len(loads) == 4, "three pages (30 records, past 25) per package"
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        ids = [r[0] for r in con.execute("select id from paged.records order by id").fetchall()]
        per_load = con.execute(
            "select _dlt_load_id, count(*) from paged.records group by 1 order by 1"
        ).fetchall()
        tags = con.execute("select count(*) from paged.records__tags").fetchall()[0][0]
    assert ids == list(range(120))
    assert [n for _, n in per_load] == [30, 30, 30, 30]
    assert [load for load, _ in per_load] == sorted(loads)
    assert tags == 12 * sum(i % 3 for i in range(10))
