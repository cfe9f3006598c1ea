"""A graphql block becomes dlt's own config with the same meaning: dlt's formatting of the body
gives back the query and variables as written, and errors in a 200 are a named failure."""

from __future__ import annotations

import json

import pytest
import requests
from dlt.sources.rest_api.config_setup import expand_placeholders

from restsync_dagster.extract.graphql import GraphQLErrorsHook, expand_graphql, literal
from restsync_dagster.failures.errors import ApiBodyError, GraphQLErrors

QUERY = 'query($after: String) { items(after: $after, where: {kind: {_eq: "a}"}}) { id } }'


def test_dlts_own_formatting_of_the_expanded_body_sends_the_query_and_variables_as_written():
    variables = {"first": 50, "filter": "{x}", "nested": [{"k": "{{ y }}"}]}
    endpoint = {"path": "/graphql", "graphql": {"query": QUERY, "variables": variables}}
    endpoint["data_selector"] = "data.items"
    expand_graphql("items", endpoint)
    sent = expand_placeholders(endpoint["json"], {}, preserve_value_type=True)
    assert sent == {"query": QUERY, "variables": variables}
    assert endpoint["method"] == "POST" and endpoint["paginator"] == {"type": "single_page"}


def test_a_relay_connection_is_dlts_cursor_paginator_on_page_info():
    endpoint = {"graphql": {"query": QUERY, "connection": "repository.issues"}}
    expand_graphql("issues", endpoint)
    assert endpoint["data_selector"] == "data.repository.issues.nodes"
    assert endpoint["paginator"] == {
        "type": "cursor",
        "cursor_path": "data.repository.issues.pageInfo.endCursor",
        "cursor_body_path": "variables.after",
        "has_more_path": "data.repository.issues.pageInfo.hasNextPage",
    }


def test_literal_doubles_every_brace_of_strings_and_keys_and_keeps_other_values():
    assert literal({"{a}": ["}", 1, None, {"b": "{{"}]}) == {
        "{{a}}": ["}}", 1, None, {"b": "{{{{"}]
    }


def answer(body: object, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "http://127.0.0.1/graphql?api_key=SECRET"
    response._content = json.dumps(body).encode()
    return response


def test_errors_beside_partial_data_are_a_named_failure_with_the_apis_words_and_paths():
    errors = [
        {"message": "field 'margin' is not accessible", "path": ["items", 3, "margin"]},
        {"message": "second"},
        {"message": "third"},
        {"message": "fourth"},
    ]
    body = {"data": {"items": [{"id": 1}, {"id": 2}]}, "errors": errors}
    with pytest.raises(GraphQLErrors) as info:
        GraphQLErrorsHook("items")(answer(body))
    error = info.value
    assert isinstance(error, ApiBodyError) and error.kind == "api_error" and not error.transient
    assert error.partial_records == 2 and error.url == "http://127.0.0.1/graphql?api_key=***"
    assert error.problem == (
        "the GraphQL API answered errors in a 200 beside 2 record(s) of partial data: field "
        "'margin' is not accessible (at items.3.margin); second; third; and 1 more; nothing of "
        "this answer was loaded"
    )


def test_errors_with_no_data_fail_too_and_an_answer_without_errors_passes():
    with pytest.raises(GraphQLErrors, match="in a 200 and no data: denied"):
        GraphQLErrorsHook("items")(answer({"data": None, "errors": [{"message": "denied"}]}))
    GraphQLErrorsHook("items")(answer({"data": {"items": []}, "errors": []}))
    GraphQLErrorsHook("items")(answer({"errors": [{"message": "x"}]}, status=400))
