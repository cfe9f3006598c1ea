"""Errors inside a 200: response actions on the body retry (and the sync heals), fail with the
API's own message naming connector, resource and page, or ignore; the key is written nowhere."""

from __future__ import annotations

import json
from pathlib import Path

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
name: reported
retry: {max_retries: 3, backoff_factor: 0.05}
source:
  client:
    base_url: "{{ env.REPORTED_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.REPORTED_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint:
        path: /generic/v1/items
        data_selector: data
        paginator: {type: offset, limit: 100}
        response_actions:
          - {json_path: error.code, value: BUSY, action: retry, message_path: error.message}
          - {json_path: error, action: fail, message_path: error.message}
          - {content: "maintenance window", action: ignore}
"""
PATH = "/generic/v1/items"


@pytest.fixture
def reported(restsync_home, tmp_path, monkeypatch, start_demo_api):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 500})
    use_connector(tmp_path / "connectors", monkeypatch, api, "reported", CONNECTOR)
    return api


def assert_secret_nowhere(home: Path, instance, output: str) -> None:
    assert SHAPE_SECRET not in output
    assert_no_secret_written(home, instance, SHAPE_SECRET)


def test_a_busy_body_is_retried_then_the_page_loads(reported, instance, restsync_home, capfd):
    reported.misbehave(PATH, "busy_twice", from_offset=200)
    assert sync_job("reported", instance).success
    asked = [r.params["offset"] for r in reported.requests(PATH)]
    assert asked.count("200") == 3, "two BUSY answers, then the page"
    assert sync_job("reported", instance).success, "the second sync"
    assert table_ids(restsync_home, "reported.items") == sorted(
        r["id"] for r in reported.expected_rows("generic", "items")
    )
    output = capfd.readouterr()
    assert_secret_nowhere(restsync_home, instance, output.out + output.err)


def test_an_error_body_fails_with_the_apis_message_and_loads_nothing(
    reported, instance, restsync_home, capfd
):
    assert sync_job("reported", instance).success
    before = table_ids(restsync_home, "reported.items")
    reported.advance("generic.items", insert=5)
    reported.misbehave(PATH, "api_error", from_offset=200)
    result = sync_job("reported", instance)
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/connector"] == "reported"
    assert metadata["restsync/resource"] == "items"
    assert metadata["restsync/kind"] == "api_error" and metadata["restsync/transient"] is False
    assert "monthly quota exceeded for account acct-42" in metadata["restsync/detail"]
    assert "offset=200" in metadata["restsync/url"] and "api_key=***" in metadata["restsync/url"]
    assert "monthly quota exceeded" in message
    assert table_ids(restsync_home, "reported.items") == before, (
        "nothing of the failed run was loaded"
    )
    output = capfd.readouterr()
    assert_secret_nowhere(restsync_home, instance, output.out + output.err)


def test_a_body_that_stays_busy_fails_as_transient(reported, instance, tmp_path, monkeypatch):
    reported.misbehave(PATH, "busy_twice", from_offset=0)
    text = CONNECTOR.replace("max_retries: 3", "max_retries: 1")  # 2 attempts < 3 answers
    use_connector(tmp_path / "connectors", monkeypatch, reported, "reported", text)
    result = sync_job("reported", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "api_error" and metadata["restsync/transient"] is True
    assert "still reported an error after the retries" in metadata["restsync/detail"]
    assert "the report is being computed" in metadata["restsync/detail"]


def test_a_notice_body_is_ignored_and_ends_the_resource(reported, instance, restsync_home):
    reported.misbehave(PATH, "notice", from_offset=300)
    assert sync_job("reported", instance).success
    served = sorted(r["id"] for r in reported.expected_rows("generic", "items"))
    assert table_ids(restsync_home, "reported.items") == served[:300], "the pages before the notice"


def test_preview_applies_the_actions_and_writes_nothing(reported, restsync_home, capsys):
    reported.misbehave(PATH, "busy_twice", from_offset=0)
    assert main(["preview", "reported", "--pages", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tables"][0]["rows"] == 200
    assert SHAPE_SECRET not in json.dumps(result)
    assert not restsync_home.exists()


def test_a_refused_key_on_an_endpoint_with_actions_is_masked_everywhere(
    restsync_home, tmp_path, monkeypatch, start_demo_api, instance, capfd
):
    # dlt falls back to requests' raise_for_status when response_actions are set, whose message
    # holds the URL with the key (FACTS.md): restsync's masking by value still hides it.
    api = start_demo_api(api_keys={"*": "another-key"})
    use_connector(tmp_path / "connectors", monkeypatch, api, "reported", CONNECTOR)
    result = sync_job("reported", instance)
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/status"] == 401
    assert SHAPE_SECRET not in message + json.dumps(metadata, default=str)
    output = capfd.readouterr()
    assert_secret_nowhere(restsync_home, instance, output.out + output.err)
