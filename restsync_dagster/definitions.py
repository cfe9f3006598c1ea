"""The code location: ``dagster dev`` (via ``[tool.dagster]`` or ``workspace.yaml``) loads ``defs``.

Nothing runs at import. Dagster calls :func:`defs` when it loads the code location; it reads the
connector files (a bad file fails the load with one line per problem) and builds, per connector,
a multi-asset, a ``<connector>_sync`` job, a schedule and an ``<connector>_env`` resource, plus the
``retry_transient_failures`` sensor. No secret is read and no request is made until a run starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster_dlt import DagsterDltResource

from restsync_dagster.assets import build_connector_assets
from restsync_dagster.checks import build_connector_checks
from restsync_dagster.jobs import build_sync_job
from restsync_dagster.resources import build_env_resource, env_resource_key
from restsync_dagster.schedules import build_schedule
from restsync_dagster.sensors import build_retry_sensor
from restsync_dagster.settings import Settings
from restsync_dagster.spec import Connector, load_connectors


def build_definitions(connectors: Sequence[Connector], settings: Settings) -> dg.Definitions:
    """Assets, jobs, schedules and resources for ``connectors``."""
    assets, checks, jobs, schedules = [], [], [], []
    resources: dict[str, object] = {"dlt": DagsterDltResource()}
    for connector in connectors:
        connector_assets = build_connector_assets(connector, settings)
        job = build_sync_job(connector, connector_assets)
        schedule = build_schedule(connector, job)
        assets.append(connector_assets)
        checks.append(build_connector_checks(connector))
        jobs.append(job)
        if schedule is not None:
            schedules.append(schedule)
        resources[env_resource_key(connector)] = build_env_resource(connector)
    sensors = [build_retry_sensor(connectors, jobs, settings)] if connectors else []
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=resources,
    )


def load_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Read the connector files named by ``settings`` and build their definitions.

    Raises:
        ConnectorSpecError: one line per problem, naming file and key path.
    """
    settings = settings or Settings.from_env()
    return build_definitions(load_connectors(settings.connector_dirs), settings)


@dg.definitions
def defs() -> dg.Definitions:
    """Entry point for Dagster."""
    return load_definitions()
