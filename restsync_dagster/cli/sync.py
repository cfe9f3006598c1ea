"""``restsync sync``: run each connector's ``<connector>_sync`` job through Dagster.

The job is the one the UI's definitions hold (the same builder, for the selected connectors only:
no schedules, sensor or other connectors are built), and runs against the same ``DAGSTER_HOME``
(``$RESTSYNC_HOME/dagster_home`` unless set), so its runs show up in the UI. Each resource ends
``ok``, ``failed`` (with its own error) or ``not_run`` (with the reason), and names the table it
loads either way.

A connector with tenants syncs each tenant in a run of its own (its partition: the tenant's key,
or tenant x ``--partition`` with ``partitions:``): every tenant, or those ``--tenant`` names. A
tenant that fails (a revoked key, unset variables) fails alone; the others still run, and the
exit code says that one failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from restsync_dagster import names
from restsync_dagster.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Interrupted,
    select,
    unset_variables,
)
from restsync_dagster.cli.interrupts import sigint_for_this_process_only
from restsync_dagster.cli.progress import showing_progress
from restsync_dagster.connector import Connector
from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.orchestration.collector import collector_paused
from restsync_dagster.settings import Settings


@dataclass
class ResourceOutcome:
    """One line of ``restsync sync`` output."""

    connector: str
    resource: str
    asset_key: str
    table: str
    rows_loaded: int | None
    status: str  # ok | failed | not_run
    run_id: str | None = None
    error: str | None = None
    reason: str | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class Plan:
    """One run to make: a connector (one of its tenants), which resources, which partition."""

    connector: Connector
    resources: tuple[str, ...]
    partition: str | None
    tenant: str | None = None


def cmd_sync(args: argparse.Namespace) -> int:
    outcomes: list[ResourceOutcome] = []
    started = time.monotonic()
    mode = "quiet" if args.quiet or args.json else "auto"
    with contextlib.ExitStack() as stack:
        # First, before any thread or process starts: see cli/interrupts.py.
        interrupts = stack.enter_context(sigint_for_this_process_only())
        with collector_paused(freeze=True):
            from restsync_dagster.orchestration.definitions import (
                SharedParts,
                build_connector_definitions,
            )
            from restsync_dagster.orchestration.instance import open_instance
            from restsync_dagster.orchestration.tenants import has_dynamic_tenants

            settings = Settings.from_env()
            connectors = select(settings, args.connectors)
            instance = None
            if any(has_dynamic_tenants(c) for c in connectors):  # their tenants are in it
                instance = stack.enter_context(open_instance(settings))
            plans = _plans(connectors, args, instance)  # every usage error before anything runs
            if not args.quiet:
                _say_if_new_warehouse(settings)
            # Only the jobs to run: no schedules, sensor or other connectors' assets.
            shared = SharedParts.build(settings)
            jobs = {
                plan.connector.name: build_connector_definitions(
                    plan.connector, settings, shared
                ).job
                for plan in plans
            }
            if instance is None:
                instance = stack.enter_context(open_instance(settings))
        stack.enter_context(showing_progress(mode, settings.progress_interval_seconds))
        for plan in plans:
            connector = plan.connector
            message = unset_variables(connector, plan.tenant)
            if message:
                outcomes.extend(_unrun(connector, plan, settings, "failed", message))
                continue
            result = _execute(jobs[connector.name], instance, plan, args)
            who = f"connector {connector.name!r}" + (
                f" (tenant {plan.tenant!r})" if plan.tenant else ""
            )
            if interrupts.count or _interrupted(result):
                raise Interrupted(
                    f"{who}'s run {result.run_id[:8]} completed before it stopped; the runs "
                    "after it did not run"
                    if result.success
                    else f"{who} stopped; its run {result.run_id[:8]} failed, and the next "
                    "sync starts from the last committed load"
                )
            outcomes.extend(_outcomes(connector, plan, settings, result))
    _print_outcomes(outcomes, args, time.monotonic() - started)
    return EXIT_OK if all(o.status == "ok" for o in outcomes) else EXIT_FAILED


def _say_if_new_warehouse(settings: Settings) -> None:
    """One line on stderr when this sync is about to create the DuckDB warehouse: a command run
    from another folder, or with another ``RESTSYNC_HOME``, never starts a second one silently."""
    if settings.destination == "duckdb" and not settings.duckdb_path.exists():
        how = "RESTSYNC_HOME" if os.environ.get("RESTSYNC_HOME") else "the project folder's"
        print(
            f"creating the warehouse {settings.duckdb_path} ({how}; see RESTSYNC_HOME "
            "in docs/connectors.md)",
            file=sys.stderr,
        )


def _plans(selected: list[Connector], args: argparse.Namespace, instance: Any) -> list[Plan]:
    from restsync_dagster.orchestration.partitions import tenant_partition_key

    if args.resource and len(selected) != 1:
        raise CliError("--resource needs exactly one CONNECTOR", EXIT_USAGE)
    if args.tenant and len(selected) != 1:
        raise CliError("--tenant needs exactly one CONNECTOR", EXIT_USAGE)
    plans = []
    for connector in selected:
        resources = tuple(r.name for r in connector.resources)
        if args.resource:
            known = set(resources)
            for name in args.resource:
                if name not in known:
                    raise CliError(
                        f"connector {connector.name!r} has no resource {name!r}"
                        f"{did_you_mean(name, known)}; resources: {', '.join(resources)}",
                        EXIT_USAGE,
                    )
            resources = tuple(args.resource)
        if not connector.has_tenants:
            if args.tenant:
                raise CliError(
                    f"connector {connector.name!r} has no tenants; drop --tenant", EXIT_USAGE
                )
            plans.append(Plan(connector, resources, _partition_key(connector, args.partition)))
            continue
        time_key = _partition_key(connector, args.partition)
        for tenant in _tenants(connector, args.tenant, instance):
            key = tenant_partition_key(connector, tenant, time_key)
            plans.append(Plan(connector, resources, key, tenant))
    return plans


def _tenants(connector: Connector, wanted: Sequence[str], instance: Any) -> list[str]:
    """The tenants to sync: those ``--tenant`` names (each one checked), else every one."""
    from restsync_dagster.orchestration.tenants import has_dynamic_tenants, tenant_keys

    known = tenant_keys(connector, instance)
    if not wanted:
        if not known:
            raise CliError(
                f"connector {connector.name!r} has no tenant yet: add one with restsync "
                f"tenants add {connector.name} KEY",
                EXIT_USAGE,
            )
        return known
    for tenant in wanted:
        if tenant not in known:
            how = (
                f"restsync tenants add {connector.name} {tenant}"
                if has_dynamic_tenants(connector)
                else f"tenants.keys in {connector.file}"
            )
            raise CliError(
                f"connector {connector.name!r} has no tenant {tenant!r}"
                f"{did_you_mean(tenant, known)}; tenants: {', '.join(known) or '(none)'} "
                f"(to add it: {how})",
                EXIT_USAGE,
            )
    return list(dict.fromkeys(wanted))


def _partition_key(connector: Connector, requested: str | None) -> str | None:
    """The time partition to sync: the one asked for, else the last complete one."""
    from restsync_dagster.orchestration.partitions import build_partitions_def

    partitions = build_partitions_def(connector)  # with tenants too: the time dimension
    if partitions is None:
        if requested:
            raise CliError(
                f"connector {connector.name!r} is not partitioned; drop --partition", EXIT_USAGE
            )
        return None
    granularity = connector.config.partitions.granularity if connector.config.partitions else ""
    if requested:
        if not partitions.has_partition_key(requested):
            raise CliError(
                f"connector {connector.name!r}: {requested!r} is not one of its {granularity} "
                f"partitions (first: {partitions.get_first_partition_key()})",
                EXIT_USAGE,
            )
        return requested
    last = partitions.get_last_partition_key()
    if last is None:
        raise CliError(f"connector {connector.name!r} has no complete partition yet")
    return last


def _execute(job: Any, instance: Any, plan: Plan, args: argparse.Namespace) -> Any:
    import dagster as dg

    from restsync_dagster.orchestration.dead_runs import alive_from_creation, release_dead_runs
    from restsync_dagster.orchestration.held import run_lock_store
    from restsync_dagster.orchestration.instance import apply_pool_limits

    # The connector's pool exists, with its file's limit, before this run claims it.
    apply_pool_limits(instance, [plan.connector])
    # A run of this connector killed earlier still holds its pool slot: free it, or this one
    # would wait for the slot forever.
    store = run_lock_store(instance, Settings.from_env())
    release_dead_runs(instance, [plan.connector.name], store)
    # This process proves the run alive from before it exists, so a kill at any moment leaves
    # a run the sweep can fail (dead_runs.py).
    run_id, alive = alive_from_creation(store, plan.connector.name)
    tags = {names.TAG_LAUNCHED_BY: "cli", **alive}
    if args.full_refresh:
        tags[names.TAG_FULL_REFRESH] = "true"
    everything = len(plan.resources) == len(plan.connector.resources)
    selection = (
        None
        if everything
        else [dg.AssetKey(names.asset_key_path(plan.connector.name, r)) for r in plan.resources]
    )
    # The run's own events go to the instance (and the UI); the console shows them with -v.
    level = "INFO" if args.verbose else "CRITICAL"
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": level}}}},
        tags=tags,
        partition_key=plan.partition,
        asset_selection=selection,
        run_id=run_id,
    )


def _table(connector: Connector, settings: Settings, resource: str, tenant: str | None) -> str:
    """The table ``resource`` loads (for ``tenant``: with ``tables: datasets``, its dataset's)."""
    from restsync_dagster.connector.tenants import for_tenant
    from restsync_dagster.load.destination import qualified_table_name

    if tenant is not None:
        connector = for_tenant(connector, tenant)
    return qualified_table_name(connector, settings, connector.resource(resource).table_name)


def _unrun(
    connector: Connector, plan: Plan, settings: Settings, status: str, error: str
) -> list[ResourceOutcome]:
    outcomes = []
    for r in plan.resources:
        table = _table(connector, settings, r, plan.tenant)
        outcome = ResourceOutcome(connector.name, r, f"{connector.name}/{r}", table, None, status)
        outcome.error, outcome.tenant = error, plan.tenant
        outcomes.append(outcome)
    return outcomes


def _outcomes(
    connector: Connector, plan: Plan, settings: Settings, result: Any
) -> list[ResourceOutcome]:
    """Each planned resource's truth: its materialization, its own failure, or why it did not
    run (its parent failed, or the run stopped at another resource's failure)."""
    materialized = {
        e.materialization.asset_key.path[-1]: e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    error, failed = (None, None) if result.success else _failure(result)
    outcomes = []
    for name in plan.resources:
        table = _table(connector, settings, name, plan.tenant)
        outcome = ResourceOutcome(
            connector.name, name, f"{connector.name}/{name}", table, None, "ok"
        )
        outcome.run_id, outcome.tenant = result.run_id, plan.tenant
        metadata = materialized.get(name)
        if metadata is not None:
            rows = metadata.get("rows_loaded")
            outcome.rows_loaded = getattr(rows, "value", rows)
        elif failed is None or failed == name:
            outcome.status, outcome.error = "failed", error or "the run failed"
        else:
            outcome.status = "not_run"
            outcome.reason = (
                f"its parent {failed!r} failed"
                if failed in _ancestors(connector, name)
                else f"the run stopped at resource {failed!r}'s failure, before loading"
            )
        outcomes.append(outcome)
    return outcomes


def _ancestors(connector: Connector, name: str) -> set[str]:
    found, parent = set(), connector.resource(name).parent
    while parent and parent not in found:
        found.add(parent)
        parent = connector.resource(parent).parent
    return found


def _interrupted(result: Any) -> bool:
    """Whether Dagster stopped the run for a SIGINT (its failure is the interruption)."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            if error.cls_name == "DagsterExecutionInterruptedError":
                return True
            error = error.cause
    return False


def _failure(result: Any) -> tuple[str | None, str | None]:
    """The failed run's message and the resource its failure names (restsync's metadata)."""
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        user = data.user_failure_data
        metadata = {
            k: getattr(v, "value", v) for k, v in ((user.metadata or {}) if user else {}).items()
        }
        resource = metadata.get(names.failure_key("resource"))
        return _failure_text(data.error), (str(resource) if resource else None)
    events = [e for e in result.all_events if e.is_failure]
    return (_failure_text(events[0].event_specific_data.error) if events else None), None


def _failure_text(error: Any) -> str | None:
    # A dagster.Failure raised by the asset carries restsync's own message as its description.
    cause = error
    while cause is not None:
        if cause.cls_name == "Failure":
            return str(cause.message.removeprefix("dagster._core.definitions.events.Failure: "))
        cause = cause.cause
    return last_meaningful_line(error.message, error.cls_name) if error and error.message else None


#: Where a SQLAlchemy error's statement starts, and its closing link: both say nothing about
#: what went wrong.
_STATEMENT = re.compile(r"^\[SQL: ")
_LINK = re.compile(r"^\(Background on this error at: \S+\)$")


def last_meaningful_line(message: str, cls_name: str | None = None) -> str | None:
    """The last line of an error message that says what went wrong, named by its class: a
    database error ends with "(Background on this error at: https://sqlalche.me/...)", its SQL
    and its parameters, none of which does."""
    lines = [line.strip() for line in message.strip().splitlines()]
    statement = next((i for i, line in enumerate(lines) if _STATEMENT.match(line)), len(lines))
    kept = [line for line in lines[:statement] if line and not _LINK.match(line)]
    if not kept:
        return cls_name
    line = kept[-1]
    return f"{cls_name}: {line}" if cls_name and cls_name not in line else line


def _print_outcomes(
    outcomes: Sequence[ResourceOutcome], args: argparse.Namespace, seconds: float
) -> None:
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes], indent=2))
        return
    for o in outcomes:
        asset = f"{o.asset_key} [{o.tenant}]" if o.tenant else o.asset_key
        if o.status == "ok":
            print(f"ok       {asset:<32} {o.rows_loaded:>8} rows  -> {o.table}")
        elif o.status == "failed":
            print(f"FAILED   {asset}")
        else:
            print(f"not run  {asset:<32} ({o.reason})")
    for error in dict.fromkeys(o.error for o in outcomes if o.error):
        print(f"\n{error}", file=sys.stderr)
    if not args.quiet:
        print(f"\n{_summary(outcomes, seconds)}", file=sys.stderr)


def _summary(outcomes: Sequence[ResourceOutcome], seconds: float) -> str:
    ok = sum(o.status == "ok" for o in outcomes)
    line = f"{ok} of {len(outcomes)} resource(s) synced in {seconds:.1f} s"
    ui = os.environ.get("RESTSYNC_UI_URL", "").rstrip("/")
    run_ids = list(dict.fromkeys(o.run_id for o in outcomes if o.run_id))
    if ui and run_ids:
        line += "; runs: " + ", ".join(f"{ui}/runs/{run_id}" for run_id in run_ids)
    return line
