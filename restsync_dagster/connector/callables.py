"""Processing-step callables written in a connector file (``map``, ``filter``, ``yield_map``,
``convert``, as ``package.module:function``): found, checked against the deployment's
:class:`~restsync_dagster.settings.TrustPolicy` before anything is imported, then imported.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.tree import Keys, key_path, leaves, map_leaves
from restsync_dagster.connector.trust import callable_refusal
from restsync_dagster.settings import TrustPolicy

__all__ = ["callable_problems", "resolve_callable", "resolve_callables"]

_CALLABLE_KEYS = frozenset({"map", "filter", "yield_map", "convert"})
_CALLABLE_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def resolve_callable(reference: str) -> Any:
    """Import ``package.module:attribute``, used for processing steps written in YAML."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def _is_callable_at(keys: Keys) -> bool:
    """Whether dlt takes a callable at ``keys``: ``processing_steps[i].map|filter|yield_map``
    and an incremental's ``convert`` (in ``incremental`` or a ``params`` entry). A request body's
    own ``filter`` or ``map`` key is data, not a callable."""
    if not keys or keys[-1] not in _CALLABLE_KEYS:
        return False
    if keys[-1] == "convert":
        return keys[-2:-1] == ("incremental",) or keys[-3:-2] == ("params",)
    return len(keys) >= 3 and isinstance(keys[-2], int) and keys[-3] == "processing_steps"


def _callable_refs(source: dict[str, Any]) -> Iterator[tuple[Keys, str]]:
    for keys, leaf in leaves(source):
        if _is_callable_at(keys) and isinstance(leaf, str):
            yield keys, leaf


def callable_problems(
    label: str, source: dict[str, Any], trust: TrustPolicy | None, connector: str | None
) -> list[Problem]:
    """The callables ``trust`` refuses, found without importing anything."""
    problems = []
    for keys, reference in _callable_refs(source):
        refusal = callable_refusal(reference, connector, trust)
        if refusal is not None:
            problems.append(Problem(label, key_path("source", keys), refusal))
    return problems


def resolve_callables(
    source: dict[str, Any], trust: TrustPolicy | None = None, connector: str | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A copy of ``source`` with ``map``/``filter``/``yield_map``/``convert`` references imported,
    each only if ``trust`` allows its module (checked before the import).

    Returns:
        The copy, and ``(key_path, message)`` for each reference that cannot be imported.
    """
    errors: list[tuple[str, str]] = []

    def imported(keys: Keys, leaf: Any) -> Any:
        if not _is_callable_at(keys) or not isinstance(leaf, str):
            return leaf
        path = key_path("source", keys)
        if not _CALLABLE_REF.match(leaf):
            errors.append((path, "write a callable as 'package.module:function'"))
            return leaf
        refusal = callable_refusal(leaf, connector, trust)
        if refusal is not None:
            errors.append((path, refusal))
            return leaf
        try:
            return resolve_callable(leaf)
        except Exception as exc:
            errors.append((path, f"cannot import {leaf!r}: {exc}"))
            return leaf

    return map_leaves(source, imported), errors
