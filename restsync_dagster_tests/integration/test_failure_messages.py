"""Failure messages that carry the answer, against the demo API on 127.0.0.1: what a 4xx's body
said (redacted, cut short), where the records are when a ``data_selector`` misses, and a server
that goes away in the middle of a sync told apart from a wrong address."""

from __future__ import annotations

import pytest

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
