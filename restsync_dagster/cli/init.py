"""``restsync init NAME --from-openapi PATH_OR_URL``: write a connector file from an OpenAPI
document (see :mod:`restsync_dagster.openapi` and docs/openapi.md)."""

from __future__ import annotations

import argparse
import os

from restsync_dagster.cli.common import EXIT_USAGE, CliError


def add_init_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``init`` subcommand and its flags."""
    init = sub.add_parser(
        "init", help="write a connector file from an OpenAPI document (2.0 or 3.x, JSON or YAML)"
    )
    init.add_argument("name", metavar="NAME", help="the connector's name (lower-case, '_')")
    init.add_argument(
        "--from-openapi", required=True, metavar="PATH_OR_URL", help="the OpenAPI document"
    )
    init.add_argument("--out", metavar="FILE", help="default: NAME.yaml in RESTSYNC_CONNECTORS_DIR")
    init.add_argument("--include", action="append", default=[], metavar="GLOB_OR_TAG")
    init.add_argument("--exclude", action="append", default=[], metavar="GLOB_OR_TAG")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.add_argument(
        "--check",
        action="store_true",
        help="read each resource's first page first (secrets from the environment) and mark "
        "the ones that fail in the file",
    )
    init.add_argument("--base-url", metavar="URL", help="the API's base URL (default: the spec's)")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from restsync_dagster.connector.model import NAME_PATTERN
    from restsync_dagster.openapi.command import run_init

    if not NAME_PATTERN.match(args.name):
        raise CliError(
            f"{args.name!r} is not a valid connector name: use lower-case letters, digits and "
            "'_', starting with a letter",
            EXIT_USAGE,
        )
    return run_init(
        args.name,
        args.from_openapi,
        out=args.out,
        include=args.include,
        exclude=args.exclude,
        force=args.force,
        check=args.check,
        base_url=args.base_url,
        connectors_dir_env=os.environ.get("RESTSYNC_CONNECTORS_DIR"),
    )
