"""``restsync validate``: check every connector file; list what each needs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from restsync_dagster.cli.common import EXIT_OK, load
from restsync_dagster.connector import Connector
from restsync_dagster.settings import Settings


def cmd_validate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    connectors = load(settings)
    if args.json:
        print(json.dumps([_describe(c) for c in connectors], indent=2))
        return EXIT_OK
    for connector in connectors:
        info = _describe(connector)
        print(f"{info['name']}  ({info['file']})")
        print(f"  resources: {', '.join(info['resources'])}")
        for var in info["env"]:
            flags = ["secret" if var["secret"] else "variable"]
            flags.append("required" if var["required"] else f"default {var['default']!r}")
            print(f"  env {var['name']}: {', '.join(flags)}")
        if connector.config.schedule:
            print(
                f"  schedule: {connector.config.schedule.cron} ({connector.config.schedule.timezone})"
            )
    print(f"{len(connectors)} connector(s) valid.")
    return EXIT_OK


def _describe(connector: Connector) -> dict[str, Any]:
    return {
        "name": connector.name,
        "file": str(connector.file),
        "resources": [r.name for r in connector.resources],
        "env": [
            {"name": v.name, "secret": v.secret, "required": v.required, "default": v.default}
            for v in connector.env_vars
        ],
        "schedule": connector.config.schedule.cron if connector.config.schedule else None,
    }
