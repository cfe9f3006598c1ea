"""Where each key of a connector file is: key path -> line, read from the YAML nodes' marks.

Only composed when a file has problems (validating a good file costs nothing more), so a
problem reads ``billing.yaml:12: source.resources[0].endpoint.paginator.type: ...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import yaml

from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.tree import Keys, key_path

_Composer: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def key_lines(text: str) -> dict[str, int]:
    """``{key path: 1-based line}`` for every mapping key and list item of a YAML document;
    empty when the text does not compose."""
    try:
        root = yaml.compose(text, Loader=_Composer)
    except yaml.YAMLError:
        return {}
    if root is None:
        return {}
    return {key_path("", keys): line for keys, line in _walk(root, ())}


def _walk(node: yaml.Node, keys: Keys) -> Iterator[tuple[Keys, int]]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*keys, str(key_node.value))
            yield child, key_node.start_mark.line + 1
            yield from _walk(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*keys, index)
            yield child, item.start_mark.line + 1
            yield from _walk(item, child)


def with_lines(problems: Sequence[Problem], lines: Mapping[str, int]) -> list[Problem]:
    """``problems`` with the line of their key path (or of its nearest known ancestor)."""
    located = []
    for problem in problems:
        line = _line_of(problem.key_path, lines) if problem.line is None else problem.line
        located.append(Problem(problem.file, problem.key_path, problem.message, line))
    return located


def _line_of(path: str, lines: Mapping[str, int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
