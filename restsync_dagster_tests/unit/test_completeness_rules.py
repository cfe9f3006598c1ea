"""``completeness:`` in a connector file, and how the checks read what an API says about its own
pages, whatever its field names: bad settings are one line with a suggestion, dlt never sees the
key, and echoed page sizes and next links are found in the shapes real APIs answer."""

import dataclasses

import pytest

from restsync_dagster.connector import ConnectorFileError, parse_connector
from restsync_dagster.connector.extensions import without_extensions
from restsync_dagster.extract.completeness import Checks, echoed_page_size, next_references

FILE = """
name: tracker
source:
  client: {base_url: "https://api.example.com", completeness: {page_size: false}}
  resources:
    - name: issues
      endpoint:
        path: /issues.json
        paginator: {type: offset, limit: 100, total_path: total_count}
        completeness: {totals: false}
"""
WHERE = "tracker.yaml: source.resources[0].endpoint.completeness"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(text, "tracker.yaml")
    return [str(dataclasses.replace(p, line=None)) for p in info.value.problems]


def test_completeness_settings_are_valid_and_hidden_from_dlt():
    connector = parse_connector(FILE, "tracker.yaml")
    source = without_extensions(connector.config.source)
    assert "completeness" not in source["client"]
    assert "completeness" not in source["resources"][0]["endpoint"]
    assert Checks.from_config(connector.resource("issues").endpoint["completeness"]) == Checks(
        totals=False
    )
    assert Checks.from_config(False) == Checks(False, False, False, False)


def test_a_misspelt_check_gets_a_did_you_mean():
    (problem,) = problems_of(FILE.replace("{totals: false}", "{next_link: false}"))
    assert problem.startswith(f"{WHERE}.next_link: unknown key (did you mean 'next_links'?)")


def test_a_check_takes_true_or_false_and_the_block_a_mapping_or_false():
    (problem,) = problems_of(FILE.replace("{totals: false}", "{totals: sometimes}"))
    assert problem == f"{WHERE}.totals: must be true or false, not 'sometimes'"
    (problem,) = problems_of(FILE.replace("{totals: false}", "relaxed"))
    assert problem.startswith(f"{WHERE}: write false, or a mapping such as {{totals: false")


@pytest.mark.parametrize(
    ("body", "limit_param", "echoed"),
    [
        ({"issues": [], "total_count": 350, "offset": 0, "limit": 100}, "limit", ("limit", 100)),
        ({"data": [], "meta": {"per_page": 50, "total": 900}}, "per_page", ("meta.per_page", 50)),
        ({"items": [], "pageSize": 20, "totalCount": 81}, "pageSize", ("pageSize", 20)),
        (
            {"records": [], "paging": {"max_results": "25"}},
            "max_results",
            ("paging.max_results", 25),
        ),
        ({"rows": [], "take": 40}, "take", ("take", 40)),  # the paginator's own limit_param
        (  # Confluence: size is the records of this page, limit the page size
            {"results": [], "size": 7, "start": 50, "limit": 25},
            "limit",
            ("limit", 25),
        ),
        ({"data": [], "total": 5}, "limit", None),
        ([{"id": 1}], "limit", None),
    ],
)
def test_an_echoed_page_size_is_found_whatever_the_api_calls_it(body, limit_param, echoed):
    assert echoed_page_size(body, limit_param) == echoed


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (  # Django REST framework
            {"count": 9, "next": "https://x.example/api/?page=2", "previous": None, "results": []},
            [("next", "https://x.example/api/?page=2")],
        ),
        (  # OData
            {"value": [], "@odata.nextLink": "https://x.example/odata/Items?$skip=100"},
            [("@odata.nextLink", "https://x.example/odata/Items?$skip=100")],
        ),
        (  # Graph-style paging object
            {"data": [], "paging": {"cursors": {"after": "QVFI"}, "next": "https://g.example/p2"}},
            [("paging.next", "https://g.example/p2")],
        ),
        (  # Datasette: the link before the token
            {"rows": [], "next": "100", "next_url": "http://d.example/t?_next=100"},
            [("next_url", "http://d.example/t?_next=100"), ("next", "100")],
        ),
        ({"items": [], "nextPageToken": "CAoQAA"}, [("nextPageToken", "CAoQAA")]),
        ({"data": [], "meta": {"next_cursor": "c2"}}, [("meta.next_cursor", "c2")]),
        (  # JSON:API-style links objects
            {"data": [], "links": {"next": {"href": "/v1/items?page=3"}}},
            [("links.next.href", "/v1/items?page=3")],
        ),
        ({"data": [], "next": None, "has_next": False}, []),
    ],
)
def test_next_links_and_cursors_are_found_in_the_shapes_real_apis_answer(body, found):
    assert list(next_references(body)) == found
