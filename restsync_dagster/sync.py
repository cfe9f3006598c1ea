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
from datetime import datetime
from typing import Any, NoReturn

import dagster as dg
import pydantic
from dagster_dlt import DagsterDltResource

from restsync_dagster.destination import (
    build_pipeline,
    check_destination,
    dlt_defaults,
    forget_trace,
    qualified_table_name,
    replace_where_merge_would_append,
)
from restsync_dagster.failures import INVALID_CONFIG, SyncFailure, classify
from restsync_dagster.http import (
    HttpStats,
    RequestLimiter,
    RetryPolicy,
    build_session,
    path_router,
)
from restsync_dagster.locks import exclusive, warehouse_lock
from restsync_dagster.progress import Progress
from restsync_dagster.redaction import Redactor, redacted_output
from restsync_dagster.resources import ConnectorEnv, runtime_env
from restsync_dagster.settings import Settings
from restsync_dagster.sources import build_source
from restsync_dagster.spec import Connector
from restsync_dagster.warehouse import snapshot

#: Dagster's standard metadata key for the table an asset is stored in.
TABLE_NAME_KEY = "dagster/table_name"
#: Metadata key of the schema snapshot the drift check compares.
SCHEMA_KEY = "restsync/schema"
#: Run tag that turns a run into a full refresh (usable from the launchpad, schedules, the CLI).
FULL_REFRESH_TAG = "restsync/full_refresh"
_TRUE = {"1", "true", "yes", "on"}


class SyncConfig(dg.Config):
    """Run config of a connector's assets (the launchpad shows it)."""

    full_refresh: bool = pydantic.Field(
        default=False,
        description=(
            "Drop the selected resources' tables and cursors, then load everything again. "
            f"Same as the run tag {FULL_REFRESH_TAG}=true."
        ),
    )


def retry_policy(connector: Connector) -> RetryPolicy:
    """The connector's HTTP retry settings."""
    retry = connector.spec.retry
    return RetryPolicy(
        statuses=retry.statuses,
        max_retries=retry.max_retries,
        backoff_factor=retry.backoff_factor,
        max_delay_seconds=retry.max_delay_seconds,
        timeout_seconds=connector.spec.timeout_seconds,
    )


def session_for(connector: Connector, stats: HttpStats) -> Any:
    """The connector's HTTP session: its retries, its rate and concurrency limits, counted."""
    rate = connector.spec.rate_limit
    limiter = RequestLimiter(rate.requests_per_second, rate.max_concurrency)
    return build_session(retry_policy(connector), stats, limiter)


def is_full_refresh(context: dg.AssetExecutionContext, config: SyncConfig | None) -> bool:
    """Whether this run was asked to start the connector's tables over."""
    tag = context.run.tags.get(FULL_REFRESH_TAG, "")
    return bool(config and config.full_refresh) or tag.strip().lower() in _TRUE


def run_sync(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    connector: Connector,
    env_resource: ConnectorEnv,
    config: SyncConfig | None = None,
) -> Iterator[dg.MaterializeResult]:
    """Extract, normalize and load the selected resources of ``connector``; yield one
    materialization per resource once the load is committed."""
    settings = Settings.from_env()
    env = runtime_env(connector, env_resource.values())
    redactor = Redactor(env[name] for name in connector.secret_env if name in env)
    stats = HttpStats(path_router({info.name: info.path for info in connector.resources}))
    policy = retry_policy(connector)
    full_refresh = is_full_refresh(context, config)
    window = _partition_window(context)
    if full_refresh and window is not None:
        _fail(
            context,
            SyncFailure(
                connector=connector.name,
                resource=None,
                kind=INVALID_CONFIG,
                status=None,
                url=None,
                retry_after=None,
                transient=False,
                detail="A full refresh drops the tables of every partition; backfill all "
                "partitions instead, or drop the tables by hand first.",
            ),
            stats,
        )
    run_kwargs: dict[str, Any] = {"refresh": "drop_resources"} if full_refresh else {}
    if full_refresh:
        context.log.info(f"connector {connector.name!r}: full refresh (tables and cursors reset)")
    with redacted_output(redactor):
        yield from _sync(
            context, dlt, connector, settings, env, redactor, stats, policy, window, run_kwargs
        )


def _sync(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    connector: Connector,
    settings: Settings,
    env: dict[str, str],
    redactor: Redactor,
    stats: HttpStats,
    policy: RetryPolicy,
    window: tuple[datetime, datetime] | None,
    run_kwargs: dict[str, Any],
) -> Iterator[dg.MaterializeResult]:
    full_refresh = "refresh" in run_kwargs
    try:
        check_destination(connector, settings)
        progress = Progress(
            connector.name, context.log.info, interval=settings.progress_interval_seconds
        )
        source = build_source(
            connector, env, session_for(connector, stats), window=window, on_page=progress.page
        )
        pipeline = build_pipeline(connector, settings)
        for resource in replace_where_merge_would_append(connector, source, pipeline.destination):
            context.log.warning(
                f"connector {connector.name!r}, resource {resource!r}: the destination cannot "
                "merge, so the table is replaced with this run's records"
            )
        with (
            _locks(context, connector, settings),
            _environment(dlt_defaults(settings)),
            _quiet_arrow_hints(),
        ):
            started = time.perf_counter()
            try:
                results = list(
                    dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline, **run_kwargs)
                )
            finally:
                forget_trace(pipeline)
            seconds = time.perf_counter() - started
            context.log.info(progress.describe())
            trace = pipeline.last_trace
            loads = list(getattr(trace.last_load_info if trace else None, "loads_ids", None) or [])
            load_id = loads[-1] if loads else None
            # dagster-dlt's metadata extraction pops keys (data_type, nullable...) out of the
            # live schema's columns; a fresh pipeline object reads the schema dlt saved.
            saved = build_pipeline(connector, settings)
            snapshots = {
                r.asset_key.path[-1]: snapshot(saved, _table(connector, r), load_id)
                for r in results
                if r.asset_key is not None
            }
    except Exception as exc:
        _fail(
            context,
            classify(
                exc,
                connector=connector.name,
                retry_statuses=policy.statuses,
                redactor=redactor,
                last_url=stats.last_url,
            ),
            stats,
        )
    for result in results:
        assert result.asset_key is not None  # dagster-dlt names every materialization
        resource = result.asset_key.path[-1]
        metadata = dict(result.metadata or {})
        # dagster-dlt lists dlt's load files by their local paths: noise, and it exposes paths.
        metadata.pop("jobs", None)
        rows: Any = metadata.get("rows_loaded")
        found = snapshots.get(resource)
        metadata.update(
            {
                TABLE_NAME_KEY: qualified_table_name(
                    connector, settings, _table(connector, result)
                ),
                "rows_loaded": dg.MetadataValue.int(int(getattr(rows, "value", rows) or 0)),
                "load_id": load_id or "",
                "full_refresh": full_refresh,
                "sync_seconds": dg.MetadataValue.float(round(seconds, 3)),
                **stats.as_metadata(resource),
                **({SCHEMA_KEY: dg.MetadataValue.json(found.to_metadata())} if found else {}),
            }
        )
        yield dg.MaterializeResult(
            asset_key=result.asset_key, metadata=redactor.redact_value(metadata)
        )


def _fail(context: dg.AssetExecutionContext, failure: SyncFailure, stats: HttpStats) -> NoReturn:
    context.log.error(failure.message())
    raise dg.Failure(
        description=failure.message(),
        metadata={**failure.as_metadata(), **stats.as_metadata()},
        allow_retries=failure.transient,
    ) from None


def _table(connector: Connector, result: Any) -> str:
    resource = result.asset_key.path[-1]
    return next(i.table_name for i in connector.resources if i.name == resource)


def _partition_window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime] | None:
    if not context.has_partition_key and not context.has_partition_key_range:
        return None
    window = context.partition_time_window
    return window.start, window.end


class _QuietArrowHints(logging.Filter):
    """dlt warns on every Arrow batch whose types differ from the column hints; restsync keeps
    incremental cursors as text on purpose (see fetch.py), so that warning says nothing."""

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
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            exclusive(
                settings.pipelines_dir / f"restsync_{name}.lock",
                lambda: context.log.info(
                    f"connector {name!r}: another run of this connector is syncing; waiting"
                ),
            )
        )
        path = settings.duckdb_path
        stack.enter_context(
            warehouse_lock(
                settings,
                lambda: context.log.info(
                    f"connector {name!r}: another run is using {path.name} "
                    "(DuckDB allows one writing process); waiting"
                ),
            )
        )
        yield
