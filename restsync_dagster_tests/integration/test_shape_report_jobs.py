"""Asynchronous report jobs: created, polled at an interval, downloaded; a failed job fails with
the API's message, one not done in time fails as a transient timeout naming the job id."""

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
)

CONNECTOR = """
name: reports
source:
  client:
    base_url: "{{ env.REPORTS_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.REPORTS_API_KEY }}"}
  resources:
    - name: items_report
      primary_key: id
      write_disposition: merge
      endpoint:
        path: /generic/reports/items
        response_format: jsonl
        report_job:
          create_json: {columns: all}
          id_path: id
          poll_path: "/generic/reports/items/{id}"
          status_path: status
          done: [done]
          failed: [failed]
          message_path: error
          result_url_path: download_url
          interval_seconds: 0.1
          timeout_seconds: TIMEOUT
"""
PATH = "/generic/reports/items"


@pytest.fixture
def reports(restsync_home, tmp_path, monkeypatch, start_demo_api):
    def start(timeout: float = 10):
        api = start_demo_api(
            api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 700}, report_seconds=0.4
        )
        text = CONNECTOR.replace("TIMEOUT", str(timeout))
        use_connector(tmp_path / "connectors", monkeypatch, api, "reports", text)
        return api

    return start


def test_a_report_is_created_polled_and_downloaded_twice_exactly(
    reports, instance, restsync_home, capfd
):
    api = reports()
    assert sync_job("reports", instance).success
    seen = [(r.method, r.path) for r in api.requests(PATH)]
    assert seen[0] == ("POST", PATH)
    polls = [p for m, p in seen if m == "GET" and not p.endswith("/result")]
    assert 3 <= len(polls) <= 8, "0.4 s of work polled every 0.1 s"
    assert seen[-1] == ("GET", f"{PATH}/r-1/result")
    assert sync_job("reports", instance).success
    assert table_ids(restsync_home, "reports.items_report") == sorted(
        r["id"] for r in api.expected_rows("generic", "items")
    )
    output = capfd.readouterr()
    assert SHAPE_SECRET not in output.out + output.err
    assert_no_secret_written(restsync_home, instance, SHAPE_SECRET)


def test_a_failed_job_fails_with_the_apis_message(reports, instance):
    api = reports()
    api.misbehave(PATH, "report_failed")
    result = sync_job("reports", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "api_error" and metadata["restsync/transient"] is False
    assert "report job r-1 failed: the report query timed out" in metadata["restsync/detail"]
    assert metadata["restsync/resource"] == "items_report"


def test_a_job_not_done_in_time_fails_as_a_transient_timeout_naming_it(reports, instance):
    api = reports(timeout=0.5)
    api.misbehave(PATH, "report_stuck")
    result = sync_job("reports", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "timeout" and metadata["restsync/transient"] is True
    assert "report job r-1 was not done after 0.5 s" in metadata["restsync/detail"]


def test_preview_runs_the_job_and_writes_nothing(reports, restsync_home, capsys):
    reports()
    assert main(["preview", "reports", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tables"][0]["rows"] == 700
    assert SHAPE_SECRET not in json.dumps(result)
    assert not restsync_home.exists()
