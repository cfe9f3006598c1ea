"""GraphQL resources: ``endpoint.graphql: {query, variables, connection}``.

A GraphQL API takes ``POST {query, variables}``. restsync expands the block into dlt's public
config, so dlt's own paginators page it by writing into the body's variables:

* ``method: POST`` and ``json: {query, variables}``, every brace of them doubled so that dlt's
  formatting of ``json`` (``{...}`` are dlt placeholders there) sends them as written;
* with ``connection: <field>``, a Relay connection: ``data_selector: data.<field>.nodes`` and
  dlt's ``cursor`` paginator (``JSONResponseCursorPaginator``) reading ``pageInfo.endCursor``
  into ``variables.after`` until ``pageInfo.hasNextPage`` is false;
* the endpoint's own ``paginator`` and ``data_selector`` win: dlt's ``page_number``
  (``page_body_path: variables.page``), ``offset`` (``offset_body_path``/``limit_body_path``,
  ``total_path: data._itemsMeta.count``) or ``cursor`` (``cursor_body_path``, a cursor outside
  ``pageInfo``); without one and without a connection, the query is sent once
  (``single_page``);
* a :class:`GraphQLErrorsHook` after the endpoint's own response actions: ``errors`` in a 200
  fail the run with :class:`~restsync_dagster.failures.errors.GraphQLErrors`, even when
  ``data`` holds records too (partial data).

What restsync adds to dlt's own route (``method: POST`` and a ``json`` body, which works too):
the query written as GraphQL, with single braces; the connection's paging in one word; and
``errors`` in a 200 as a named failure, where dlt would load the partial data as a success.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from requests import Response

from restsync_dagster.failures.errors import GraphQLErrors
from restsync_dagster.failures.redaction import redact_url


def literal(value: Any) -> Any:
    """``value`` with every brace of its strings doubled: dlt's formatting sends it as written."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, Mapping):
        return {literal(k): literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def relay_paginator(connection: str) -> dict[str, Any]:
    """dlt's cursor paginator over a Relay connection's ``pageInfo``."""
    page_info = f"data.{connection}.pageInfo"
    return {
        "type": "cursor",
        "cursor_path": f"{page_info}.endCursor",
        "cursor_body_path": "variables.after",
        "has_more_path": f"{page_info}.hasNextPage",
    }


class GraphQLErrorsHook:
    """A callable dlt response action: a 2xx whose body holds ``errors`` fails the resource."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def __call__(self, response: Response, *args: Any, **kwargs: Any) -> None:
        if not 200 <= response.status_code < 300:
            return
        try:
            body = response.json()
        except ValueError:
            return  # the page checks say the body is not JSON
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            return
        listed = errors if isinstance(errors, list) else [errors]
        words = "; ".join(_error_words(e) for e in listed[:3])
        if len(listed) > 3:
            words += f"; and {len(listed) - 3} more"
        raise GraphQLErrors(
            self.resource, redact_url(response.url or ""), words, _records(body.get("data"))
        )


def _error_words(error: Any) -> str:
    if not isinstance(error, Mapping):
        return " ".join(str(error).split())[:200]
    message = " ".join(str(error.get("message", error)).split())[:200]
    path = error.get("path")
    if isinstance(path, list) and path:
        message += f" (at {'.'.join(str(p) for p in path)})"
    return message


def _records(data: Any) -> int:
    """How many records a GraphQL ``data`` holds (lists anywhere in it), for the message."""
    if isinstance(data, list):
        return len(data)
    if isinstance(data, Mapping):
        return sum(_records(v) for v in data.values())
    return 0


def expand_graphql(resource: str, endpoint: dict[str, Any]) -> None:
    """Turn an endpoint's ``graphql`` block into dlt's config, in place (nothing without one)."""
    block = endpoint.pop("graphql", None)
    if not isinstance(block, Mapping):
        return
    endpoint["method"] = "POST"
    endpoint["json"] = literal({"query": block["query"], "variables": block.get("variables") or {}})
    connection = block.get("connection")
    if connection:
        endpoint.setdefault("data_selector", f"data.{connection}.nodes")
        endpoint.setdefault("paginator", relay_paginator(str(connection)))
    else:
        endpoint.setdefault("paginator", {"type": "single_page"})
    actions = [a for a in endpoint.get("response_actions") or []]
    endpoint["response_actions"] = [*actions, GraphQLErrorsHook(resource)]
