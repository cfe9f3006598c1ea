"""GraphQL resources: POST {query, variables}, paged the ways real GraphQL servers page (Relay
``pageInfo``, page numbers as json-graphql-server's ``allItems(page:, perPage:)``, offsets with a
total from the body, a cursor outside ``pageInfo``, one query), each loading exactly the API's
records; ``errors`` in a 200 fail the run even beside partial data; and dlt's own route
(``method: POST``, a ``json`` body with doubled braces and a dlt placeholder) syncs as dlt would."""

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

HEAD = """
name: graph
source:
  client:
    base_url: "{{ env.GRAPH_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.GRAPH_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint:
        path: /generic/graphql/items
"""
RELAY = """
        graphql:
          connection: items
          variables: {first: 100}
          query: |
            query Items($first: Int!, $after: String) {
              items(first: $first, after: $after) {
                nodes { id kind amount updated_at }
                pageInfo { endCursor hasNextPage }}}
"""
CONNECTOR = HEAD + RELAY
BY_PAGE = """
        data_selector: data.allItems
        paginator: {type: page_number, page_body_path: variables.page, base_page: 0, total_path: null}
        graphql:
          variables: {perPage: 100}
          query: |
            query AllItems($page: Int, $perPage: Int) {
              allItems(page: $page, perPage: $perPage) { id kind amount updated_at }
              _allItemsMeta(page: $page, perPage: $perPage) { count }}
"""
BY_PAGE_WITH_A_TOTAL_OF_RECORDS = BY_PAGE.replace(
    "total_path: null}", "page_size: 100, total_records_path: data._allItemsMeta.count}"
)
BY_OFFSET = """
        data_selector: data.items
        paginator:
          type: offset
          limit: 100
          offset_body_path: variables.offset
          limit_body_path: variables.limit
          total_path: data._itemsMeta.count
        graphql:
          query: |
            query Items($offset: Int, $limit: Int) {
              items(offset: $offset, limit: $limit) { id kind amount updated_at }
              _itemsMeta { count }}
"""
BY_CURSOR_OUTSIDE_PAGE_INFO = """
        data_selector: data.items.nodes
        paginator: {type: cursor, cursor_path: data.items.nextCursor, cursor_body_path: variables.after}
        graphql:
          variables: {first: 100}
          query: |
            query Items($first: Int, $after: String) {
              items(first: $first, after: $after) { nodes { id kind amount updated_at } nextCursor }}
"""
ONCE = """
        data_selector: data.items
        graphql:
          query: "{ items { id kind amount updated_at } }"
"""
#: dlt's own route: literal braces doubled as dlt requires, a dlt placeholder in the body.
DLT_ROUTE = """
        method: POST
        data_selector: data.allItems
        params: {filter: "{{'id': {{'gt': 0}}}}"}
        incremental: {cursor_path: updated_at, initial_value: "2020-01-01T00:00:00Z"}
        paginator: {type: page_number, page_body_path: variables.page, base_page: 0, total_path: null}
        json:
          query: "query AllItems($page: Int, $perPage: Int) {{ allItems(page: $page, perPage: $perPage) {{ id kind amount updated_at }} }}"
          variables: {perPage: 100, since: "{incremental.start_value}", note: "{{ env.GRAPH_NOTE | default('a {b}') }}"}
"""
PATH = "/generic/graphql/items"


@pytest.fixture
def graph(restsync_home, tmp_path, monkeypatch, start_demo_api):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 350})
    use_connector(tmp_path / "connectors", monkeypatch, api, "graph", CONNECTOR)
    return api


def test_a_graphql_connection_loads_exact_rows_twice_and_the_key_is_written_nowhere(
    graph, instance, restsync_home, capfd
):
    assert sync_job("graph", instance).success
    assert sync_job("graph", instance).success
    assert table_ids(restsync_home, "graph.items") == sorted(
        r["id"] for r in graph.expected_rows("generic", "items")
    )
    seen = graph.requests(PATH)
    assert {r.method for r in seen} == {"POST"} and len(seen) == 8, "4 pages, twice"
    output = capfd.readouterr()
    assert SHAPE_SECRET not in output.out + output.err
    assert_no_secret_written(restsync_home, instance, SHAPE_SECRET)


def test_errors_in_a_200_fail_even_with_partial_data_and_load_nothing(
    graph, instance, restsync_home
):
    assert sync_job("graph", instance).success
    graph.advance("generic.items", insert=4)
    graph.misbehave(PATH, "graphql_errors", from_offset=200)
    result = sync_job("graph", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert (metadata["restsync/connector"], metadata["restsync/resource"]) == ("graph", "items")
    assert metadata["restsync/kind"] == "api_error"
    assert (
        "the GraphQL API answered errors in a 200 beside 100 record(s) of partial data: field "
        "'margin' is not accessible to this key (at items); nothing of this answer was loaded"
    ) in metadata["restsync/detail"]
    assert len(table_ids(restsync_home, "graph.items")) == 350, (
        "the rows of the first sync, nothing more"
    )


def test_preview_of_a_graphql_resource_writes_nothing(graph, restsync_home, capsys):
    assert main(["preview", "graph", "--pages", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tables"][0]["rows"] == 200
    assert [(method, status) for method, _, status in result["requests"]] == [("POST", 200)] * 2
    assert SHAPE_SECRET not in json.dumps(result)
    assert not restsync_home.exists()


def test_validate_accepts_the_query_as_written(graph, capsys):
    assert main(["validate"]) == 0
    assert "graph" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "requests", "variables"),
    [
        (BY_PAGE, 5, [{"perPage": 100, "page": p} for p in range(5)]),
        (BY_PAGE_WITH_A_TOTAL_OF_RECORDS, 4, [{"perPage": 100, "page": p} for p in range(4)]),
        (BY_OFFSET, 4, [{"offset": o, "limit": 100} for o in (0, 100, 200, 300)]),
        (BY_CURSOR_OUTSIDE_PAGE_INFO, 4, [{"first": 100}] + [
            {"first": 100, "after": f"c:{o}"} for o in (100, 200, 300)
        ]),
        (ONCE, 1, [{}]),
    ],
    ids=["page_number_until_an_empty_page", "page_number_until_the_total_of_records",
         "offset_with_a_total_in_the_body",
         "cursor_outside_page_info", "a_single_query"],
)  # fmt: skip
def test_each_way_of_paging_loads_exactly_the_apis_records(
    body, requests, variables, restsync_home, tmp_path, monkeypatch, start_demo_api, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 350})
    use_connector(tmp_path / "connectors", monkeypatch, api, "graph", HEAD + body)
    assert sync_job("graph", instance).success
    assert table_ids(restsync_home, "graph.items") == sorted(
        r["id"] for r in api.expected_rows("generic", "items")
    )
    seen = api.requests(PATH)
    assert [r.method for r in seen] == ["POST"] * requests
    assert [r.body["variables"] for r in seen] == variables
    assert "{{" not in seen[0].body["query"] and "{ id kind" in seen[0].body["query"]


def test_dlts_own_route_with_doubled_braces_and_a_placeholder_syncs_as_dlt_would(
    restsync_home, tmp_path, monkeypatch, start_demo_api, instance, capsys
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 250})
    use_connector(tmp_path / "connectors", monkeypatch, api, "graph", HEAD + DLT_ROUTE)
    assert main(["validate", "graph"]) == 0, capsys.readouterr()
    assert sync_job("graph", instance).success
    assert table_ids(restsync_home, "graph.items") == sorted(
        r["id"] for r in api.expected_rows("generic", "items")
    )
    seen = api.requests(PATH)
    assert [r.body["variables"]["page"] for r in seen] == [0, 1, 2, 3]
    first = seen[0].body
    assert first["query"] == (
        "query AllItems($page: Int, $perPage: Int) { allItems(page: $page, perPage: $perPage) "
        "{ id kind amount updated_at } }"
    ), "dlt's doubled braces reach the API as single ones"
    assert first["variables"]["since"] == "2020-01-01T00:00:00Z", "dlt's placeholder, expanded"
    assert first["variables"]["note"] == "a {b}", "a restsync value, braces as written"
    assert seen[0].params["filter"] == "{'id': {'gt': 0}}", "a param's doubled braces, as dlt"


def test_pages_smaller_than_page_size_fail_instead_of_ending_with_records_unread(
    restsync_home, tmp_path, monkeypatch, start_demo_api, instance
):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 350})
    asks_fifty = BY_PAGE_WITH_A_TOTAL_OF_RECORDS.replace("perPage: 100", "perPage: 50")
    use_connector(tmp_path / "connectors", monkeypatch, api, "graph", HEAD + asks_fifty)
    result = sync_job("graph", instance)
    assert not result.success
    _, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "bad_response"
    assert (
        "the pages end with 200 of total_records=350 records (page 3 ends them): do the API's "
        "pages hold page_size=100 records?"
    ) in metadata["restsync/detail"]
