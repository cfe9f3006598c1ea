"""What a resource's records look like: primary key and dlt column hints, from their schema.

Column hints are given only where the declared type says more than dlt's inference would find
on its own, or where inference cannot see it at all (a column no record has filled yet):

=============================================  =====================
declared                                       hint
=============================================  =====================
``string`` + ``date-time``                     ``timestamp``
``string`` + ``date``                          ``date``
``string`` + ``time``                          ``time``
``number``/``string`` + ``decimal``/``money``  ``decimal``
``number`` (``float``, ``double``, none)       ``double``
``integer``                                    ``bigint``
``boolean``                                    ``bool``
=============================================  =====================

``nullable: true`` (OpenAPI 3.0), ``type: [x, "null"]`` (3.1) and ``x-nullable`` (Swagger 2) make
a column ``nullable: true``; a property the schema marks ``required`` and not nullable makes it
``nullable: false``. Plain strings, objects and lists get no hint: dlt types them as text, child
tables and JSON, as it would without one.
"""

from __future__ import annotations

from typing import Any

from restsync_dagster.openapi.document import Document, Schema
from restsync_dagster.openapi.endpoints import KEY_NAMES

_DECIMAL_FORMATS = ("decimal", "money", "currency", "decimal128", "bigdecimal")
_FORMAT_TYPES = {"date-time": "timestamp", "date": "date", "time": "time"}


def primary_key(records: Schema, resource: str) -> str | None:
    """The field that most likely identifies a record: ``id`` and its kin, then
    ``<resource>_id``/``<resource>Id``; ``None`` when nothing looks like a key."""
    properties = records.get("properties") or {}
    lowered = {str(name).lower(): str(name) for name in properties}
    for name in KEY_NAMES:
        if name in lowered:
            return lowered[name]
    singular = resource[:-1] if resource.endswith("s") else resource
    for name in (f"{singular}_id", f"{singular}id", f"{resource}_id"):
        if name.replace("_", "") in {k.replace("_", "") for k in lowered}:
            return next(
                v for k, v in lowered.items() if k.replace("_", "") == name.replace("_", "")
            )
    return None


def column_hints(document: Document, records: Schema, where: str) -> dict[str, dict[str, Any]]:
    """dlt column hints for the records' top-level properties (see the module's docstring)."""
    required = set(records.get("required") or [])
    hints: dict[str, dict[str, Any]] = {}
    for name, raw in (records.get("properties") or {}).items():
        schema = document.schema(raw, f"{where}.properties.{name}")
        data_type = _data_type(schema)
        if data_type is None:
            continue
        hint: dict[str, Any] = {"data_type": data_type}
        if is_nullable(raw, schema):
            hint["nullable"] = True
        elif name in required:
            hint["nullable"] = False
        hints[str(name)] = hint
    return hints


def _data_type(schema: Schema) -> str | None:
    kind = _main_type(schema)
    fmt = str(schema.get("format") or "").lower()
    if fmt in _DECIMAL_FORMATS and kind in ("number", "string"):
        return "decimal"
    if kind == "string":
        return _FORMAT_TYPES.get(fmt)
    if kind == "number":
        return "double"
    if kind == "integer":
        return "bigint"
    if kind == "boolean":
        return "bool"
    return None


def _main_type(schema: Schema) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        return str(real[0]) if len(real) == 1 else None
    return str(kind) if kind else None


def is_nullable(raw: Any, schema: Schema) -> bool:
    """Whether the document allows ``null`` for a property (its own keys or its schema's)."""
    for node in (raw, schema):
        if not isinstance(node, dict):
            continue
        if node.get("nullable") is True or node.get("x-nullable") is True:
            return True
        kind = node.get("type")
        if isinstance(kind, list) and "null" in kind:
            return True
    return False


def field_type(document: Document, records: Schema, name: str, where: str) -> tuple[str, str]:
    """``(type, format)`` of the records' property ``name`` (empty strings when undeclared)."""
    raw = (records.get("properties") or {}).get(name)
    if raw is None:
        return "", ""
    schema = document.schema(raw, f"{where}.properties.{name}")
    return _main_type(schema) or "", str(schema.get("format") or "")
