"""The code location: ``dagster dev`` (via ``[tool.dagster]`` or ``workspace.yaml``) loads ``defs``.

Nothing runs at import. Dagster calls :func:`defs` when it loads the code location; it reads the
connector files (a bad file fails the load with one line per problem) and builds, per connector,
a multi-asset, a ``<connector>_sync`` job, a schedule and an ``<connector>_env`` resource, plus the
``retry_transient_failures`` sensor. No secret is read and no request is made until a run starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource

from restsync_dagster.assets import build_connector_assets
from restsync_dagster.checks import build_connector_checks
from restsync_dagster.destination import build_spec_pipeline, no_dlt_telemetry
from restsync_dagster.jobs import build_sync_job
from restsync_dagster.resources import build_env_resource, env_resource_key
from restsync_dagster.schedules import build_schedule
from restsync_dagster.sensors import build_retry_sensor
from restsync_dagster.settings import Settings
from restsync_dagster.spec import Connector, load_connectors


def build_definitions(connectors: Sequence[Connector], settings: Settings) -> dg.Definitions:
    """Assets, jobs, schedules and resources for ``connectors``."""
    assets, checks, jobs, schedules = [], [], [], []
    dlt = DagsterDltResource()
    resources: dict[str, object] = {"dlt": dlt}
    spec_pipeline = build_spec_pipeline(settings) if connectors else None
    spec_schema = _shared_schema() if connectors else None
    for connector in connectors:
        connector_assets = build_connector_assets(connector, settings, spec_pipeline, spec_schema)
        connector_checks = build_connector_checks(connector)
        env = build_env_resource(connector)
        job = build_sync_job(
            connector,
            connector_assets,
            connector_checks,
            {"dlt": dlt, env_resource_key(connector): env},
        )
        schedule = build_schedule(connector, job)
        # Top-level too, so the UI's Resources tab lists each connector's variables.
        resources[env_resource_key(connector)] = env
        assets.append(connector_assets)
        checks.append(connector_checks)
        jobs.append(job)
        if schedule is not None:
            schedules.append(schedule)
    sensors = [build_retry_sensor(connectors, jobs, settings)] if connectors else []
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=resources,
    )


def _shared_schema() -> Any:
    from dlt.common.schema import Schema

    return Schema("restsync")


def load_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Read the connector files named by ``settings`` and build their definitions.

    Raises:
        ConnectorSpecError: one line per problem, naming file and key path.
    """
    no_dlt_telemetry()
    settings = settings or Settings.from_env()
    return build_definitions(load_connectors(settings.connector_dirs), settings)


_LOADED: dict[tuple[Any, ...], dg.Definitions] = {}


@dg.definitions
def defs() -> dg.Definitions:
    """Entry point for Dagster.

    Dagster may call this more than once per process (``dagster definitions validate`` does):
    the result is kept while the settings and the connector files (names, sizes, times) are the
    same.
    """
    settings = Settings.from_env()
    key = (settings, *_file_stamps(settings))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_definitions(settings)
    return _LOADED[key]


def _file_stamps(settings: Settings) -> list[tuple[str, int, int]]:
    stamps = []
    for directory in settings.connector_dirs:
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                stat = path.stat()
                stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return stamps
