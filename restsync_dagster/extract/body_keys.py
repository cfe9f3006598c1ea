"""What a response body holds, said when a ``data_selector`` finds nothing in it.

A body's keys in alphabetical order hide the answer: a Datasette table page has two dozen keys,
and its one list of records, ``rows``, came after the eighth. This lists the lists of records
first (the paths a ``data_selector`` can name, nested ones too), then the other keys, and offers
the nearest path with :func:`~restsync_dagster.connector.messages.did_you_mean`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from restsync_dagster.connector.messages import did_you_mean

#: How deep a list of records is looked for (``data.items.list`` is depth 3).
MAX_DEPTH = 3
#: How many of the other keys a message names.
OTHER_KEYS_SHOWN = 8


def selector_miss(selector: str, body: Any) -> str:
    """Why ``selector`` found nothing in ``body``, and which paths hold records instead."""
    if not isinstance(body, dict):
        return f"the response has no {selector!r} (data_selector); it is a {type(body).__name__}"
    lists = sorted(_lists(body), key=lambda found: (not found[2], -found[1], found[0]))
    record_lists = [
        f"{path} ({count} record{'s' * (count != 1)})" for path, count, records in lists if records
    ]
    other_lists = [f"{path} (a list of {count})" for path, count, records in lists if not records]
    listed = {path for path, _, _ in lists}
    others = sorted(str(k) for k in body if str(k) not in listed)
    hint = did_you_mean(selector, [path for path, _, _ in lists] + others)
    parts = [f"the response has no {selector!r} (data_selector){hint}"]
    if record_lists:
        parts.append(f"lists of records in it: {', '.join(record_lists)}")
    else:
        parts.append("it holds no list of records")
    if other_lists:
        parts.append(f"other lists: {', '.join(other_lists)}")
    if others:
        more = len(others) - OTHER_KEYS_SHOWN
        shown = ", ".join(others[:OTHER_KEYS_SHOWN]) + (f" (+{more} more)" if more > 0 else "")
        parts.append(f"other keys: {shown}")
    return "; ".join(parts)


def _lists(
    value: dict[str, Any], prefix: str = "", depth: int = 1
) -> Iterator[tuple[str, int, bool]]:
    """``(path, length, holds records)`` of every list under ``value``, to :data:`MAX_DEPTH`."""
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, list):
            yield path, len(item), bool(item) and all(isinstance(v, dict) for v in item)
        elif isinstance(item, dict) and depth < MAX_DEPTH:
            yield from _lists(item, f"{path}.", depth + 1)
