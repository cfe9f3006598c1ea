"""Response formats: JSON lines and CSV (gzip decoded by header) load exact rows, keep the page
checks (keys, duplicates, totals), and a ragged row or a header that changes between pages fails
clearly and loads nothing."""

from __future__ import annotations

import json

import pytest

from restsync_dagster.cli import main
from restsync_dagster_tests.helpers import (
    SHAPE_SECRET,
    assert_no_secret_written,
    step_failure,
    sync_job,
    table_ids,
    use_connector,
    warehouse,
)

CONNECTOR = """
name: files
rate_limit: {max_concurrency: 3}
source:
  client:
    base_url: "{{ env.FILES_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.FILES_API_KEY }}"}
  resource_defaults:
    primary_key: id
    write_disposition: merge
    endpoint: {paginator: {type: offset, limit: 100, total_header: X-Total-Count}}
  resources:
    - name: items_jsonl
      endpoint: {path: /generic/jsonl/items, response_format: jsonl}
    - name: customers_csv
      endpoint: {path: /generic/csv/customers, response_format: csv}
      columns:                      # CSV cells are text: dlt's hints type them
        id: {data_type: bigint}
        lifetime_value: {data_type: double}
        is_active: {data_type: bool}
        created_at: {data_type: timestamp}
        updated_at: {data_type: timestamp}
"""
CSV_PATH = "/generic/csv/customers"


@pytest.fixture
def files(restsync_home, tmp_path, monkeypatch, start_demo_api):
    api = start_demo_api(
        api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 450, "generic.customers": 320}
    )
    use_connector(tmp_path / "connectors", monkeypatch, api, "files", CONNECTOR)
    return api


def test_jsonl_and_csv_load_exact_rows_twice_and_the_key_is_written_nowhere(
    files, instance, restsync_home, capfd
):
    assert sync_job("files", instance).success
    assert sync_job("files", instance).success
    assert table_ids(restsync_home, "files.items_jsonl") == list(range(1, 451))
    assert table_ids(restsync_home, "files.customers_csv") == list(range(1, 321))
    expected = {r["id"]: r for r in files.expected_rows("generic", "customers")}
    with warehouse(restsync_home) as con:
        rows = con.execute(
            "select id, name, lifetime_value, is_active from files.customers_csv order by id"
        ).fetchall()
    for row_id, name, value, active in rows:
        served = expected[row_id]
        assert (name, value, active) == (
            served["name"],
            served["lifetime_value"],
            served["is_active"],
        )
    output = capfd.readouterr()
    assert SHAPE_SECRET not in output.out + output.err
    assert_no_secret_written(restsync_home, instance, SHAPE_SECRET)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("ragged_row", "the csv body cannot be read: CSV row 3 has 9 cells, the header has 10"),
        ("header_change", "the CSV header changed between pages"),
    ],
)
def test_a_broken_csv_page_fails_clearly_and_loads_nothing(
    files, instance, restsync_home, mode, words
):
    assert sync_job("files", instance).success
    files.advance("generic.customers", insert=3)
    files.misbehave(CSV_PATH, mode, from_offset=100)
    result = sync_job("files", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert metadata["restsync/resource"] == "customers_csv"
    assert words in metadata["restsync/detail"], metadata["restsync/detail"]
    assert table_ids(restsync_home, "files.customers_csv") == list(range(1, 321)), (
        "as before the run"
    )


def test_a_csv_page_keeps_its_duplicate_key_check(files, instance):
    files.misbehave(CSV_PATH, "duplicate_row", from_offset=0)
    result = sync_job("files", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert "share the primary key" in metadata["restsync/detail"]


def test_preview_reads_csv_and_jsonl_and_writes_nothing(files, restsync_home, capsys):
    assert main(["preview", "files", "--pages", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {t["name"]: t["rows"] for t in result["tables"]} == {
        "items_jsonl": 100,
        "customers_csv": 100,
    }
    assert SHAPE_SECRET not in json.dumps(result)
    assert not restsync_home.exists()
