"""What both restsync components share: where their ``defs.yaml`` is and how messages name it,
connector names unique across every component of the project, and the one build call.

A component cannot see another's ``Definitions``; two with one connector name would only meet
in Dagster's merge, as a clash of asset keys. So each build first reads the names that every
restsync component of the project declares (Dagster's ``ComponentTree.get_all_components``,
once per load: the index is kept on the component instances, which live as long as the load)
and fails with restsync's message naming both files.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import dagster as dg
from pydantic import BaseModel, PrivateAttr

from restsync_dagster.connector import Connector, ConnectorFileError, Problem
from restsync_dagster.connector.trust import env_owner_problems
from restsync_dagster.load.destination import no_dlt_telemetry
from restsync_dagster.orchestration.definitions import SharedParts, build_definitions
from restsync_dagster.settings import Settings

DEFS_FILES = ("defs.yaml", "defs.yml")


@dataclass(frozen=True)
class _Built:
    settings: Settings
    source: Hashable
    connectors: list[Connector]
    definitions: dg.Definitions


#: Per component folder, what it built last. Dagster loads a project's definitions more than
#: once per process (``dg list defs`` and ``dagster definitions validate`` twice), as
#: :func:`restsync_dagster.definitions.defs` knows: the same key gives the same definitions.
_BUILT: dict[Path, _Built] = {}


class RestsyncComponent(dg.Component, dg.Model):
    """Base of the restsync components: locate, validate, check names across the project, build."""

    _folder: Path | None = PrivateAttr(default=None)
    _label: str = PrivateAttr(default="defs.yaml")
    _names_index: dict[str, list[tuple[str, str]]] | None = PrivateAttr(default=None)

    @abstractmethod
    def connectors(self) -> list[Connector]:
        """The validated connectors of this component.

        Raises:
            ConnectorFileError: one line per problem, naming the file and key path.
        """

    @abstractmethod
    def declared_names(self) -> dict[str, str]:
        """The connector names this component declares, read without failing, and where each
        is written (for messages)."""

    @abstractmethod
    def sensor_name(self) -> str:
        """The name of this component's retry sensor (unique in the code location)."""

    @abstractmethod
    def build_key(self) -> Hashable:
        """What the built definitions depend on besides the settings: while it is the same, a
        second load in one process reuses them."""

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        component = super().load(attributes, context)
        component.locate(context)
        return component

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        self.locate(context)
        settings = Settings.from_env()
        source = self.build_key()
        built = _BUILT.get(self.folder)
        fresh = built is not None and (built.settings, built.source) == (settings, source)
        connectors = built.connectors if built is not None and fresh else self.connectors()
        problems = self.name_problems(context, connectors)
        problems += env_owner_problems(connectors, settings.trust, self._index(context))
        if problems:
            raise ConnectorFileError(problems)
        if built is None or not fresh:
            no_dlt_telemetry()
            definitions = build_definitions(
                connectors,
                settings,
                shared=SharedParts.for_settings(settings),
                sensor_name=self.sensor_name(),
            )
            built = _BUILT[self.folder] = _Built(settings, source, connectors, definitions)
        return built.definitions

    def cached_connectors(self) -> list[Connector] | None:
        """The connectors this folder built last, if nothing they came from has changed."""
        built = _BUILT.get(self.folder) if self._folder is not None else None
        if built is not None and built.source == self.build_key():
            return built.connectors
        return None

    def locate(self, context: dg.ComponentLoadContext) -> None:
        """Remember this component's folder, and how messages name its ``defs.yaml``: by its path
        in the project (``src/<project>/defs/billing/defs.yaml``), since a project has many."""
        if self._folder is not None:
            return
        path = context.path
        self._folder = path if path.is_dir() else path.parent
        found = [self._folder / n for n in DEFS_FILES if (self._folder / n).is_file()]
        defs_file = found[0] if found else path
        try:
            self._label = defs_file.relative_to(context.project_root).as_posix()
        except ValueError:
            self._label = defs_file.as_posix()

    @property
    def folder(self) -> Path:
        """The folder of this component's ``defs.yaml``."""
        if self._folder is None:
            raise RuntimeError(f"{type(self).__name__} was not loaded from a defs folder")
        return self._folder

    @property
    def label(self) -> str:
        """How messages name this component's ``defs.yaml``."""
        return self._label

    def name_problems(
        self, context: dg.ComponentLoadContext, connectors: Sequence[Connector]
    ) -> list[Problem]:
        """A problem for each of ``connectors`` whose name another restsync component declares."""
        index = self._index(context)
        problems = []
        for connector in connectors:
            others = [
                where for owner, where in index.get(connector.name, []) if owner != self.label
            ]
            if others:
                problems.append(
                    Problem(
                        self.problem_file(connector),
                        self.name_key_path(),
                        f"connector name {connector.name!r} is also used by {', '.join(others)}",
                    )
                )
        return problems

    def problem_file(self, connector: Connector) -> str:
        """How a problem of ``connector`` names its file."""
        return self.label

    def name_key_path(self) -> str:
        """Where a connector's name is written."""
        return "attributes.name"

    def _index(self, context: dg.ComponentLoadContext) -> dict[str, list[tuple[str, str]]]:
        if self._names_index is None:
            index: dict[str, list[tuple[str, str]]] = {}
            components: list[Any] = [self]
            try:
                tree = context.component_tree
                components = tree.get_all_components(of_type=RestsyncComponent) or [self]
            except Exception:
                # A tree that cannot list its components: ``ComponentTree.for_test()`` has no
                # defs module, and a sibling that fails to load fails the load on its own.
                pass
            for component in components:
                for name, where in component.declared_names().items():
                    index.setdefault(name, []).append((component.label, where))
            for component in components:
                component._names_index = index
            self._names_index = index
        return self._names_index
