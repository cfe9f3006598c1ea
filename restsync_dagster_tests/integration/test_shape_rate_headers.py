"""Proactive rate limits: with ``rate_limit.from_headers`` the budget the API's headers tell is
spent locally and the sync never meets a 429; without it, the same API refuses some requests."""

from __future__ import annotations

import json

import pytest

from restsync_dagster.cli import main
from restsync_dagster_tests.helpers import (
    SHAPE_SECRET,
    assert_no_secret_written,
    sync_job,
    table_ids,
    use_connector,
)

CONNECTOR = """
name: budgeted
rate_limit: {{max_concurrency: 2, from_headers: {from_headers}}}
retry: {{max_retries: 6, backoff_factor: 0.1}}
source:
  client:
    base_url: "{{{{ env.BUDGETED_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.BUDGETED_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: /generic/v1/items, data_selector: data, paginator: {{type: offset, limit: 50}}}}
"""
RECORDS = 1000  # 20 pages and the empty one: more than a window's budget of 8


@pytest.fixture
def budgeted(restsync_home, tmp_path, monkeypatch, start_demo_api):
    def start(from_headers: bool, style: str):
        api = start_demo_api(
            api_keys={"*": SHAPE_SECRET},
            counts={"generic.items": RECORDS},
            rate_limit=8,
            rate_window_seconds=1.0,
            rate_headers=style,
        )
        text = CONNECTOR.format(from_headers=str(from_headers).lower())
        use_connector(tmp_path / "connectors", monkeypatch, api, "budgeted", text)
        return api

    return start


@pytest.mark.parametrize("style", ["x", "ietf", "ietf8"])
def test_honouring_the_headers_meets_no_429(budgeted, instance, restsync_home, style):
    api = budgeted(from_headers=True, style=style)
    assert sync_job("budgeted", instance).success
    assert "429" not in api.stats()["status_counts"], api.stats()
    assert table_ids(restsync_home, "budgeted.items") == sorted(
        r["id"] for r in api.expected_rows("generic", "items")
    )


def test_without_the_headers_the_api_refuses_some_requests(budgeted, instance, restsync_home):
    api = budgeted(from_headers=False, style="x")
    assert sync_job("budgeted", instance).success, "dlt's retries still heal the 429s"
    assert api.stats()["status_counts"].get("429", 0) > 0, api.stats()
    assert len(table_ids(restsync_home, "budgeted.items")) == RECORDS


def test_a_second_sync_is_idempotent_and_the_key_is_written_nowhere(
    budgeted, instance, restsync_home, capfd
):
    api = budgeted(from_headers=True, style="x")
    assert sync_job("budgeted", instance).success
    # A run learns the budget from its first answer: one that starts in a window the last run
    # spent meets at most that first 429 (and waits as told).
    assert sync_job("budgeted", instance).success
    assert api.stats()["status_counts"].get("429", 0) <= 1, api.stats()
    served = sorted(r["id"] for r in api.expected_rows("generic", "items"))
    assert table_ids(restsync_home, "budgeted.items") == served
    output = capfd.readouterr()
    assert SHAPE_SECRET not in output.out + output.err
    assert_no_secret_written(restsync_home, instance, SHAPE_SECRET)


def test_preview_spends_the_budget_too_and_writes_nothing(budgeted, restsync_home, capsys):
    api = budgeted(from_headers=True, style="ietf8")
    assert main(["preview", "budgeted", "--pages", "12", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tables"][0]["rows"] == 600
    assert "429" not in api.stats()["status_counts"]
    assert SHAPE_SECRET not in json.dumps(result)
    assert not restsync_home.exists()
