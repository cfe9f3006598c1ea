"""Failure messages that carry the answer, against the demo API on 127.0.0.1: what a 4xx's body
said (redacted, cut short), where the records are when a ``data_selector`` misses, and a server
that goes away in the middle of a sync told apart from a wrong address."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from threading import Thread

import pytest

from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import (
    SHAPE_SECRET,
    assert_no_secret_written,
    step_failure,
    sync_job,
    table_ids,
    use_connector,
)

PATH = "/generic/v1/items"


def connector(data_selector: str = "data", max_retries: int = 3) -> str:
    return f"""
name: told
retry: {{max_retries: {max_retries}, backoff_factor: 0.05, run_retries: 0}}
rate_limit: {{max_concurrency: 1}}
source:
  client:
    base_url: "{{{{ env.TOLD_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.TOLD_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint:
        path: {PATH}
        data_selector: {data_selector}
        paginator: {{type: offset, limit: 100}}
"""


@pytest.fixture
def told(restsync_home, tmp_path, monkeypatch, start_demo_api):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 500})
    use_connector(tmp_path / "connectors", monkeypatch, api, "told", connector())
    return api


def test_a_client_error_shows_what_the_api_said_redacted(told, instance, restsync_home, capfd):
    told.misbehave(PATH, "client_error", from_offset=200)
    result = sync_job("told", instance)
    assert not result.success
    message, metadata = step_failure(result)
    assert "the API answered HTTP 400" in message
    assert 'It answered: {"error": "no such column: limit"' in message, message
    body = metadata["restsync/response_body"]
    assert body.startswith('{"error": "no such column: limit"'), body
    assert '"session_token": "***"' in body, "a credential-named key is masked"
    assert "api_key=***" in body, "the key the API echoed in a URL is masked"
    assert "tok-echoed-5b1f" not in message + body
    assert SHAPE_SECRET not in message + body
    assert metadata["restsync/transient"] is False
    output = capfd.readouterr()
    assert SHAPE_SECRET not in output.out + output.err
    assert_no_secret_written(restsync_home, instance, SHAPE_SECRET)


def test_a_missed_data_selector_names_the_lists_of_records_first(
    told, instance, restsync_home, monkeypatch, tmp_path
):
    use_connector(tmp_path / "connectors", monkeypatch, told, "told", connector("row"))
    told.misbehave(PATH, "table_page", from_offset=0)
    result = sync_job("told", instance)
    assert not result.success
    message, metadata = step_failure(result)
    expected = (
        "the response has no 'row' (data_selector) (did you mean 'rows'?); "
        "lists of records in it: rows (100 records); other lists: columns (a list of "
    )
    assert expected in message, message
    assert metadata["restsync/kind"] == "bad_response"


def stop_after_pages(api: DemoApi, pages: int, then: Callable[[], None] = lambda: None) -> Thread:
    """Stop ``api`` (its port then refuses connections) once it has served ``pages`` pages of
    :data:`PATH`, then call ``then``; a thread, so the sync runs meanwhile."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while len(api.requests(PATH)) < pages and time.monotonic() < deadline:
            time.sleep(0.005)
        api.stop()
        then()

    thread = Thread(target=watch, daemon=True)
    thread.start()
    return thread


def slow_api(start_demo_api, **config) -> DemoApi:
    return start_demo_api(
        api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 5000}, latency_ms=20, **config
    )


def test_an_api_that_goes_away_mid_sync_is_transient_not_a_wrong_address(
    restsync_home, tmp_path, monkeypatch, start_demo_api, instance
):
    api = slow_api(start_demo_api)
    use_connector(tmp_path / "connectors", monkeypatch, api, "told", connector(max_retries=2))
    watcher = stop_after_pages(api, 5)
    result = sync_job("told", instance)
    watcher.join(timeout=10)
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "connection_error", message
    assert metadata["restsync/transient"] is True
    found = re.search(r"Connection refused at 127\.0\.0\.1:\d+ after (\d+) good answers", message)
    assert found and int(found.group(1)) >= 5, message
    assert "the API stopped answering mid-sync" in message
    assert "This looks transient" in message
    assert "TOLD_BASE_URL" not in message, "not sent to check an address that worked"


def test_connection_errors_mid_sync_are_retried_and_the_sync_loads_every_record(
    restsync_home, tmp_path, monkeypatch, start_demo_api, instance
):
    api = slow_api(start_demo_api)
    port, config = api.port, api.config
    restarted: list[DemoApi] = []
    text = connector().replace("backoff_factor: 0.05", "backoff_factor: 1")
    use_connector(tmp_path / "connectors", monkeypatch, api, "told", text)

    def come_back() -> None:
        time.sleep(0.5)
        restarted.append(DemoApi(replace(config, port=port)).start())

    watcher = stop_after_pages(api, 5, then=come_back)
    try:
        result = sync_job("told", instance)
        watcher.join(timeout=10)
        assert result.success, step_failure(result)[0]
        (back,) = restarted
        assert table_ids(restsync_home, "told.items") == sorted(
            r["id"] for r in back.expected_rows("generic", "items")
        )
        (materialization,) = result.asset_materializations_for_node("told_assets")
        assert materialization.metadata["http_transport_errors"].value >= 1
    finally:
        for server in restarted:
            server.stop()
