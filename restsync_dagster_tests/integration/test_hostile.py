"""Hostile and broken answers: each fails the run with the connector, resource and page named,
and leaves the previously loaded rows exactly as they were (no partial load, no duplicates)."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import table_rows, warehouse

CONNECTOR = """
name: hostile
source:
  client:
    base_url: "{{{{ env.HOSTILE_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.HOSTILE_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {paginator}}}
retry: {{max_retries: 1, backoff_factor: 0.01}}
timeout_seconds: 2
"""
OFFSET = "{type: offset, limit: 100}"
NO_TOTAL = "{type: offset, limit: 100, total_path: null}"

CASES = {
    # mode: (paginator, first broken offset, what the failure says, the page it names)
    "non_json": (OFFSET, 200, "The response body is not valid JSON", 200),
    "html": (OFFSET, 200, "the API answered 200 with an HTML page", 200),
    "missing_data": (OFFSET, 200, "the response has no 'data' (data_selector)", 200),
    "data_not_list": (OFFSET, 200, "'data' (data_selector) is a dict, not a list of records", 200),
    "missing_pk": (OFFSET, 200, "record 0 of the page has no primary key 'id'", 200),
    "duplicate_pk": (OFFSET, 200, "records 0 and 100 of the page share the primary key 201", 200),
    "truncated": (OFFSET, 200, "the connection closed before the whole response arrived", 200),
    "invalid_utf8": (OFFSET, 200, "The response body is not valid UTF-8", 200),
    "unknown_charset": (OFFSET, 200, "unknown charset 'x-no-such-charset'", 200),
    "total_high": (OFFSET, 200, "the page is empty but total=1420 (total is too high)", 500),
    "total_low": (OFFSET, 200, "the page holds 100 records but total=270 leaves 70", 200),
    "same_page": (
        NO_TOTAL,
        100,
        "the API answered the same page again; stopping instead of looping",
        100,
    ),
    "stall": (OFFSET, 200, "the API did not answer in time", 200),
}


@pytest.fixture
def hostile(restsync_home, tmp_path, monkeypatch, demo_api):
    connectors = tmp_path / "connectors"
    connectors.mkdir()

    def write(paginator: str) -> None:
        (connectors / "hostile.yaml").write_text(CONNECTOR.format(paginator=paginator))

    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("HOSTILE_BASE_URL", demo_api.url("generic"))
    monkeypatch.setenv("HOSTILE_API_KEY", "demo-generic-key")
    return write


def sync(instance) -> dg.ExecuteInProcessResult:
    return (
        load_definitions()
        .resolve_job_def("hostile_sync")
        .execute_in_process(instance=instance, raise_on_error=False)
    )


def assert_no_duplicates(home) -> None:
    with warehouse(home) as con:
        assert con.execute(
            "select count(*) = count(distinct id) from hostile.items"
        ).fetchall() == [(True,)]


@pytest.mark.parametrize("mode", list(CASES))
def test_a_broken_answer_fails_clearly_and_loses_or_duplicates_nothing(
    mode, hostile, demo_api, restsync_home, instance
):
    paginator, offset, says, page = CASES[mode]
    hostile(paginator)
    assert sync(instance).success
    before = table_rows(restsync_home, "hostile.items")
    assert len(before) == 420

    demo_api.misbehave("/generic/v1/items", mode, from_offset=offset)
    result = sync(instance)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "connector 'hostile', resource 'items'" in message, message
    assert says in message, message
    assert f"offset {page}" in message or f"offset={page}" in message, message
    assert table_rows(restsync_home, "hostile.items") == before
    assert_no_duplicates(restsync_home)


def test_a_10_mb_page_loads_whole(hostile, demo_api, restsync_home, instance):
    hostile(OFFSET)
    demo_api.misbehave("/generic/v1/items", "huge", from_offset=0)
    result = sync(instance)
    assert result.success
    rows = table_rows(restsync_home, "hostile.items")
    assert len(rows) == 420 and all(len(r["blob"]) == 100_000 for r in rows)
    assert_no_duplicates(restsync_home)


def logged(instance, result) -> str:
    return "\n".join(str(e.message) for e in instance.all_logs(result.run_id))


def test_a_load_too_big_for_the_default_memory_limit_loads_under_duckdbs_own_and_says_so(
    hostile, demo_api, restsync_home, instance
):
    # 420 rows of 100 kB strings: DuckDB cannot spill them, and runs out under 128MB.
    hostile(OFFSET)
    demo_api.misbehave("/generic/v1/items", "huge", from_offset=0)
    result = sync(instance)
    assert result.success
    assert (
        "DuckDB ran out of memory under restsync's default limit of 128MB (values it cannot "
        "spill to disk); loading the same package again under DuckDB's own limit"
    ) in logged(instance, result)
    assert len(table_rows(restsync_home, "hostile.items")) == 420
    assert_no_duplicates(restsync_home)


def test_a_memory_limit_set_too_small_fails_naming_it_and_the_next_sync_loads_everything(
    hostile, demo_api, restsync_home, instance, monkeypatch
):
    hostile(OFFSET)
    assert sync(instance).success
    before = table_rows(restsync_home, "hostile.items")
    demo_api.misbehave("/generic/v1/items", "huge", from_offset=0)
    monkeypatch.setenv("RESTSYNC_DUCKDB_MEMORY_LIMIT", "64MB")

    result = sync(instance)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "under RESTSYNC_DUCKDB_MEMORY_LIMIT=64MB; raise it" in message, message
    assert "connector 'hostile'" in message, message
    # dlt adds the new column before the merge that fails; the rows are the same.
    after = table_rows(restsync_home, "hostile.items")
    assert [{k: v for k, v in r.items() if k != "blob"} for r in after] == before
    assert all(r.get("blob") is None for r in after)

    monkeypatch.delenv("RESTSYNC_DUCKDB_MEMORY_LIMIT")
    assert sync(instance).success
    rows = table_rows(restsync_home, "hostile.items")
    assert len(rows) == 420 and all(len(r["blob"]) == 100_000 for r in rows)
    assert_no_duplicates(restsync_home)
