"""A snapshot of the whole code location: every asset, check, job, schedule, sensor and resource of
the five example connectors, as the UI and the daemon see them.

Any unintended change to a name, a group, a kind, a tag, a schedule or a resource fails here. After
an intended change, regenerate with ``RESTSYNC_UPDATE_SNAPSHOT=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from restsync_dagster.definitions import load_definitions

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "code_location.json"
#: Read at import: the ``restsync_home`` fixture clears every ``RESTSYNC_*`` variable.
UPDATE = bool(os.environ.get("RESTSYNC_UPDATE_SNAPSHOT"))


def describe_code_location(definitions: dg.Definitions) -> dict[str, Any]:
    """The user-visible shape of ``definitions``, as plain, sorted JSON values."""
    repository = definitions.get_repository_def()
    assets: dict[str, Any] = {}
    for spec in definitions.resolve_all_asset_specs():
        assets[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "owners": sorted(spec.owners),
            "tags": dict(sorted(spec.tags.items())),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "metadata": {k: _plain(k, v) for k, v in sorted(spec.metadata.items())},
            "partitions": type(spec.partitions_def).__name__ if spec.partitions_def else None,
            "freshness": spec.freshness_policy is not None,
        }
    checks = sorted(
        f"{key.asset_key.to_user_string()}:{key.name}"
        for key in repository.asset_graph.asset_check_keys
    )
    ops = {
        assets_def.node_def.name: {
            "pool": getattr(assets_def.node_def, "pool", None),
            "tags": dict(sorted(assets_def.node_def.tags.items())),
            "keys": sorted(
                [k.to_user_string() for k in assets_def.keys]
                + [f"{k.asset_key.to_user_string()}:{k.name}" for k in assets_def.check_keys]
            ),
        }
        for assets_def in repository.asset_graph.assets_defs
        if assets_def.is_executable
    }
    jobs = {}
    for job in repository.get_all_jobs():
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "tags": dict(sorted(job.tags.items())),
            "executor": job.executor_def.name,
            "assets": sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys),
            "partitioned": job.partitions_def is not None,
        }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value,
        }
        for schedule in repository.schedule_defs
    }
    sensors = {
        sensor.name: {
            "jobs": sorted(target.job_name for target in sensor.targets),
            "default_status": sensor.default_status.value,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
        for sensor in repository.sensor_defs
    }
    resources = {
        key: {
            "type": type(resource).__name__,
            "fields": sorted(getattr(type(resource), "model_fields", {})),
        }
        for key, resource in sorted((definitions.resources or {}).items())
    }
    return {
        "assets": assets,
        "checks": checks,
        "ops": dict(sorted(ops.items())),
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": sensors,
        "resources": resources,
    }


def _plain(key: str, value: Any) -> Any:
    if key.startswith("dagster_dlt/"):
        return "<object>"  # dagster-dlt's reprs of its pipeline, source and translator objects
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str | int | float | bool) or raw is None else str(raw)


def test_the_code_location_matches_its_snapshot(restsync_home):
    current = describe_code_location(load_definitions())
    if UPDATE:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert current == expected
