"""``restsync validate [CONNECTOR ...]`` and ``restsync list``: check connector files, and say
what each connector is made of (resources, variables, schedule, whether it is a bundled example).

``--json`` always prints JSON, problems included: ``{"valid", "connectors", "problems"}``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from restsync_dagster.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from restsync_dagster.connector import Connector, ConnectorFileError, load_connectors
from restsync_dagster.load.destination import check_parallel_partitions
from restsync_dagster.settings import Settings


def cmd_validate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        connectors = _selected(
            load_connectors(settings.connector_dirs, trust=settings.trust), args.connectors
        )
        check_parallel_partitions(connectors, settings)
    except ConnectorFileError as exc:
        if not args.json:
            raise CliError(str(exc)) from None
        problems = [
            {"file": p.file, "key_path": p.key_path, "message": p.message} for p in exc.problems
        ]
        print(json.dumps({"valid": False, "connectors": [], "problems": problems}, indent=2))
        return EXIT_FAILED
    if args.json:
        described = [describe(c) for c in connectors]
        print(json.dumps({"valid": True, "connectors": described, "problems": []}, indent=2))
        return EXIT_OK
    for connector in connectors:
        info = describe(connector)
        example = "  [bundled example]" if info["example"] else ""
        print(f"{info['name']}  ({info['file']}){example}")
        print(f"  resources: {', '.join(info['resources'])}")
        for var in info["env"]:
            flags = ["secret" if var["secret"] else "variable"]
            flags.append("required" if var["required"] else f"default {var['default']!r}")
            print(f"  env {var['name']}: {', '.join(flags)}")
        if connector.config.schedule:
            schedule = connector.config.schedule
            print(f"  schedule: {schedule.cron} ({schedule.timezone})")
    print(f"{len(connectors)} connector(s) valid.")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        connectors = load_connectors(settings.connector_dirs, trust=settings.trust)
    except ConnectorFileError as exc:
        raise CliError(f"{exc}\n(restsync validate --json lists them as JSON)") from None
    if args.json:
        print(json.dumps([describe(c) for c in connectors], indent=2))
        return EXIT_OK
    for connector in connectors:
        info = describe(connector)
        schedule = f"  schedule {info['schedule']}" if info["schedule"] else ""
        example = "  (example)" if info["example"] else ""
        print(f"{info['name']:<20} {', '.join(info['resources'])}{schedule}{example}")
    return EXIT_OK


def _selected(connectors: list[Connector], names: list[str]) -> list[Connector]:
    if not names:
        return connectors
    by_name = {c.name: c for c in connectors}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise CliError(
            f"unknown connector(s): {', '.join(unknown)}; known: {', '.join(sorted(by_name))}",
            EXIT_USAGE,
        )
    return [by_name[n] for n in names]


def describe(connector: Connector) -> dict[str, Any]:
    """A connector as plain values (``restsync validate --json``, ``restsync list --json``)."""
    return {
        "name": connector.name,
        "file": str(connector.file),
        "example": Settings.is_example(connector.file),
        "resources": [r.name for r in connector.resources],
        "env": [
            {"name": v.name, "secret": v.secret, "required": v.required, "default": v.default}
            for v in connector.env_vars
        ],
        "schedule": connector.config.schedule.cron if connector.config.schedule else None,
    }
