"""``restsync preview``: columns, samples and requests of a connector's first pages; nothing written."""

from __future__ import annotations

import json

from restsync_dagster.cli import main


def test_preview_shows_discovered_columns_samples_and_requests_and_writes_nothing(
    demo_env, restsync_home, capsys
):
    assert main(["preview", "database", "--pages", "1"]) == 0
    out = capsys.readouterr().out
    assert "table records (300 rows read)" in out, "one page of each of the three databases"
    assert "amount                       decimal    not null" in out
    assert "archived_at                  timestamp  nullable" in out
    assert "sample: {" in out
    assert "/database/v1/databases/1/records?offset=0&limit=100&api_key=***" in out
    assert "demo-database-key" not in out
    assert out.rstrip().endswith("Nothing was written.")
    assert not restsync_home.exists(), "no warehouse, no pipeline state, no lock file"
    pages = [r for r in demo_env.requests("/database/v1/databases/") if r.path.endswith("/records")]
    assert len(pages) == 3 and {r.params["offset"] for r in pages} == {"0"}


def test_preview_json_of_one_resource_over_two_pages(demo_env, restsync_home, capsys):
    assert main(["preview", "analytics", "--resource", "events", "--pages", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (table,) = result["tables"]
    assert table["name"] == "events" and table["rows"] == 200
    assert ["id", "bigint", False] in table["columns"]
    assert [(method, status) for method, _, status in result["requests"]] == [
        ("GET", 200),
        ("GET", 200),
    ]
    assert not restsync_home.exists()


def test_preview_of_an_unknown_resource_names_the_known_ones(demo_env, capsys):
    assert main(["preview", "analytics", "--resource", "clicks"]) == 2
    assert "has no resource 'clicks'; resources: events, sessions" in capsys.readouterr().err


def test_preview_with_a_wrong_key_reports_the_401_without_the_key(demo_env, monkeypatch, capsys):
    monkeypatch.setenv("GENERIC_API_KEY", "wrong-preview-key-123")
    assert main(["preview", "generic"]) == 1
    err = capsys.readouterr().err
    assert "the API answered HTTP 401" in err and "wrong-preview-key-123" not in err
