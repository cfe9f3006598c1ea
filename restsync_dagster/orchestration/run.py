"""What one run of a connector's assets does: the body of its ``@dlt_assets``.

Resolve the variables, build the HTTP session and the real dlt source (bounded to the partition's
window, if any), take the connector's locks, let ``DagsterDltResource.run`` extract, normalize
and load, then add what dagster-dlt leaves out: the real table name, rows loaded even when zero,
the load id, the HTTP counters, and a schema snapshot for the drift check. Any failure becomes a
``dagster.Failure`` whose message and metadata name the connector, resource, status and redacted
URL, with the original exception chain dropped so no secret travels with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import dagster as dg
import pydantic
from dagster_dlt import DagsterDltResource

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.extract.counters import HttpStats
from restsync_dagster.extract.http import prefetcher_for, session_for
from restsync_dagster.extract.progress import Progress, one_full_page_warning
from restsync_dagster.extract.source import build_source
from restsync_dagster.failures.classify import SyncFailure, classify
from restsync_dagster.failures.errors import ConfigurationError
from restsync_dagster.failures.redaction import Redactor, redacted_output
from restsync_dagster.load.destination import (
    build_pipeline,
    check_destination,
    dlt_defaults,
    forget_trace,
    qualified_table_name,
    replace_where_merge_would_append,
)
from restsync_dagster.load.locks import pipeline_lock, warehouse_lock
from restsync_dagster.load.warehouse import SchemaSnapshot, snapshot
from restsync_dagster.orchestration.dead_runs import worker_tag
from restsync_dagster.orchestration.resources import ConnectorEnv, runtime_env
from restsync_dagster.settings import Settings

_TRUE = {"1", "true", "yes", "on"}


class SyncConfig(dg.Config):
    """Run config of a connector's assets (the launchpad shows it)."""

    full_refresh: bool = pydantic.Field(
        default=False,
        description=(
            "Drop the selected resources' tables and cursors, then load everything again. "
            f"Same as the run tag {names.TAG_FULL_REFRESH}=true."
        ),
    )


def is_full_refresh(context: dg.AssetExecutionContext, config: SyncConfig | None) -> bool:
    """Whether this run was asked to start the connector's tables over."""
    tag = context.run.tags.get(names.TAG_FULL_REFRESH, "")
    return bool(config and config.full_refresh) or tag.strip().lower() in _TRUE


@dataclass
class _Run:
    """What one run knows about itself."""

    context: dg.AssetExecutionContext
    connector: Connector
    settings: Settings
    env: dict[str, str]
    redactor: Redactor
    stats: HttpStats
    window: tuple[datetime, datetime] | None
    full_refresh: bool

    def fail(self, failure: SyncFailure) -> NoReturn:
        self.context.log.error(failure.message())
        raise dg.Failure(
            description=failure.message(),
            metadata={**failure.as_metadata(), **self.stats.as_metadata()},
        ) from None


@dataclass
class _Loaded:
    """What dlt reported after a committed load."""

    results: list[Any]
    load_id: str | None
    seconds: float
    snapshots: dict[str, SchemaSnapshot | None]


def run_sync(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    connector: Connector,
    env_resource: ConnectorEnv,
    config: SyncConfig | None = None,
) -> Iterator[dg.MaterializeResult]:
    """Extract, normalize and load the selected resources of ``connector``; yield one
    materialization per resource once the load is committed."""
    # The process this step runs in: if it dies, the next sync can tell (orchestration/dead_runs.py).
    context.instance.add_run_tags(context.run_id, worker_tag())
    env = runtime_env(connector, env_resource.values())
    run = _Run(
        context=context,
        connector=connector,
        settings=Settings.from_env(),
        env=env,
        redactor=Redactor(env[name] for name in connector.secret_env if name in env),
        stats=HttpStats(),
        window=_partition_window(context),
        full_refresh=is_full_refresh(context, config),
    )
    if run.full_refresh and run.window is not None:
        detail = (
            "A full refresh drops the tables of every partition; backfill all partitions "
            "instead, or drop the tables by hand first."
        )
        run.fail(classify(ConfigurationError(detail), connector=connector.name, retry_statuses=()))
    if run.full_refresh:
        context.log.info(f"connector {connector.name!r}: full refresh (tables and cursors reset)")
    with redacted_output(run.redactor):
        try:
            loaded = _load(run, dlt)
        except Exception as exc:
            run.fail(
                classify(
                    exc,
                    connector=connector.name,
                    retry_statuses=connector.config.retry.statuses,
                    redactor=run.redactor,
                    hints=connector.hints,
                )
            )
        yield from _materializations(run, loaded)


def _load(run: _Run, dlt: DagsterDltResource) -> _Loaded:
    """Build the source and pipeline, and let dagster-dlt run them under the connector's locks."""
    connector, settings, context = run.connector, run.settings, run.context
    check_destination(connector, settings)
    progress = Progress(
        connector.name, context.log.info, interval=settings.progress_interval_seconds
    )
    with contextlib.ExitStack() as stack:
        session = session_for(connector, run.stats)
        prefetcher = prefetcher_for(session, connector.config.rate_limit.max_concurrency)
        if prefetcher is not None:
            stack.callback(prefetcher.close)

        def stopped(resource: str, why: str, suspicious: bool) -> None:
            progress.stop(resource, why)
            if suspicious:
                context.log.warning(one_full_page_warning(connector.name, resource, why))

        source = build_source(
            connector, run.env, session, window=run.window, on_page=progress.page,
            prefetcher=prefetcher, on_stop=stopped,
        )  # fmt: skip
        # The pipeline's working directory belongs to the run holding its lock: another run of
        # the connector may be dropping and restoring its state right now.
        stack.enter_context(_locks(context, connector, settings))
        pipeline = build_pipeline(connector, settings)
        for resource in replace_where_merge_would_append(connector, source, pipeline.destination):
            context.log.warning(
                f"connector {connector.name!r}, resource {resource!r}: the destination cannot "
                "merge, so the table is replaced with this run's records"
            )
        stack.enter_context(_environment(dlt_defaults(settings)))
        stack.enter_context(_quiet_arrow_hints())
        started = time.perf_counter()
        kwargs: dict[str, Any] = {"refresh": "drop_resources"} if run.full_refresh else {}
        try:
            results = list(
                dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline, **kwargs)
            )
        finally:
            forget_trace(pipeline)
        seconds = time.perf_counter() - started
        context.log.info(progress.describe())
        trace = pipeline.last_trace
        loads = list(getattr(trace.last_load_info if trace else None, "loads_ids", None) or [])
        load_id = loads[-1] if loads else None
        # dagster-dlt's metadata extraction pops keys (data_type, nullable...) out of the live
        # schema's columns; a fresh pipeline object reads the schema dlt saved.
        saved = build_pipeline(connector, settings)
        snapshots = {
            r.asset_key.path[-1]: snapshot(saved, _table(connector, r), load_id)
            for r in results
            if r.asset_key is not None
        }
    return _Loaded(results, load_id, seconds, snapshots)


def _materializations(run: _Run, loaded: _Loaded) -> Iterator[dg.MaterializeResult]:
    """dagster-dlt's materializations, with what restsync adds to each."""
    connector, settings = run.connector, run.settings
    for result in loaded.results:
        assert result.asset_key is not None  # dagster-dlt names every materialization
        resource = result.asset_key.path[-1]
        metadata = dict(result.metadata or {})
        # dagster-dlt lists dlt's load files by their local paths: noise, and it exposes paths.
        metadata.pop("jobs", None)
        rows: Any = metadata.get("rows_loaded")
        found = loaded.snapshots.get(resource)
        metadata.update(
            {
                names.TABLE_NAME_KEY: qualified_table_name(
                    connector, settings, _table(connector, result)
                ),
                "rows_loaded": dg.MetadataValue.int(int(getattr(rows, "value", rows) or 0)),
                "load_id": loaded.load_id or "",
                "full_refresh": run.full_refresh,
                "sync_seconds": dg.MetadataValue.float(round(loaded.seconds, 3)),
                **run.stats.as_metadata(resource),
                **({names.SCHEMA_KEY: dg.MetadataValue.json(found.to_metadata())} if found else {}),
            }
        )
        yield dg.MaterializeResult(
            asset_key=result.asset_key, metadata=run.redactor.redact_value(metadata)
        )


def _table(connector: Connector, result: Any) -> str:
    return connector.resource(result.asset_key.path[-1]).table_name


def _partition_window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime] | None:
    if not context.has_partition_key and not context.has_partition_key_range:
        return None
    window = context.partition_time_window
    return window.start, window.end


class _QuietArrowHints(logging.Filter):
    """dlt warns on every Arrow table whose types differ from the column hints; restsync keeps
    incremental cursors as text on purpose (see extract/arrow.py), so that warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


@contextlib.contextmanager
def _quiet_arrow_hints() -> Iterator[None]:
    quiet = _QuietArrowHints()
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addFilter(quiet)
    try:
        yield
    finally:
        dlt_logger.removeFilter(quiet)


@contextlib.contextmanager
def _environment(defaults: dict[str, str]) -> Iterator[None]:
    """Set ``defaults`` in the environment (where unset) for the block, then restore it."""
    added = {k: v for k, v in defaults.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _locks(
    context: dg.AssetExecutionContext, connector: Connector, settings: Settings
) -> Iterator[None]:
    """The connector's pipeline lock, then (for DuckDB) the database file's lock."""
    name = connector.name
    with (
        pipeline_lock(
            settings,
            name,
            lambda: context.log.info(
                f"connector {name!r}: another run of this connector is syncing; waiting"
            ),
        ),
        warehouse_lock(
            settings,
            lambda: context.log.info(
                f"connector {name!r}: another run is using {settings.duckdb_path.name} "
                "(DuckDB allows one writing process); waiting"
            ),
        ),
    ):
        yield
