"""``restsync validate [CONNECTOR ...]`` and ``restsync list``: check connector files, and say
what each connector is made of (resources, variables, schedule, whether it is a bundled example).

``--json`` always prints JSON, problems included: ``{"valid", "connectors", "problems"}``. A
file is valid or not whatever the environment holds; what a sync would still need is said beside
it: every required variable that is unset in this environment (``"set": false``), by name.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from restsync_dagster.cli.common import EXIT_FAILED, EXIT_OK, CliError, chosen, seen
from restsync_dagster.connector import Connector, ConnectorFileError
from restsync_dagster.settings import Settings


def cmd_validate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        connectors = chosen(settings, args.connectors)
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
            if var["set"] or var["required"]:
                flags.append("set" if var["set"] else "NOT SET")
            print(f"  env {var['name']}: {', '.join(flags)}")
        if connector.config.schedule:
            schedule = connector.config.schedule
            print(f"  schedule: {schedule.cron} ({schedule.timezone})")
    print(f"{len(connectors)} connector(s) valid.")
    unset = [(c.name, n) for c in connectors for n in c.required_env if not os.environ.get(n)]
    if unset:
        names = ", ".join(dict.fromkeys(name for _, name in unset))
        print(
            f"{len(unset)} required variable(s) not set here: {names}. A sync or preview of "
            f"{', '.join(dict.fromkeys(c for c, _ in unset))} fails until they are set"
            f"{_demo_hint(connectors)}."
        )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        connectors = seen(settings)
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


def _demo_hint(connectors: list[Connector]) -> str:
    if any(Settings.is_example(c.file) for c in connectors):
        return ' (the bundled examples\' demo values: eval "$(restsync demo-env)")'
    return ""


def describe(connector: Connector) -> dict[str, Any]:
    """A connector as plain values (``restsync validate --json``, ``restsync list --json``)."""
    return {
        "name": connector.name,
        "file": str(connector.file),
        "example": Settings.is_example(connector.file),
        "resources": [r.name for r in connector.resources],
        "env": [
            {
                "name": v.name,
                "secret": v.secret,
                "required": v.required,
                "default": v.default,
                "set": bool(os.environ.get(v.name)),
            }
            for v in connector.env_vars
        ],
        "schedule": connector.config.schedule.cron if connector.config.schedule else None,
    }
