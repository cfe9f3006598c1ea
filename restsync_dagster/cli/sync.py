"""``restsync sync``: run each connector's ``<connector>_sync`` job through Dagster.

The job comes from the same definitions the UI loads and runs against the same ``DAGSTER_HOME``
(``$RESTSYNC_HOME/dagster_home`` unless set), so its runs show up in the UI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from restsync_dagster import names
from restsync_dagster.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, load
from restsync_dagster.connector import Connector
from restsync_dagster.settings import Settings


@dataclass
class ResourceOutcome:
    """One line of ``restsync sync`` output."""

    connector: str
    resource: str
    asset_key: str
    table: str | None
    rows_loaded: int | None
    status: str
    run_id: str | None = None
    error: str | None = None


def cmd_sync(args: argparse.Namespace) -> int:
    import dagster as dg

    from restsync_dagster.orchestration.definitions import build_definitions
    from restsync_dagster.orchestration.instance import open_instance

    settings = Settings.from_env()
    connectors = load(settings)
    by_name = {c.name: c for c in connectors}
    unknown = [name for name in args.connectors if name not in by_name]
    if unknown:
        raise CliError(
            f"unknown connector(s): {', '.join(unknown)}; known: {', '.join(sorted(by_name))}",
            EXIT_USAGE,
        )
    selected = [by_name[n] for n in args.connectors] if args.connectors else connectors
    definitions = build_definitions(connectors, settings)
    outcomes: list[ResourceOutcome] = []
    with open_instance(settings) as instance:
        for connector in selected:
            missing = [name for name in connector.required_env if not os.environ.get(name)]
            if missing:
                message = (
                    f"connector {connector.name!r}: environment variable(s) not set: "
                    f"{', '.join(missing)} (see 'restsync validate')"
                )
                outcomes.extend(_all_resources(connector, "failed", message))
                continue
            try:
                partition_key = _partition_key(connector, args.partition)
            except CliError as exc:
                outcomes.extend(_all_resources(connector, "failed", str(exc)))
                continue
            tags = {names.TAG_LAUNCHED_BY: "cli"}
            if args.full_refresh:
                tags[names.TAG_FULL_REFRESH] = "true"
            job = definitions.resolve_job_def(names.job_name(connector.name))
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                tags=tags,
                partition_key=partition_key,
            )
            outcomes.extend(_outcomes(connector, result, dg))
    _print_outcomes(outcomes, as_json=args.json)
    return EXIT_OK if all(o.status == "success" for o in outcomes) else EXIT_FAILED


def _partition_key(connector: Connector, requested: str | None) -> str | None:
    """The partition to sync: the one asked for, else the last complete one."""
    from restsync_dagster.orchestration.partitions import build_partitions_def

    partitions = build_partitions_def(connector)
    if partitions is None:
        if requested:
            raise CliError(f"connector {connector.name!r} is not partitioned; drop --partition")
        return None
    if requested:
        if not partitions.has_partition_key(requested):
            raise CliError(
                f"connector {connector.name!r}: {requested!r} is not one of its "
                f"{connector.config.partitions.granularity if connector.config.partitions else ''} partitions"
            )
        return requested
    last = partitions.get_last_partition_key()
    if last is None:
        raise CliError(f"connector {connector.name!r} has no complete partition yet")
    return last


def _all_resources(connector: Connector, status: str, error: str) -> list[ResourceOutcome]:
    return [
        ResourceOutcome(
            connector.name, r.name, f"{connector.name}/{r.name}", None, None, status, None, error
        )
        for r in connector.resources
    ]


def _outcomes(connector: Connector, result: Any, dg: Any) -> list[ResourceOutcome]:
    materialized = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        materialized[mat.asset_key.path[-1]] = mat.metadata
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure or e.is_failure]
        error = _failure_text(failures) or "the run failed"
    outcomes = []
    for info in connector.resources:
        metadata = materialized.get(info.name)
        if metadata is not None:
            rows = metadata.get("rows_loaded")
            table = metadata.get("dagster/table_name")
            outcomes.append(
                ResourceOutcome(
                    connector.name,
                    info.name,
                    f"{connector.name}/{info.name}",
                    getattr(table, "value", table),
                    getattr(rows, "value", rows),
                    "success",
                    result.run_id,
                )
            )
        else:
            outcomes.append(
                ResourceOutcome(
                    connector.name,
                    info.name,
                    f"{connector.name}/{info.name}",
                    None,
                    None,
                    "failed",
                    result.run_id,
                    error,
                )
            )
    return outcomes


def _failure_text(events: Sequence[Any]) -> str | None:
    for event in events:
        data = event.event_specific_data
        error = getattr(data, "error", None)
        if error is None:
            continue
        # A dagster.Failure raised by the asset carries our own message as its description.
        cause = error
        while cause is not None:
            if cause.cls_name == "Failure":
                return cause.message.removeprefix("dagster._core.definitions.events.Failure: ")
            cause = cause.cause
        return error.message.strip().splitlines()[-1] if error.message else None
    return None


def _print_outcomes(outcomes: list[ResourceOutcome], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(o) for o in outcomes], indent=2))
        return
    for o in outcomes:
        if o.status == "success":
            print(f"ok      {o.asset_key:<32} {o.rows_loaded:>8} rows  -> {o.table}")
        else:
            print(f"FAILED  {o.asset_key}")
    errors = dict.fromkeys(o.error for o in outcomes if o.error)
    for error in errors:
        print(f"\n{error}", file=sys.stderr)
