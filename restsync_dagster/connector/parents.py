"""Parent/child rules on ``source:``: every ``resolve`` names a resource that exists, no resource
depends on itself through others, every path placeholder is bound, every resolve param is used.

dlt checks these only when it builds the source, and says so as a bare ``ValueError`` (or a
``graphlib.CycleError``); here each is a :class:`Problem` at its key path, with a suggestion.
"""

from __future__ import annotations

import graphlib
import string
from collections.abc import Iterator, Mapping
from typing import Any

from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.resources import resolve_resources


def parent_problems(label: str, source: Mapping[str, Any]) -> list[Problem]:
    """``resolve`` targets that exist, no cycle, path placeholders bound (on a ``source:``
    that passed dlt's validation: its shape is right)."""
    resources = resolve_resources(source)
    names = [r.name for r in resources]
    problems: list[Problem] = []
    graph: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for index, resource in enumerate(resources):
        where = f"source.resources[{index}].endpoint"
        parents = set()
        for path, target in _parent_references(resource.endpoint):
            if target is None:
                problems.append(
                    Problem(label, f"{where}.{path}", "write {resources.<resource>.<field>}")
                )
            elif target not in names:
                problems.append(
                    Problem(
                        label,
                        f"{where}.{path}",
                        f"no resource named {target!r}{did_you_mean(target, names)}; "
                        f"resources: {', '.join(names)}",
                    )
                )
            else:
                parents.add(target)
        if len(parents) > 1:
            problems.append(
                Problem(
                    label,
                    where,
                    f"a resource has one parent, this one names {', '.join(sorted(parents))}",
                )
            )
        graph.add(resource.name, *parents)
        problems.extend(Problem(label, f"{where}.{p}", m) for p, m in _unbound(resource.endpoint))
    try:
        graph.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        problems.append(
            Problem(
                label, "source.resources", f"resources depend on each other in a cycle: {cycle}"
            )
        )
    return problems


def _parent_references(endpoint: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    """``(key path in the endpoint, parent name or None when malformed)`` of every reference to
    a parent: ``{type: resolve, resource: ...}`` params and ``{resources.<name>.<field>}``."""
    params = endpoint.get("params")
    for name, value in params.items() if isinstance(params, Mapping) else ():
        if isinstance(value, Mapping) and value.get("type") == "resolve":
            yield f"params.{name}.resource", str(value.get("resource"))
    for key in ("path", "params", "json", "data", "headers"):
        for where, field in _placeholders(endpoint.get(key), key):
            if field.startswith("resources."):
                parts = field.split(".")
                yield where, parts[1] if len(parts) >= 3 and parts[2] else None


def _placeholders(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _placeholders(child, f"{where}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _placeholders(child, f"{where}[{index}]")
    elif isinstance(value, str) and "{" in value:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f]
        except ValueError:
            return
        for field in fields:
            yield where, field


def _unbound(endpoint: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Path placeholders that no param binds, and resolve params no placeholder uses."""
    found = endpoint.get("params")
    params: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    contexts = ("resources.", "incremental.") if "incremental" in endpoint else ("resources.",)
    used = set()
    for _, field in _placeholders(endpoint.get("path"), "path"):
        if field.startswith(contexts):
            continue
        used.add(field)
        if field not in params:
            yield (
                "path",
                (
                    f"the placeholder {{{field}}} is bound by nothing: add endpoint.params.{field} "
                    "(a value, or {type: resolve, resource: ..., field: ...}), or write "
                    "{resources.<parent>.<field>}"
                ),
            )
        elif isinstance(params[field], Mapping) and params[field].get("type") != "resolve":
            yield f"params.{field}", f"the path binds {{{field}}}, which only a resolve param can"
    for name, value in params.items():
        if isinstance(value, Mapping) and value.get("type") == "resolve" and name not in used:
            yield (
                f"params.{name}",
                (
                    f"a resolve param must appear in the path as {{{name}}}; in query params write "
                    "'{resources.<parent>.<field>}'"
                ),
            )
