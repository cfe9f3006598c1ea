"""A process that starts syncs the way Dagster's daemon does, so the soak can kill it mid-run.

    python -m restsync_dagster_tests.soak.worker schedule CONNECTOR...
    python -m restsync_dagster_tests.soak.worker sensor

``schedule`` evaluates each connector's schedule for one tick and executes the run it requests;
``sensor`` evaluates one tick of the retry sensor and executes every run it requests. Both run
against the instance ``restsync sync`` uses (``$RESTSYNC_HOME/dagster_home``), with the tags the
daemon adds (``dagster/schedule_name``, ``dagster/sensor_name``, ``dagster/run_key``). The last
line of stdout is JSON: the runs executed and their outcome, or why the tick skipped.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.definitions import load_definitions
from restsync_dagster.orchestration.instance import open_instance
from restsync_dagster.settings import Settings


def execute(
    definitions: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, **tags: str
) -> dict[str, Any]:
    """Run ``request`` in this process, as the daemon's run launcher would (its job and tags)."""
    job = definitions.resolve_job_def(request.job_name or "")
    run_tags = {**request.tags, **tags}
    if request.run_key:
        run_tags["dagster/run_key"] = request.run_key
    result = job.execute_in_process(
        instance=instance,
        asset_selection=list(request.asset_selection) if request.asset_selection else None,
        partition_key=request.partition_key,
        tags=run_tags,
        raise_on_error=False,
    )
    return {"run_id": result.run_id, "job": request.job_name, "success": result.success}


def schedule_tick(connectors: list[str]) -> dict[str, Any]:
    definitions = load_definitions()
    runs: list[dict[str, Any]] = []
    with open_instance(Settings.from_env()) as instance:
        for connector in connectors:
            schedule = definitions.get_schedule_def(names.schedule_name(connector))
            with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime.now(UTC)
            ) as context:
                data = schedule.evaluate_tick(context)
            for request in data.run_requests or []:
                request = request.with_replaced_attrs(
                    job_name=request.job_name or schedule.job_name
                )
                runs.append(execute(definitions, instance, request, **{
                    "dagster/schedule_name": schedule.name,
                }))  # fmt: skip
    return {"runs": runs}


def sensor_tick() -> dict[str, Any]:
    definitions = load_definitions()
    sensor = definitions.get_sensor_def(names.RETRY_SENSOR)
    with open_instance(Settings.from_env()) as instance:
        with dg.build_sensor_context(instance=instance, definitions=definitions) as context:
            data = sensor.evaluate_tick(context)
        runs = [
            execute(definitions, instance, r, **{"dagster/sensor_name": sensor.name})
            for r in data.run_requests or []
        ]
    return {"runs": runs, "skip": data.skip_message}


def main(argv: list[str]) -> int:
    if argv[:1] == ["schedule"] and argv[1:]:
        outcome = schedule_tick(argv[1:])
    elif argv == ["sensor"]:
        outcome = sensor_tick()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(outcome), flush=True)
    return 0 if all(r["success"] for r in outcome["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
