"""``restsync validate [CONNECTOR ...]`` and ``restsync list``: check connector files, and say
what each connector is made of (resources, variables, schedule, whether it is a bundled example).

``--json`` always prints JSON, problems included: ``{"valid", "connectors", "problems"}``. A
file is valid or not whatever the environment holds; what a sync would still need is said beside
it: every required variable that is unset in this environment (``"set": false``), by name.

A connector with tenants also says which tenants it has (its file's keys; dynamic ones as
Dagster's instance holds them) and, per tenant, the names of that tenant's required variables
that are unset here (``SHOP_ACME_API_KEY``): never a value.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from restsync_dagster.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    chosen,
    required_variables,
    seen,
)
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
    tenants = current_tenants(settings, connectors)
    if args.json:
        described = [describe(c, tenants.get(c.name)) for c in connectors]
        print(json.dumps({"valid": True, "connectors": described, "problems": []}, indent=2))
        return EXIT_OK
    unset: list[tuple[str, str]] = []
    for connector in connectors:
        info = describe(connector, tenants.get(connector.name))
        example = "  [bundled example]" if info["example"] else ""
        print(f"{info['name']}  ({info['file']}){example}")
        print(f"  resources: {', '.join(info['resources'])}")
        for var in info["env"]:
            flags = ["secret" if var["secret"] else "variable"]
            flags.append("required" if var["required"] else f"default {var['default']!r}")
            if var["set"] or var["required"]:
                flags.append("set" if var["set"] else "NOT SET")
            print(f"  env {var['name']}: {', '.join(flags)}")
        if info["tenants"] is not None:
            _print_tenants(info["tenants"])
            for tenant in info["tenants"]["tenants"]:
                unset += [(connector.name, n) for n in tenant["unset"]]
        if connector.config.schedule:
            schedule = connector.config.schedule
            print(f"  schedule: {schedule.cron} ({schedule.timezone})")
    print(f"{len(connectors)} connector(s) valid.")
    unset = [
        (c.name, n) for c in connectors for n in c.required_env if not os.environ.get(n)
    ] + unset
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
    tenants = current_tenants(settings, connectors)
    if args.json:
        print(json.dumps([describe(c, tenants.get(c.name)) for c in connectors], indent=2))
        return EXIT_OK
    for connector in connectors:
        info = describe(connector, tenants.get(connector.name))
        schedule = f"  schedule {info['schedule']}" if info["schedule"] else ""
        example = "  (example)" if info["example"] else ""
        print(f"{info['name']:<20} {', '.join(info['resources'])}{schedule}{example}")
        if info["tenants"] is not None:
            keys = [t["key"] for t in info["tenants"]["tenants"]]
            kind = "dynamic" if info["tenants"]["dynamic"] else "static"
            print(f"{'':<20} tenants ({kind}, {len(keys)}): {', '.join(keys) or '(none yet)'}")
    return EXIT_OK


def current_tenants(settings: Settings, connectors: list[Connector]) -> dict[str, list[str]]:
    """Each connector with tenants -> its tenants now: the file's keys, or for dynamic tenants
    the keys Dagster's instance holds (read only when one connector has dynamic tenants)."""
    from restsync_dagster.connector.tenants import tenants_of

    with_tenants = [c for c in connectors if c.has_tenants]
    found = {c.name: list(tenants_of(c)) for c in with_tenants}
    dynamic = [c for c in with_tenants if c.config.tenants and c.config.tenants.dynamic]
    if dynamic:
        from restsync_dagster.orchestration.instance import open_instance
        from restsync_dagster.orchestration.tenants import tenant_keys

        with open_instance(settings) as instance:
            found.update({c.name: tenant_keys(c, instance) for c in dynamic})
    return found


def _print_tenants(info: dict[str, Any]) -> None:
    keys = [t["key"] for t in info["tenants"]]
    kind = "dynamic, added with restsync tenants add" if info["dynamic"] else "static"
    print(
        f"  tenants ({kind}): {', '.join(keys) or '(none yet)'}; variables "
        f"{info['variables']}*, tables {info['tables']}"
    )
    for name in info["variables_each"]:
        print(f"  env {info['variables']}{name}: per tenant")
    for tenant in info["tenants"]:
        state = f"NOT SET: {', '.join(tenant['unset'])}" if tenant["unset"] else "all set"
        print(f"  tenant {tenant['key']}: {state}")


def _demo_hint(connectors: list[Connector]) -> str:
    if any(Settings.is_example(c.file) for c in connectors):
        return ' (the bundled examples\' demo values: eval "$(restsync demo-env)")'
    return ""


def describe(connector: Connector, tenants: list[str] | None = None) -> dict[str, Any]:
    """A connector as plain values (``restsync validate --json``, ``restsync list --json``);
    ``tenants``: its tenants now, for a connector with tenants."""
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
        "tenants": _describe_tenants(connector, tenants or []),
    }


_SENTINEL = "zz9tenant9zz"


def _describe_tenants(connector: Connector, tenants: list[str]) -> dict[str, Any] | None:
    """The ``tenants`` of :func:`describe`: the key's settings and, per tenant, the names of
    its required variables unset here (names only: never a value)."""
    spec = connector.config.tenants
    if spec is None:
        return None
    return {
        "dynamic": spec.dynamic,
        # The prefix with {TENANT} in it, as the file's rule makes it (the model's one home).
        "variables": spec.prefix(connector.name, _SENTINEL).replace(_SENTINEL.upper(), "{TENANT}"),
        "tables": spec.tables,
        "column": spec.column,
        "variables_each": [v.name for v in connector.tenant_vars],
        "tenants": [
            {
                "key": key,
                "unset": [n for n in required_variables(connector, key) if not os.environ.get(n)],
            }
            for key in tenants
        ],
    }
