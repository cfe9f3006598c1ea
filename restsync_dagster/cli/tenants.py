"""``restsync tenants add|remove|list CONNECTOR [KEY]``: a connector's dynamic tenants.

A connector with ``tenants: {dynamic: true}`` keeps its tenants in Dagster's instance (the
``DynamicPartitionsDefinition`` named by :func:`restsync_dagster.names.tenants_partitions_name`),
the one ``DAGSTER_HOME`` names, as the UI's "Add partition" does: no file changes, no redeploy,
the code server keeps running. The next tick of the ``sync_new_tenants`` sensor syncs a tenant
added here; schedules and the retry sensor stop requesting one removed here. Removing a tenant
keeps its rows and its dlt state (see docs/cli.md for deleting them).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from restsync_dagster import names
from restsync_dagster.cli.common import EXIT_OK, EXIT_USAGE, CliError, select
from restsync_dagster.connector import Connector
from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.settings import Settings


def add_tenants_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``restsync tenants add|remove|list``."""
    tenants = sub.add_parser(
        "tenants", help="add, remove or list a connector's dynamic tenants (no redeploy)"
    )
    actions = tenants.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a tenant: the new-tenants sensor syncs it")
    add.add_argument("connector", metavar="CONNECTOR")
    add.add_argument("keys", nargs="+", metavar="KEY", help="lowercase [a-z0-9_-]")
    add.set_defaults(func=cmd_tenants)
    remove = actions.add_parser("remove", help="remove a tenant: its syncs stop, its rows stay")
    remove.add_argument("connector", metavar="CONNECTOR")
    remove.add_argument("keys", nargs="+", metavar="KEY")
    remove.set_defaults(func=cmd_tenants)
    listing = actions.add_parser("list", help="a connector's tenants (static or dynamic)")
    listing.add_argument("connector", metavar="CONNECTOR")
    listing.add_argument("--json", action="store_true", help="a JSON list of keys")
    listing.set_defaults(func=cmd_tenants)


def cmd_tenants(args: argparse.Namespace) -> int:
    from restsync_dagster.orchestration.instance import open_instance
    from restsync_dagster.orchestration.tenants import tenant_keys

    settings = Settings.from_env()
    (connector,) = select(settings, [args.connector])
    spec = connector.config.tenants
    if spec is None:
        raise CliError(
            f"connector {connector.name!r} ({connector.file}) has no tenants: add a 'tenants:' "
            "key to its file (docs/tenants.md)",
            EXIT_USAGE,
        )
    if args.action != "list" and not spec.dynamic:
        raise CliError(
            f"connector {connector.name!r} lists its tenants in {connector.file} "
            f"(tenants.keys: {', '.join(spec.keys or [])}): edit that list, or use "
            "'tenants: {dynamic: true}' to add tenants at run time",
            EXIT_USAGE,
        )
    with open_instance(settings) as instance:
        if args.action == "list":
            keys = tenant_keys(connector, instance)
            if getattr(args, "json", False):
                print(json.dumps(keys))
            else:
                kind = "dynamic" if spec.dynamic else "static"
                print(f"{connector.name}: {len(keys)} {kind} tenant(s)")
                for key in keys:
                    print(f"  {key}")
            return EXIT_OK
        partitions = names.tenants_partitions_name(connector.name)
        if args.action == "add":
            _add(connector, instance, partitions, args.keys)
        else:
            _remove(connector, instance, partitions, args.keys)
    return EXIT_OK


def _add(connector: Connector, instance: Any, partitions: str, keys: list[str]) -> None:
    from restsync_dagster.connector.model import tenant_key_problem
    from restsync_dagster.connector.tenants import tenant_variable_problems

    for key in keys:
        problem = tenant_key_problem(key)
        if problem is not None:
            raise CliError(f"connector {connector.name!r}: {problem}", EXIT_USAGE)
    known = list(instance.get_dynamic_partitions(partitions))
    new = [key for key in dict.fromkeys(keys) if key not in known]
    for key in new:
        clashes = tenant_variable_problems(connector, [*known, *new], only=key)
        if clashes:
            raise CliError(
                f"tenant {key!r} not added: {clashes[0].file}: {clashes[0].key_path}: "
                f"{clashes[0].message}",
                EXIT_USAGE,
            )
    if new:
        instance.add_dynamic_partitions(partitions, new)
    for key in keys:
        if key in new:
            print(
                f"added tenant {key!r} to {connector.name!r}; the sync_new_tenants sensor syncs "
                "it at its next tick (or now: restsync sync "
                f"{connector.name} --tenant {key})"
            )
        else:
            print(f"tenant {key!r} of {connector.name!r} already exists: nothing to do")


def _remove(connector: Connector, instance: Any, partitions: str, keys: list[str]) -> None:
    known = list(instance.get_dynamic_partitions(partitions))
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise CliError(
            f"connector {connector.name!r} has no tenant {unknown[0]!r}"
            f"{did_you_mean(unknown[0], known)}; tenants: {', '.join(known) or '(none)'}",
            EXIT_USAGE,
        )
    for key in dict.fromkeys(keys):
        instance.delete_dynamic_partition(partitions, key)
        print(
            f"removed tenant {key!r} from {connector.name!r}: schedules and sensors no longer "
            "sync it; its rows and its dlt state stay in the warehouse (docs/cli.md says how "
            "to delete them)"
        )
