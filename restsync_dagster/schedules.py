"""One schedule per connector that declares ``schedule:``."""

from __future__ import annotations

import dagster as dg

from restsync_dagster.spec import Connector


def schedule_name(connector: Connector) -> str:
    """The name of ``connector``'s schedule."""
    return f"{connector.name}_schedule"


def build_schedule(
    connector: Connector, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition | None:
    """The connector's schedule, or None when its file declares none."""
    schedule = connector.spec.schedule
    if schedule is None:
        return None
    return dg.ScheduleDefinition(
        name=schedule_name(connector),
        job=job,
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if schedule.running
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"Runs {job.name} at '{schedule.cron}' ({schedule.timezone}).",
    )
