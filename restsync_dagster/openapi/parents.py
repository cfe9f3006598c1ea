"""Endpoints under a path parameter, read once per record of the list that provides it.

``/projects/{project_id}/issues`` becomes a child resource of ``/projects``: dlt requests it for
every project, its path written ``/projects/{resources.projects.id}/issues``. The parent is the
list endpoint at the path before the parameter; the field is the parameter's name without the
parent's name (``project_id`` -> ``id``, ``SubscriptionSid`` -> ``sid``), else the parent's key.

Where the same records are also listed without the scope (``/issues`` beside
``/projects/{project_id}/issues``), the unscoped list is kept alone: one request sequence instead
of one per parent, and no record twice. The child is skipped, and the kept resource says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from restsync_dagster.openapi.endpoints import ListEndpoint, literal_segments, snake_case
from restsync_dagster.openapi.schema import primary_key


@dataclass(frozen=True)
class ParentLink:
    """Where a child's path parameter comes from."""

    parameter: str
    parent: ListEndpoint
    field: str
    guessed: bool


def link_parents(
    endpoints: Sequence[ListEndpoint],
) -> tuple[list[ListEndpoint], dict[int, ParentLink], list[tuple[str, str]]]:
    """Split endpoints into the ones kept (with their parent links) and the ones skipped.

    Returns:
        ``(kept, links by id(child), skipped as (path, reason))``.
    """
    by_path = {e.path.rstrip("/"): e for e in endpoints if not e.path_params}
    kept: list[ListEndpoint] = []
    links: dict[int, ParentLink] = {}
    skipped: list[tuple[str, str]] = []
    for endpoint in endpoints:
        params = endpoint.path_params
        if not params:
            kept.append(endpoint)
            continue
        unscoped = _unscoped_twin(endpoint, endpoints)
        if unscoped is not None:
            skipped.append(
                (endpoint.path, f"the same records are listed unscoped by GET {unscoped.path}")
            )
            unscoped.guesses.append(
                f"also listed per parent under {endpoint.path}; the unscoped list reads every "
                "record in one sequence"
            )
            continue
        if len(params) > 1:
            skipped.append(
                (
                    endpoint.path,
                    f"needs {len(params)} path parameters; only one parent level is generated: "
                    "add it by hand",
                )
            )
            continue
        prefix = endpoint.path.split("{" + params[0] + "}")[0].rstrip("/")
        parent = by_path.get(prefix)
        if parent is None:
            skipped.append(
                (
                    endpoint.path,
                    f"path parameter {{{params[0]}}}: no list endpoint provides it "
                    f"(looked for a list at GET {prefix or '/'})",
                )
            )
            continue
        field, guessed = _field_for(params[0], parent)
        if field is None:
            skipped.append(
                (
                    endpoint.path,
                    f"path parameter {{{params[0]}}}: the records of GET {parent.path} have no "
                    "field that looks like it",
                )
            )
            continue
        links[id(endpoint)] = ParentLink(params[0], parent, field, guessed)
        kept.append(endpoint)
    return kept, links, skipped


def _unscoped_twin(
    endpoint: ListEndpoint, endpoints: Sequence[ListEndpoint]
) -> ListEndpoint | None:
    """A parameter-free list of the same records: same last segment, same record schema (when
    both name one)."""
    last = literal_segments(endpoint.path)[-1:] or [""]
    for other in endpoints:
        if other is endpoint or other.path_params:
            continue
        if literal_segments(other.path)[-1:] != last:
            continue
        if endpoint.records_ref and other.records_ref and endpoint.records_ref != other.records_ref:
            continue
        return other
    return None


def _field_for(parameter: str, parent: ListEndpoint) -> tuple[str | None, bool]:
    """The parent field a path parameter takes its value from, and whether it is a guess."""
    properties = [str(p) for p in (parent.records.get("properties") or {})]
    squashed = {p.lower().replace("_", ""): p for p in properties}
    wanted = parameter.lower().replace("_", "").replace("-", "")
    if wanted in squashed:
        return squashed[wanted], False
    parent_name = snake_case(literal_segments(parent.path)[-1]).replace("_", "")
    for stem in (parent_name, parent_name[:-1] if parent_name.endswith("s") else parent_name):
        if stem and wanted.startswith(stem) and wanted[len(stem) :] in squashed:
            return squashed[wanted[len(stem) :]], False
    key = primary_key(parent.records, parent.name or parent_name)
    return key, key is not None
