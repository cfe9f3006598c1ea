"""The same records in other response shapes, under another path version.

``/<vertical>/v1/<collection>`` answers ``{"data": [...], "total": N}``. The same collection under:

* ``/<vertical>/headers/<collection>``: a bare JSON list; the total in ``X-Total-Count`` and in
  ``Content-Range: items <first>-<last>/<total>``.

Everything else (auth, faults, offsets, incremental filters, misbehaviours) is the v1 contract.
"""

from __future__ import annotations

from typing import Any

#: Path versions: how a page of records is answered.
SHAPES = ("v1", "headers")


def shaped(
    shape: str, rows: list[dict[str, Any]], total: int, offset: int
) -> tuple[int, Any, dict[str, str]]:
    """``(status, body, headers)`` of a page of ``rows`` (at ``offset`` of ``total``) in ``shape``."""
    if shape == "headers":
        last = offset + len(rows) - 1
        window = f"{offset}-{last}" if rows else "*"
        return 200, rows, {"X-Total-Count": str(total), "Content-Range": f"items {window}/{total}"}
    return 200, {"data": rows, "total": total}, {}
