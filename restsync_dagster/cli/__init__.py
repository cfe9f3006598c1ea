"""The ``restsync`` command: validate connector files, sync through Dagster, preview, run the demo.

One module per command (``validate``, ``sync``, ``preview``, ``tenants``, ``demo``); this one builds the parser
and prints errors for people, one line per problem. There is no traceback unless
``RESTSYNC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from restsync_dagster.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    storage_unreachable,
)
from restsync_dagster.cli.demo import (
    add_demo_api_options,
    cmd_demo,
    cmd_demo_api,
    cmd_demo_env,
)
from restsync_dagster.cli.init import add_init_parser
from restsync_dagster.cli.preview import cmd_preview
from restsync_dagster.cli.sync import cmd_sync
from restsync_dagster.cli.tenants import add_tenants_parser
from restsync_dagster.cli.validate import cmd_list, cmd_validate
from restsync_dagster.load.destination import no_dlt_telemetry
from restsync_dagster.settings import SettingsError


def build_parser() -> argparse.ArgumentParser:
    """The ``restsync`` argument parser."""
    from restsync_dagster import __version__

    parser = argparse.ArgumentParser(
        prog="restsync",
        description="Sync REST APIs described by YAML connector files into a warehouse, with Dagster.",
    )
    parser.add_argument("--version", action="version", version=f"restsync {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    # -q/-v after the command, as with most tools: "restsync sync shop -q".
    loudness = argparse.ArgumentParser(add_help=False)
    group = loudness.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print results and errors only")
    group.add_argument(
        "-v", "--verbose", action="store_true", help="also print the runs' own log lines"
    )

    validate = sub.add_parser(
        "validate", parents=[loudness], help="check connector files; list what each needs"
    )
    validate.add_argument("connectors", nargs="*", metavar="CONNECTOR", help="default: all")
    validate.add_argument("--json", action="store_true", help="JSON, problems included")
    validate.set_defaults(func=cmd_validate)

    listing = sub.add_parser(
        "list", parents=[loudness], help="connectors, resources, schedules, examples"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_list)

    sync = sub.add_parser("sync", parents=[loudness], help="materialize connectors through Dagster")
    sync.add_argument("connectors", nargs="*", metavar="CONNECTOR", help="default: all")
    sync.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="R",
        help="only this resource of the one CONNECTOR (repeatable); dlt reads what its parents "
        "need to resolve its paths",
    )
    sync.add_argument("--json", action="store_true", help="print a JSON list of resource outcomes")
    sync.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the connectors' tables and cursors, then load everything again",
    )
    sync.add_argument(
        "--partition",
        metavar="KEY",
        help="for partitioned connectors: the partition to sync (default: the last complete one)",
    )
    sync.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="KEY",
        help="for connectors with tenants: only this tenant (repeatable; default: every tenant, "
        "each in a run of its own)",
    )
    sync.set_defaults(func=cmd_sync)

    preview = sub.add_parser(
        "preview",
        parents=[loudness],
        help="fetch a connector's first pages and show the columns; writes nothing",
    )
    preview.add_argument("connector", metavar="CONNECTOR")
    preview.add_argument("--resource", metavar="R", help="only this resource")
    preview.add_argument("--pages", type=int, default=1, help="pages per resource (default 1)")
    preview.add_argument("--json", action="store_true", help="machine-readable output")
    preview.set_defaults(func=cmd_preview)

    add_init_parser(sub)
    add_tenants_parser(sub)

    demo_api = sub.add_parser("demo-api", help="serve the bundled demo API")
    add_demo_api_options(demo_api, port_flag="--port")
    demo_api.set_defaults(func=cmd_demo_api)

    demo_variables = sub.add_parser(
        "demo-env",
        help="print the bundled connectors' variables for the demo API: "
        'eval "$(restsync demo-env)"',
    )
    demo_variables.add_argument("--host", default="127.0.0.1", help="the demo API's host")
    demo_variables.add_argument(
        "--api-port",
        type=int,
        default=None,
        help="the demo API's port (default: the running restsync demo's, else 8765)",
    )
    demo_variables.set_defaults(func=cmd_demo_env)

    demo = sub.add_parser("demo", help="demo API + dagster dev, with the demo's keys")
    add_demo_api_options(demo, port_flag="--api-port")
    demo.add_argument("--ui-host", default="127.0.0.1", help="Dagster UI host")
    demo.add_argument(
        "--port", dest="ui_port", type=int, default=3000, help="Dagster UI port (default 3000)"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``restsync`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    no_dlt_telemetry()
    if not os.environ.get("RESTSYNC_DEBUG"):
        warnings.filterwarnings("ignore")
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"restsync: {exc}", file=sys.stderr)
        return exc.exit_code
    except SettingsError as exc:  # a RESTSYNC_* variable: the message says which and what to do
        print(f"restsync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("restsync: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("RESTSYNC_DEBUG"):
            raise
        storage = storage_unreachable(exc)
        if storage is not None:
            print(f"restsync: {storage}", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"restsync: unexpected error: {type(exc).__name__}: {exc}\n"
            "(set RESTSYNC_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
