"""GraphQL resources: POST {query, variables}, paged by pageInfo, and ``errors`` in a 200 fail
the run even beside partial data."""

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
        graphql:
          connection: items
          variables: {first: 100}
          query: |
            query Items($first: Int!, $after: String) {
              items(first: $first, after: $after) {
                nodes { id kind amount updated_at }
                pageInfo { endCursor hasNextPage }}}
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
