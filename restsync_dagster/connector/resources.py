"""A resource of ``source:`` merged with ``resource_defaults`` once: what every later step reads.

dlt merges ``resource_defaults`` into each resource when it builds the source (its endpoint one
level deeper). The same merge, done here once, answers every question a later floor asks about a
resource: its table, primary key, paginator, parent, whether it is incremental, whether a step
must see its records one by one. It works on the file's ``source:`` and on a rendered one alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResolvedResource:
    """One resource with ``resource_defaults`` applied."""

    name: str
    table_name: str
    path: str
    #: Always a tuple: ``()`` when the resource has none.
    primary_key: tuple[str, ...]
    write_disposition: str
    parent: str | None = None
    #: The endpoint's ``incremental`` block (dlt's vocabulary), if any.
    incremental: Mapping[str, Any] | None = None
    #: The merged endpoint (``resource_defaults.endpoint`` under the resource's own).
    endpoint: Mapping[str, Any] = field(default_factory=dict)
    #: The merged resource, endpoint included.
    merged: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_incremental(self) -> bool:
        """Whether dlt keeps a cursor for it: an ``incremental`` block, or a param of type
        ``incremental``."""
        params = self.endpoint.get("params") or {}
        return self.incremental is not None or any(
            isinstance(p, Mapping) and p.get("type") == "incremental" for p in params.values()
        )

    @property
    def window(self) -> Any:
        """The ``incremental.window`` as written (restsync's key), or None."""
        return (self.incremental or {}).get("window")

    @property
    def reads_all_children(self) -> bool:
        """Whether its children read the children of every parent (``incremental.children:
        all``), not only of the parents in this sync's window."""
        return (self.incremental or {}).get("children") == "all"

    @property
    def data_selector(self) -> str | None:
        """The JSONPath of the records in a response, when the file names one."""
        selector = self.endpoint.get("data_selector")
        return str(selector) if selector else None

    @property
    def sees_records(self) -> bool:
        """Whether something must see its records one by one (a processing step, a column hint
        applied by dlt per record)."""
        return bool(self.merged.get("processing_steps") or self.merged.get("columns"))

    @property
    def primary_key_text(self) -> str:
        """``id``, ``a, b`` or ``none``, for people."""
        return ", ".join(self.primary_key) or "none"


def resolve_resources(source: Mapping[str, Any]) -> list[ResolvedResource]:
    """Every resource of a ``source:`` block, merged with its ``resource_defaults``."""
    defaults = source.get("resource_defaults") or {}
    if not isinstance(defaults, Mapping):
        defaults = {}
    default_endpoint = defaults.get("endpoint")
    resolved = []
    for entry in source.get("resources") or []:
        resource = {"name": entry} if isinstance(entry, str) else dict(entry)
        endpoint = resource.get("endpoint") or {}
        if isinstance(endpoint, str):
            endpoint = {"path": endpoint}
        if isinstance(default_endpoint, Mapping):
            endpoint = {**default_endpoint, **endpoint}
        merged = {**defaults, **resource, "endpoint": endpoint}
        incremental = endpoint.get("incremental")
        resolved.append(
            ResolvedResource(
                name=str(resource["name"]),
                table_name=str(merged.get("table_name") or resource["name"]),
                path=str(endpoint.get("path") or resource["name"]),
                primary_key=primary_key_tuple(merged.get("primary_key")),
                write_disposition=_disposition(merged.get("write_disposition", "append")),
                parent=_parent_of(endpoint),
                incremental=incremental if isinstance(incremental, Mapping) else None,
                endpoint=endpoint,
                merged=merged,
            )
        )
    return resolved


def primary_key_tuple(value: Any) -> tuple[str, ...]:
    """A primary key as dlt accepts it (a name, a list of names, nothing) as a tuple."""
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(part) for part in value)


def _disposition(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("disposition", "append"))
    return str(value)


def _parent_of(endpoint: Mapping[str, Any]) -> str | None:
    for value in (endpoint.get("params") or {}).values():
        if isinstance(value, Mapping) and value.get("type") == "resolve":
            return str(value.get("resource"))
    match = re.search(r"\{resources\.([A-Za-z_]\w*)\.", str(endpoint.get("path", "")))
    return match.group(1) if match else None
