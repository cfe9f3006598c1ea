"""Dagster time-window partitions of a connector, from its ``partitions:`` key: the partitions,
the backfill policy, and which dlt pipeline and locks a partition run uses.

What restsync adds to Dagster's pools: with ``max_concurrent`` above 1, each partition run gets
its own dlt pipeline (working directory, state row, staging dataset), so runs of different
partitions can load side by side; the pool ``restsync_<connector>`` (limit ``max_concurrent``,
see :func:`restsync_dagster.orchestration.instance.apply_pool_limits`) bounds how many.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from restsync_dagster import names
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


def build_backfill_policy(connector: Connector) -> dg.BackfillPolicy | None:
    """``partitions.backfill``: ``single_run``, ``{max_partitions_per_run: N}``, or Dagster's
    default (None: one run per partition)."""
    spec = connector.config.partitions
    if spec is None or spec.backfill is None:
        return None
    if spec.backfill == "single_run":
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=spec.backfill.max_partitions_per_run)


def runs_side_by_side(connector: Connector) -> bool:
    """Whether partition runs of ``connector`` may sync at the same time."""
    spec = connector.config.partitions
    return spec is not None and spec.max_concurrent > 1


def run_partition_keys(connector: Connector, tags: Mapping[str, str]) -> list[str]:
    """The partition keys of a run, from its tags (one, or every key of a range); none for a run
    without partitions. Read from tags, as the sync and the checks of a run both can."""
    partitions = build_partitions_def(connector)
    if partitions is None:
        return []
    if names.DAGSTER_PARTITION_TAG in tags:
        return [tags[names.DAGSTER_PARTITION_TAG]]
    first, last = tags.get(names.DAGSTER_RANGE_START_TAG), tags.get(names.DAGSTER_RANGE_END_TAG)
    if first is None or last is None:
        return []
    return list(partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))


def run_pipeline_name(connector: Connector, keys: list[str]) -> str | None:
    """The dlt pipeline of a run whose partitions sync side by side with others, or None for
    the connector's own pipeline (one run of the connector at a time)."""
    if not keys or not runs_side_by_side(connector):
        return None
    return names.partition_pipeline_name(connector.name, keys[0], keys[-1])
