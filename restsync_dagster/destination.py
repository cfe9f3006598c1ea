"""Where a connector's data lands: the dlt destination and one dlt pipeline per connector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restsync_dagster.settings import Settings
from restsync_dagster.spec import Connector

if TYPE_CHECKING:
    from dlt.common.destination import Destination
    from dlt.pipeline.pipeline import Pipeline


class DestinationConfigError(ValueError):
    """The destination settings cannot work for a connector."""


def pipeline_name(connector: Connector) -> str:
    """One dlt pipeline (state, schema, working dir) per connector, never shared."""
    return f"restsync_{connector.name}"


def destination_kind(settings: Settings) -> str:
    """The destination's short name, used as a Dagster kind (``duckdb``, ``postgres``, ...)."""
    return settings.destination.rsplit(".", 1)[-1]


def build_destination(settings: Settings) -> Destination:
    """The dlt destination: a DuckDB file by default, else any destination dlt knows by name."""
    from dlt.common.destination import Destination

    if settings.destination == "duckdb":
        import dlt

        return dlt.destinations.duckdb(credentials=str(settings.duckdb_path))
    destination = Destination.from_reference(settings.destination)
    if destination is None:
        raise DestinationConfigError(
            f"RESTSYNC_DESTINATION={settings.destination!r} is not a dlt destination"
        )
    return destination


def check_destination(connector: Connector, settings: Settings) -> None:
    """Refuse settings known to fail at load time, with a message that says what to change.

    Raises:
        DestinationConfigError: DuckDB cannot tell a schema from a database file of the same name.
    """
    if (
        settings.destination == "duckdb"
        and settings.duckdb_path.stem == connector.spec.dataset_name
    ):
        raise DestinationConfigError(
            f"connector {connector.name!r}: its dataset {connector.spec.dataset_name!r} has the "
            f"same name as the DuckDB file {settings.duckdb_path.name!r}; DuckDB would report "
            "'Ambiguous reference to catalog or schema'. Rename the file (RESTSYNC_DUCKDB_PATH) "
            "or set 'dataset:' in the connector file."
        )


def build_pipeline(connector: Connector, settings: Settings, **kwargs: Any) -> Pipeline:
    """The connector's dlt pipeline. Creates its working directory under ``RESTSYNC_HOME``."""
    import dlt

    return dlt.pipeline(
        pipeline_name=pipeline_name(connector),
        pipelines_dir=str(settings.pipelines_dir),
        destination=build_destination(settings),
        dataset_name=connector.spec.dataset_name,
        **kwargs,
    )


def qualified_table_name(connector: Connector, settings: Settings, table: str) -> str:
    """The table's real, fully qualified name (``warehouse.analytics.events`` for DuckDB).

    dagster-dlt's ``dagster/table_name`` uses the dlt schema's name instead of the dataset's.
    """
    dataset = connector.spec.dataset_name
    if settings.destination == "duckdb":
        return f"{settings.duckdb_path.stem}.{dataset}.{table}"
    return f"{dataset}.{table}"


def forget_trace(pipeline: Pipeline) -> None:
    """Delete dlt's ``trace.pickle``: it pickles the run's exceptions unredacted, URLs with keys
    included. The trace stays available in memory as ``pipeline.last_trace``."""
    from pathlib import Path

    from dlt.pipeline.trace import TRACE_FILE_NAME

    (Path(pipeline.working_dir) / TRACE_FILE_NAME).unlink(missing_ok=True)
