"""Response bodies that are not one JSON document: JSON lines and CSV, gzip or not.

An endpoint's ``response_format`` (:mod:`restsync_dagster.connector.extensions`) is ``json`` (the
default), ``jsonl`` (one JSON object per line) or ``csv`` (a header row, then one record per row;
an empty cell is null, every other value text, typed by dlt's ``columns`` hints). The transport
adapter gives each response its resource's format, and
:meth:`~restsync_dagster.extract.adapter.StrictJsonResponse.json` hands dlt the records as a list,
so dlt's client, paginators and restsync's page checks work on them unchanged. A body
``Content-Encoding: gzip`` is decoded by ``requests``; a gzip body sent as
``application/gzip`` (a file download) is decoded here.

Refused, naming the row: a JSON line that is not an object, a CSV row with more or fewer cells
than the header, a header with a column twice. The page checks refuse a header that changes
between pages (:mod:`restsync_dagster.extract.pages`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

from restsync_dagster.connector.extensions import RESPONSE_FORMATS

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - PyPy, where dlt does not install it
    _orjson = None  # type: ignore[assignment]

_GZIP_MAGIC = b"\x1f\x8b"


def loads_json(body: str | bytes) -> Any:
    """One JSON document, parsed by orjson when it can, else by the standard library.

    orjson (C, installed with dlt on CPython) is 3-5 times faster on a page of records. It takes
    only UTF-8 and strict RFC 8259 JSON; whatever it refuses (a UTF-16 body, ``NaN``, a lone
    surrogate) is parsed by ``json.loads`` instead, so what is accepted and what is refused stays
    what it was. orjson reads an integer past 64 bits as a float, where ``json`` keeps it exact: a
    body with a run of 19 or more digits goes to ``json`` too.
    """
    if _orjson is not None and not _long_digits(body):
        try:
            return _orjson.loads(body)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(body)


#: Every byte to a space but the digits, to b"0": a run of 19 digits is then a plain substring
#: search (``re`` takes ~20 times longer on a page).
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_NINETEEN = b"0" * 19


def _long_digits(body: str | bytes) -> bool:
    data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    return _NINETEEN in data.translate(_DIGITS)


class BodyFormatError(ValueError):
    """A body that does not hold records in its declared format (the message says where)."""


def ungzipped(content: bytes, content_type: str) -> bytes:
    """``content`` itself, or decompressed when it is a gzip file (``application/gzip``)."""
    if content[:2] == _GZIP_MAGIC and "gzip" in content_type.lower():
        return gzip.decompress(content)
    return content


def parse_records(text: str, body_format: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The records of a ``jsonl`` or ``csv`` body, and the CSV header (empty for JSON lines).

    Raises:
        BodyFormatError: a line or row that is not a record.
    """
    if body_format == "jsonl":
        return _json_lines(text), ()
    if body_format == "csv":
        return _csv_rows(text)
    raise BodyFormatError(
        f"unknown response_format {body_format!r}; one of {', '.join(RESPONSE_FORMATS)}"
    )


def _json_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise BodyFormatError(f"line {number} of the JSON lines is not JSON") from None
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise BodyFormatError(f"line {number} of the JSON lines is a {kind}, not an object")
        records.append(value)
    return records


def _csv_rows(text: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    if not text.strip():
        return [], ()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = tuple(next(reader))
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            names = ", ".join(repr(c[:40]) for c in twice[:5])
            raise BodyFormatError(f"the CSV header names {names} twice")
        records = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise BodyFormatError(
                    f"CSV row {reader.line_num} has {len(row)} cells, the header has {len(header)}"
                )
            records.append({c: (v if v != "" else None) for c, v in zip(header, row, strict=True)})
    except csv.Error as exc:
        raise BodyFormatError(f"the CSV cannot be read at row {reader.line_num}: {exc}") from None
    return records, header
