"""Writing a generated connector as YAML text, with a ``# guessed:`` comment on every guess.

PyYAML cannot write comments, so the layout is written here: block mappings for the structure,
flow mappings (``{type: offset, limit: 100}``) for small leaf blocks as in the bundled
connectors, and scalars quoted only where YAML would read them as something else. Comments go on
their own line above the key they explain, wrapped to the project's line length.
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

LINE_LENGTH = 100
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./\-]*$")


@dataclass
class ResourcePlan:
    """One resource as it will be written."""

    name: str
    endpoint: dict[str, Any]
    primary_key: str | None
    write_disposition: str
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A proposed ``incremental:`` block, written commented out.
    incremental: dict[str, Any] | None = None
    #: Key (``resource``, ``paginator``, ``primary_key``, ``incremental``...) -> comments.
    comments: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ConnectorPlan:
    """Everything the file says."""

    name: str
    description: str
    header: list[str]
    client: dict[str, Any]
    client_comments: dict[str, list[str]]
    write_disposition: str
    resources: list[ResourcePlan]
    #: The ``tenants:`` block of a multi-tenant server (``keys`` or ``dynamic``), if any.
    tenants: dict[str, Any] | None = None


def render(plan: ConnectorPlan) -> str:
    """The connector file's text."""
    lines: list[str] = []
    for line in plan.header:
        indent = " " * (len(line) - len(line.lstrip()))
        _comment(lines, 0, [line.strip()], continuation=indent + "    ", first=indent)
    lines.append(f"name: {scalar(plan.name)}")
    if plan.description:
        lines.append(f"description: {scalar(plan.description)}")
    if plan.tenants is not None:
        _entry(lines, 0, "tenants", plan.tenants)
    lines.append("source:")
    lines.append("  client:")
    for key, value in plan.client.items():
        _comment(lines, 4, plan.client_comments.get(key, []))
        _entry(lines, 4, key, value)
    lines.append("  resource_defaults:")
    lines.append(f"    write_disposition: {plan.write_disposition}")
    lines.append("  resources:")
    for resource in plan.resources:
        _resource(lines, resource, plan.write_disposition)
    return "\n".join(lines) + "\n"


def _resource(lines: list[str], resource: ResourcePlan, default_disposition: str) -> None:
    comments = resource.comments
    _comment(lines, 4, comments.get("resource", []))
    lines.append(f"    - name: {scalar(resource.name)}")
    lines.append("      endpoint:")
    for key, value in resource.endpoint.items():
        _comment(lines, 8, comments.get(key, []))
        _entry(lines, 8, key, value)
    if resource.incremental is not None:
        _comment(lines, 8, comments.get("incremental", []))
        block: list[str] = []
        _entry(block, 8, "incremental", resource.incremental)
        lines.extend(f"{' ' * 8}# {line[8:]}" for line in block)
    if resource.primary_key is not None:
        _comment(lines, 6, comments.get("primary_key", []))
        lines.append(f"      primary_key: {scalar(resource.primary_key)}")
    if resource.write_disposition != default_disposition:
        _comment(lines, 6, comments.get("write_disposition", []))
        lines.append(f"      write_disposition: {resource.write_disposition}")
    if resource.columns:
        _comment(lines, 6, comments.get("columns", []))
        _entry(lines, 6, "columns", resource.columns, flow_leaves_only=True)


def _comment(
    lines: list[str],
    indent: int,
    comments: Sequence[str],
    *,
    continuation: str = "  ",
    first: str = "",
) -> None:
    pad = " " * indent
    for text in comments:
        wrapped = textwrap.wrap(
            text,
            width=LINE_LENGTH - indent - 2,
            initial_indent=first,
            subsequent_indent=continuation,
            break_on_hyphens=False,
            break_long_words=False,
        )
        lines.extend(f"{pad}# {part}" for part in wrapped)


def _entry(
    lines: list[str], indent: int, key: str, value: Any, *, flow_leaves_only: bool = False
) -> None:
    """``key: value`` at ``indent``; a flat mapping in flow style where it fits on the line."""
    pad = " " * indent
    head = f"{pad}{scalar(key)}:"
    if isinstance(value, dict) and value:
        flow = _flow(value)
        if flow is not None and not flow_leaves_only and len(head) + 1 + len(flow) <= LINE_LENGTH:
            lines.append(f"{head} {flow}")
            return
        lines.append(head)
        for child_key, child in value.items():
            _entry(lines, indent + 2, str(child_key), child)
        return
    if isinstance(value, list) and value and all(not isinstance(v, dict | list) for v in value):
        lines.append(f"{head} [{', '.join(scalar(v) for v in value)}]")
        return
    lines.append(f"{head} {scalar(value)}")


def _flow(value: dict[str, Any]) -> str | None:
    if any(isinstance(v, dict | list) for v in value.values()):
        return None
    return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in value.items()) + "}"


def env_ref(name: str, default: str | None = None) -> str:
    """A connector file's ``{{ env.NAME }}`` reference, with a default when given."""
    if default is None:
        return "{{ env.NAME }}".replace("NAME", name)
    quote = '"' if "'" in default else "'"
    return "{{ env.NAME | default(QDQ) }}".replace("NAME", name).replace(
        "QDQ", f"{quote}{default}{quote}"
    )


def scalar(value: Any) -> str:
    """``value`` as a YAML scalar that reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    return _string(str(value))


@functools.lru_cache(maxsize=4096)
def _string(text: str) -> str:
    if _PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    # A JSON string is a valid double-quoted YAML scalar.
    return json.dumps(text, ensure_ascii=False)
