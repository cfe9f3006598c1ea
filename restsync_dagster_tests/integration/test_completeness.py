"""Never "ok" with rows missing: a sync compares what the API told (a total, an echoed page size, a
next link) with what it read. Where restsync can still read everything it does, and says so
once; where it cannot, the resource fails naming the evidence, the page and the key to change.
Each situation is one an issue tracker or a Datasette instance put a new user in (issue 23)."""

from __future__ import annotations

import pytest

from restsync_dagster_tests.helpers import (
    SHAPE_SECRET,
    step_failure,
    sync_job,
    table_rows,
    use_connector,
    warehouse,
)

CONNECTOR = """
name: tracker
source:
  client:
    base_url: "{{{{ env.TRACKER_BASE_URL }}}}/generic"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.TRACKER_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: {path}, data_selector: {selector}, paginator: {paginator}{extra}}}
    - name: customers
      endpoint: {{path: /v1/customers, data_selector: data, paginator: {{type: offset, limit: 250}}}}
retry: {{max_retries: 1, backoff_factor: 0.01}}
"""
OFFSET_250 = "{type: offset, limit: 250}"


def write(
    directory, monkeypatch, api, paginator, path="/v1/items", selector="data", extra="", tail=""
):
    text = CONNECTOR.format(paginator=paginator, path=path, selector=selector, extra=extra) + tail
    use_connector(directory, monkeypatch, api, "tracker", text)


def logged(instance, result) -> list[str]:
    return [str(e.message) for e in instance.all_logs(result.run_id)]


def ids(home, table: str) -> list[int]:
    return [row["id"] for row in table_rows(home, f"tracker.{table}")]


def served_ids(api, collection: str, since: str | None = None) -> list[int]:
    return sorted(r["id"] for r in api.expected_rows("generic", collection, since=since))


def tables(home) -> set[str]:
    if not (home / "warehouse.duckdb").exists():
        return set()
    with warehouse(home) as con:
        found = con.execute(
            "select table_name from information_schema.tables where table_schema = 'tracker'"
        ).fetchall()
    return {name for (name,) in found if not name.startswith("_dlt")}


@pytest.fixture
def capped(start_demo_api):
    def start(echo: str | None, **more: object) -> object:
        return start_demo_api(
            **more,
            page_size_cap=100,
            page_size_echo=echo,
            api_keys={"*": SHAPE_SECRET},
            counts={"generic.items": 350, "generic.customers": 240},
        )

    return start


@pytest.mark.parametrize("echo", ["limit", "page_size"])
def test_a_capped_page_size_with_an_echoed_limit_loads_every_record_and_warns_once_naming_it(
    echo, capped, tmp_path, monkeypatch, restsync_home, instance
):
    api = capped(echo)
    write(tmp_path / "connectors", monkeypatch, api, OFFSET_250)

    result = sync_job("tracker", instance)

    assert result.success
    assert ids(restsync_home, "items") == served_ids(api, "items")  # 350, not 200
    assert ids(restsync_home, "customers") == served_ids(api, "customers")  # 240, not 100
    for resource in ("items", "customers"):
        warnings = [m for m in logged(instance, result) if "serves at most 100" in m]
        mine = [m for m in warnings if f"resource {resource!r}" in m]
        assert len(mine) == 1, warnings
        assert f"{echo}=100 to limit=250" in mine[0] and "limit: 100" in mine[0], mine[0]
    asked = [r.params["limit"] for r in api.requests("/generic/v1/items")]
    assert asked == ["250", "100", "100", "100"], "asks for what the API serves once it said so"


@pytest.mark.parametrize(
    "paginator", [OFFSET_250, "{type: offset, limit: 250, total_path: null}"], ids=["total", "none"]
)
def test_a_capped_page_size_without_an_echo_loads_every_record_and_says_so(
    paginator, capped, tmp_path, monkeypatch, restsync_home, instance
):
    api = capped(None)
    write(tmp_path / "connectors", monkeypatch, api, paginator)

    result = sync_job("tracker", instance)

    assert result.success, step_failure(result)[0]
    assert ids(restsync_home, "items") == served_ids(api, "items")
    assert ids(restsync_home, "customers") == served_ids(api, "customers")
    (warning,) = [m for m in logged(instance, result) if "resource 'items'" in m and "at most" in m]
    assert "page 1 held 100 records for limit=250" in warning and "limit: 100" in warning


def test_a_capped_page_size_with_its_correction_turned_off_fails_naming_the_page_size(
    capped, tmp_path, monkeypatch, restsync_home, instance
):
    api = capped(None)
    off = ", completeness: {page_size: false}"
    write(tmp_path / "connectors", monkeypatch, api, OFFSET_250, extra=off)

    result = sync_job("tracker", instance)

    assert not result.success
    message, metadata = step_failure(result)
    assert "page 1 holds 100 records where the API serves 250 a page" in message, message
    assert "total=350 leaves 250 more; page 2 holds records again" in message, message
    assert metadata["restsync/kind"] == "incomplete_read", metadata


def test_a_capped_page_size_loads_every_record_with_pages_fetched_ahead(
    capped, tmp_path, monkeypatch, restsync_home, instance
):
    api = capped(None, latency_ms=25)
    tail = "rate_limit: {max_concurrency: 4}\n"
    write(tmp_path / "connectors", monkeypatch, api, OFFSET_250, tail=tail)

    assert sync_job("tracker", instance).success
    assert ids(restsync_home, "items") == served_ids(api, "items")
    assert ids(restsync_home, "customers") == served_ids(api, "customers")
    offsets = sorted(int(r.params["offset"]) for r in api.requests("/generic/v1/items"))
    assert offsets == [0, 100, 200, 300], "each page once, stepped by what the API serves"
    assert api.stats()["max_in_flight"] > 1, "the pages after the first were fetched ahead"


@pytest.mark.parametrize(
    ("first_short", "says"),
    [
        (200, "page 3 holds 50 records where the API serves 100 a page, and total=420 leaves "
         "170 more; page 4 holds records again"),
        (400, "page 5 holds 10 records where the API serves 100 a page, and total=420 leaves "
         "10 more; the pages ended there"),
    ],
    ids=["between", "last"],
)  # fmt: skip
def test_a_short_page_before_the_total_fails_naming_the_page(
    first_short, says, start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 420})
    write(tmp_path / "connectors", monkeypatch, api, "{type: offset, limit: 100}")
    api.misbehave("/generic/v1/items", "short_page", from_offset=first_short)

    result = sync_job("tracker", instance)

    assert not result.success
    message, metadata = step_failure(result)
    assert "resource 'items'" in message, message
    assert says in message and f"offset {first_short}" in message, message
    assert "completeness: {totals: false}" in message, message
    assert metadata["restsync/kind"] == "incomplete_read", metadata
    assert "items" not in tables(restsync_home), "nothing of the resource was loaded"


def test_single_page_on_a_body_with_a_next_link_fails_naming_the_paginator_key(
    start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 2345})
    write(tmp_path / "connectors", monkeypatch, api, "single_page", "/links/items", "rows")

    result = sync_job("tracker", instance)

    assert not result.success
    message, metadata = step_failure(result)
    assert "resource 'items'" in message and "paginator mistake" in message, message
    assert "'next_url' in the response body holds a next link" in message, message
    assert "{type: single_page}" in message, message
    assert "{type: json_link, next_url_path: next_url}" in message, message
    assert metadata["restsync/kind"] == "invalid_config", metadata
    assert "items" not in tables(restsync_home)


def test_the_next_link_check_can_be_turned_off_for_an_api_whose_links_lie(
    start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 2345})
    off = ", completeness: {next_links: false}"
    write(tmp_path / "connectors", monkeypatch, api, "single_page", "/links/items", "rows", off)

    result = sync_job("tracker", instance)

    assert result.success
    assert len(ids(restsync_home, "items")) == 100, "one page, as the file asks"


def test_json_link_on_the_wrong_field_names_the_paginator(
    start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 2345})
    paginator = "{type: json_link, next_url_path: next}"
    write(tmp_path / "connectors", monkeypatch, api, paginator, "/links/items", "rows")

    result = sync_job("tracker", instance)

    assert not result.success
    message, _ = step_failure(result)
    assert "paginator mistake" in message and "next_url_path 'next' holds '100'" in message
    assert "set next_url_path: next_url" in message, message
    assert "check 'path' and 'base_url'" not in message, message
    assert [r.path for r in api.requests("/generic/links")] == ["/generic/links/items"], (
        "the token was never requested as a URL"
    )


def test_json_link_on_the_right_field_loads_every_record(
    start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 2345})
    paginator = "{type: json_link, next_url_path: next_url}"
    write(tmp_path / "connectors", monkeypatch, api, paginator, "/links/items", "rows")

    assert sync_job("tracker", instance).success
    assert ids(restsync_home, "items") == served_ids(api, "items")


def test_page_number_against_a_link_paged_api_is_not_ok_with_zero_rows(
    start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 2345})
    write(tmp_path / "connectors", monkeypatch, api, "{type: page_number}", "/links/items", "rows")

    result = sync_job("tracker", instance)

    assert not result.success
    message, metadata = step_failure(result)
    assert "paginator mistake" in message and "page 1 (page=0) was empty" in message, message
    assert "without 'page' answers 100 records" in message, message
    assert "{type: page_number}" in message, message
    assert "{type: json_link, next_url_path: next_url}" in message, message
    assert metadata["restsync/kind"] == "invalid_config", metadata


def test_incremental_with_an_operator_in_value_placeholder_loads_exactly_the_filtered_rows(
    capped, tmp_path, monkeypatch, restsync_home, instance
):
    api = capped(None)  # the filtered total, not the collection's, tells where the pages end
    start = "2026-01-02T00:00:00Z"
    extra = (
        ', params: {updated_on: ">={incremental.start_value}"}, incremental: '
        f'{{cursor_path: updated_at, initial_value: "{start}"}}'
    )
    write(tmp_path / "connectors", monkeypatch, api, OFFSET_250, extra=extra)
    filtered = served_ids(api, "items", since=start)
    assert 0 < len(filtered) < 350 and len(filtered) > 100

    assert sync_job("tracker", instance).success
    assert ids(restsync_home, "items") == filtered
    sent = {r.params["updated_on"] for r in api.requests("/generic/v1/items")}
    assert sent == {f">={start}"}

    api.advance("generic.items", insert=5, update=20, hours=2)
    api.reset_log()
    assert sync_job("tracker", instance).success
    assert ids(restsync_home, "items") == served_ids(api, "items", since=start)
    (later,) = {r.params["updated_on"] for r in api.requests("/generic/v1/items")}
    assert later.startswith(">=") and later > f">={start}", "the second sync asks from its cursor"


def test_a_windowed_sync_of_a_capped_api_loads_every_record_once_against_each_windows_total(
    start_demo_api, tmp_path, monkeypatch, restsync_home, instance
):
    from restsync_dagster_tests.integration.test_windows import (
        orders_in_the_last_days,
        windowed_connector,
    )

    api = start_demo_api(
        api_keys={"*": SHAPE_SECRET},
        counts={"ecommerce.orders": 0},
        page_size_cap=10,
        page_size_echo=None,
    )
    initial = orders_in_the_last_days(api, 120)
    text = windowed_connector(initial, "1d", limit=25)  # appended: a record read twice shows
    use_connector(tmp_path / "connectors", monkeypatch, api, "shop", text)

    result = sync_job("shop", instance)

    assert result.success, step_failure(result)[0]
    expected = sorted(r["id"] for r in api.expected_rows("ecommerce", "orders"))
    assert sorted(r["id"] for r in table_rows(restsync_home, "shop.orders")) == expected
    windows = {r.params["updated_since"] for r in api.requests("/ecommerce/v1/orders")}
    assert len(windows) == 5, "each window paged against its own filtered total"
