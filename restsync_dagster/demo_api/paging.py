"""How real APIs page and filter differently from the v1 contract, for the completeness checks.

* **A capped page size** (``DemoApiConfig.page_size_cap``): every page holds at most N records,
  whatever ``limit`` asks, as an issue tracker that answers ``limit=250`` with 100 records does.
  ``page_size_echo`` names the body key that tells the real size (``"limit": 100``), or is None
  for an API that says nothing.
* **Next links in the body**, as Datasette pages: ``GET /<vertical>/links/<collection>`` answers
  ``{"rows": [...], "next": "200", "next_url": "http://.../links/items?_next=200&_size=100"}``,
  ``next`` and ``next_url`` null on the last page. ``_size`` is the page size (default 100),
  ``_next`` the token of the next page. Every other parameter without a leading ``_`` filters
  records by a field's value, as json-server and Datasette do; a field no record has matches
  nothing, so a paginator's ``page=0`` or ``offset=0`` answers an empty page.
* **A filter with the operator in the value** (``updated_on=>=2025-01-01T00:00:00Z``), as an
  issue tracker filters: ``>=``, ``>``, ``<=``, ``<`` or ``=`` before an instant; a bare instant
  means equality (to the second), so ``updated_on=2025-01-01T00:00:00Z`` is not "since".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from restsync_dagster.demo_api.collections import Collection, parse_instant

_OPERATOR = re.compile(r"^\s*(>=|<=|>|<|=)?\s*(\S.*)$")
_SECOND = timedelta(seconds=1)
#: Parameters the links shape reads itself (never field filters).
_NOT_FILTERS = frozenset({"api_key", "updated_since", "updated_until", "updated_on"})


def operator_range(value: str) -> tuple[datetime | None, datetime | None]:
    """``[since, until)`` of an ``updated_on`` value such as ``>=2025-01-01T00:00:00Z``.

    Raises:
        ValueError: not an operator and an ISO-8601 instant.
    """
    match = _OPERATOR.match(value)
    if match is None:
        raise ValueError(f"not a filter: {value!r}")
    operator, moment = match.group(1) or "=", parse_instant(match.group(2))
    return {
        ">=": (moment, None),
        ">": (moment + _SECOND, None),
        "<": (None, moment),
        "<=": (None, moment + _SECOND),
        "=": (moment, moment + _SECOND),
    }[operator]


def narrowed(
    since: datetime | None, until: datetime | None, params: dict[str, str]
) -> tuple[datetime | None, datetime | None]:
    """``updated_since``/``updated_until`` narrowed by an ``updated_on`` filter, if any.

    Raises:
        ValueError: a malformed ``updated_on``.
    """
    if not params.get("updated_on"):
        return since, until
    low, high = operator_range(params["updated_on"])
    if low is not None:
        since = low if since is None else max(since, low)
    if high is not None:
        until = high if until is None else min(until, high)
    return since, until


def capped(limit: int, cap: int | None) -> int:
    """The records a page holds when ``limit`` is asked of an API capped at ``cap``."""
    return limit if cap is None else min(limit, cap)


def linked_page(
    collection: Collection,
    ids: Any,
    params: dict[str, str],
    link: Callable[[dict[str, str]], str],
    cap: int | None,
) -> tuple[int, Any, dict[str, str]]:
    """A page of the links shape: ``ids`` (already filtered by time) filtered by fields, from the
    ``_next`` token on, ``_size`` records (capped), with the next token and link."""
    try:
        start = int(params.get("_next") or 0)
        size = capped(int(params.get("_size") or 100), cap)
    except ValueError:
        return 400, {"ok": False, "error": "_next and _size are integers"}, {}
    if start < 0 or size < 1:
        return 400, {"ok": False, "error": "_next >= 0 and _size >= 1"}, {}
    filters = {k: v for k, v in params.items() if not k.startswith("_") and k not in _NOT_FILTERS}
    records = [collection.record(i) for i in ids]
    if filters:
        records = [r for r in records if all(_matches(r, k, v) for k, v in filters.items())]
    page = records[start : start + size]
    more = start + size < len(records)
    token = str(start + size) if more else None
    following = {k: v for k, v in params.items() if k != "api_key"}
    next_url = link({**following, "_next": token}) if token is not None else None
    return 200, {"ok": True, "rows": page, "next": token, "next_url": next_url}, {}


def _matches(record: dict[str, Any], field: str, value: str) -> bool:
    if field not in record:
        return False
    found = record[field]
    if isinstance(found, bool):
        return str(found).lower() == value.lower()
    return str(found) == value


def query(params: dict[str, str]) -> str:
    """A query string of ``params``."""
    return urlencode(params)
