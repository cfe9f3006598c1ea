"""Dagster time-window partitions of a connector, from its ``partitions:`` key."""

from __future__ import annotations

from typing import Any

import dagster as dg

from restsync_dagster.connector import Connector

_CLASSES: dict[str, Any] = {
    "hourly": dg.HourlyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "monthly": dg.MonthlyPartitionsDefinition,
}


def build_partitions_def(connector: Connector) -> dg.TimeWindowPartitionsDefinition | None:
    """The connector's partitions, or None when its file declares none."""
    spec = connector.config.partitions
    if spec is None:
        return None
    window = spec.window
    return _CLASSES[spec.granularity](
        start_date=window.start, end_date=window.end, timezone=window.timezone
    )
