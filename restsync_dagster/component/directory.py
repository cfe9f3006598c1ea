"""``ConnectorDirectoryComponent``: a folder of existing connector files as one Dagster component.

The files stay what they are (the tool-native format, as Dagster's Sling component keeps Sling
files): each is read and validated by :func:`restsync_dagster.connector.load_connectors`, with
the messages a connector file gets, and the folder's connectors share one retry sensor,
``<folder>_retry_transient_failures``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from functools import cached_property
from pathlib import Path

import dagster as dg
from pydantic import Field

from restsync_dagster import names
from restsync_dagster.component.base import RestsyncComponent
from restsync_dagster.connector import (
    Connector,
    ConnectorFileError,
    file_stamps,
    load_connectors,
)


class ConnectorDirectoryComponent(RestsyncComponent, dg.Resolvable):
    """A folder of restsync connector files, each synced into the warehouse as a group of assets.

    ``path`` is relative to this ``defs.yaml``'s folder. Every ``*.yaml`` file in it is a
    connector file, exactly as with ``RESTSYNC_CONNECTORS_DIR``.
    """

    path: str = Field(
        description="The folder of connector files (*.yaml, *.yml), relative to this defs.yaml."
    )

    @property
    def directory(self) -> Path:
        """The folder of connector files."""
        return (self.folder / self.path).resolve()

    @cached_property
    def _loaded(self) -> list[Connector] | ConnectorFileError:
        cached = self.cached_connectors()
        if cached is not None:
            return cached
        try:
            return load_connectors([self.directory])
        except ConnectorFileError as exc:
            return exc

    def connectors(self) -> list[Connector]:
        """The folder's connectors.

        Raises:
            ConnectorFileError: every problem of every file, one line each.
        """
        if isinstance(self._loaded, ConnectorFileError):
            raise self._loaded
        return self._loaded

    def build_key(self) -> Hashable:
        return (str(self.directory), *file_stamps([self.directory]))

    def declared_names(self) -> dict[str, str]:
        if isinstance(self._loaded, ConnectorFileError):
            return {}
        return {c.name: f"{c.file.name} in {self.label}" for c in self._loaded}

    def sensor_name(self) -> str:
        return names.retry_sensor_name(re.sub(r"\W", "_", self.folder.name))

    def problem_file(self, connector: Connector) -> str:
        return f"{connector.file.name} in {self.label}"

    def name_key_path(self) -> str:
        return "name"
