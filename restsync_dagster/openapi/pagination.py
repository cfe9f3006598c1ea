"""How a list endpoint pages, read from its query parameters and its response schema.

The result is a dlt paginator config in dlt's own vocabulary (``offset``, ``page_number``,
``cursor``, ``json_link``, ``header_link``, ``single_page``). What is read:

* query parameters by name (``offset``/``skip``/``start``, ``limit``/``per_page``/``page_size``,
  ``page``, ``cursor``/``after``/``page_token``...), also inside an object parameter declared
  with ``style: form, explode: true`` (a shared ``pagination`` object holding ``offset`` and
  ``limit``) or ``style: deepObject`` (``page[number]``);
* the response schema outside the records: where a total sits (``total``, ``meta.total``,
  ``pagination.total_count``), the number of pages, a next cursor (``paging.next.after``,
  ``next_cursor``), a next link (``meta.next_page_url``, ``links.next``), a has-more flag;
* a ``Link`` header declared on the response.

The page size is the size parameter's declared ``maximum`` (else its default, else 100). There
is never a page cap: an offset paginator without a total stops at the first empty page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from restsync_dagster.openapi.document import Document, Schema
from restsync_dagster.openapi.endpoints import ListEndpoint

DEFAULT_PAGE_SIZE = 100

_OFFSET = re.compile(r"^\$?(offset|skip|start|startAt|start_index|startIndex|from)$", re.I)
_LIMIT = re.compile(
    r"^\$?(limit|per_?page|page_?size|size|count|max_?results|top|take|rows|pagelen|max)$", re.I
)
_PAGE = re.compile(r"^(page|page_?number|page_?num|page_?no|page_?index)$", re.I)
_CURSOR_PARAM = re.compile(
    r"^(cursor|after|page_?token|next_?token|next_?page_?token|starting_?after|continuation"
    r"(_?token)?|marker|start_?cursor|next_?cursor|page_?cursor|scroll_?id)$",
    re.I,
)
_TOTAL = re.compile(
    r"^(total|total_?count|total_?results|total_?items|total_?records|total_?entries|"
    r"total_?size|total_?hits|count_?total|items_?total|num_?results|total_?elements)$",
    re.I,
)
_TOTAL_PAGES = re.compile(r"^(total_?pages|page_?count|num_?pages|pages|last_?page)$", re.I)
_NEXT_LINK = re.compile(r"^(next|next_?(page_?)?(url|link|href|uri))$", re.I)
_NEXT_CURSOR = re.compile(
    r"^(next_?(page_?)?(cursor|token|key|marker)|cursor|after|end_?cursor|continuation"
    r"(_?token)?|next_?page_?token|scroll_?id)$",
    re.I,
)
_HAS_MORE = re.compile(r"^(has_?more|has_?next(_?page)?|more|has_?more_?(items|results))$", re.I)


@dataclass
class PagingChoice:
    """How to page one endpoint, and what was guessed to get there."""

    paginator: dict[str, Any]
    #: Query parameters to send with every request (a page size the paginator does not send).
    params: dict[str, Any] = field(default_factory=dict)
    guesses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Field:
    """A scalar in the response body outside the records: its dotted path and schema."""

    path: str
    key: str
    parent: str
    schema: Schema


def choose_paginator(document: Document, endpoint: ListEndpoint) -> PagingChoice:
    """The paginator of ``endpoint`` (see the module's docstring for what is read)."""
    params = list(_query_names(document, endpoint))
    fields = _body_fields(document, endpoint)
    offset = _param(params, _OFFSET, integer=True)
    limit = _param(params, _LIMIT, integer=True)
    page = _param(params, _PAGE, integer=True)
    total = _field(fields, lambda f: _TOTAL.match(f.key) and _is_integer(f.schema))
    if offset and limit and total:
        return _offset(offset, limit, total.path, fields)
    cursor = _field(fields, _is_next_cursor)
    cursor_param = _cursor_param(params, cursor)
    link = _field(fields, _is_next_link)
    # A parameter named exactly like the body's cursor is what the document means to be used
    # (HubSpot: ``after`` <- ``paging.next.after``), even where a next link sits beside it.
    named_alike = (
        cursor is not None
        and cursor_param is not None
        and (cursor_param[0].lower() == cursor.key.lower())
    )
    if link and not named_alike:
        return _with_size(
            {"type": "json_link", "next_url_path": link.path},
            limit,
            f"the next page's URL is at {link.path}",
        )
    if cursor and cursor_param:
        config = {"type": "cursor", "cursor_path": cursor.path, "cursor_param": cursor_param[0]}
        return _with_size(config, limit, f"{cursor_param[0]!r} takes the cursor at {cursor.path}")
    if "link" in endpoint.response.headers:
        return _with_size({"type": "header_link"}, limit, "the response declares a Link header")
    if offset and limit:
        return _offset(offset, limit, None, fields)
    if page:
        return _page_number(page, limit, fields)
    if cursor_param:
        return PagingChoice(
            {"type": "single_page"},
            guesses=[
                f"{cursor_param[0]!r} looks like a cursor, but the response does not say where "
                "the next one is: only the first page is read; set a paginator by hand"
            ],
        )
    return PagingChoice({"type": "single_page"}, guesses=["no paging parameters: one page"])


def _offset(
    offset: tuple[str, Schema], limit: tuple[str, Schema], total: str | None, fields: list[_Field]
) -> PagingChoice:
    size, size_guess = page_size(limit[1])
    config: dict[str, Any] = {
        "type": "offset",
        "limit": size,
        "offset_param": offset[0],
        "limit_param": limit[0],
        "total_path": total,
    }
    if total is not None:
        return PagingChoice(config, guesses=[f"the total is at {total}", *size_guess])
    more = _field(fields, lambda f: _HAS_MORE.match(f.key) and f.schema.get("type") == "boolean")
    config["stop_after_empty_page"] = True
    if more:
        config["has_more_path"] = more.path
    return PagingChoice(
        config,
        guesses=["no total in the response: stops at the first empty page", *size_guess],
    )


def _page_number(
    page: tuple[str, Schema], limit: tuple[str, Schema] | None, fields: list[_Field]
) -> PagingChoice:
    declared = page[1].get("minimum", page[1].get("default"))
    base = int(declared) if isinstance(declared, int) and declared in (0, 1) else 1
    guesses = [] if declared in (0, 1) else ["pages count from 1"]
    pages = _field(fields, lambda f: _TOTAL_PAGES.match(f.key) and _is_integer(f.schema))
    config: dict[str, Any] = {"type": "page_number", "base_page": base, "page_param": page[0]}
    if pages:
        config["total_path"] = pages.path
        guesses.append(f"the number of pages is at {pages.path}")
    else:
        config["total_path"] = None
        config["stop_after_empty_page"] = True
        guesses.append("no page count in the response: stops at the first empty page")
    choice = _with_size(config, limit, "")
    choice.guesses[:0] = guesses
    return choice


def _with_size(config: dict[str, Any], limit: tuple[str, Schema] | None, why: str) -> PagingChoice:
    """``config`` with the page size sent as a plain parameter, where the API has one."""
    choice = PagingChoice(config, guesses=[why] if why else [])
    if limit is not None:
        size, size_guess = page_size(limit[1])
        choice.params[limit[0]] = size
        choice.guesses.extend(size_guess)
    return choice


def page_size(schema: Schema) -> tuple[int, list[str]]:
    """The page size to ask for: the declared maximum, else the default, else 100."""
    maximum = schema.get("maximum")
    if isinstance(maximum, int | float) and not isinstance(maximum, bool) and maximum >= 1:
        return int(maximum), []
    default = schema.get("default")
    if isinstance(default, int) and not isinstance(default, bool) and default >= 1:
        return default, [f"page size {default}, the parameter's default (no maximum declared)"]
    return DEFAULT_PAGE_SIZE, [f"page size {DEFAULT_PAGE_SIZE} (the document declares no maximum)"]


def _query_names(document: Document, endpoint: ListEndpoint) -> Iterator[tuple[str, Schema]]:
    """``(name as sent, schema)`` of every query parameter, objects exploded into theirs."""
    for parameter in endpoint.query:
        schema = parameter.schema
        properties = schema.get("properties") if schema.get("type") == "object" else None
        if not isinstance(properties, dict):
            yield parameter.name, schema
            continue
        for name, raw in properties.items():
            inner = document.schema(raw, f"{endpoint.where}.parameters.{parameter.name}.{name}")
            if parameter.style == "deepObject":
                yield f"{parameter.name}[{name}]", inner
            elif parameter.style == "form" and parameter.explode:
                yield str(name), inner
            # form without explode sends "name=k,v,k,v": no paginator can write that.


def _param(
    params: list[tuple[str, Schema]], pattern: re.Pattern[str], *, integer: bool = False
) -> tuple[str, Schema] | None:
    for name, schema in params:
        # ``pagination[offset]`` is judged by the key inside the brackets, ``page[number]`` by
        # both parts together.
        outer, _, inner = name.rstrip("]").partition("[")
        names = (name,) if not inner else (inner, f"{outer}_{inner}")
        if any(pattern.match(n) for n in names) and (not integer or _maybe_integer(schema)):
            return name, schema
    return None


def _maybe_integer(schema: Schema) -> bool:
    """Declared as a number, or with no type at all (a ``from`` date is not an offset)."""
    return "type" not in schema or _is_integer(schema)


def _cursor_param(
    params: list[tuple[str, Schema]], cursor: _Field | None
) -> tuple[str, Schema] | None:
    """The parameter that sends a cursor back: the one named like the body's cursor first."""
    if cursor is not None:
        same = next((p for p in params if p[0].lower() == cursor.key.lower()), None)
        if same is not None:
            return same
    return _param(params, _CURSOR_PARAM)


def _body_fields(document: Document, endpoint: ListEndpoint) -> list[_Field]:
    """Scalars of the response body outside the records, three levels deep at most."""
    schema = endpoint.response.schema or {}
    found: list[_Field] = []
    stack: list[tuple[Schema, str, str, int]] = [(schema, "", "", 0)]
    while stack:
        current, prefix, parent, depth = stack.pop(0)
        for key, raw in (current.get("properties") or {}).items():
            path = f"{prefix}{key}"
            if path == endpoint.data_selector:
                continue
            child = document.schema(raw, f"{endpoint.where}.(response).{path}")
            if child.get("type") == "object" or "properties" in child:
                if depth < 2:
                    stack.append((child, f"{path}.", str(key), depth + 1))
            elif child.get("type") != "array":
                found.append(_Field(path, str(key), parent, child))
    return found


def _field(fields: list[_Field], test: Any) -> _Field | None:
    return next((f for f in fields if test(f)), None)


def _is_integer(schema: Schema) -> bool:
    kind = schema.get("type")
    return kind in ("integer", "number") or (isinstance(kind, list) and "integer" in kind)


def _is_string(schema: Schema) -> bool:
    kind = schema.get("type")
    return kind in (None, "string") or (isinstance(kind, list) and "string" in kind)


def _is_next_link(f: _Field) -> bool:
    if not _is_string(f.schema):
        return False
    if _NEXT_LINK.match(f.key):
        # A bare "next" is a link only where it is declared as one or sits among links.
        return (
            f.key.lower() != "next"
            or f.schema.get("format") in ("uri", "url")
            or (f.parent.lower() in ("links", "_links", "paging", "pagination", "meta"))
        )
    return f.key.lower() in ("href", "url", "link") and f.parent.lower() == "next"


def _is_next_cursor(f: _Field) -> bool:
    if f.schema.get("format") in ("uri", "url") or not (
        _is_string(f.schema) or _is_integer(f.schema)
    ):
        return False
    if f.parent.lower() in ("prev", "previous", "before"):
        return False
    return bool(_NEXT_CURSOR.match(f.key)) or (
        f.parent.lower() in ("next", "cursors") and f.key.lower() in ("after", "cursor", "token")
    )
