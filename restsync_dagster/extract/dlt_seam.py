"""The one private dlt seam restsync uses: nested Arrow tables at extract (written for dlt 1.31.x).

dlt makes child tables only in its normalize step. An Arrow table an extract step hands dlt for
a nested table (``parent`` set, no ``resource``: dlt refuses a nested table naming a resource
with ``TablePropertiesConflictException``) fails the extract with ``KeyError: 'resource'``:
``Extract._compute_metrics`` sums the extracted files per resource through
``source.schema.get_table(table_name)["resource"]`` (``dlt/extract/extract.py``, 1.31.0).
:func:`install` wraps that one method: for the length of the call, each nested table lends its
root table's ``resource``, taken back in ``finally``; and a table that reached dlt as a table
variant of its resource (``extract/arrow.py``) gives back the ``variant_name`` the variant added
(and, nested, its ``write_disposition``: dlt's own nested tables carry none, the root table's
decides). The schema dlt saves afterwards is the one dlt would have saved. Everything else (the child tables' schema, dlt's merge deleting stale
children by ``_dlt_root_id``) is dlt's own.

The upstream fix that would remove this module: in ``Extract._compute_metrics``, group by
``get_root_table(source.schema.tables, table_name)["resource"]`` instead of
``source.schema.get_table(table_name)["resource"]``.

:func:`problem` says why the seam cannot be used: another dlt than 1.31.x, or a
``_compute_metrics`` whose source is not the one this was written against. Then nothing is
patched and every page goes to dlt's own normalizer (``extract/arrow.py``);
``unit/test_dlt_seam.py`` fails, naming this module, so whoever upgrades dlt looks here.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from typing import Any

#: The dlt minor version this seam was written for.
WRITTEN_FOR = "1.31."
#: sha256 of ``inspect.getsource(dlt.extract.extract.Extract._compute_metrics)`` in dlt 1.31.0.
COMPUTE_METRICS_SHA256 = "7ffa61ddbf69f32a11de68cbc4f4ab92b0bc5274037308d31e620c71970c242d"

_lock = threading.Lock()
_installed = False


def compute_metrics_digest() -> str:
    """sha256 of the source of the method the seam wraps, as installed."""
    from dlt.extract.extract import Extract

    return hashlib.sha256(inspect.getsource(Extract._compute_metrics).encode()).hexdigest()


def problem() -> str | None:
    """Why the seam cannot be used with the installed dlt, or None."""
    import dlt

    if not dlt.__version__.startswith(WRITTEN_FOR):
        return (
            f"restsync's nested-Arrow seam (restsync_dagster/extract/dlt_seam.py) was written "
            f"for dlt {WRITTEN_FOR}x, found dlt {dlt.__version__}"
        )
    try:
        digest = compute_metrics_digest()
    except (AttributeError, ImportError, OSError, TypeError) as exc:
        return f"restsync's nested-Arrow seam: dlt's Extract._compute_metrics is gone ({exc})"
    if digest != COMPUTE_METRICS_SHA256:
        return (
            "restsync's nested-Arrow seam (restsync_dagster/extract/dlt_seam.py): dlt's "
            f"Extract._compute_metrics changed (sha256 {digest})"
        )
    return None


def install() -> str | None:
    """Wrap ``Extract._compute_metrics`` once per process; returns :func:`problem` (and patches
    nothing) when the seam does not fit the installed dlt."""
    global _installed
    with _lock:
        if _installed:
            return None
        found = problem()
        if found is not None:
            return found
        from dlt.common.schema.utils import get_root_table, is_nested_table
        from dlt.extract.extract import Extract

        original = Extract._compute_metrics

        @functools.wraps(original)
        def _compute_metrics(self: Any, load_id: str, source: Any) -> Any:
            tables = source.schema.tables
            lent = []
            for name, table in tables.items():
                if is_nested_table(table) and "resource" not in table:
                    table["resource"] = get_root_table(tables, name).get("resource")
                    lent.append(table)
            try:
                return original(self, load_id, source)
            finally:
                for table in lent:
                    table.pop("resource", None)
                for table in tables.values():
                    if table.get("variant_name") == table["name"]:
                        # A table reached dlt as a table variant of its resource: dlt's own
                        # tables name no variant, and its nested tables no write disposition
                        # (the root table's decides).
                        table.pop("variant_name", None)
                        if is_nested_table(table):
                            table.pop("write_disposition", None)

        Extract._compute_metrics = _compute_metrics  # type: ignore[method-assign]
        _installed = True
        return None
