"""``restsync init`` on four published OpenAPI documents (see ``data/openapi/README.md``).

Each test first states what a person reading the document would choose (resources, paginator,
data selector, auth), then checks that the generated file says the same and is a valid connector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from restsync_dagster.connector import parse_connector
from restsync_dagster.openapi import generate

DOCUMENTS = Path(__file__).resolve().parents[1] / "data" / "openapi"


def generated(document: str, name: str) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
    """The generation, the file as data, and its resources by name; the file must validate."""
    result = generate(str(DOCUMENTS / document), name)
    parse_connector(result.text, f"{name}.yaml")
    data = yaml.safe_load(result.text)
    return result, data, {r["name"]: r for r in data["source"]["resources"]}


def uncomment_incremental(text: str) -> str:
    """``text`` with its proposed ``incremental:`` blocks turned on, as a person would."""
    lines, inside = [], False
    for line in text.splitlines():
        if line == "        # incremental:":
            inside = True
            lines.append("        incremental:")
        elif inside and line.startswith("        #   "):
            lines.append("          " + line[len("        #   ") :])
        else:
            inside = False
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_giphy_swagger2_pages_by_offset_with_the_total_in_pagination_and_sends_the_key_in_the_query():
    # A reader sees: trending GIFs and stickers page with offset/limit (default 25) and report
    # pagination.total_count; the search endpoints need a query `q` nobody can guess; single-GIF
    # endpoints return one object; the key is `api_key` in the query.
    result, data, resources = generated("giphy-swagger2.yaml", "giphy")
    assert set(resources) == {"gifs", "gifs_trending", "stickers_trending"}
    trending = resources["gifs_trending"]["endpoint"]
    assert trending["path"] == "/gifs/trending"
    assert trending["data_selector"] == "data"
    assert trending["paginator"] == {
        "type": "offset",
        "limit": 25,
        "offset_param": "offset",
        "limit_param": "limit",
        "total_path": "pagination.total_count",
    }
    assert resources["gifs_trending"]["primary_key"] == "id"
    assert resources["gifs_trending"]["columns"]["create_datetime"] == {"data_type": "timestamp"}
    assert data["source"]["client"]["auth"] == {
        "type": "api_key",
        "name": "api_key",
        "location": "query",
        "api_key": "{{ env.GIPHY_API_KEY }}",
    }
    assert data["source"]["client"]["base_url"] == (
        "{{ env.GIPHY_BASE_URL | default('https://api.giphy.com/v1') }}"
    )
    skipped = dict(result.skipped)
    assert "needs the query parameter 'q'" in skipped["/gifs/search"]
    assert skipped["/gifs/{gifId}"] == "returns a single object, not a list"
    assert skipped["/gifs/random"] == "returns a single object, not a list"
    assert result.env_vars == ["GIPHY_BASE_URL", "GIPHY_API_KEY"]


def test_hubspot_events_follow_the_after_cursor_and_propose_occurred_after_as_incremental():
    # A reader sees: results in `results`, the next cursor at paging.next.after sent back as
    # `after`; the private-app key in a header is the scheme a sync can use; occurredAfter
    # filters on occurredAt.
    result, data, resources = generated("hubspot-events-v3.yaml", "hubspot")
    assert list(resources) == ["events"]
    endpoint = resources["events"]["endpoint"]
    assert endpoint["data_selector"] == "results"
    assert endpoint["paginator"] == {
        "type": "cursor",
        "cursor_path": "paging.next.after",
        "cursor_param": "after",
    }
    assert endpoint["params"] == {"limit": 100}
    assert data["source"]["client"]["auth"]["name"] == "private-app-legacy"
    assert data["source"]["client"]["auth"]["location"] == "header"
    assert resources["events"]["columns"]["occurredAt"] == {
        "data_type": "timestamp",
        "nullable": False,
    }
    # The incremental block is a proposal: written commented out, valid once uncommented.
    assert "incremental" not in endpoint
    assert "        # incremental:\n        #   start_param: occurredAfter\n" in result.text
    uncommented = uncomment_incremental(result.text)
    incremental = yaml.safe_load(uncommented)["source"]["resources"][0]["endpoint"]["incremental"]
    assert incremental == {
        "start_param": "occurredAfter",
        "end_param": "occurredBefore",
        "cursor_path": "occurredAt",
        "initial_value": "1970-01-01T00:00:00Z",
    }
    parse_connector(uncommented, "hubspot.yaml")


def test_twilio_events_follow_the_next_page_url_use_basic_auth_and_read_subscribed_events_per_subscription():
    # A reader sees: each list wraps its records under its own key (sinks, subscriptions,
    # types) with meta.next_page_url; PageSize goes up to 1000; the account SID and auth token
    # are HTTP basic credentials; subscribed events are listed per subscription SID; schema
    # versions need a schema id no list endpoint gives.
    result, data, resources = generated("twilio-events-v1.yaml", "twilio")
    assert list(resources) == ["sinks", "subscriptions", "subscribed_events", "types"]
    for name, selector in [
        ("sinks", "sinks"),
        ("subscriptions", "subscriptions"),
        ("types", "types"),
    ]:
        endpoint = resources[name]["endpoint"]
        assert endpoint["data_selector"] == selector
        assert endpoint["paginator"] == {"type": "json_link", "next_url_path": "meta.next_page_url"}
        assert endpoint["params"] == {"PageSize": 1000}
    child = resources["subscribed_events"]["endpoint"]
    assert child["path"] == "/v1/Subscriptions/{resources.subscriptions.sid}/SubscribedEvents"
    assert child["data_selector"] == "types"
    assert resources["sinks"]["primary_key"] == "sid"
    # Event types have no key field: a full read replaces the table.
    assert resources["types"]["write_disposition"] == "replace"
    assert data["source"]["client"]["auth"] == {
        "type": "http_basic",
        "username": "{{ env.TWILIO_USERNAME }}",
        "password": "{{ env.TWILIO_PASSWORD }}",
    }
    assert "no list endpoint provides it" in dict(result.skipped)["/v1/Schemas/{Id}/Versions"]
    assert result.env_vars == ["TWILIO_BASE_URL", "TWILIO_USERNAME", "TWILIO_PASSWORD"]


def test_petstore_reads_its_two_pet_lists_in_one_page_with_the_api_key_instead_of_oauth2_implicit():
    # A reader sees: findByStatus and findByTags return a bare array of Pets with no paging;
    # they ask for OAuth2 implicit, which a server-side sync cannot do, but the document's
    # api_key header works; the server URL /v3 is relative, so the base URL must be set.
    result, data, resources = generated("petstore-v3.yaml", "petstore")
    assert list(resources) == ["find_by_status", "find_by_tags"]
    for resource in resources.values():
        assert resource["endpoint"]["data_selector"] == "$"
        assert resource["endpoint"]["paginator"] == {"type": "single_page"}
        assert resource["primary_key"] == "id"
    assert data["source"]["client"]["auth"]["location"] == "header"
    assert "petstore_auth, which a sync cannot use" in result.text
    assert data["source"]["client"]["base_url"] == "{{ env.PETSTORE_BASE_URL }}"
    skipped = dict(result.skipped)
    assert skipped["/store/inventory"] == "returns a map of values, not a list of records"
    assert skipped["/user/login"] == "returns a string, not a list of records"
    assert skipped["/user/logout"] == "declares no response body"
    assert any("relative" in note for note in result.notes)
