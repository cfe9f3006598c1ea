"""One schedule per connector that declares ``schedule:``."""

from __future__ import annotations

from typing import Any

import dagster as dg

from restsync_dagster.partitions import build_partitions_def
from restsync_dagster.spec import Connector


def schedule_name(connector: Connector) -> str:
    """The name of ``connector``'s schedule."""
    return f"{connector.name}_schedule"


def build_schedule(connector: Connector, job: dg.JobDefinition) -> Any:
    """The connector's schedule, or None when its file declares none.

    A partitioned connector's schedule targets the last complete partition at each tick.
    """
    schedule = connector.spec.schedule
    if schedule is None:
        return None
    default_status = (
        dg.DefaultScheduleStatus.RUNNING if schedule.running else dg.DefaultScheduleStatus.STOPPED
    )
    partitions = build_partitions_def(connector)
    if partitions is not None:

        @dg.schedule(
            name=schedule_name(connector),
            job=job,
            cron_schedule=schedule.cron,
            execution_timezone=schedule.timezone,
            default_status=default_status,
            description=f"Runs {job.name} for the last complete partition at '{schedule.cron}'.",
        )
        def partitioned(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
            with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
                key = partitions.get_last_partition_key()
            if key is None:
                return dg.SkipReason("no complete partition yet")
            return dg.RunRequest(run_key=key, partition_key=key)

        return partitioned
    return dg.ScheduleDefinition(
        name=schedule_name(connector),
        job=job,
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone,
        default_status=default_status,
        description=f"Runs {job.name} at '{schedule.cron}' ({schedule.timezone}).",
    )
