"""Dagster partitions of a connector, from its ``partitions:`` and ``tenants:`` keys: the
partitions, the backfill policy, which tenant a run syncs, and which dlt pipeline and locks a
partition run uses.

Tenants are a partition dimension, built from Dagster's own definitions: a
``StaticPartitionsDefinition`` of ``tenants.keys``, or a ``DynamicPartitionsDefinition`` named
:func:`names.tenants_partitions_name` (tenants added at run time, no redeploy); with
``partitions:`` too, a ``MultiPartitionsDefinition`` of ``tenant`` x the time window. What
restsync adds: a run is exactly one tenant (a range across tenants is refused), read back from
the run's tags, and binds the connector to it (connector/tenants.py).

What restsync adds to Dagster's pools: with ``max_concurrent`` above 1, each partition run gets
its own dlt pipeline (working directory, state row, staging dataset), so runs of different
partitions can load side by side; the pool ``restsync_<connector>`` (limit ``max_concurrent``,
see :func:`restsync_dagster.orchestration.instance.apply_pool_limits`) bounds how many.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.connector.tenants import RATE_KEY_VARIABLE, for_tenant, tenant_prefix
from restsync_dagster.failures.errors import ConfigurationError

_CLASSES: dict[str, Any] = {
    "hourly": dg.HourlyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "monthly": dg.MonthlyPartitionsDefinition,
}


def build_partitions_def(connector: Connector) -> dg.TimeWindowPartitionsDefinition | None:
    """The connector's time-window partitions (``partitions:``), or None; with tenants, its
    time dimension (the assets' partitions: :func:`build_asset_partitions_def`)."""
    spec = connector.config.partitions
    if spec is None:
        return None
    window = spec.window
    return _CLASSES[spec.granularity](
        start_date=window.start, end_date=window.end, timezone=window.timezone
    )


def build_tenants_partitions_def(
    connector: Connector,
) -> dg.StaticPartitionsDefinition | dg.DynamicPartitionsDefinition | None:
    """The connector's tenants as partitions (``tenants:``), or None."""
    tenants = connector.config.tenants
    if tenants is None:
        return None
    if tenants.dynamic:
        return dg.DynamicPartitionsDefinition(name=names.tenants_partitions_name(connector.name))
    return dg.StaticPartitionsDefinition(list(tenants.keys))


def build_asset_partitions_def(connector: Connector) -> dg.PartitionsDefinition | None:
    """The partitions of the connector's assets: time windows, tenants, tenant x time window,
    or None."""
    time, tenants = build_partitions_def(connector), build_tenants_partitions_def(connector)
    if time is not None and tenants is not None:
        spec = connector.config.partitions
        assert spec is not None
        return dg.MultiPartitionsDefinition(
            {names.TENANT_DIMENSION: tenants, spec.granularity: time}
        )
    return time or tenants


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
    """The time-window partition keys of a run, from its tags (one, or every key of a range);
    none for a run without time partitions. Read from tags, as the sync and the checks of a run
    both can. With tenants too, the keys of the run's time dimension only."""
    partitions = build_partitions_def(connector)
    if partitions is None:
        return []
    if names.DAGSTER_PARTITION_TAG in tags:
        key = tags[names.DAGSTER_PARTITION_TAG]
        return [
            _dimensions(connector, key)[_time_dimension(connector)]
            if connector.has_tenants
            else key
        ]
    first, last = tags.get(names.DAGSTER_RANGE_START_TAG), tags.get(names.DAGSTER_RANGE_END_TAG)
    if first is None or last is None:
        return []
    if connector.has_tenants:
        first, last = (
            _dimensions(connector, key)[_time_dimension(connector)] for key in (first, last)
        )
    return list(partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))


def _time_dimension(connector: Connector) -> str:
    spec = connector.config.partitions
    assert spec is not None
    return spec.granularity


def _dimensions(connector: Connector, key: str) -> dict[str, str]:
    """The dimensions of a multi-partition key (``2026-01-01|acme``), by name."""
    partitions = build_asset_partitions_def(connector)
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    return dict(partitions.get_partition_key_from_str(key).keys_by_dimension)


def tenant_of_partition_key(connector: Connector, partition_key: str) -> str:
    """The tenant of one partition key of ``connector``: the key itself (tenants only) or its
    ``tenant`` dimension (tenant x time window, ``2026-01-01|acme``)."""
    if connector.config.partitions is None:
        return partition_key
    return _dimensions(connector, partition_key)[names.TENANT_DIMENSION]


def tenant_partition_key(connector: Connector, tenant: str, time_key: str | None = None) -> str:
    """The partition key of ``tenant`` (and, with time partitions, of its window ``time_key``):
    what a launcher passes as ``partition_key``."""
    if connector.config.partitions is None:
        return tenant
    if time_key is None:
        raise ConfigurationError(
            f"connector {connector.name!r} has tenant x {_time_dimension(connector)} partitions: "
            "name the window too"
        )
    return str(
        dg.MultiPartitionKey({names.TENANT_DIMENSION: tenant, _time_dimension(connector): time_key})
    )


def run_tenant(connector: Connector, tags: Mapping[str, str]) -> str | None:
    """The tenant a run syncs, from its tags; None for a connector without tenants.

    Raises:
        ConfigurationError: the connector has tenants but the run names none (a run of all
            partitions at once), or a partition range spans several tenants: a run syncs one
            tenant, in that tenant's pipeline, with that tenant's credentials.
    """
    if not connector.has_tenants:
        return None
    dimension_tag = f"{names.DAGSTER_PARTITION_TAG}/{names.TENANT_DIMENSION}"
    if connector.config.partitions is not None and dimension_tag in tags:
        return tags[dimension_tag]
    if names.DAGSTER_PARTITION_TAG in tags:
        return tenant_of_partition_key(connector, tags[names.DAGSTER_PARTITION_TAG])
    first, last = tags.get(names.DAGSTER_RANGE_START_TAG), tags.get(names.DAGSTER_RANGE_END_TAG)
    if first is not None and last is not None:
        tenants = {tenant_of_partition_key(connector, key) for key in (first, last)}
        if len(tenants) == 1:
            return tenants.pop()
        raise ConfigurationError(
            f"connector {connector.name!r}: a run syncs one tenant, and this one's partitions "
            f"run from {first!r} to {last!r}: launch one run per tenant (a backfill does, with "
            "'partitions.backfill' unset or max_partitions_per_run within one tenant)"
        )
    raise ConfigurationError(
        f"connector {connector.name!r} serves tenants: a run syncs one tenant, so launch a "
        "partition (the tenant's key), e.g. 'restsync sync "
        f"{connector.name} --tenant <key>' or a partition in the UI"
    )


def run_pipeline_name(connector: Connector, keys: list[str]) -> str | None:
    """The dlt pipeline of a run whose partitions sync side by side with others, or of a tenant
    (its own pipeline, always: its own state and staging dataset), or None for the connector's
    own pipeline (one run of the connector at a time)."""
    scope = connector.pipeline_scope
    if keys and runs_side_by_side(connector):
        return names.partition_pipeline_name(scope, keys[0], keys[-1])
    if connector.tenant is not None:
        return names.pipeline_name(scope)
    return None


def run_connector(connector: Connector, tags: Mapping[str, str], instance: Any) -> Connector:
    """The connector a run syncs: ``connector`` itself, or for a connector with tenants, bound to
    the run's tenant (:func:`run_tenant`; connector/tenants.py). A dynamic tenant must have been
    added (a partition of :func:`names.tenants_partitions_name`), and the tenant's
    ``RATE_KEY`` variable, when set, names the rate key it spends.

    Raises:
        ConfigurationError: see :func:`run_tenant` and :func:`for_tenant`; or a dynamic tenant
            that was never added (or was removed).
    """
    tenant = run_tenant(connector, tags)
    if tenant is None:
        return connector
    tenants = connector.config.tenants
    assert tenants is not None
    known: tuple[str, ...] = tenants.keys
    if tenants.dynamic:
        known = tuple(
            instance.get_dynamic_partitions(names.tenants_partitions_name(connector.name))
        )
        if tenant not in known:
            raise ConfigurationError(
                f"connector {connector.name!r}: no tenant {tenant!r} (tenants added: "
                f"{', '.join(known) or 'none'}); add it first: restsync tenants add "
                f"{connector.name} {tenant}"
            )
    rate_key = os.environ.get(tenant_prefix(connector, tenant) + RATE_KEY_VARIABLE) or None
    return for_tenant(connector, tenant, known, rate_key=rate_key)


def shares_tables(connector: Connector) -> bool:
    """Whether ``connector`` is bound to a tenant whose tables other tenants share
    (``tenants.tables: shared``): nothing of its run may drop or replace a table."""
    tenants = connector.config.tenants
    return connector.tenant is not None and tenants is not None and tenants.tables == "shared"
