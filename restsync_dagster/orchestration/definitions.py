"""Connectors -> Dagster definitions: per connector a multi-asset, its checks, a ``<c>_sync`` job,
a schedule and a ``<c>_env`` resource; for them all one ``dlt`` resource, the retry sensor and
(with dynamic tenants) the new-tenants sensor."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource

from restsync_dagster import names
from restsync_dagster.connector import Connector, ConnectorFileError, Problem
from restsync_dagster.connector.rate_keys import rate_key_problems
from restsync_dagster.load.destination import build_stand_in_pipeline, check_parallel_partitions
from restsync_dagster.orchestration.assets import build_connector_assets
from restsync_dagster.orchestration.checks import build_connector_checks
from restsync_dagster.orchestration.jobs import build_sync_job
from restsync_dagster.orchestration.pool_queue import install_hand_over
from restsync_dagster.orchestration.resources import ConnectorEnv, build_env_resource
from restsync_dagster.orchestration.retry_sensor import build_retry_sensor
from restsync_dagster.orchestration.schedules import build_schedule
from restsync_dagster.orchestration.tenants import build_tenant_sensors
from restsync_dagster.orchestration.unusable_files import build_unusable_file_assets
from restsync_dagster.settings import Settings


@dataclass(frozen=True)
class ConnectorDefinitions:
    """What one connector becomes in Dagster."""

    assets: dg.AssetsDefinition
    checks: dg.AssetChecksDefinition
    job: dg.JobDefinition
    schedule: Any | None
    env: ConnectorEnv


@dataclass(frozen=True)
class SharedParts:
    """What every connector of a code location shares: built once, not per connector."""

    dlt: DagsterDltResource
    stand_in_pipeline: Any
    stand_in_schema: Any

    @classmethod
    def build(cls, settings: Settings) -> SharedParts:
        from dlt.common.schema import Schema

        return cls(DagsterDltResource(), build_stand_in_pipeline(settings), Schema(names.PREFIX))

    @classmethod
    def for_settings(cls, settings: Settings) -> SharedParts:
        """The parts of this process for ``settings``, built once: every Dagster component of a
        code location brings its own ``Definitions``, and Dagster refuses to merge two that bind
        resource key ``dlt`` to objects that are not the same one."""
        return _shared_parts(settings)


@functools.lru_cache(maxsize=8)
def _shared_parts(settings: Settings) -> SharedParts:
    return SharedParts.build(settings)


def build_connector_definitions(
    connector: Connector, settings: Settings, shared: SharedParts
) -> ConnectorDefinitions:
    """The assets, checks, job, schedule and env resource of one connector."""
    assets = build_connector_assets(
        connector, settings, shared.stand_in_pipeline, shared.stand_in_schema
    )
    checks = build_connector_checks(connector)
    env = build_env_resource(connector)
    resources = {names.DLT_RESOURCE_KEY: shared.dlt, names.env_resource_key(connector.name): env}
    job = build_sync_job(connector, assets, checks, resources, settings.max_runtime_seconds)
    return ConnectorDefinitions(assets, checks, job, build_schedule(connector, job, settings), env)


def build_definitions(
    connectors: Sequence[Connector],
    settings: Settings,
    *,
    shared: SharedParts | None = None,
    sensor_name: str = names.RETRY_SENSOR,
    unusable_files: Mapping[Path, Sequence[Problem]] | None = None,
) -> dg.Definitions:
    """Assets, jobs, schedules, resources and the retry sensor for ``connectors``.

    Args:
        connectors: Validated connectors with distinct names.
        settings: The deployment's settings.
        shared: Parts shared with other ``Definitions`` of the same code location (a Dagster
            component's); built for these connectors alone when not given.
        sensor_name: The name of the retry sensor that covers ``connectors``.
        unusable_files: Connector files that cannot be used, with their problems: each becomes
            stand-in assets that say so (:mod:`~restsync_dagster.orchestration.unusable_files`).
    """
    stand_ins = build_unusable_file_assets(unusable_files or {}, (c.name for c in connectors))
    if not connectors:
        return dg.Definitions(assets=stand_ins)
    check_parallel_partitions(connectors, settings)
    problems = rate_key_problems(connectors)
    if problems:
        raise ConnectorFileError(problems)
    # Run workers load these definitions before their first step claims a pool slot.
    install_hand_over()
    shared = shared or SharedParts.build(settings)
    built = [build_connector_definitions(c, settings, shared) for c in connectors]
    resources: dict[str, Any] = {names.DLT_RESOURCE_KEY: shared.dlt}
    # Top-level too, so the UI's Resources tab lists each connector's variables.
    resources.update(
        {names.env_resource_key(c.name): b.env for c, b in zip(connectors, built, strict=True)}
    )
    jobs = [b.job for b in built]
    return dg.Definitions(
        assets=[*(b.assets for b in built), *stand_ins],
        asset_checks=[b.checks for b in built],
        jobs=jobs,
        schedules=[b.schedule for b in built if b.schedule is not None],
        sensors=[
            build_retry_sensor(connectors, jobs, settings, name=sensor_name),
            *build_tenant_sensors(connectors, jobs, settings, retry_sensor_name=sensor_name),
        ],
        resources=resources,
    )
