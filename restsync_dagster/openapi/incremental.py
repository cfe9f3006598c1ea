"""Incremental-sync candidates: a date-time filter parameter paired with a date-time field.

``updated_since`` (or ``updatedAfter``, ``modified_since``, ``occurredAfter``, ``since``...)
filtering on ``updated_at`` (``updatedAt``, ``modified_at``, ``occurredAt``...) is how most APIs
let a sync ask only for what changed. The pair is a guess (the document rarely says which field
a filter compares), so the generator writes it as a commented-out ``incremental:`` block, with
the matching ``until``/``before`` parameter as ``end_param`` when there is one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restsync_dagster.openapi.document import Document, Parameter
from restsync_dagster.openapi.endpoints import ListEndpoint
from restsync_dagster.openapi.schema import field_type

INITIAL_VALUE = "1970-01-01T00:00:00Z"

_START = re.compile(r"^(?P<stem>.*?)[_-]?(since|after|from|start|gte|min|gt)$", re.I)
_END = re.compile(r"^(?P<stem>.*?)[_-]?(until|before|to|end|lte|lt|max)$", re.I)
_FIELD_SUFFIXES = ("_at", "at", "_time", "time", "_date", "date", "_on", "on", "")
#: Record fields a bare ``since`` most often compares, in order.
_CHANGE_FIELDS = ("updated_at", "updatedat", "modified_at", "modifiedat", "last_modified")


@dataclass(frozen=True)
class IncrementalCandidate:
    """A proposed ``incremental:`` block."""

    start_param: str
    cursor_path: str
    end_param: str | None = None

    def block(self) -> dict[str, str]:
        """The block in dlt's vocabulary."""
        block = {"start_param": self.start_param}
        if self.end_param:
            block["end_param"] = self.end_param
        block.update(cursor_path=self.cursor_path, initial_value=INITIAL_VALUE)
        return block


def find_incremental(document: Document, endpoint: ListEndpoint) -> IncrementalCandidate | None:
    """The first date-time query parameter of ``endpoint`` that pairs with a date-time field of
    its records, or ``None``."""
    timestamps = {
        name.lower().replace("_", ""): name
        for name in (endpoint.records.get("properties") or {})
        if field_type(document, endpoint.records, name, endpoint.where) == ("string", "date-time")
    }
    if not timestamps:
        return None
    for parameter in endpoint.query:
        if not _is_datetime(parameter):
            continue
        match = _START.match(parameter.name)
        if match is None:
            continue
        stem = match.group("stem").lower().replace("_", "").replace("-", "")
        field = _field_for(stem, timestamps)
        if field is None:
            continue
        end = next(
            (
                p.name
                for p in endpoint.query
                if p is not parameter
                and _is_datetime(p)
                and (m := _END.match(p.name)) is not None
                and m.group("stem").lower().replace("_", "").replace("-", "") == stem
            ),
            None,
        )
        return IncrementalCandidate(parameter.name, field, end)
    return None


def _field_for(stem: str, timestamps: dict[str, str]) -> str | None:
    if not stem:
        return next(
            (
                timestamps[k.replace("_", "")]
                for k in _CHANGE_FIELDS
                if k.replace("_", "") in timestamps
            ),
            None,
        )
    for suffix in _FIELD_SUFFIXES:
        key = (stem + suffix).replace("_", "")
        if key in timestamps:
            return timestamps[key]
    return None


def _is_datetime(parameter: Parameter) -> bool:
    schema = parameter.schema
    return schema.get("type") in (None, "string") and schema.get("format") == "date-time"
