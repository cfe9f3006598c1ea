"""The connectors of the ``dg`` project the command runs in: what its ``defs/`` folder's restsync
components declare, so that ``restsync list``, ``validate``, ``preview`` and ``sync`` inside a
``create-dagster`` project see the connectors its code location has, not the bundled examples.

Dagster finds the project and its components (``ComponentTree.for_project``, then
``get_all_components``, which loads only the restsync ones); ours adds the rule for which folder
is a project for restsync: the nearest ``pyproject.toml`` (``[tool.dg] directory_type =
"project"``) or ``dg.toml`` (``directory_type = "project"``) above the current folder, except
restsync's own checkout, whose code location is ``restsync_dagster.definitions``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restsync_dagster.cli.common import CliError
from restsync_dagster.connector import Connector, ConnectorFileError


@dataclass(frozen=True)
class DgProject:
    """A ``dg`` project: its folder and its connectors (those of its restsync components)."""

    root: Path
    connectors: list[Connector]


def find_dg_project(start: Path) -> Path | None:
    """The folder of the nearest ``dg`` project at or above ``start``, if any (not restsync's)."""
    for folder in [start.absolute(), *start.absolute().parents]:
        for name in ("dg.toml", "pyproject.toml"):
            config = _toml(folder / name)
            if config is None:
                continue
            dg = config if name == "dg.toml" else config.get("tool", {}).get("dg", {})
            if dg.get("directory_type") == "project":
                project = dg.get("project", {})
                return None if project.get("root_module") == "restsync_dagster" else folder
            if name == "pyproject.toml":
                return None  # the nearest Python project is not a dg project
    return None


def _toml(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def dg_project(start: Path | None = None) -> DgProject | None:
    """The ``dg`` project around ``start`` (default: the current folder) and its connectors.

    Raises:
        CliError: the project's definitions cannot be imported, or a component is invalid
            (one line per problem, as ``dg check defs`` says it).
    """
    root = find_dg_project(start or Path.cwd())
    if root is None:
        return None
    from dagster.components.core.component_tree import ComponentTree

    from restsync_dagster.component.base import RestsyncComponent

    try:
        tree = ComponentTree.for_project(root)
        components = tree.get_all_components(of_type=RestsyncComponent)  # type: ignore[type-abstract]
        connectors = [c for component in components for c in component.connectors()]
    except ConnectorFileError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(
            f"the dg project in {root} cannot be imported ({exc}); install it in this "
            "environment (uv sync) or run restsync from its virtual environment"
        ) from None
    return DgProject(root=root, connectors=connectors)
