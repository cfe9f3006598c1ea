"""Totals in headers: an offset paginator reads ``X-Total-Count`` or ``Content-Range``, so offset
pages are fetched concurrently, and the page checks still hold the total to the records."""

from __future__ import annotations

import json

import pytest

from restsync_dagster.cli import main
from restsync_dagster_tests.helpers import (
    SHAPE_SECRET,
    assert_no_secret_written,
    sync_job,
    use_connector,
    warehouse,
)

CONNECTOR = """
name: counted
rate_limit: {max_concurrency: 4}
source:
  client:
    base_url: "{{ env.COUNTED_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.COUNTED_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint:
        path: /generic/headers/items
        paginator: {type: offset, limit: 100, total_header: X-Total-Count}
    - name: customers
      endpoint:
        path: /generic/headers/customers
        paginator: {type: offset, limit: 50, total_header: Content-Range}
"""


@pytest.fixture
def counted(restsync_home, tmp_path, monkeypatch, start_demo_api):
    api = start_demo_api(
        api_keys={"*": SHAPE_SECRET},
        latency_ms=25,
        counts={"generic.items": 1000, "generic.customers": 230},
    )
    use_connector(tmp_path / "connectors", monkeypatch, api, "counted", CONNECTOR)
    return api


def test_header_totals_fetch_pages_concurrently_and_load_exact_rows_twice(
    counted, instance, restsync_home, capfd
):
    assert sync_job("counted", instance).success
    assert counted.stats()["max_in_flight"] == 4, "the total came from a header: pages ahead"
    first = sorted(r.params["offset"] for r in counted.requests("/generic/headers/items"))
    assert len(first) == 10, "every page once, none past the total"
    assert sync_job("counted", instance).success
    with warehouse(restsync_home) as con:
        for table, resource in (("items", "items"), ("customers", "customers")):
            served = counted.expected_rows("generic", resource)
            rows = con.execute(f"select id from counted.{table} order by id").fetchall()
            assert [r[0] for r in rows] == sorted(r["id"] for r in served), table
    output = capfd.readouterr()
    assert SHAPE_SECRET not in output.out + output.err
    assert_no_secret_written(restsync_home, instance, SHAPE_SECRET)


def test_preview_of_header_totals_reads_pages_and_writes_nothing(counted, restsync_home, capsys):
    assert main(["preview", "counted", "--resource", "customers", "--pages", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (table,) = result["tables"]
    assert table["name"] == "customers" and table["rows"] == 100
    assert SHAPE_SECRET not in json.dumps(result)
    assert not restsync_home.exists()
