"""Floor 7, beside :mod:`restsync_dagster.definitions`: restsync as Dagster Components.

``RestApiComponent`` is one connector whose ``attributes:`` are a connector file's keys;
``ConnectorDirectoryComponent`` is a folder of connector files. Both go through the connector
floor's validation and :func:`restsync_dagster.orchestration.definitions.build_definitions`, so
they build exactly what the same connector files build. ``dg scaffold defs`` writes a
``RestApiComponent`` through :mod:`restsync_dagster.component.scaffold`.
"""

from restsync_dagster.component.directory import ConnectorDirectoryComponent
from restsync_dagster.component.rest_api import RestApiComponent

__all__ = ["ConnectorDirectoryComponent", "RestApiComponent"]
