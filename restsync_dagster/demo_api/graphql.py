"""A GraphQL-style endpoint for the demo API: ``POST /<vertical>/graphql/<collection>``.

The body is ``{"query": "...", "variables": {...}}``, paged the ways real GraphQL servers page.
The variables choose the page:

* ``first`` and ``after`` (a cursor ``c:<offset>``): a Relay-style cursor;
* ``page`` and ``perPage``: a page number from 0, as json-graphql-server's ``allItems(page:,
  perPage:)``;
* ``offset`` and ``limit``: as Hasura's and PostGraphile's lists;
* none of them: every record in one answer (a query with no pagination).

The query text chooses the answer's shape (it is otherwise not interpreted): its first field
names the root (``items``, ``allItems``), and

* a query selecting ``pageInfo`` gets a connection: ``{"<root>": {"nodes": [...], "pageInfo":
  {"endCursor": "c:200", "hasNextPage": true}, "totalCount": N}}``;
* one selecting ``nextCursor`` gets ``{"<root>": {"nodes": [...], "nextCursor": "c:200"}}``
  (a cursor outside ``pageInfo``, null on the last page);
* any other gets the list itself, ``{"<root>": [...]}``, with ``"_<root>Meta": {"count": N}``
  when the query selects ``_<root>Meta``.

A malformed body answers 400 with ``errors``, as GraphQL servers do. ``POST /_demo/misbehave
?path=/generic/graphql/items&mode=graphql_errors&from_offset=N`` adds ``errors`` to a 200 that
still holds the page's records (partial data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GRAPHQL_MISBEHAVIOURS = ("graphql_errors",)
MAX_FIRST = 1000
_ROOT = re.compile(r"\{\s*(?:\w+\s*:\s*)?(\w+)")


@dataclass(frozen=True)
class Request:
    """One GraphQL request: its root field, the window of records it asks for, and its shape."""

    root: str
    offset: int
    limit: int | None
    query: str


def parse_request(body: bytes) -> Request | str:
    """The request a GraphQL body makes, or what is wrong with it."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return "the body is not JSON"
    query = request.get("query") if isinstance(request, dict) else None
    root = _ROOT.search(query) if isinstance(query, str) else None
    if root is None or not isinstance(query, str):
        return "send {query, variables}; the query must select a field"
    variables = request.get("variables") or {}
    if not isinstance(variables, dict):
        return "variables must be an object"
    window = _window(variables, "pageInfo" in query or "nextCursor" in query)
    if isinstance(window, str):
        return window
    return Request(root.group(1), window[0], window[1], query)


def _window(variables: dict[str, Any], cursor_shape: bool) -> tuple[int, int | None] | str:
    def size(name: str, default: int) -> int | str:
        value = variables.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FIRST:
            return f"variables.{name} must be an integer in 1-{MAX_FIRST}"
        return value

    if "page" in variables or "perPage" in variables:
        per_page, page = size("perPage", 25), variables.get("page", 0)
        if isinstance(per_page, str):
            return per_page
        if isinstance(page, bool) or not isinstance(page, int) or page < 0:
            return "variables.page must be an integer from 0"
        return page * per_page, per_page
    if "offset" in variables or "limit" in variables:
        limit, offset = size("limit", 100), variables.get("offset", 0)
        if isinstance(limit, str):
            return limit
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            return "variables.offset must be an integer from 0"
        return offset, limit
    if not cursor_shape and "first" not in variables and "after" not in variables:
        return 0, None
    first, after = size("first", 100), variables.get("after")
    if isinstance(first, str):
        return first
    if after is None:
        return 0, first
    if not isinstance(after, str) or not after.startswith("c:") or not after[2:].isdigit():
        return f"unknown cursor {after!r}"
    return int(after[2:]), first


def connection(
    collection: str,
    body: bytes,
    page: Callable[[int, int | None], tuple[list[dict[str, Any]], int]],
    broken: tuple[str, int] | None,
) -> tuple[int, Any, dict[str, str]]:
    """The answer to one GraphQL request; ``page(offset, limit)`` gives rows and the total
    (``limit`` None: every row from ``offset``)."""
    parsed = parse_request(body)
    if isinstance(parsed, str):
        return 400, {"errors": [{"message": parsed}]}, {}
    rows, total = page(parsed.offset, parsed.limit)
    end = parsed.offset + len(rows)
    cursor = f"c:{end}" if rows else None
    data: dict[str, Any]
    if "pageInfo" in parsed.query:
        info = {"endCursor": cursor, "hasNextPage": end < total}
        data = {parsed.root: {"nodes": rows, "pageInfo": info, "totalCount": total}}
    elif "nextCursor" in parsed.query:
        data = {parsed.root: {"nodes": rows, "nextCursor": cursor if end < total else None}}
    else:
        data = {parsed.root: rows}
        if f"_{parsed.root}Meta" in parsed.query:
            data[f"_{parsed.root}Meta"] = {"count": total}
    answer: dict[str, Any] = {"data": data}
    if broken is not None and broken[0] == "graphql_errors" and parsed.offset >= broken[1]:
        answer["errors"] = [
            {"message": "field 'margin' is not accessible to this key", "path": [parsed.root]}
        ]
    return 200, answer, {}
