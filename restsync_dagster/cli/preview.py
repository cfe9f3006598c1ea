"""``restsync preview``: a connector's first pages and the columns a sync would create."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from restsync_dagster.cli.common import EXIT_OK, EXIT_USAGE, CliError, select, unset_variables
from restsync_dagster.settings import Settings


def cmd_preview(args: argparse.Namespace) -> int:
    from restsync_dagster.extract.progress import one_full_page_warning
    from restsync_dagster.failures.classify import classify
    from restsync_dagster.failures.errors import PreviewError
    from restsync_dagster.failures.redaction import Redactor
    from restsync_dagster.load.preview import preview
    from restsync_dagster.orchestration.resources import runtime_env

    if args.pages < 1:
        raise CliError("--pages must be at least 1", EXIT_USAGE)
    settings = Settings.from_env()
    (connector,) = select(settings, [args.connector])
    missing = unset_variables(connector)
    if missing:
        raise CliError(missing)
    env = runtime_env(connector, {name: os.environ[name] for name in connector.required_env})
    redactor = Redactor(env[n] for n in connector.secret_env if n in env)
    try:
        result = preview(connector, env, resource=args.resource, pages=args.pages)
    except PreviewError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except Exception as exc:
        failure = classify(
            exc,
            connector=connector.name,
            retry_statuses=connector.config.retry.statuses,
            redactor=redactor,
            hints=connector.hints,
        )
        raise CliError(failure.message()) from None
    if args.json:
        print(json.dumps(asdict(result), indent=2, default=str))
        return EXIT_OK
    for table in result.tables:
        print(f"table {table.name} ({table.rows} rows read)")
        for name, data_type, nullable in table.columns:
            print(f"  {name:<28} {data_type:<10} {'nullable' if nullable else 'not null'}")
        for sample in table.samples:
            print("  sample: " + json.dumps(sample, default=str)[:200])
    for name, why in sorted(result.stopped.items()):
        print(f"resource {name}: pagination stopped: {why}")
    for name, notice in sorted(result.notices.items()):
        print(f"warning: resource {name}: {notice}")
    for name in result.suspicious:
        print(f"warning: {one_full_page_warning(connector.name, name, result.stopped[name])}")
    print(f"{len(result.requests)} request(s):")
    for method, url, status in result.requests:
        print(f"  {method} {url} -> {status if status is not None else 'no answer'}")
    print("Nothing was written.")
    return EXIT_OK
