"""One schedule per connector that declares ``schedule:``.

An unpartitioned connector gets a ``ScheduleDefinition`` on its cron. A partitioned one gets
Dagster's own ``build_schedule_from_partitioned_job`` (each tick runs the partition that just
ended) whenever its cron is one that function can express: minute/hour/day offsets of the
partitions' own cadence, in the partitions' time zone. Any other cron (``*/30`` on hourly
partitions, another time zone) gets restsync's schedule, which adds exactly that: any cron, with
the last complete partition at each tick.

A connector with tenants gets one run per tenant at each tick. Static tenants go through
``build_schedule_from_partitioned_job`` too (on a ``StaticPartitionsDefinition`` it requests
every key; on tenants x time, every tenant's key of the partition that just ended); dynamic
tenants, which that function does not take alone, get a schedule that reads them from the
instance at each tick and requests each one's key. Either way a tenant removed before a tick is
not requested by it.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.orchestration.partitions import (
    build_asset_partitions_def,
    build_partitions_def,
)
from restsync_dagster.settings import Settings

#: Which cron fields may carry a fixed value, per partition cadence, and the keyword Dagster's
#: builder takes for each: (minute, hour, day of month, month, day of week).
_OFFSETS = {
    "hourly": ("minute_of_hour", None, None, None, None),
    "daily": ("minute_of_hour", "hour_of_day", None, None, None),
    "weekly": ("minute_of_hour", "hour_of_day", None, None, "day_of_week"),
    "monthly": ("minute_of_hour", "hour_of_day", "day_of_month", None, None),
}


def build_schedule(connector: Connector, job: dg.JobDefinition, settings: Settings) -> Any:
    """The connector's schedule, or None when its file declares none."""
    schedule = connector.config.schedule
    if schedule is None:
        return None
    running = schedule.running and (
        settings.example_schedules_running or not settings.is_example(connector.file)
    )
    default_status = (
        dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    )
    name = names.schedule_name(connector.name)
    partitions = build_partitions_def(connector)
    if connector.has_tenants and connector.config.partitions is None:
        return _tenant_schedule(connector, name, job, schedule, default_status)
    if partitions is None:
        return dg.ScheduleDefinition(
            name=name,
            job=job,
            cron_schedule=schedule.cron,
            execution_timezone=schedule.timezone,
            default_status=default_status,
            description=f"Runs {job.name} at '{schedule.cron}' ({schedule.timezone}).",
        )
    description = f"Runs {job.name} for the last complete partition at '{schedule.cron}'."
    if connector.has_tenants:
        description = (
            f"Runs {job.name} for the last complete partition at '{schedule.cron}', "
            "one run per tenant."
        )
    assert connector.config.partitions is not None
    offsets = partition_offsets(schedule.cron, connector.config.partitions.granularity)
    if offsets is not None and schedule.timezone == partitions.timezone:
        return dg.build_schedule_from_partitioned_job(
            job,
            name=name,
            description=description,
            default_status=default_status,
            minute_of_hour=offsets.get("minute_of_hour"),
            hour_of_day=offsets.get("hour_of_day"),
            day_of_week=offsets.get("day_of_week"),
            day_of_month=offsets.get("day_of_month"),
        )
    asset_partitions = build_asset_partitions_def(connector)
    return _any_cron_schedule(
        name, job, partitions, asset_partitions, schedule, default_status, description
    )


def _tenant_schedule(
    connector: Connector,
    name: str,
    job: dg.JobDefinition,
    schedule: Any,
    default_status: dg.DefaultScheduleStatus,
) -> Any:
    """One run per tenant at each tick of ``schedule.cron``, for a connector partitioned by its
    tenants alone: Dagster's builder for static keys, the instance's keys for dynamic ones."""
    description = f"Runs {job.name} at '{schedule.cron}' ({schedule.timezone}), one run per tenant."
    spec = connector.config.tenants
    if spec is not None and not spec.dynamic:
        return dg.build_schedule_from_partitioned_job(
            job,
            name=name,
            description=description,
            default_status=default_status,
            cron_schedule=schedule.cron,
            execution_timezone=schedule.timezone,
        )
    partitions_name = names.tenants_partitions_name(connector.name)

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone,
        default_status=default_status,
        description=description,
    )
    def every_tenant(context: dg.ScheduleEvaluationContext) -> Any:
        tenants = context.instance.get_dynamic_partitions(partitions_name)
        if not tenants:
            return dg.SkipReason(f"connector {connector.name!r} has no tenant yet")
        return [dg.RunRequest(run_key=tenant, partition_key=tenant) for tenant in tenants]

    return every_tenant


def partition_offsets(cron: str, granularity: str) -> dict[str, int] | None:
    """The offsets ``build_schedule_from_partitioned_job`` takes for ``cron``, or None when the
    cron is not "the cadence of the partitions, at fixed offsets" (``"15 2 * * *"`` on daily
    partitions is ``{minute_of_hour: 15, hour_of_day: 2}``)."""
    fields = cron.split()
    allowed = _OFFSETS[granularity]
    offsets = {}
    for value, keyword in zip(fields, allowed, strict=True):
        if keyword is None:
            if value != "*":
                return None
        elif value.isdigit():
            offsets[keyword] = int(value)
        else:
            return None
    return offsets


def _any_cron_schedule(
    name: str,
    job: dg.JobDefinition,
    partitions: dg.TimeWindowPartitionsDefinition,
    asset_partitions: Any,
    schedule: Any,
    default_status: dg.DefaultScheduleStatus,
    description: str,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone,
        default_status=default_status,
        description=description,
    )
    def partitioned(context: dg.ScheduleEvaluationContext) -> Any:
        with dg.partition_loading_context(
            effective_dt=context.scheduled_execution_time, dynamic_partitions_store=context.instance
        ):
            key = partitions.get_last_partition_key()
            if key is None:
                return dg.SkipReason("no complete partition yet")
            if not isinstance(asset_partitions, dg.MultiPartitionsDefinition):
                return dg.RunRequest(run_key=key, partition_key=key)
            # Tenants x time: each tenant's key of that partition, as Dagster's builder does.
            dimension = asset_partitions.time_window_dimension.name
            keys = asset_partitions.get_multipartition_keys_with_dimension_value(dimension, key)
        return [dg.RunRequest(run_key=str(k), partition_key=str(k)) for k in keys]

    return partitioned
