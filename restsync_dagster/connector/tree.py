"""The two walks over nested YAML values (dicts and lists) that every rule and renderer uses.

:func:`leaves` visits every leaf with its key path; :func:`map_leaves` rebuilds a tree with each
leaf replaced. Key paths read like ``source.resources[1].endpoint.paginator.limit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Keys = tuple[str | int, ...]


def key_path(prefix: str, keys: Keys) -> str:
    """``prefix`` followed by ``keys`` as ``.name`` and ``[index]`` parts."""
    path = prefix
    for key in keys:
        if isinstance(key, int):
            path += f"[{key}]"
        else:
            path += f".{key}" if path else str(key)
    return path


def leaves(value: Any, keys: Keys = ()) -> Iterator[tuple[Keys, Any]]:
    """Yield ``(keys, leaf)`` for every value of nested dicts and lists that is neither."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*keys, str(key)))
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from leaves(child, (*keys, index))
    else:
        yield keys, value


def map_leaves(value: Any, change: Callable[[Keys, Any], Any], keys: Keys = ()) -> Any:
    """A copy of nested dicts and lists with every leaf replaced by ``change(keys, leaf)``."""
    if isinstance(value, dict):
        return {k: map_leaves(v, change, (*keys, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [map_leaves(v, change, (*keys, i)) for i, v in enumerate(value)]
    return change(keys, value)


def nearest_key(keys: Keys) -> tuple[int, str | None]:
    """The position and name of the last mapping key in ``keys`` (list indexes skipped)."""
    for index in range(len(keys) - 1, -1, -1):
        key = keys[index]
        if isinstance(key, str):
            return index, key
    return -1, None
