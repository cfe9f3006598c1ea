"""Floor 3: a connector file becomes a validated :class:`Connector`. Pure: no Dagster, no network.

``load`` reads files (``locations`` finds each key's line); ``model`` types the project's keys
(``cron`` words a wrong cron field); ``rules`` checks what types cannot, with ``source_rules``
(auth, paginators), ``parents`` (resolve) and ``dry_build`` (dlt builds the resources offline),
and ``messages`` words it; ``extensions`` names restsync's own keys inside ``source:``; ``templates`` parses ``{{ env.NAME }}``; ``resources`` merges each resource
with ``resource_defaults`` once; ``tree`` walks nested values; ``callables`` imports processing
steps and ``trust`` says which variables and modules a file may reach.
"""

from restsync_dagster.connector.connector import Connector, EnvVarUse
from restsync_dagster.connector.load import (
    ConnectorFiles,
    connector_files,
    declared_name,
    file_stamps,
    load_connector_file,
    load_connectors,
    name_taken,
    parse_connector,
    parse_connector_document,
    read_connector_files,
)
from restsync_dagster.connector.model import ConnectorConfig, parse_duration
from restsync_dagster.connector.problems import ConnectorFileError, Problem, shown_path
from restsync_dagster.connector.resources import ResolvedResource

__all__ = [
    "Connector",
    "ConnectorConfig",
    "ConnectorFileError",
    "ConnectorFiles",
    "EnvVarUse",
    "Problem",
    "ResolvedResource",
    "connector_files",
    "declared_name",
    "file_stamps",
    "load_connector_file",
    "load_connectors",
    "name_taken",
    "parse_connector",
    "parse_connector_document",
    "parse_duration",
    "read_connector_files",
    "shown_path",
]
