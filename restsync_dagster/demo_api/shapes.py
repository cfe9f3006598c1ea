"""The same records in other response shapes, under another path version.

``/<vertical>/v1/<collection>`` answers ``{"data": [...], "total": N}``. The same collection under:

* ``/<vertical>/headers/<collection>``: a bare JSON list; the total in ``X-Total-Count`` and in
  ``Content-Range: items <first>-<last>/<total>``;
* ``/<vertical>/jsonl/<collection>``: one JSON record per line (``application/x-ndjson``),
  gzip-compressed (``Content-Encoding: gzip``), the total in ``X-Total-Count``;
* ``/<vertical>/csv/<collection>``: ``text/csv`` with a header row, gzip-compressed, the total
  in ``X-Total-Count``; an empty value is an empty cell, booleans are ``true``/``false``.

Three broken answers apply to CSV pages (``POST /_demo/misbehave?mode=...``): ``ragged_row``
(the page's second row lacks its last cell), ``header_change`` (the page's columns in another
order, renamed) and ``duplicate_row`` (the page's first row twice). Everything else (auth, faults, offsets, filters) is the v1 contract.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

from restsync_dagster.demo_api.hostile import RawBody

#: Path versions: how a page of records is answered.
SHAPES = ("v1", "headers", "jsonl", "csv")
#: Broken answers that only make sense for CSV pages.
CSV_MISBEHAVIOURS = ("ragged_row", "header_change", "duplicate_row")


def shaped(
    shape: str,
    rows: list[dict[str, Any]],
    total: int,
    offset: int,
    broken: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """``(status, body, headers)`` of a page of ``rows`` (at ``offset`` of ``total``) in ``shape``."""
    counted = {"X-Total-Count": str(total)}
    if shape == "headers":
        window = f"{offset}-{offset + len(rows) - 1}" if rows else "*"
        return 200, rows, {**counted, "Content-Range": f"items {window}/{total}"}
    if shape == "jsonl":
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        return 200, _gzipped(text, "application/x-ndjson"), {**counted, "Content-Encoding": "gzip"}
    if shape == "csv":
        text = _csv(rows, broken)
        return (
            200,
            _gzipped(text, "text/csv; charset=utf-8"),
            {
                **counted,
                "Content-Encoding": "gzip",
            },
        )
    return 200, {"data": rows, "total": total}, {}


def _csv(rows: list[dict[str, Any]], broken: str | None) -> str:
    if not rows:
        return ""
    if broken == "duplicate_row":
        rows = [*rows, rows[0]]
    columns = list(rows[0])
    if broken == "header_change":
        columns = [*columns[1:], columns[0]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = [f"{c}_v2" if broken == "header_change" and c == "note" else c for c in columns]
    writer.writerow(header)
    for index, row in enumerate(rows):
        cells = [_cell(row.get(c)) for c in columns]
        writer.writerow(cells[:-1] if broken == "ragged_row" and index == 1 else cells)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _gzipped(text: str, content_type: str) -> RawBody:
    body = RawBody(gzip.compress(text.encode(), compresslevel=1, mtime=0))
    body.content_type = content_type
    return body
