"""Where a connector's data lands: the dlt destination and one dlt pipeline per connector, and
the dlt settings of a run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from restsync_dagster import names
from restsync_dagster.connector import Connector, ConnectorFileError, Problem, shown_path
from restsync_dagster.failures.errors import DestinationConfigError
from restsync_dagster.load.normalize import FILE_MAX_ITEMS
from restsync_dagster.settings import Settings

if TYPE_CHECKING:
    from dlt.common.destination import Destination
    from dlt.extract.source import DltSource
    from dlt.pipeline.pipeline import Pipeline


def destination_kind(settings: Settings) -> str:
    """The destination's short name, used as a Dagster kind (``duckdb``, ``postgres``, ...)."""
    return settings.destination.rsplit(".", 1)[-1]


def where_written(connector: Connector, settings: Settings) -> tuple[str, str]:
    """The connector's dlt working directory, and its destination as a message names it (the
    DuckDB file's path, or the destination's name): where a sync writes, for a full disk."""
    working_dir = settings.pipelines_dir / names.pipeline_name(connector.pipeline_scope)
    destination = (
        f"DuckDB file {settings.duckdb_path}"
        if destination_kind(settings) == "duckdb"
        else f"destination {settings.destination!r}"
    )
    return f"dlt's working directory {working_dir}", destination


def build_destination(settings: Settings, staging_layout: str | None = None) -> Destination:
    """The dlt destination: a DuckDB file by default, else any destination dlt knows by name.

    Args:
        settings: Deployment settings.
        staging_layout: dlt's ``staging_dataset_name_layout`` (a run's own staging dataset).

    Raises:
        DestinationConfigError: an unknown destination, or a file format it cannot load.
    """
    from dlt.common.destination import Destination

    # dlt reads the load file format from no config key, only from the factory (or the run).
    # DuckDB loads parquet far faster than dlt's default INSERT statements: it is the default.
    file_format = settings.loader_file_format or (
        "parquet" if settings.destination == "duckdb" else None
    )
    extra: dict[str, Any] = {"preferred_loader_file_format": file_format} if file_format else {}
    if staging_layout:
        extra["staging_dataset_name_layout"] = staging_layout
    destination: Destination | None
    if settings.destination == "duckdb":
        import dlt
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        credentials = DuckDbCredentials(str(settings.duckdb_path))
        if settings.duckdb_memory_limit:
            # A merge deduplicates and joins the whole load in memory; bounded, DuckDB spills
            # to disk instead. Values that cannot spill (rows of 100 kB strings) fail under
            # restsync's default; the run then loads again without it (load/memory.py).
            credentials.global_config = {"memory_limit": settings.duckdb_memory_limit}
        destination = dlt.destinations.duckdb(credentials=credentials, **extra)
    else:
        destination = Destination.from_reference(settings.destination, **extra)
    if destination is None:
        raise DestinationConfigError(
            f"RESTSYNC_DESTINATION={settings.destination!r} is not a dlt destination"
        )
    if settings.loader_file_format:
        supported = destination.capabilities().supported_loader_file_formats or []
        if settings.loader_file_format not in supported:
            raise DestinationConfigError(
                f"RESTSYNC_LOADER_FILE_FORMAT={settings.loader_file_format!r}: the "
                f"{destination_kind(settings)} destination loads {', '.join(sorted(supported))}"
            )
    return destination


def check_destination(connector: Connector, settings: Settings) -> None:
    """Refuse settings known to fail at load time, with a message that says what to change.

    Raises:
        DestinationConfigError: DuckDB cannot tell a schema from a database file of the same name.
    """
    if (
        settings.destination == "duckdb"
        and settings.duckdb_path.stem == connector.config.dataset_name
    ):
        raise DestinationConfigError(
            f"connector {connector.name!r}: its dataset {connector.config.dataset_name!r} has the "
            f"same name as the DuckDB file {settings.duckdb_path.name!r}; DuckDB would report "
            "'Ambiguous reference to catalog or schema'. Rename the file (RESTSYNC_DUCKDB_PATH) "
            "or set 'dataset:' in the connector file."
        )


#: Destinations whose data is one local file that one process at a time may write.
SINGLE_WRITER_DESTINATIONS = frozenset({"duckdb"})


def single_writer_reason(settings: Settings) -> str | None:
    """Why the destination cannot take runs writing side by side, or None when it can.

    DuckDB lets one process open a file read-write; restsync holds its lock for the whole run.
    dlt says so itself for others with ``loader_parallelism_strategy: sequential`` (DuckLake,
    for one): it will not even run two load jobs of one package at once.
    """
    kind = destination_kind(settings)
    if kind in SINGLE_WRITER_DESTINATIONS:
        return f"the {kind} destination allows one writing process per database file"
    try:
        caps = build_destination(settings).capabilities()
    except DestinationConfigError:
        return None  # said where the destination is built, at the first run
    if caps.loader_parallelism_strategy == "sequential":
        return f"dlt loads the {kind} destination one job at a time (loader_parallelism_strategy)"
    return None


def replace_where_merge_would_append(
    connector: Connector, source: DltSource, destination: Destination
) -> list[str]:
    """Make ``merge`` a ``replace`` on a destination that cannot merge; return those resources.

    Where dlt has no merge strategy for a table (the filesystem destination without a table
    format, for one), it appends instead, with a warning, and every re-sync duplicates the rows.
    A resource that reads everything on each run loses nothing by a replace: its table ends up
    holding exactly what the API served. An incremental resource would lose the rows of earlier
    runs, so it is refused instead.

    Raises:
        DestinationConfigError: an incremental ``merge`` resource on such a destination.
    """
    caps = destination.capabilities()
    replaced = []
    for name, resource in source.resources.items():
        disposition = resource.write_disposition
        if isinstance(disposition, dict):
            disposition = disposition.get("disposition")
        if disposition != "merge":
            continue
        strategies = list(caps.supported_merge_strategies or [])
        if caps.merge_strategies_selector:
            table = resource.compute_table_schema()
            strategies = list(caps.merge_strategies_selector(strategies, table_schema=table))
        if strategies:
            continue
        if connector.resource(name).is_incremental:
            raise DestinationConfigError(
                f"connector {connector.name!r}, resource {name!r}: the "
                f"{destination.destination_type.rsplit('.', 1)[-1]} destination cannot merge "
                "(dlt would append duplicates) and, as the resource is incremental, a replace "
                "would drop the rows of earlier runs. Use a destination that merges, or "
                "'table_format: delta' on the filesystem destination."
            )
        resource.apply_hints(write_disposition="replace")
        replaced.append(name)
    return replaced


def no_dlt_telemetry() -> None:
    """dlt reports anonymous usage events over HTTP unless told not to; restsync requests nothing
    but the APIs its files name. ``RUNTIME__DLTHUB_TELEMETRY=true`` turns it back on. dlt reads
    the setting once per process, when it first builds a source or a pipeline, so the entry
    points call this first: the ``restsync`` command and the loading of the definitions (which
    every Dagster process, run workers included, does before any sync)."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def build_pipeline(
    connector: Connector, settings: Settings, pipeline_name: str | None = None, **kwargs: Any
) -> Pipeline:
    """The connector's dlt pipeline (or, named ``pipeline_name``, one partition run's, staging
    its merges in a dataset of its own). Creates its working directory under ``RESTSYNC_HOME``."""
    import dlt

    staging = names.partition_staging_layout(pipeline_name) if pipeline_name else None
    return dlt.pipeline(
        pipeline_name=pipeline_name or names.pipeline_name(connector.pipeline_scope),
        pipelines_dir=str(settings.pipelines_dir),
        destination=build_destination(settings, staging),
        dataset_name=connector.config.dataset_name,
        **kwargs,
    )


def build_stand_in_pipeline(settings: Settings) -> Pipeline:
    """The one dlt pipeline object ``@dlt_assets`` keeps with the asset specs of every connector
    (never run: each run builds its connector's own pipeline). Its working directory holds no
    state, and is the process's own (a temporary folder removed with the object): dlt writes
    into it when the object is made, and two processes loading the definitions at once (two
    ``restsync sync``, or a sync beside the UI) would otherwise write into one folder."""
    import tempfile
    import weakref

    import dlt

    folder = tempfile.mkdtemp(prefix="restsync-definitions-")
    pipeline = dlt.pipeline(
        pipeline_name=names.DEFINITIONS_PIPELINE,
        pipelines_dir=folder,
        destination=build_destination(settings),
    )
    weakref.finalize(pipeline, shutil.rmtree, folder, True)
    return pipeline


def qualified_table_name(connector: Connector, settings: Settings, table: str) -> str:
    """The table's real, fully qualified name (``warehouse.analytics.events`` for DuckDB).

    dagster-dlt's ``dagster/table_name`` uses the dlt schema's name instead of the dataset's.
    """
    dataset = connector.config.dataset_name
    if settings.destination == "duckdb":
        return f"{settings.duckdb_path.stem}.{dataset}.{table}"
    return f"{dataset}.{table}"


def forget_trace(pipeline: Pipeline) -> None:
    """Delete dlt's ``trace.pickle``: it pickles the run's exceptions unredacted, URLs with keys
    included. The trace stays available in memory as ``pipeline.last_trace``."""
    from pathlib import Path

    from dlt.pipeline.trace import TRACE_FILE_NAME

    (Path(pipeline.working_dir) / TRACE_FILE_NAME).unlink(missing_ok=True)


#: dlt settings restsync applies to its runs unless the environment sets them. Arrow tables carry
#: dlt's ``_dlt_id`` and ``_dlt_load_id`` from restsync's normalizer (extract/relational.py): dlt
#: must not add or replace them (a child table has no load id, and its ids link it to its parent
#: rows); set either, and pages go to dlt's normalizer instead. dlt's ``truncate_staging_dataset``
#: stays off (dlt's default): with it on, a full refresh of a windowed sync failed in its first
#: window (``_dlt_version`` missing; docs/destinations.md).
DLT_DEFAULTS = {
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID": "false",
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "false",
}
#: With ``RESTSYNC_NORMALIZE_WORKERS=auto``: extracted files small enough to normalize side by
#: side (load/normalize.py). Not by default: dlt normalizes a table's files in no set order, so
#: a column whose values change type would be typed by whichever file came first.
PARALLEL_NORMALIZE_DLT_DEFAULTS = {"SOURCES__DATA_WRITER__FILE_MAX_ITEMS": str(FILE_MAX_ITEMS)}
#: For a local DuckDB file, compressing intermediate files only costs time.
LOCAL_DLT_DEFAULTS = {"DATA_WRITER__DISABLE_COMPRESSION": "true"}


def dlt_defaults(settings: Settings) -> dict[str, str]:
    """The dlt environment settings of a run (the environment's own values win)."""
    defaults = dict(DLT_DEFAULTS)
    if settings.parallel_normalize:
        defaults.update(PARALLEL_NORMALIZE_DLT_DEFAULTS)
    if settings.destination == "duckdb":
        defaults.update(LOCAL_DLT_DEFAULTS)
    return defaults


def check_parallel_partitions(connectors: Sequence[Connector], settings: Settings) -> None:
    """Refuse ``partitions.max_concurrent`` above 1 where the destination takes one writer.

    Raises:
        ConnectorFileError: one line per connector asking for it, naming the destination.
    """
    asking = [
        (c, c.config.partitions.max_concurrent)
        for c in connectors
        if c.config.partitions and c.config.partitions.max_concurrent > 1
    ]
    reason = single_writer_reason(settings) if asking else None
    if reason is None:
        return
    raise ConnectorFileError(
        [
            Problem(
                shown_path(c.file),
                "partitions.max_concurrent",
                f"{limit} partition runs at once cannot share RESTSYNC_DESTINATION="
                f"{settings.destination!r}: {reason}. Set it to 1, or load into a destination "
                "that takes concurrent writers (postgres, ...).",
            )
            for c, limit in asking
        ]
    )
