"""Broken answers the demo API can give on purpose, to prove restsync refuses them cleanly.

Switched per collection path and first offset (``POST /_demo/misbehave?path=...&mode=...``).
"""

from __future__ import annotations

import json
from typing import Any

#: Every way a collection can be told to break its contract.
MISBEHAVIOURS = (
    "non_json",        # 200, a body that is not JSON
    "html",            # 200, an HTML error page
    "missing_data",    # 200, JSON without the "data" key
    "data_not_list",   # 200, "data" is an object
    "missing_pk",      # records without "id"
    "duplicate_pk",    # the page's first record twice
    "truncated",       # Content-Length promises more than is sent, then the connection closes
    "invalid_utf8",    # a JSON body with bytes that are not UTF-8
    "unknown_charset", # a JSON body whose Content-Type names a charset that does not exist
    "total_high",      # "total" claims 1000 more records than exist
    "total_low",       # "total" claims 150 fewer records than are served
    "same_page",       # every offset gets the first page: a paginator without total loops
    "stall",           # half the body, then silence for 30 s
    "huge",            # 100 KB of text in every record: a 10 MB page of 100 records
    "busy_twice",      # 200 {"error": {"code": "BUSY"...}} twice per page, then the real page
    "api_error",       # 200 with the page's records and {"error": {"code": "QUOTA", "message"}}
    "notice",          # 200, no records, and a notice: "maintenance window: no results"
    "table_page",      # 200, records under "rows" among 20 other keys, as Datasette answers
    "client_error",    # 400 saying what it refused, echoing the request (its key too) and a token
)  # fmt: skip
#: How often ``busy_twice`` answers BUSY for each page before the real answer.
BUSY_TIMES = 2
STALL_SECONDS = 30.0


class RawBody(bytes):
    """A response body sent as is: its content type, and how to mangle the sending."""

    content_type = "application/json"
    truncate = False
    stall_seconds = 0.0


def _raw(payload: bytes, content_type: str = "application/json", **how: Any) -> RawBody:
    body = RawBody(payload)
    body.content_type = content_type
    for name, value in how.items():
        setattr(body, name, value)
    return body


def misbehaving(
    mode: str,
    rows: list[dict[str, Any]],
    total: int,
    first_page: list[dict[str, Any]],
    request: str = "",
) -> tuple[int, Any, dict[str, str]]:
    """The broken answer ``mode`` gives for a page of ``rows`` out of ``total`` records
    (``request``: the path and query asked, which ``client_error`` echoes, as some APIs do)."""
    if mode == "client_error":
        echoed = {"url": f"http://api.invalid{request}", "session_token": "tok-echoed-5b1f"}
        return 400, {"error": "no such column: limit", "request": echoed}, {}
    encoded = json.dumps({"data": rows, "total": total}, separators=(",", ":")).encode()
    answers: dict[str, Any] = {
        "non_json": lambda: _raw(b"this is not JSON {", "text/plain"),
        "html": lambda: _raw(
            b"<html><body><h1>Service temporarily unavailable</h1></body></html>", "text/html"
        ),
        "missing_data": lambda: {"items": rows, "total": total},
        "data_not_list": lambda: {"data": rows[0] if rows else {}, "total": total},
        "missing_pk": lambda: {
            "data": [{k: v for k, v in r.items() if k != "id"} for r in rows],
            "total": total,
        },
        "duplicate_pk": lambda: {"data": rows + rows[:1], "total": total},
        "truncated": lambda: _raw(encoded, truncate=True),
        "invalid_utf8": lambda: _raw(
            encoded.replace(b'"data":[{', b'"data":[{"note":"\xff\xfe",', 1)
        ),
        "unknown_charset": lambda: _raw(encoded, "application/json; charset=x-no-such-charset"),
        "total_high": lambda: {"data": rows, "total": total + 1000},
        "total_low": lambda: {"data": rows, "total": max(total - 150, 0)},
        "same_page": lambda: {"data": first_page, "total": total},
        "stall": lambda: _raw(encoded, stall_seconds=STALL_SECONDS),
        "huge": lambda: {"data": [{**r, "blob": "x" * 100_000} for r in rows], "total": total},
        "busy_twice": lambda: {
            "data": [],
            "error": {"code": "BUSY", "message": "the report is being computed, ask again"},
        },
        "api_error": lambda: {
            "data": rows,
            "total": total,
            "error": {"code": "QUOTA", "message": "monthly quota exceeded for account acct-42"},
        },
        "notice": lambda: {"data": [], "total": total, "notice": "maintenance window: no results"},
        "table_page": lambda: _table_page(rows, total),
    }
    if mode not in answers:
        raise ValueError(f"unknown misbehaviour {mode!r}; choose from {MISBEHAVIOURS}")
    return 200, answers[mode](), {}


def _table_page(rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """A page shaped like Datasette's table JSON: the records under ``rows``, which sorts after
    most of the other keys."""
    keys = ["database", "table", "is_view", "human_description_en", "truncated", "private"]
    keys += ["expanded_columns", "expandable_columns", "query_ms", "allow_execute_sql"]
    keys += ["filtered_table_rows_count", "facets_timed_out", "next", "next_url", "query"]
    page: dict[str, Any] = dict.fromkeys(keys)
    page.update(filtered_table_rows_count=total, columns=sorted(rows[0]) if rows else [])
    page.update(primary_keys=["id"], suggested_facets=[], facet_results={}, rows=rows)
    return page
