"""The ``retry_transient_failures`` sensor: re-runs syncs that failed on 429/5xx, never on 4xx.

A thin shell around :func:`restsync_dagster.run_retries.decide`. Each tick it reads the recently
failed runs from the instance, the ``dagster.Failure`` metadata their sync steps left (connector,
cause, transient or not, ``Retry-After``), which assets they did not materialize and what has
happened since, then per connector either requests a retry run, waits, or records why not.

For a connector with tenants, each tenant is its own lane: a failed run is one tenant's
partition, its retry requests that partition alone (with the failure's own cause in its tags),
"at most one pending retry" holds per tenant, so tenant C's outage never delays tenant D's retry,
and a tenant removed since its run failed is not retried.

State lives in the instance, not in a cursor: retry runs carry ``restsync/retry_of`` and
``restsync/attempt``, decided runs carry ``restsync/retry/<connector>``, and every request has a
``run_key`` unique per chain, connector and attempt, so a tick evaluated twice, or a daemon
restarted mid-tick, launches each retry once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.failures.classify import SyncFailure
from restsync_dagster.names import TAG_ATTEMPT, TAG_CONNECTOR, TAG_RETRY_OF, TAG_RETRY_REASON
from restsync_dagster.orchestration.dead_runs import release_dead_runs
from restsync_dagster.orchestration.instance import apply_pool_limits
from restsync_dagster.orchestration.partitions import run_tenant
from restsync_dagster.orchestration.retry_decisions import (
    Decision,
    FailedRun,
    RetryAction,
    RunRetryPolicy,
    decide,
    run_key,
)
from restsync_dagster.orchestration.tenants import tenant_keys
from restsync_dagster.settings import Settings

SENSOR_NAME = names.RETRY_SENSOR
LOOKBACK = timedelta(hours=24)
MAX_RUNS_PER_TICK = 200
_IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def run_retry_policy(connector: Connector, settings: Settings) -> RunRetryPolicy:
    """The connector's run retry settings, falling back to the deployment's defaults."""
    retry = connector.config.retry
    return RunRetryPolicy(
        max_retries=retry.run_retries if retry.run_retries is not None else settings.run_retries,
        base_delay_seconds=retry.run_base_delay_seconds
        if retry.run_base_delay_seconds is not None
        else settings.run_retry_base_delay_seconds,
    )


def build_retry_sensor(
    connectors: Sequence[Connector],
    jobs: Sequence[dg.JobDefinition],
    settings: Settings,
    name: str = SENSOR_NAME,
) -> dg.SensorDefinition:
    """The sensor, targeting every connector's sync job.

    Args:
        connectors: The connectors whose failed runs it retries; failures of others are left to
            their own sensor.
        jobs: Their ``<connector>_sync`` jobs.
        settings: The deployment's settings.
        name: The sensor's name: one per code location, or one per Dagster component
            (:func:`restsync_dagster.names.retry_sensor_name`).
    """
    by_name = {c.name: c for c in connectors}

    @dg.sensor(
        name=name,
        jobs=list(jobs),
        minimum_interval_seconds=settings.retry_sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Re-runs syncs that failed on a transient cause (the connector's retry statuses, "
            "timeouts, connection errors) with exponential backoff across runs; never on "
            "401/403/404 or other permanent failures."
        ),
    )
    def retry_transient_failures(context: dg.SensorEvaluationContext) -> Any:
        return evaluate(context, by_name, Settings.from_env(), time.time())

    return retry_transient_failures


def evaluate(
    context: dg.SensorEvaluationContext,
    connectors: dict[str, Connector],
    settings: Settings,
    now: float,
) -> dg.SensorResult | dg.SkipReason:
    """One tick: a run request per due retry, tags and log lines for the rest."""
    instance = context.instance
    # Pools exist, with their files' limits, before the runs this daemon launches claim them.
    try:
        apply_pool_limits(instance, connectors.values())
    except Exception as exc:  # the retries below matter more; the next tick tries again
        context.log.warning(f"could not create the connectors' pools: {type(exc).__name__}: {exc}")
    for run_id in release_dead_runs(instance, sorted(connectors)):
        context.log.warning(f"run {run_id}: its process is gone; marked failed, pool slots freed")
    requests: list[dg.RunRequest] = []
    waiting: list[str] = []
    busy = _lanes_with_pending_retry(instance, connectors)
    for record in _recent_failures(instance):
        tagged = record.dagster_run.tags.get(TAG_CONNECTOR)
        if tagged and names.decided_tag(tagged) in record.dagster_run.tags:
            continue  # decided on an earlier tick: no need to read its events again
        if tagged and tagged not in connectors:
            continue  # another sensor's connector (one sensor per Dagster component)
        failed = read_failed_run(instance, record, connectors)
        for connector in dict.fromkeys(f.connector for f in failed.failures):
            if connector not in connectors or names.decided_tag(connector) in failed.tags:
                continue
            lane = _lane(connectors[connector], failed.tags)
            decision = decide(
                failed,
                connector,
                run_retry_policy(connectors[connector], settings),
                now,
                has_successor=_has_successor(instance, failed, connector),
                connector_busy=lane in busy or (connector, None) in busy,
                materialized_since=_materialized_since(
                    instance, failed.unmaterialized.get(connector, frozenset()), failed
                ),
                removed_tenant=_removed_tenant(instance, connectors[connector], lane[1]),
            )
            if decision.action == RetryAction.RETRY:
                requests.append(_run_request(failed, decision, lane[1]))
                busy.add(lane)  # at most one pending retry per connector (per tenant)
                context.log.info(
                    f"connector {connector!r}{_tenant_words(lane[1])}: requesting "
                    f"{decision.reason} (run {failed.run_id} of chain {failed.root})"
                )
            elif decision.action.is_final:
                _record(instance, context, failed, decision)
            elif decision.action == RetryAction.RETRIED:  # settled: skip it from now on
                instance.add_run_tags(
                    failed.run_id, {names.decided_tag(connector): decision.action.value}
                )
            elif decision.action in (RetryAction.WAIT, RetryAction.BUSY):
                waiting.append(
                    f"{connector}{_tenant_words(lane[1])} ({failed.run_id[:8]}): {decision.reason}"
                )
    if requests:
        return dg.SensorResult(run_requests=requests)
    return dg.SkipReason("; ".join(waiting) if waiting else "no failed sync to retry")


def read_failed_run(
    instance: dg.DagsterInstance, record: Any, connectors: dict[str, Connector]
) -> FailedRun:
    """The facts :func:`decide` needs about one failed run."""
    run = record.dagster_run
    failures = tuple(_step_failures(instance, run.run_id))
    failed_connectors = {f.connector for f in failures if f.connector in connectors}
    planned = _planned_keys(run, failed_connectors, connectors)
    done = {
        r.event_log_entry.dagster_event.asset_key.to_user_string()
        for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.asset_key
    }
    unmaterialized = {c: frozenset(planned.get(c, set()) - done) for c in failed_connectors}
    ended = record.end_time or record.update_timestamp.timestamp()
    return FailedRun(
        run_id=run.run_id,
        ended_at=float(ended),
        tags=dict(run.tags),
        failures=failures,
        unmaterialized=unmaterialized,
        partition=run.tags.get("dagster/partition"),
    )


def _recent_failures(instance: dg.DagsterInstance) -> Iterator[Any]:
    since = datetime.now(UTC) - LOOKBACK
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since),
        limit=MAX_RUNS_PER_TICK,
        ascending=False,
    )
    # Oldest first, so the retry budget of a connector goes to the chain that waited longest.
    yield from reversed(list(records))


def _step_failures(instance: dg.DagsterInstance, run_id: str) -> Iterator[SyncFailure]:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        data = event.step_failure_data if event else None
        user = data.user_failure_data if data else None
        metadata: dict[str, Any] = {
            k: getattr(v, "value", v) for k, v in ((user.metadata or {}) if user else {}).items()
        }
        failure = SyncFailure.from_metadata(metadata)
        if failure is not None:  # else not a sync's own failure (a crashed worker): not guessed
            yield failure


def _planned_keys(
    run: dg.DagsterRun, failed: set[str], connectors: dict[str, Connector]
) -> dict[str, set[str]]:
    if run.asset_selection:
        selected = {key.to_user_string() for key in run.asset_selection}
    else:  # a whole <connector>_sync job
        selected = {f"{c}/{r.name}" for c in failed for r in connectors[c].resources}
    return {c: {k for k in selected if k.split("/", 1)[0] == c} for c in failed}


def _has_successor(instance: dg.DagsterInstance, failed: FailedRun, connector: str) -> bool:
    tags = {
        TAG_RETRY_OF: failed.root,
        TAG_CONNECTOR: connector,
        TAG_ATTEMPT: str(failed.attempt + 1),
    }
    return bool(instance.get_run_ids(filters=dg.RunsFilter(tags=tags), limit=1))


#: A retry lane: a connector, and the tenant of the run (None: the whole connector).
Lane = tuple[str, str | None]


def _lane(connector: Connector, tags: Mapping[str, str]) -> Lane:
    """The lane of a run of ``connector`` with ``tags``: its tenant's (from its partition or
    partition range), else the connector's (a run whose tags name no one tenant, or whose key
    no longer parses after the file changed, holds the whole connector)."""
    try:
        return connector.name, run_tenant(connector, tags)
    except Exception:
        return connector.name, None


def _tenant_words(tenant: str | None) -> str:
    return f" tenant {tenant!r}" if tenant is not None else ""


def _lanes_with_pending_retry(
    instance: dg.DagsterInstance, connectors: dict[str, Connector]
) -> set[Lane]:
    pending = instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS), limit=500)
    lanes: set[Lane] = set()
    for run in pending:
        name = run.tags.get(TAG_CONNECTOR)
        if TAG_RETRY_OF not in run.tags or name is None:
            continue
        connector = connectors.get(name)
        lanes.add(_lane(connector, run.tags) if connector is not None else (name, None))
    return lanes


def _removed_tenant(
    instance: dg.DagsterInstance, connector: Connector, tenant: str | None
) -> str | None:
    """``tenant``, when ``connector`` no longer has it (removed from the instance or the file)."""
    if tenant is None:
        return None
    return None if tenant in tenant_keys(connector, instance) else tenant


def _materialized_since(
    instance: dg.DagsterInstance, keys: frozenset[str], failed: FailedRun
) -> set[str]:
    done = set()
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey.from_user_string(key),
                asset_partitions=[failed.partition] if failed.partition else None,
                after_timestamp=failed.ended_at,
            ),
            limit=1,
        ).records
        if records:
            done.add(key)
    return done


def _run_request(failed: FailedRun, decision: Decision, tenant: str | None) -> dg.RunRequest:
    tags = {
        TAG_RETRY_OF: failed.root,
        TAG_ATTEMPT: str(decision.attempt),
        TAG_CONNECTOR: decision.connector,
        TAG_RETRY_REASON: decision.reason,
    }
    if tenant is not None:
        tags[names.TAG_TENANT] = tenant
    if failed.partition is None:
        # A partition-range run (a backfill's single run) is retried over the same range.
        for tag in (names.DAGSTER_RANGE_START_TAG, names.DAGSTER_RANGE_END_TAG):
            if tag in failed.tags:
                tags[tag] = failed.tags[tag]
    return dg.RunRequest(
        run_key=run_key(failed.root, decision.connector, decision.attempt),
        job_name=names.job_name(decision.connector),
        asset_selection=[dg.AssetKey.from_user_string(k) for k in sorted(decision.asset_keys)]
        or None,
        partition_key=failed.partition,
        tags=tags,
    )


def _record(
    instance: dg.DagsterInstance,
    context: dg.SensorEvaluationContext,
    failed: FailedRun,
    decision: Decision,
) -> None:
    instance.add_run_tags(
        failed.run_id,
        {
            names.decided_tag(decision.connector): decision.action.value,
            names.retry_reason_tag(decision.connector): decision.reason,
        },
    )
    message = (
        f"connector {decision.connector!r}: run {failed.run_id} not retried: {decision.reason}"
    )
    if decision.action == RetryAction.EXHAUSTED:
        context.log.warning(message)
    else:
        context.log.info(message)
