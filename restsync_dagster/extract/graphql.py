"""GraphQL resources: ``endpoint.graphql: {query, variables, connection}``.

A GraphQL API takes ``POST {query, variables}`` and answers a connection: ``data.<connection>``
holds ``nodes`` and ``pageInfo {endCursor hasNextPage}``. dlt's rest_api can express most of it
(``method: POST``, ``json``, a cursor paginator with ``cursor_body_path``), but dlt reads every
``{...}`` in ``json`` as a placeholder, and a query is made of braces. So restsync expands the
block itself into dlt's public config, with the query kept out of it:

* ``method: POST``, ``data_selector: data.<connection>.nodes``;
* a :class:`GraphQLPaginator`: dlt's ``JSONResponseCursorPaginator`` (``endCursor`` into
  ``variables.after``, ``hasNextPage`` as its has-more) that also sets the request's body;
* a response action ``{json_path: errors, action: fail, message_path: "errors[0].message"}``
  (:mod:`restsync_dagster.extract.body_actions`): ``errors`` in a 200 fail the run with the
  API's message, even when ``data`` holds nodes too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from requests import Request

ERRORS_ACTION = {"json_path": "errors", "action": "fail", "message_path": "errors[0].message"}


class GraphQLPaginator(JSONResponseCursorPaginator):
    """Cursor paging over a GraphQL connection; the first request gets the query as its body."""

    def __init__(self, query: str, variables: Mapping[str, Any], connection: str) -> None:
        page_info = f"data.{connection}.pageInfo"
        super().__init__(
            cursor_path=f"{page_info}.endCursor",
            cursor_body_path="variables.after",
            has_more_path=f"{page_info}.hasNextPage",
        )
        self.query = query
        self.variables = dict(variables)

    def init_request(self, request: Request) -> None:
        request.method = "POST"
        request.json = {"query": self.query, "variables": copy.deepcopy(self.variables)}
        super().init_request(request)


def expand_graphql(endpoint: dict[str, Any]) -> None:
    """Turn an endpoint's ``graphql`` block into dlt's config, in place (nothing without one)."""
    block = endpoint.pop("graphql", None)
    if not isinstance(block, Mapping):
        return
    connection = str(block["connection"])
    endpoint["method"] = "POST"
    endpoint.setdefault("data_selector", f"data.{connection}.nodes")
    endpoint["paginator"] = GraphQLPaginator(
        str(block["query"]), block.get("variables") or {}, connection
    )
    endpoint["response_actions"] = [*(endpoint.get("response_actions") or []), ERRORS_ACTION]
