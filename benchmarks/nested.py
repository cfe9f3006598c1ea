"""The nested-records case: records with objects and lists inside, as most real APIs send them.

The demo API's ``generic.tickets`` (see ``restsync_dagster/demo_api/nested.py``): an object two
levels deep, a list of scalars, a list of objects holding a list. restsync syncs them through
Dagster (as ``restsync sync`` does) into the tables dlt makes of them (``tickets`` and three
child tables); the ceiling is a plain ``requests`` loop that fetches and parses the same pages.
Beside them, in the same invocation: plain dlt's ``rest_api_source`` with its defaults, and
restsync with the seam off (``arrow: false``: every page through dlt's own normalizer, what a dlt
the seam does not fit gets). Each figure is a median; each ratio is of medians.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jobs  # benchmarks/jobs.py, beside this script

API_KEY = "bench-key"
PAGE = 100
CONNECTOR = """
name: nested
rate_limit: {max_concurrency: 4}
arrow: ARROW
source:
  client:
    base_url: "{{ env.NESTED_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.NESTED_API_KEY }}"}
  resources:
    - name: tickets
      primary_key: id
      write_disposition: merge
      endpoint:
        path: /generic/v1/tickets
        data_selector: data
        paginator: {type: offset, limit: 100}
"""


@contextmanager
def tickets_api(records: int) -> Iterator[str]:
    """The demo API in its own process with ``records`` tickets; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "restsync_dagster.cli", "demo-api", "--port", "0",
            "--records", f"generic.tickets={records}", "--api-key", API_KEY,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    match = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
    if not match:
        process.kill()
        raise RuntimeError("the demo API did not start")
    try:
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)


def ceiling(url: str, records: int) -> float:
    """Seconds for a plain requests loop to fetch and parse every page."""
    import requests

    session = requests.Session()
    started = time.perf_counter()
    rows = 0
    for offset in range(0, records, PAGE):
        page = session.get(
            f"{url}/generic/v1/tickets",
            params={"api_key": API_KEY, "offset": offset, "limit": PAGE},
            timeout=30,
        ).json()
        rows += len(page["data"])
    assert rows == records, rows
    return time.perf_counter() - started


def plain_dlt(url: str, records: int) -> float:
    """Seconds of dlt's own ``rest_api_source`` into DuckDB, defaults, the same endpoint."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    with tempfile.TemporaryDirectory() as tmp:
        source = rest_api_source(
            {
                "client": {
                    "base_url": url,
                    "auth": {
                        "type": "api_key", "name": "api_key", "location": "query",
                        "api_key": API_KEY,
                    },
                },
                "resources": [
                    {
                        "name": "tickets", "primary_key": "id", "write_disposition": "merge",
                        "endpoint": {
                            "path": "/generic/v1/tickets", "data_selector": "data",
                            "paginator": {"type": "offset", "limit": PAGE},
                        },
                    }
                ],
            },
            name="nested",
        )  # fmt: skip
        pipeline = dlt.pipeline(
            pipeline_name="plain_nested",
            pipelines_dir=tmp,
            destination=dlt.destinations.duckdb(credentials=f"{tmp}/plain.duckdb"),
            dataset_name="nested",
        )
        started = time.perf_counter()
        pipeline.run(source)
        elapsed = time.perf_counter() - started
        assert pipeline.last_trace.last_normalize_info.row_counts.get("tickets") == records
        return elapsed


@contextmanager
def connector_env(url: str, arrow: bool = True) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "connectors").mkdir()
        text = CONNECTOR.replace("ARROW", "true" if arrow else "false")
        (home / "connectors" / "nested.yaml").write_text(text)
        saved = dict(os.environ)
        os.environ.update(
            {
                "RESTSYNC_HOME": str(home / "state"),
                "RESTSYNC_CONNECTORS_DIR": str(home / "connectors"),
                "RESTSYNC_INCLUDE_EXAMPLES": "false",
                "NESTED_BASE_URL": url,
                "NESTED_API_KEY": API_KEY,
            }
        )
        try:
            yield home
        finally:
            os.environ.clear()
            os.environ.update(saved)


def restsync_sync(records: int) -> float:
    """Seconds of a fresh ``nested_sync`` job through Dagster (environment from connector_env)."""
    elapsed, metadata = jobs.timed_sync_job("nested_sync", "tickets")
    assert metadata["rows_loaded"].value == records
    return elapsed


def run(quick: bool, repeat: int) -> dict[str, Any]:
    """The case's figures: rows/s of each, and each over the ceiling's."""
    records = 20_000 if quick else 200_000
    with tickets_api(records) as url:
        a = statistics.median(ceiling(url, records) for _ in range(repeat))
        with connector_env(url):
            c = statistics.median(restsync_sync(records) for _ in range(repeat))
        with connector_env(url, arrow=False):
            off = statistics.median(restsync_sync(records) for _ in range(repeat))
        plain = statistics.median(plain_dlt(url, records) for _ in range(repeat))
    return {
        "records": records,
        "page_size": PAGE,
        "ceiling_rows_per_s": records / a,
        "restsync_rows_per_s": records / c,
        "restsync_over_ceiling": a / c,
        "seam_off_rows_per_s": records / off,
        "seam_off_over_ceiling": a / off,
        "plain_dlt_rows_per_s": records / plain,
        "plain_dlt_over_ceiling": a / plain,
    }


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The case's lines of the benchmark's table."""
    n = results["nested"]
    return [
        (f"nested ceiling ({n['records']:,} tickets, page {n['page_size']})", f"{n['ceiling_rows_per_s']:,.0f} rows/s", ""),
        ("nested restsync (through Dagster)", f"{n['restsync_rows_per_s']:,.0f} rows/s", ""),
        ("  restsync / ceiling", f"{n['restsync_over_ceiling']:.2f}", ">= 0.8"),
        ("nested restsync, seam off (arrow: false)", f"{n['seam_off_rows_per_s']:,.0f} rows/s", ""),
        ("  seam off / ceiling", f"{n['seam_off_over_ceiling']:.2f}", ""),
        ("nested plain dlt, defaults", f"{n['plain_dlt_rows_per_s']:,.0f} rows/s", ""),
        ("  plain dlt / ceiling", f"{n['plain_dlt_over_ceiling']:.2f}", ""),
    ]  # fmt: skip
