"""The ``restsync`` command: validate connector files, sync through Dagster, run the demo.

``restsync sync`` executes each connector's ``<connector>_sync`` job from the same definitions the
UI loads, against the same ``DAGSTER_HOME`` (``$RESTSYNC_HOME/dagster_home`` unless set), so its
runs show up in the UI. Errors are printed for people, one line per problem; there is no
traceback unless ``RESTSYNC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from restsync_dagster.destination import no_dlt_telemetry
from restsync_dagster.locks import exclusive
from restsync_dagster.settings import Settings
from restsync_dagster.spec import Connector, ConnectorSpecError, load_connectors

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEMO_VERTICALS = ("generic", "analytics", "ecommerce", "database", "communications")


class CliError(Exception):
    """An error to print as is (no traceback) before exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------------------------
# validate


def cmd_validate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    connectors = _load(settings)
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
        if connector.spec.schedule:
            print(
                f"  schedule: {connector.spec.schedule.cron} ({connector.spec.schedule.timezone})"
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
        "schedule": connector.spec.schedule.cron if connector.spec.schedule else None,
    }


def _load(settings: Settings) -> list[Connector]:
    try:
        return load_connectors(settings.connector_dirs)
    except ConnectorSpecError as exc:
        raise CliError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# sync


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

    from restsync_dagster.definitions import build_definitions
    from restsync_dagster.jobs import job_name
    from restsync_dagster.sync import FULL_REFRESH_TAG

    settings = Settings.from_env()
    connectors = _load(settings)
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
    with _instance(settings) as instance:
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
            tags = {"restsync/launched_by": "cli"}
            if args.full_refresh:
                tags[FULL_REFRESH_TAG] = "true"
            job = definitions.resolve_job_def(job_name(connector))
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
    from restsync_dagster.partitions import build_partitions_def

    partitions = build_partitions_def(connector)
    if partitions is None:
        if requested:
            raise CliError(f"connector {connector.name!r} is not partitioned; drop --partition")
        return None
    if requested:
        if not partitions.has_partition_key(requested):
            raise CliError(
                f"connector {connector.name!r}: {requested!r} is not one of its "
                f"{connector.spec.partitions.granularity if connector.spec.partitions else ''} partitions"
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


class _instance:
    """The Dagster instance of ``DAGSTER_HOME``, or of ``$RESTSYNC_HOME/dagster_home``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Any:
        from dagster import DagsterInstance

        home = dagster_home(self.settings)
        # A fresh home's SQLite storages are created and stamped on first open; two syncs
        # starting at once would both stamp them (UNIQUE constraint failed: alembic_version).
        with exclusive(home / ".restsync-instance.lock"):
            self._instance = DagsterInstance.from_config(str(home))
            self._instance.get_runs_count()
        return self._instance

    def __exit__(self, *exc: object) -> None:
        self._instance.dispose()


def dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME`` when set, else ``$RESTSYNC_HOME/dagster_home`` (prepared)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else prepare_dagster_home(settings)


def prepare_dagster_home(settings: Settings) -> Path:
    """Create ``$RESTSYNC_HOME/dagster_home`` with a local ``dagster.yaml`` if it is missing."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        template = Path(__file__).parent / "dagster_local.yaml"
        # Written whole, then renamed: a sync starting at the same moment never reads half.
        partial = config.with_name(f"dagster.yaml.{os.getpid()}")
        partial.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
        os.replace(partial, config)
    return home


# --------------------------------------------------------------------------------------------
# preview


def cmd_preview(args: argparse.Namespace) -> int:
    from restsync_dagster.failures import classify
    from restsync_dagster.preview import PreviewError, preview
    from restsync_dagster.redaction import Redactor
    from restsync_dagster.resources import runtime_env

    if args.pages < 1:
        raise CliError("--pages must be at least 1", EXIT_USAGE)
    settings = Settings.from_env()
    by_name = {c.name: c for c in _load(settings)}
    connector = by_name.get(args.connector)
    if connector is None:
        raise CliError(
            f"unknown connector {args.connector!r}; known: {', '.join(sorted(by_name))}", EXIT_USAGE
        )
    missing = [name for name in connector.required_env if not os.environ.get(name)]
    if missing:
        raise CliError(
            f"connector {connector.name!r}: environment variable(s) not set: {', '.join(missing)}"
        )
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
            retry_statuses=connector.spec.retry.statuses,
            redactor=redactor,
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
    print(f"{len(result.requests)} request(s):")
    for url, status in result.requests:
        print(f"  GET {url} -> {status if status is not None else 'no answer'}")
    print("Nothing was written.")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# demo-api and demo


def _add_demo_api_options(parser: argparse.ArgumentParser, port_flag: str) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="demo API interface to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        port_flag, dest="port", type=int, default=8765, help="demo API port (0 picks a free one)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the deterministic data")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key every vertical accepts (default: demo-<vertical>-key per vertical)",
    )
    parser.add_argument(
        "--records",
        action="append",
        default=[],
        metavar="[VERTICAL.COLLECTION=]N",
        help="records per collection: N for all, or e.g. ecommerce.orders=5000 (repeatable)",
    )
    parser.add_argument("--databases", type=int, default=None, help="databases served (default 3)")
    parser.add_argument(
        "--records-per-database", type=int, default=None, help="records in each database"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API request")
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests answered with a fault"
    )
    parser.add_argument(
        "--fault-statuses", default="429,503", help="statuses used for faults (comma-separated)"
    )
    parser.add_argument(
        "--fault-retry-after", type=int, default=None, help="Retry-After seconds sent with faults"
    )
    parser.add_argument(
        "--fault-max-consecutive",
        type=int,
        default=3,
        help="a request never fails more often than this in a row (default 3)",
    )
    parser.add_argument(
        "--outage-seconds", type=float, default=0.0, help="answer 503 to everything at first"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")


def _demo_api_config(args: argparse.Namespace, port: int) -> Any:
    from restsync_dagster.demo_api import DemoApiConfig
    from restsync_dagster.demo_api.data import DEFAULT_RECORDS_PER_DATABASE

    counts: dict[str, int] = {}
    for item in args.records:
        key, _, value = item.rpartition("=")
        try:
            counts[key or "*"] = int(value)
        except ValueError:
            raise CliError(
                f"--records {item!r}: expected N or VERTICAL.COLLECTION=N", EXIT_USAGE
            ) from None
    try:
        statuses = tuple(int(s) for s in args.fault_statuses.split(",") if s.strip())
    except ValueError:
        raise CliError(
            f"--fault-statuses {args.fault_statuses!r}: expected e.g. 429,503", EXIT_USAGE
        ) from None
    if not 0 <= args.fault_rate <= 1:
        raise CliError("--fault-rate must be between 0 and 1", EXIT_USAGE)
    return DemoApiConfig(
        host=args.host,
        port=port,
        seed=args.seed,
        counts=counts,
        databases=args.databases,
        records_per_database=args.records_per_database or DEFAULT_RECORDS_PER_DATABASE,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        fault_statuses=statuses,
        fault_retry_after=args.fault_retry_after,
        fault_max_consecutive=args.fault_max_consecutive,
        outage_seconds=args.outage_seconds,
        api_keys={"*": args.api_key} if args.api_key else {},
        verbose=args.verbose,
    )


def cmd_demo_api(args: argparse.Namespace) -> int:
    from restsync_dagster.demo_api import DemoApi

    api = DemoApi(_demo_api_config(args, args.port))
    try:
        api.start()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"demo API listening on {api.url()} (verticals: {', '.join(DEMO_VERTICALS)})", flush=True)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return EXIT_OK


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo_env(api_url: str) -> dict[str, str]:
    """The variables that point the bundled connectors at a demo API, with its demo keys."""
    from restsync_dagster.demo_api import default_api_key

    env = {}
    for vertical in DEMO_VERTICALS:
        env[f"{vertical.upper()}_BASE_URL"] = f"{api_url}/{vertical}"
        env[f"{vertical.upper()}_API_KEY"] = default_api_key(vertical)
    return env


def cmd_demo(args: argparse.Namespace) -> int:
    from restsync_dagster.demo_api import DemoApi

    settings = Settings.from_env()
    _load(settings)  # fail early, readably, on a bad connector file
    api = DemoApi(_demo_api_config(args, args.port))
    try:
        api.start()
    except OSError as exc:
        raise CliError(
            f"cannot start the demo API on {args.host}:{args.port}: {exc.strerror or exc}; "
            "pass --api-port to use another port"
        ) from None
    home = dagster_home(settings)
    workspace = settings.home / "workspace.yaml"
    workspace.parent.mkdir(parents=True, exist_ok=True)
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: restsync_dagster.definitions\n"
        "      location_name: restsync\n",
        encoding="utf-8",
    )
    # The demo keys exist in the child's environment only.
    child_env = {**os.environ, **demo_env(api.url()), "DAGSTER_HOME": str(home)}
    command = [
        sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
        "-h", args.ui_host, "-p", str(args.ui_port),
    ]  # fmt: skip
    print(
        f"demo API on {api.url()}; Dagster UI on http://{args.ui_host}:{args.ui_port}", flush=True
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    # Its own process group, so stopping the demo stops dagster dev's webserver, daemon and code
    # servers too, not only the parent.
    child = subprocess.Popen(command, env=child_env, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        stop_process_group(child)
        return EXIT_OK
    finally:
        api.stop()


def stop_process_group(child: subprocess.Popen[bytes], grace_seconds: float = 20) -> None:
    """Interrupt a process group like Ctrl-C would, then terminate and kill what is left."""
    for sig, wait in ((signal.SIGINT, grace_seconds), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; give its children the same signal's grace, then make sure.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(child.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``restsync`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="restsync",
        description="Sync REST APIs described by YAML connector files into a warehouse, with Dagster.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check every connector file; list what each needs")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.set_defaults(func=cmd_validate)

    sync = sub.add_parser("sync", help="materialize connectors through Dagster")
    sync.add_argument("connectors", nargs="*", metavar="CONNECTOR", help="default: all")
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
    sync.set_defaults(func=cmd_sync)

    preview = sub.add_parser(
        "preview", help="fetch a connector's first pages and show the columns; writes nothing"
    )
    preview.add_argument("connector", metavar="CONNECTOR")
    preview.add_argument("--resource", metavar="R", help="only this resource")
    preview.add_argument("--pages", type=int, default=1, help="pages per resource (default 1)")
    preview.add_argument("--json", action="store_true", help="machine-readable output")
    preview.set_defaults(func=cmd_preview)

    demo_api = sub.add_parser("demo-api", help="serve the bundled demo API")
    _add_demo_api_options(demo_api, port_flag="--port")
    demo_api.set_defaults(func=cmd_demo_api)

    demo = sub.add_parser("demo", help="demo API + dagster dev, with the demo's keys")
    _add_demo_api_options(demo, port_flag="--api-port")
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
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("RESTSYNC_DEBUG"):
            raise
        print(
            f"restsync: unexpected error: {type(exc).__name__}: {exc}\n"
            "(set RESTSYNC_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
