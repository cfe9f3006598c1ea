"""What one run of a connector's assets does: the body of its ``@dlt_assets``.

Resolve the variables, build the HTTP session and the real dlt source (bounded to the partition's
window, if any), take the connector's locks, let ``DagsterDltResource.run`` extract, normalize
and load (once, once per window of a windowed sync: see orchestration/windowed.py, or once per
load package of a sync that may commit in parts: see extract/packages.py), then add
what dagster-dlt leaves out: the real table name, rows loaded even when zero, the load id, the
HTTP counters, and a schema snapshot for the drift check. Any failure becomes a ``dagster.Failure``
whose message and metadata name the connector, resource, status and redacted URL (and window),
with the original exception chain dropped so no secret travels with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from restsync_dagster.extract.http import prefetcher_for, rate_counted_until, session_for
from restsync_dagster.extract.packages import Packages, why_one_package
from restsync_dagster.extract.progress import Progress
from restsync_dagster.extract.source import build_source
from restsync_dagster.extract.windows import Round
from restsync_dagster.failures.classify import Hints, SyncFailure, classify
from restsync_dagster.failures.errors import ConfigurationError
from restsync_dagster.failures.redaction import Redactor, redacted_output
from restsync_dagster.load.destination import (
    build_pipeline,
    check_destination,
    dlt_defaults,
    forget_trace,
    qualified_table_name,
    replace_where_merge_would_append,
    where_written,
)
from restsync_dagster.load.locks import LockStore, load_one_at_a_time
from restsync_dagster.load.memory import fall_back_on_duckdb_memory
from restsync_dagster.load.normalize import normalize_on_every_core
from restsync_dagster.load.warehouse import SchemaSnapshot, snapshot
from restsync_dagster.orchestration.collector import heap_frozen
from restsync_dagster.orchestration.dead_runs import prove_alive
from restsync_dagster.orchestration.held import (
    connector_locks,
    dlt_environment,
    linger_in_slot,
    quiet_arrow_hints,
    rate_share,
    run_lock_store,
)
from restsync_dagster.orchestration.launchers import refuse_local_destination_off_machine
from restsync_dagster.orchestration.partitions import (
    build_partitions_def,
    run_connector,
    run_partition_keys,
    run_pipeline_name,
    shares_tables,
)
from restsync_dagster.orchestration.resources import ConnectorEnv, runtime_env
from restsync_dagster.orchestration.windowed import (
    in_window,
    merged_results,
    notice_listener,
    plan_sync,
    stop_listener,
)
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
    store: LockStore
    env: dict[str, str]
    redactor: Redactor
    stats: HttpStats
    window: tuple[datetime, datetime] | None
    full_refresh: bool
    #: The load under way (a window of a windowed sync), for the failure message.
    current: Round | None = None

    def fail(self, failure: SyncFailure) -> NoReturn:
        failure = dataclasses.replace(failure, tenant=self.connector.tenant)
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
    settings = Settings.from_env()
    try:
        # A connector with tenants syncs one per run: from here on, that tenant's connector.
        connector = run_connector(connector, context.run.tags, context.instance)
    except ConfigurationError as exc:
        failure = classify(exc, connector=connector.name, retry_statuses=())
        context.log.error(failure.message())
        raise dg.Failure(description=failure.message(), metadata=failure.as_metadata()) from None
    if connector.tenant is not None:
        context.log.info(
            f"connector {connector.name!r}: tenant {connector.tenant!r} (pipeline "
            f"{names.pipeline_name(connector.pipeline_scope)}, rate key "
            f"{connector.config.rate_key!r})"
        )
    store = run_lock_store(context.instance, settings)
    env = runtime_env(connector, env_resource.values())
    run = _Run(
        context=context,
        connector=connector,
        settings=settings,
        store=store,
        env=env,
        redactor=Redactor(env[name] for name in connector.secret_env if name in env),
        stats=HttpStats(),
        window=_partition_window(context, connector),
        full_refresh=is_full_refresh(context, config),
    )
    if run.full_refresh and run.window is not None:
        detail = (
            "A full refresh drops the tables of every partition; backfill all partitions "
            "instead, or drop the tables by hand first."
        )
        run.fail(classify(ConfigurationError(detail), connector=connector.name, retry_statuses=()))
    if run.full_refresh and shares_tables(connector):
        detail = (
            "A full refresh drops the tables, which 'tenants.tables: shared' gives every "
            f"tenant: it would drop the other tenants' rows with tenant {connector.tenant!r}'s. "
            "Delete this tenant's rows by hand and run it again, or refresh every tenant."
        )
        run.fail(classify(ConfigurationError(detail), connector=connector.name, retry_statuses=()))
    if run.full_refresh:
        context.log.info(f"connector {connector.name!r}: full refresh (tables and cursors reset)")
    with redacted_output(run.redactor):
        try:
            refuse_local_destination_off_machine(context.instance, settings)
            # While this process lives, the run is alive; once gone, the next sync can tell
            # (orchestration/dead_runs.py).
            prove_alive(context.instance, context.run, store)
            loaded = _load(run, dlt)
        except Exception as exc:
            failure = classify(
                exc,
                connector=connector.name,
                retry_statuses=connector.config.retry.statuses,
                redactor=run.redactor,
                hints=_hints(connector, run.settings),
            )
            run.fail(in_window(failure, run.current))
        yield from _materializations(run, loaded)


def _hints(connector: Connector, settings: Settings) -> Hints:
    working_dir, destination = where_written(connector, settings)
    return dataclasses.replace(connector.hints, working_dir=working_dir, destination=destination)


def _load(run: _Run, dlt: DagsterDltResource) -> _Loaded:
    """Build the source and pipeline, and let dagster-dlt run them under the connector's locks:
    one load, or one per window of a windowed sync or per load package (each committed before
    the next)."""
    connector, settings, context = run.connector, run.settings, run.context
    check_destination(connector, settings)
    progress = Progress(
        connector.name, context.log.info, interval=settings.progress_interval_seconds
    )
    with contextlib.ExitStack() as stack:
        # The pipeline's working directory belongs to the run holding its lock: another run of
        # the connector may be dropping and restoring its state right now. Partition runs that
        # sync side by side each have a pipeline of their own, and lock their partitions.
        keys = run_partition_keys(connector, context.run.tags)
        own_pipeline = run_pipeline_name(connector, keys)
        holds = stack.enter_context(
            connector_locks(
                context.log, connector, settings, keys if own_pipeline else [], run.store
            )
        )
        # The runs spending the connector's API key at once each get a part of its limits.
        share = stack.enter_context(rate_share(context.log, connector, run.store))
        session = session_for(connector, run.stats, share=share)
        # The slot is handed on once this run's requests count in no window of the key.
        stack.callback(linger_in_slot, lambda: rate_counted_until(session))
        prefetcher = prefetcher_for(
            session, share.concurrency(connector.config.rate_limit.max_concurrency)
        )
        if prefetcher is not None:
            stack.callback(prefetcher.close)
        pipeline = build_pipeline(connector, settings, own_pipeline)
        load_one_at_a_time(
            pipeline,
            settings,
            connector.name,
            lambda: context.log.info(
                f"connector {connector.name!r}: another run is loading into dataset "
                f"{pipeline.dataset_name!r}; waiting"
            ),
            store=run.store,
            held=holds,
        )
        fall_back_on_duckdb_memory(pipeline, settings, context.log.warning)
        normalize_on_every_core(pipeline, context.log.info, auto=settings.parallel_normalize)
        stack.enter_context(dlt_environment(dlt_defaults(settings)))
        stack.enter_context(quiet_arrow_hints())
        rounds = plan_sync(
            context, connector, pipeline, partitioned=run.window is not None,
            full_refresh=run.full_refresh,
        )  # fmt: skip
        stack.enter_context(heap_frozen())
        started = time.perf_counter()
        loaded: list[Any] = []
        load_id = None
        #: Every load of this run (its windows or packages): the rows the schema snapshot reads.
        load_ids: list[str] = []
        for load in rounds:
            run.current = load
            source = build_source(
                connector, run.env, session, window=run.window, windows=load.windows,
                on_page=progress.page, prefetcher=prefetcher,
                on_stop=stop_listener(connector, load, progress, context.log.warning),
                on_notice=notice_listener(connector, progress, context.log.warning),
                on_fallback=lambda resource, reason: context.log.info(
                    f"connector {connector.name!r}, resource {resource!r}: records go to dlt's "
                    f"normalizer instead of Arrow: {reason}"
                ),
            )  # fmt: skip
            if load.resources is not None:
                source = source.with_resources(*load.resources)
            for resource in replace_where_merge_would_append(
                connector, source, pipeline.destination
            ):
                if shares_tables(connector):
                    raise ConfigurationError(
                        f"connector {connector.name!r}, resource {resource!r}: the destination "
                        "cannot merge, and a replace of a table all tenants share would drop the "
                        "other tenants' rows: use 'tenants.tables: datasets' on this destination"
                    )
                context.log.warning(
                    f"connector {connector.name!r}, resource {resource!r}: the destination cannot "
                    "merge, so the table is replaced with this run's records"
                )
            packages = _packages(run, source, load)
            if packages is not None:
                stack.callback(packages.close)
            while True:
                refresh = run.full_refresh and load.index == 0 and not (packages and packages.index)
                loads = _run_dlt(run, dlt, source, pipeline, loaded, refresh)
                load_id = loads[-1] if loads else load_id
                load_ids += loads
                if packages is None:
                    break
                context.log.info(
                    f"connector {connector.name!r}: load package {packages.index + 1} of this "
                    "run committed"
                )
                if packages.done:
                    break
                packages.next_package()
            if load.windows:
                progress.window(load.index + 1, load.total)
                context.log.info(f"connector {connector.name!r}: {load.describe()} committed")
        run.current = None
        seconds = time.perf_counter() - started
        context.log.info(progress.describe())
        results = merged_results(loaded)
        # dagster-dlt's metadata extraction pops keys (data_type, nullable...) out of the live
        # schema's columns; a fresh pipeline object reads the schema dlt saved.
        saved = build_pipeline(connector, settings, own_pipeline)
        # A table this load put no row in has no column the load filled: no query (it would
        # scan the table for the load id, a cost that grows with the table).
        snapshots = {
            r.asset_key.path[-1]: snapshot(
                saved, _table(connector, r), load_ids if _rows_loaded(r) else None
            )
            for r in results
            if r.asset_key is not None
        }
    return _Loaded(results, load_id, seconds, snapshots)


def _run_dlt(
    run: _Run, dlt: DagsterDltResource, source: Any, pipeline: Any, loaded: list[Any], refresh: bool
) -> list[str]:
    """One extract, normalize and load by dagster-dlt (its results added to ``loaded``); the
    ids of the loads it committed."""
    kwargs: dict[str, Any] = {"refresh": "drop_resources"} if refresh else {}
    try:
        loaded.extend(
            dlt.run(context=run.context, dlt_source=source, dlt_pipeline=pipeline, **kwargs)
        )
    finally:
        forget_trace(pipeline)
    trace = pipeline.last_trace
    info = trace.last_load_info if trace else None
    return list(getattr(info, "loads_ids", None) or [])


def _packages(run: _Run, source: Any, load: Round) -> Packages | None:
    """The package boundaries of this load, when it may commit in parts (extract/packages.py:
    never a window or a partition, which are bounded loads of their own)."""
    rows = run.settings.package_rows
    if not rows or load.windows or run.window is not None:
        return None
    reason = why_one_package(source, {r.name: r for r in run.connector.resources})
    if reason is not None:
        run.context.log.info(
            f"connector {run.connector.name!r}: one load package for the run: {reason}"
        )
        return None
    return Packages.install(
        source, rows, read_ahead=run.settings.package_read_ahead,
        seconds=run.settings.package_seconds,
    )  # fmt: skip


def _materializations(run: _Run, loaded: _Loaded) -> Iterator[dg.MaterializeResult]:
    """dagster-dlt's materializations, with what restsync adds to each."""
    connector, settings = run.connector, run.settings
    for result in loaded.results:
        assert result.asset_key is not None  # dagster-dlt names every materialization
        resource = result.asset_key.path[-1]
        metadata = dict(result.metadata or {})
        # dagster-dlt lists dlt's load files by their local paths: noise, and it exposes paths.
        metadata.pop("jobs", None)
        found = loaded.snapshots.get(resource)
        metadata.update(
            {
                names.TABLE_NAME_KEY: qualified_table_name(
                    connector, settings, _table(connector, result)
                ),
                "rows_loaded": dg.MetadataValue.int(_rows_loaded(result)),
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


def _rows_loaded(result: Any) -> int:
    rows: Any = (result.metadata or {}).get("rows_loaded")
    return int(getattr(rows, "value", rows) or 0)


def _table(connector: Connector, result: Any) -> str:
    return connector.resource(result.asset_key.path[-1]).table_name


def _partition_window(
    context: dg.AssetExecutionContext, connector: Connector
) -> tuple[datetime, datetime] | None:
    """The run's time window: from its first to its last time-window partition (with tenants,
    of the time dimension: a tenant's partition alone has none)."""
    partitions = build_partitions_def(connector)
    keys = run_partition_keys(connector, context.run.tags)
    if partitions is None or not keys:
        return None
    first, last = (partitions.time_window_for_partition_key(k) for k in (keys[0], keys[-1]))
    return first.start, last.end
