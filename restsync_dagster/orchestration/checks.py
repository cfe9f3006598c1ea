"""Asset checks per resource: primary key unique and not null, and schema drift.

One ``@multi_asset_check`` per connector, run after its assets in the same job. The key check
asks the destination through dlt's SQL client, except after a run that loaded no row into a
merge or append table: the table is then the one the previous check saw, and scanning it again
would make a sync with nothing to do cost more the more data there is. The drift check compares the schema snapshot of
the latest materialization with the one before (see :mod:`restsync_dagster.load.schema_drift`).
Freshness is not a check here: it is Dagster's ``FreshnessPolicy`` on each asset (see assets.py).
"""

from collections.abc import Iterator, Sequence

import dagster as dg
from dagster import AssetCheckExecutionContext

from restsync_dagster import names
from restsync_dagster.connector import Connector, ResolvedResource
from restsync_dagster.load.destination import build_pipeline
from restsync_dagster.load.schema_drift import SchemaSnapshot, diff
from restsync_dagster.load.warehouse import check_primary_key
from restsync_dagster.orchestration.assets import asset_key
from restsync_dagster.orchestration.dead_runs import prove_alive
from restsync_dagster.orchestration.held import connector_locks, run_lock_store
from restsync_dagster.orchestration.partitions import (
    run_connector,
    run_partition_keys,
    run_pipeline_name,
    shares_tables,
)
from restsync_dagster.settings import Settings

PRIMARY_KEY_CHECK = names.PRIMARY_KEY_CHECK
SCHEMA_DRIFT_CHECK = names.SCHEMA_DRIFT_CHECK


def build_connector_checks(connector: Connector) -> dg.AssetChecksDefinition:
    """The checks of every resource of ``connector``."""
    specs = []
    for info in connector.resources:
        key = asset_key(connector, info.name)
        if info.primary_key:
            specs.append(
                dg.AssetCheckSpec(
                    PRIMARY_KEY_CHECK,
                    asset=key,
                    description=f"Every row of {info.table_name} has a unique, non-null "
                    f"{info.primary_key_text}.",
                )
            )
        specs.append(
            dg.AssetCheckSpec(
                SCHEMA_DRIFT_CHECK,
                asset=key,
                description="Columns against the previous materialization: a new nullable "
                "column warns; a removed column or a changed type is an error.",
            )
        )
    infos = {info.name: info for info in connector.resources}

    @dg.multi_asset_check(
        specs=specs,
        name=names.checks_op_name(connector.name),
        can_subset=True,
        pool=names.pool_name(connector.name),
    )
    def checks(context: AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        settings = Settings.from_env()
        store = run_lock_store(context.instance, settings)
        prove_alive(context.instance, context.run, store)
        # A tenant's run checks its tenant's pipeline (its dataset, with tables: datasets).
        bound = run_connector(connector, context.run.tags, context.instance)
        tenant_column = (
            (bound.config.tenants.column,) if shares_tables(bound) and bound.config.tenants else ()
        )
        keys = run_partition_keys(bound, context.run.tags)
        own_pipeline = run_pipeline_name(bound, keys)
        results = []
        locks = connector_locks(context.log, bound, settings, keys if own_pipeline else [], store)
        with locks:
            pipeline = build_pipeline(bound, settings, own_pipeline)
            for check_key in sorted(
                context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()
            ):
                info = infos[check_key.asset_key.path[-1]]
                records = context.instance.fetch_materializations(
                    check_key.asset_key, limit=2
                ).records
                if check_key.name == PRIMARY_KEY_CHECK:
                    # The previous check may have seen another tenant's table (or the
                    # shared one before another tenant's load): a tenant's run scans.
                    unchanged = (
                        None
                        if bound.tenant is not None
                        else _unchanged_result(context, check_key, info, records)
                    )
                    results.append(
                        unchanged
                        or _primary_key_result(pipeline, check_key.asset_key, info, tenant_column)
                    )
                else:
                    results.append(_drift_result(check_key.asset_key, records))
        yield from results

    return checks


def _primary_key_result(
    pipeline: object, key: dg.AssetKey, info: ResolvedResource, tenant_column: tuple[str, ...] = ()
) -> dg.AssetCheckResult:
    # In tables tenants share, a key is unique within its tenant (extract/tenants.py).
    columns = [*info.primary_key, *tenant_column]
    try:
        result = check_primary_key(pipeline, info.table_name, columns)  # type: ignore[arg-type]
    except Exception as exc:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=PRIMARY_KEY_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"could not query the table: {type(exc).__name__}: {str(exc)[:200]}",
        )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=PRIMARY_KEY_CHECK,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows": result.rows,
            "duplicate_rows": result.duplicates,
            "null_key_rows": result.nulls,
            "primary_key": info.primary_key_text,
        },
        description=None
        if result.passed
        else f"{result.duplicates} duplicate and {result.nulls} null key row(s)",
    )


def _unchanged_result(
    context: AssetCheckExecutionContext,
    check_key: dg.AssetCheckKey,
    info: ResolvedResource,
    records: Sequence[dg.EventLogRecord],
) -> dg.AssetCheckResult | None:
    """The previous key check's result again, when this run materialized the asset without
    loading a row into a table that a load only adds to (merge, append); None otherwise."""
    if info.write_disposition not in ("merge", "append") or not records:
        return None
    latest = records[0]
    metadata = latest.asset_materialization.metadata if latest.asset_materialization else {}
    rows = metadata.get("rows_loaded")
    refreshed = metadata.get("full_refresh")
    if (
        latest.run_id != context.run.run_id
        or getattr(rows, "value", rows) != 0
        or getattr(refreshed, "value", refreshed)
    ):
        return None
    # The newest executions: this run's (planned), then the one before, which ran to a result
    # unless it failed or was skipped: then the table is scanned.
    history = context.instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=2
    )
    previous = [r for r in history if r.run_id != context.run.run_id][:1]
    event = previous[0].event if previous else None
    evaluation = event.dagster_event.event_specific_data if event and event.dagster_event else None
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        return None
    return dg.AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=PRIMARY_KEY_CHECK,
        passed=evaluation.passed,
        severity=evaluation.severity,
        metadata={**evaluation.metadata, "unchanged_since_run": previous[0].run_id},
        description=(
            f"no row loaded in this run: the table is as the check of run "
            f"{previous[0].run_id[:8]} found it"
            + (f" ({evaluation.description})" if evaluation.description else "")
        ),
    )


def _drift_result(key: dg.AssetKey, records: Sequence[dg.EventLogRecord]) -> dg.AssetCheckResult:
    snapshots = []
    for record in records:
        materialization = record.asset_materialization
        value = materialization.metadata.get(names.SCHEMA_KEY) if materialization else None
        if value is not None:
            snapshots.append(SchemaSnapshot.from_metadata(value.value))  # type: ignore[arg-type]
    if len(snapshots) < 2:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=SCHEMA_DRIFT_CHECK,
            passed=True,
            description="first materialization with a schema snapshot: nothing to compare yet",
        )
    current, previous = snapshots[0], snapshots[1]
    drift = diff(previous, current)
    severity = drift.severity
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=SCHEMA_DRIFT_CHECK,
        passed=severity is None,
        severity=dg.AssetCheckSeverity.ERROR if severity == "ERROR" else dg.AssetCheckSeverity.WARN,
        metadata={"diff": dg.MetadataValue.json(drift.as_metadata()), "summary": drift.describe()},
        description=drift.describe(),
    )
