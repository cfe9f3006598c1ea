"""Tenants at run time: which tenants a connector has now, the tenant of a partition key, and the
sensor that syncs a tenant added while the code location runs.

A connector's tenants are a partition dimension (see :mod:`restsync_dagster.orchestration.partitions`):
static keys live in its file, dynamic ones in Dagster's instance (a ``DynamicPartitionsDefinition``
that ``restsync tenants add`` or the UI grows, with no redeploy). Dagster schedules and backfills
partitions it is told about; nothing of Dagster's own syncs a partition *because it was just
added*. The ``<scope>_sync_new_tenants`` sensor adds exactly that: each tick it reads the dynamic
tenants from the instance and requests a run for every tenant none of whose assets has a
materialization yet, with a ``run_key`` per tenant (per tenant and time partition with
``partitions:``), so a tenant is requested once however many ticks see it, and the tenants that
were synced before are never read again by it. A tenant whose first run fails is then the retry
sensor's: transient causes are retried for that tenant alone, ``auth`` never.

Why a sensor rather than Dagster's declarative automation (``AutomationCondition.on_missing``):
it needs no second daemon loop enabled per asset, it is visible as one sensor with its ticks in
the UI, and its rule ("a tenant with nothing materialized") reads the same whatever the asset
graph's other conditions are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.connector.tenants import tenants_of
from restsync_dagster.orchestration.partitions import (
    build_asset_partitions_def,
    tenant_of_partition_key,
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


def tenant_of(connector: Connector, partition_key: str | None) -> str | None:
    """The tenant of a run's partition key; None for a connector without tenants or no key."""
    if partition_key is None or not connector.has_tenants:
        return None
    return tenant_of_partition_key(connector, partition_key)


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
    """A run request per partition of a dynamic tenant that nothing has materialized yet.

    Without ``partitions:`` a tenant is new while none of its connector's assets has its key
    materialized; with them, each of its time partitions (up to the last complete one) is.
    """
    requests: list[dg.RunRequest] = []
    for connector in connectors:
        tenants = tenant_keys(connector, instance)
        if not tenants:
            continue
        materialized: set[str] = set()
        for resource in connector.resources:
            asset = dg.AssetKey(names.asset_key_path(connector.name, resource.name))
            materialized |= set(instance.get_materialized_partitions(asset))
        for tenant in tenants:
            for key in _tenant_partition_keys(connector, tenant, instance):
                if key in materialized:
                    continue
                requests.append(
                    dg.RunRequest(
                        run_key=f"restsync-new-tenant:{connector.name}:{key}",
                        job_name=names.job_name(connector.name),
                        partition_key=key,
                        tags={names.TAG_CONNECTOR: connector.name, names.TAG_TENANT: tenant},
                    )
                )
                if len(requests) >= MAX_REQUESTS_PER_TICK:
                    return requests
    return requests


def _tenant_partition_keys(
    connector: Connector, tenant: str, instance: dg.DagsterInstance
) -> list[str]:
    partitions = build_asset_partitions_def(connector)
    if not isinstance(partitions, dg.MultiPartitionsDefinition):
        return [tenant]
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return [
            str(key)
            for key in partitions.get_multipartition_keys_with_dimension_value(
                names.TENANT_DIMENSION, tenant
            )
        ]
