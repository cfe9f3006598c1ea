"""Tenants at run time: which tenants a connector has now, the tenant of a partition key, and the
sensor that syncs a tenant added while the code location runs.

A connector's tenants are a partition dimension (see :mod:`restsync_dagster.orchestration.partitions`):
static keys live in its file, dynamic ones in Dagster's instance (a ``DynamicPartitionsDefinition``
that ``restsync tenants add`` or the UI grows, with no redeploy). Dagster schedules and backfills
partitions it is told about; nothing of Dagster's own syncs a partition *because it was just
added*. The ``<scope>_sync_new_tenants`` sensor adds exactly that: each tick it reads the dynamic
tenants from the instance and requests a run for every tenant none of whose assets has a
materialization yet (with ``partitions:``, for the last complete time window), with a ``run_key``
per tenant, so a tenant is requested once however many ticks see it, and the tenants that were
synced before are never read again by it. A tenant whose first run fails is then the retry
sensor's: transient causes are retried for that tenant alone, ``auth`` never.

Why a sensor rather than Dagster's declarative automation (``AutomationCondition.on_missing``
on every asset): a tenant is one run of the connector's job, not a condition per asset and
partition evaluated on every tick (whose cost grows with the tenants); the sensor shows each
tick's decision ("no new tenant") in the UI, can be stopped on its own, and its run key makes a
tenant's first sync happen once, even when that run fails for good (a revoked key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.connector.tenants import tenants_of
from restsync_dagster.orchestration.partitions import (
    build_partitions_def,
    tenant_of_partition_key,
    tenant_partition_key,
)
from restsync_dagster.settings import Settings

#: Runs requested per tick, at most: the rest are requested by the next ticks.
MAX_REQUESTS_PER_TICK = 100


def has_dynamic_tenants(connector: Connector) -> bool:
    """Whether ``connector``'s tenants are added at run time (``tenants: {dynamic: true}``)."""
    spec = connector.config.tenants
    return spec is not None and spec.dynamic


def tenant_keys(connector: Connector, instance: dg.DagsterInstance | None) -> list[str]:
    """The tenants ``connector`` has now: its file's keys, or the dynamic ones the instance holds
    (none without an instance). Empty for a connector without tenants."""
    if not has_dynamic_tenants(connector):
        return list(tenants_of(connector))
    if instance is None:
        return []
    return list(instance.get_dynamic_partitions(names.tenants_partitions_name(connector.name)))


def new_tenants_sensor_name(retry_sensor_name: str) -> str:
    """The new-tenants sensor beside the retry sensor ``retry_sensor_name`` (same scope)."""
    scope = retry_sensor_name.removesuffix(names.RETRY_SENSOR).rstrip("_")
    return f"{scope}_{names.NEW_TENANTS_SENSOR}" if scope else names.NEW_TENANTS_SENSOR


def build_tenant_sensors(
    connectors: Sequence[Connector],
    jobs: Sequence[dg.JobDefinition],
    settings: Settings,
    *,
    retry_sensor_name: str = names.RETRY_SENSOR,
) -> list[dg.SensorDefinition]:
    """The new-tenants sensor for the connectors with dynamic tenants; none when there are none.

    Args:
        connectors: The connectors of one ``Definitions``.
        jobs: Their ``<connector>_sync`` jobs, by position.
        settings: The deployment's settings (its interval is the retry sensor's,
            ``RESTSYNC_RETRY_SENSOR_INTERVAL_SECONDS``).
        retry_sensor_name: The retry sensor of the same ``Definitions``, whose scope it shares.
    """
    dynamic = [c for c in connectors if has_dynamic_tenants(c)]
    if not dynamic:
        return []
    by_job = {job.name: job for job in jobs}
    targets = [by_job[names.job_name(c.name)] for c in dynamic]

    @dg.sensor(
        name=new_tenants_sensor_name(retry_sensor_name),
        jobs=targets,
        minimum_interval_seconds=settings.retry_sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Syncs each tenant added at run time (restsync tenants add, or the UI) once, "
            "reading that tenant alone: a run per tenant none of whose assets is materialized."
        ),
    )
    def sync_new_tenants(context: dg.SensorEvaluationContext) -> Any:
        requests = new_tenant_requests(context.instance, dynamic)
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SkipReason("no new tenant")

    return [sync_new_tenants]


def new_tenant_requests(
    instance: dg.DagsterInstance, connectors: Sequence[Connector]
) -> list[dg.RunRequest]:
    """A run request per dynamic tenant none of whose partitions any asset of its connector has
    materialized: its key, or with ``partitions:`` its key in the last complete time window
    (what a schedule's tick would have run for it; older windows are a backfill to launch)."""
    requests: list[dg.RunRequest] = []
    for connector in connectors:
        tenants = tenant_keys(connector, instance)
        if not tenants:
            continue
        synced = _synced_tenants(connector, instance)
        time_key = None
        time_partitions = build_partitions_def(connector)
        if time_partitions is not None:
            with dg.partition_loading_context(dynamic_partitions_store=instance):
                time_key = time_partitions.get_last_partition_key()
            if time_key is None:
                continue  # no complete window yet: the next ticks see the tenant again
        for tenant in tenants:
            if tenant in synced:
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"restsync-new-tenant:{connector.name}:{tenant}",
                    job_name=names.job_name(connector.name),
                    partition_key=tenant_partition_key(connector, tenant, time_key),
                    tags={names.TAG_CONNECTOR: connector.name, names.TAG_TENANT: tenant},
                )
            )
            if len(requests) >= MAX_REQUESTS_PER_TICK:
                return requests
    return requests


def _synced_tenants(connector: Connector, instance: dg.DagsterInstance) -> set[str]:
    """The tenants of which some asset of ``connector`` has a materialized partition."""
    synced: set[str] = set()
    for resource in connector.resources:
        asset = dg.AssetKey(names.asset_key_path(connector.name, resource.name))
        for key in instance.get_materialized_partitions(asset):
            try:
                synced.add(tenant_of_partition_key(connector, key))
            except Exception:  # a key of the file's earlier partitions: not a tenant's
                continue
    return synced
