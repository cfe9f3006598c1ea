"""The loads of one run: one, or one per window of a windowed sync (extract/windows.py).

What the run body needs around :func:`restsync_dagster.extract.windows.plan_rounds`: the
selected resources and their stored cursors (read from the destination, as dlt restores them),
one materialization per resource summed over the windows, and a failure that names its window.
Partition runs are one bounded load: they neither read nor move the stored cursor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from restsync_dagster.connector import Connector
from restsync_dagster.extract.progress import Progress, one_full_page_warning
from restsync_dagster.extract.windows import (
    Round,
    commit_window,
    is_windowed,
    plan_rounds,
    stored_cursor,
)
from restsync_dagster.failures.classify import SyncFailure
from restsync_dagster.failures.errors import FailureKind


def plan_sync(
    context: dg.AssetExecutionContext,
    connector: Connector,
    pipeline: Any,
    *,
    partitioned: bool,
    full_refresh: bool,
) -> list[Round]:
    """The loads of this run, in order (see :func:`plan_rounds`)."""
    resources = list(connector.resources)
    selected = {key.path[-1] for key in context.selected_asset_keys}
    if partitioned or not any(r.name in selected and is_windowed(r) for r in resources):
        return [Round(None, {})]
    cursors: dict[str, Any] = {}
    if not full_refresh:
        pipeline.sync_destination()  # the state of the last committed load, as dlt restores it
        for resource in resources:
            found = stored_cursor(pipeline.state, connector.name, resource)
            if found is not None:
                cursors[resource.name] = found
    rounds = plan_rounds(resources, selected, cursors, datetime.now(UTC))
    first = rounds[0].windows
    context.log.info(
        f"connector {connector.name!r}: {len(rounds)} windows to load, "
        + ", ".join(f"{w.resource} from {w.start} in windows of {w.size}" for w in first.values())
    )
    return rounds


def stop_listener(
    connector: Connector, load: Round, progress: Progress, warn: Callable[[str], None]
) -> Callable[[str, str, bool], None]:
    """What a load does when a resource's pages end: progress, the one-full-page warning, and,
    for a windowed resource, its window's end as its cursor (the rows are all in this load)."""

    def stopped(resource: str, why: str, suspicious: bool) -> None:
        progress.stop(resource, why)
        window = load.windows.get(resource)
        if window is not None:
            incremental = connector.resource(resource).incremental or {}
            commit_window(window, incremental.get("initial_value"))
        if suspicious:
            text = one_full_page_warning(connector.name, resource, why)
            warn(text)
            progress.notice(text)

    return stopped


def notice_listener(
    connector: Connector, progress: Progress, warn: Callable[[str], None]
) -> Callable[[str, str], None]:
    """What a load does when restsync corrects how a resource pages (a page size the API
    capped): a warning in the run's log and where progress is shown."""

    def noticed(resource: str, message: str) -> None:
        text = f"connector {connector.name!r}, resource {resource!r}: {message}"
        warn(text)
        progress.notice(text)

    return noticed


def merged_results(results: Iterable[Any]) -> list[Any]:
    """dagster-dlt's results of every load, one per asset: the last one's metadata, with
    ``rows_loaded`` summed over the loads."""
    merged: dict[Any, Any] = {}
    rows: dict[Any, int] = {}
    for result in results:
        value = (result.metadata or {}).get("rows_loaded")
        rows[result.asset_key] = rows.get(result.asset_key, 0) + int(
            getattr(value, "value", value) or 0
        )
        merged[result.asset_key] = result
    return [
        dg.MaterializeResult(
            asset_key=key,
            metadata={**(result.metadata or {}), "rows_loaded": dg.MetadataValue.int(rows[key])},
        )
        for key, result in merged.items()
    ]


def in_window(failure: SyncFailure, load: Round | None) -> SyncFailure:
    """``failure`` naming the window it happened in (and, for a refused request, suggesting a
    smaller ``window``); unchanged outside a windowed load."""
    if load is None or not load.windows:
        return failure
    window = load.windows.get(failure.resource or "") or next(iter(load.windows.values()))
    detail = (
        f"{failure.detail} It happened in {window.describe()} of resource {window.resource!r}; "
        f"windows before it are committed, and the next sync resumes at this one."
    )
    refused = failure.kind == FailureKind.HTTP_STATUS and failure.status in (400, 413, 422)
    if refused:
        detail += (
            f" The API may refuse a range this wide: try a smaller 'window' than "
            f"{window.size!r} in incremental of resource {window.resource!r}."
        )
    return dataclasses.replace(failure, detail=detail.strip())
