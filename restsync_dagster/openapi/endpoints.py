"""Which GET endpoints of a document list records, and what each is called.

An endpoint is a candidate resource when its successful answer is JSON holding a list of records:
the body itself (``[...]``) or a list inside a wrapper (``{"data": [...], "total": 3}``, also one
level deeper, ``{"data": {"items": [...]}}``). Everything else is skipped with a reason a person
can act on: a file or binary answer, a single object, a map, a required parameter nobody can
guess. Resources are named after the path's last literal segment (``/v1/customers`` ->
``customers``), lengthened with the segments before it where two endpoints would share a name.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from restsync_dagster.openapi.document import Document, Parameter, Response, Schema

#: Wrapper keys that usually hold the records, most usual first.
LIST_KEYS = (
    "data", "items", "results", "records", "entries", "values", "content", "elements",
    "objects", "rows", "list", "hits", "nodes", "edges",
)  # fmt: skip
#: Field names that identify a record; a response object holding one is a record, not a wrapper.
KEY_NAMES = ("id", "uuid", "guid", "sid", "key", "_id", "uid")
_VERSION_SEGMENT = re.compile(r"^(v\d+(\.\d+)*|api|rest)$", re.IGNORECASE)
_PARAM_SEGMENT = re.compile(r"^\{[^}]+\}$")
#: A format extension on a path segment (``/issues.json``, ``/users/{id}.xml``): how the API
#: is asked for a format, not part of what the path names.
_FORMAT_SUFFIX = re.compile(r"\.(json|jsonl|ndjson|xml|csv|yaml|yml)$", re.IGNORECASE)


@dataclass
class ListEndpoint:
    """A GET endpoint whose answer holds a list of records."""

    path: str
    operation: dict[str, Any]
    parameters: list[Parameter]
    response: Response
    #: Where the list sits in the body, dotted (``data``, ``data.items``); ``None``: the body.
    data_selector: str | None
    #: The records' schema (``allOf`` merged).
    records: Schema
    #: The ``$ref`` the records' schema came from, if any: two endpoints with the same one list
    #: the same kind of record.
    records_ref: str | None
    tags: tuple[str, ...] = ()
    name: str = ""
    #: Why a choice about this endpoint was guessed, for a ``# guessed:`` comment.
    guesses: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        """The operation's key path in the document, for messages."""
        return f"paths.{self.path}.get"

    @property
    def query(self) -> list[Parameter]:
        """The query parameters."""
        return [p for p in self.parameters if p.location == "query"]

    @property
    def path_params(self) -> list[str]:
        """Names of the ``{parameters}`` in the path, in order."""
        return re.findall(r"\{([^}]+)\}", self.path)


def find_list_endpoints(
    document: Document, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[ListEndpoint], list[tuple[str, str]]]:
    """Every GET endpoint that lists records, and every other GET with the reason it is not one.

    Args:
        document: The document.
        include: Only endpoints matching one of these (a pattern starting with ``/`` is a path
            glob, anything else a tag, globs allowed); all when empty.
        exclude: Leave out endpoints matching one of these (same patterns).

    Returns:
        ``(endpoints, skipped)``, ``skipped`` as ``(path, reason)``.
    """
    endpoints: list[ListEndpoint] = []
    skipped: list[tuple[str, str]] = []
    for path, operation, parameters in document.get_operations():
        tags = tuple(str(t) for t in operation.get("tags") or [])
        reason = _filtered(path, tags, include, exclude)
        if reason is None:
            found = _as_list_endpoint(document, path, operation, parameters, tags)
            if isinstance(found, str):
                reason = found
            else:
                endpoints.append(found)
        if reason is not None:
            skipped.append((path, reason))
    return endpoints, skipped


def _matches(pattern: str, path: str, tags: Iterable[str]) -> bool:
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(path, pattern)
    return any(fnmatch.fnmatch(tag.lower(), pattern.lower()) for tag in tags)


def _filtered(
    path: str, tags: tuple[str, ...], include: Sequence[str], exclude: Sequence[str]
) -> str | None:
    if include and not any(_matches(p, path, tags) for p in include):
        return "not selected by --include"
    hit = next((p for p in exclude if _matches(p, path, tags)), None)
    return f"left out by --exclude {hit!r}" if hit is not None else None


def _as_list_endpoint(
    document: Document,
    path: str,
    operation: dict[str, Any],
    parameters: list[Parameter],
    tags: tuple[str, ...],
) -> ListEndpoint | str:
    """The endpoint as a list endpoint, or why it is not one."""
    where = f"paths.{path}.get"
    response = document.success_response(operation, where)
    if response is None:
        return "declares no successful (2xx) response"
    if response.schema is None:
        if response.content_type is None:
            return "declares no response body"
        return f"returns {response.content_type} (a file or other non-JSON body), not JSON records"
    located = locate_list(document, response.schema, where)
    if isinstance(located, str):
        return located
    selector, items_raw = located
    records = document.schema(items_raw, f"{where}.(records)")
    if records.get("type") not in (None, "object") and "properties" not in records:
        return f"returns a list of {records.get('type')}s, not of records"
    for parameter in parameters:
        if parameter.location == "query" and parameter.required and not _has_value(parameter):
            return (
                f"needs the query parameter {parameter.name!r}, which has no default: "
                "add the resource by hand with a value under endpoint.params"
            )
    ref = items_raw.get("$ref") if isinstance(items_raw, dict) else None
    return ListEndpoint(
        path, operation, parameters, response, selector, records, ref, tags, name=""
    )


def _has_value(parameter: Parameter) -> bool:
    return "default" in parameter.schema or bool(parameter.schema.get("enum"))


def locate_list(document: Document, schema: Schema, where: str) -> tuple[str | None, Any] | str:
    """Where the list of records sits in a response schema: ``(selector, raw items schema)``,
    or why the response holds no list."""
    if _is_array(schema):
        return None, schema.get("items") or {}
    kind = schema.get("type")
    if kind not in (None, "object") or (kind is None and "properties" not in schema):
        if schema.get("format") == "binary":
            return "returns binary data, not JSON records"
        return f"returns a {kind or 'value of no declared type'}, not a list of records"
    found = _array_property(document, schema, where, depth=0)
    # A record with a list inside (a pet and its tags) is still one record: a wrapper has no key.
    looks_like_record = any(str(k).lower() in KEY_NAMES for k in schema.get("properties") or {})
    if found is not None and (not looks_like_record or found[0].split(".")[0].lower() in LIST_KEYS):
        return found
    if not schema.get("properties") and schema.get("additionalProperties"):
        return "returns a map of values, not a list of records"
    return "returns a single object, not a list"


def _is_array(schema: Schema) -> bool:
    kind = schema.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


def _array_property(
    document: Document, schema: Schema, where: str, depth: int
) -> tuple[str, Any] | None:
    """The property (or nested property, one level down) holding the list: a well-known
    wrapper key first, then the only list of objects, then the first list."""
    properties = schema.get("properties") or {}
    arrays: list[tuple[str, Any, bool]] = []
    objects: list[tuple[str, Schema]] = []
    for name, raw in properties.items():
        child = document.schema(raw, f"{where}.properties.{name}")
        if _is_array(child):
            items = child.get("items") or {}
            item = document.schema(items, f"{where}.properties.{name}.items")
            is_records = item.get("type") == "object" or "properties" in item
            arrays.append((str(name), items, is_records))
        elif child.get("type") == "object" or "properties" in child:
            objects.append((str(name), child))
    for key in LIST_KEYS:
        hit = next((a for a in arrays if a[0].lower() == key), None)
        if hit is not None and (hit[2] or depth == 0):
            return hit[0], hit[1]
    records = [a for a in arrays if a[2]]
    if records:
        return records[0][0], records[0][1]
    if arrays and depth == 0:
        return arrays[0][0], arrays[0][1]
    if depth == 0:
        for name, child in objects:
            if name.lower() not in LIST_KEYS:
                continue
            inner = _array_property(document, child, f"{where}.properties.{name}", depth + 1)
            if inner is not None:
                return f"{name}.{inner[0]}", inner[1]
    return None


# --------------------------------------------------------------------------------------------
# Names


def snake_case(text: str) -> str:
    """``SubscribedEvents`` -> ``subscribed_events``; a name dlt and DuckDB take as it is."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").lower()
    cleaned = re.sub(r"_+", "_", cleaned)
    if not cleaned:
        return "records"
    return cleaned if not cleaned[0].isdigit() else f"r_{cleaned}"


def literal_segments(path: str) -> list[str]:
    """The path's segments that are neither ``{parameters}`` nor versions (``v1``, ``api``),
    without a format extension (``issues.json`` -> ``issues``)."""
    stems = (_FORMAT_SUFFIX.sub("", s) for s in path.split("/"))
    segments = [s for s in stems if s and not _PARAM_SEGMENT.match(s)]
    meaningful = [s for s in segments if not _VERSION_SEGMENT.match(s)]
    return meaningful or segments


def assign_names(endpoints: Sequence[ListEndpoint]) -> None:
    """Name every endpoint after its path's last literal segment; where two would share a name,
    both take one more segment from the left, until the names differ."""
    parts = {
        id(e): [snake_case(s) for s in literal_segments(e.path)] or ["records"] for e in endpoints
    }
    used = {id(e): 1 for e in endpoints}

    def name_of(endpoint: ListEndpoint) -> str:
        segments = parts[id(endpoint)]
        return "_".join(segments[-used[id(endpoint)] :])

    for _ in range(10):
        groups: dict[str, list[ListEndpoint]] = {}
        for endpoint in endpoints:
            groups.setdefault(name_of(endpoint), []).append(endpoint)
        clashes = [g for g in groups.values() if len(g) > 1]
        if not clashes:
            break
        for group in clashes:
            for endpoint in group:
                used[id(endpoint)] = min(used[id(endpoint)] + 1, len(parts[id(endpoint)]))
    seen: dict[str, int] = {}
    for endpoint in endpoints:
        base = name_of(endpoint)[:120]
        seen[base] = seen.get(base, 0) + 1
        endpoint.name = base if seen[base] == 1 else f"{base}_{seen[base]}"
