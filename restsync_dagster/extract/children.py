"""``incremental.children: all``: children of every parent, not only of the changed ones.

dlt feeds a child resource (``/orders/{resources.orders.id}/lines``) the parent's records after
the parent's incremental step, so by default a child reads only the children of the parents in
this sync's window. For APIs where children change without their parent, ``children: all`` points
the children at a hidden, unselected copy of the parent without its ``incremental``: every parent
is read (once more) for them, and the parent's own table and cursor stay incremental.
"""

from __future__ import annotations

import re
from typing import Any

from restsync_dagster.connector.resources import resolve_resources
from restsync_dagster.extract.pages import resource_entries

#: The hidden parent's name: ``orders`` -> ``orders__every_parent``.
SUFFIX = "__every_parent"


def read_all_children(config: dict[str, Any]) -> None:
    """Rewrite ``config`` (a rendered ``source:``) so that the children of each parent with
    ``children: all`` resolve from a full read of that parent."""
    resources = resolve_resources(config)
    wanted = {r.name for r in resources if r.reads_all_children}
    children = [r for r in resources if r.parent in wanted]
    if not children:
        return
    entries = config["resources"]
    for parent in sorted({c.parent for c in children if c.parent}):
        info = next(r for r in resources if r.name == parent)
        endpoint = {k: v for k, v in info.endpoint.items() if k != "incremental"}
        hidden = {**info.merged, "name": parent + SUFFIX, "endpoint": endpoint, "selected": False}
        entries.append(hidden)
    for entry in resource_entries(config):
        child = next((c for c in children if c.name == entry["name"]), None)
        if child is None or not isinstance(entry.get("endpoint"), dict):
            continue
        _repoint(entry["endpoint"], str(child.parent))


def _repoint(endpoint: dict[str, Any], parent: str) -> None:
    pattern = re.compile(r"\{resources\." + re.escape(parent) + r"\.")
    endpoint["path"] = pattern.sub("{resources." + parent + SUFFIX + ".", endpoint["path"])
    for value in (endpoint.get("params") or {}).values():
        resolves = isinstance(value, dict) and value.get("type") == "resolve"
        if resolves and value.get("resource") == parent:
            value["resource"] = parent + SUFFIX
