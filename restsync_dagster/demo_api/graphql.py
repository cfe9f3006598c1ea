"""A GraphQL-style endpoint for the demo API: ``POST /<vertical>/graphql/<collection>``.

The body is ``{"query": "...", "variables": {"first": N, "after": CURSOR}}``; the query text
must ask for ``pageInfo`` and is otherwise not interpreted. The answer is a connection::

    {"data": {"<collection>": {"nodes": [...],
                               "pageInfo": {"endCursor": "c:200", "hasNextPage": true}}}}

A malformed body answers 400 with ``errors``, as GraphQL servers do. ``POST /_demo/misbehave
?path=/generic/graphql/items&mode=graphql_errors&from_offset=N`` adds ``errors`` to a 200 that
still holds the page's nodes (partial data).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

GRAPHQL_MISBEHAVIOURS = ("graphql_errors",)
MAX_FIRST = 1000


def parse_request(body: bytes) -> tuple[int, int] | str:
    """``(offset, first)`` from a GraphQL request body, or what is wrong with it."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return "the body is not JSON"
    if not isinstance(request, dict) or "pageInfo" not in str(request.get("query", "")):
        return "send {query, variables}; the query must select pageInfo"
    variables = request.get("variables") or {}
    after = variables.get("after")
    first = variables.get("first", 100)
    if not isinstance(first, int) or not 1 <= first <= MAX_FIRST:
        return f"variables.first must be an integer in 1-{MAX_FIRST}"
    if after is None:
        return 0, first
    if not isinstance(after, str) or not after.startswith("c:") or not after[2:].isdigit():
        return f"unknown cursor {after!r}"
    return int(after[2:]), first


def connection(
    collection: str,
    body: bytes,
    page: Callable[[int, int], tuple[list[dict[str, Any]], int]],
    broken: tuple[str, int] | None,
) -> tuple[int, Any, dict[str, str]]:
    """The answer to one GraphQL request; ``page(offset, limit)`` gives rows and the total."""
    parsed = parse_request(body)
    if isinstance(parsed, str):
        return 400, {"errors": [{"message": parsed}]}, {}
    offset, first = parsed
    rows, total = page(offset, first)
    end = offset + len(rows)
    answer: dict[str, Any] = {
        "data": {
            collection: {
                "nodes": rows,
                "pageInfo": {"endCursor": f"c:{end}" if rows else None, "hasNextPage": end < total},
            }
        }
    }
    if broken is not None and broken[0] == "graphql_errors" and offset >= broken[1]:
        answer["errors"] = [
            {"message": "field 'margin' is not accessible to this key", "path": [collection]}
        ]
    return 200, answer, {}
