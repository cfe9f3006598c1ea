"""Windowed incremental syncs: a range sliced into bounded windows, each committed on its own.

dlt's ``Incremental`` loads one range per run and cannot slice it (dlt-hub/dlt#3223); with an
``end_value`` it neither reads nor writes the stored cursor. restsync plans the windows from the
stored cursor (or ``initial_value``, with ``lag`` applied) to now, runs each as one dlt load
bounded by ``initial_value``/``end_value`` (so dlt sends ``start_param``/``end_param``), and, while
that load's extract runs, writes the window's end as the resource's dlt cursor
(:func:`commit_window`). The cursor therefore lands in the destination with the window's rows, in
the same load, or not at all: a crash resumes at the first window not committed, and a later sync
without ``window`` continues from it as dlt always does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from restsync_dagster.connector import ResolvedResource
from restsync_dagster.connector.windows import window_size


@dataclass(frozen=True)
class Window:
    """One window of one resource: ``[start, end)`` in the cursor's own type."""

    resource: str
    cursor_path: str
    #: 0-based position in the sync's windows of this resource.
    index: int
    total: int
    start: Any
    end: Any
    #: The ``window`` as the file wrote it ("1d").
    size: str

    def describe(self) -> str:
        """``window 3/10 [2026-01-03T00:00:00Z, 2026-01-04T00:00:00Z)``"""
        return f"window {self.index + 1}/{self.total} [{self.start}, {self.end})"


def is_windowed(resource: ResolvedResource) -> bool:
    """Whether ``resource`` syncs in windows (``incremental.window``)."""
    return resource.window is not None and resource.incremental is not None


def plan_windows(resource: ResolvedResource, stored: Any, now: datetime) -> list[Window]:
    """The windows of one sync of ``resource``: from ``stored`` (its dlt cursor, None on a first
    sync), less ``lag``, or from ``initial_value``, to ``now``; always at least one."""
    incremental = resource.incremental or {}
    sample = incremental.get("initial_value")
    size = window_size(resource.window)
    if stored is None:
        start = as_number(sample)
    else:
        start = as_number(stored) - float(incremental.get("lag") or 0)
    end = max(now.timestamp(), start + 1)
    total = max(1, math.ceil((end - start) / size))
    bounds = [start + k * size for k in range(total)] + [end]
    return [
        Window(
            resource=resource.name,
            cursor_path=str(incremental.get("cursor_path")),
            index=k,
            total=total,
            start=cursor_value(bounds[k], sample),
            end=cursor_value(bounds[k + 1], sample),
            size=str(resource.window),
        )
        for k in range(total)
    ]


def stored_cursor(state: Mapping[str, Any], source: str, resource: ResolvedResource) -> Any:
    """The ``last_value`` dlt keeps for ``resource`` in a pipeline's state, or None."""
    cursor = str((resource.incremental or {}).get("cursor_path"))
    try:
        found = state["sources"][source]["resources"][resource.name]["incremental"][cursor]
    except (KeyError, TypeError):
        return None
    return found.get("last_value") if isinstance(found, Mapping) else None


def commit_window(window: Window, initial_value: Any) -> None:
    """Make ``window.end`` the resource's dlt cursor, in the state of the load now extracting.

    Called while dlt extracts the window (when its pages end), so the state goes into the same
    load package as the window's rows. dlt's own incremental keeps a throw-away state when it has
    an ``end_value``; this writes where a sync without ``end_value`` reads.
    """
    import dlt

    state = dlt.current.resource_state(window.resource)
    cursors = state.setdefault("incremental", {})
    cursors[window.cursor_path] = {
        "initial_value": initial_value,
        "last_value": window.end,
        "unique_hashes": [],
    }


def as_number(value: Any) -> float:
    """A cursor value (ISO-8601 text, a datetime, epoch seconds) as epoch seconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def cursor_value(seconds: float, sample: Any) -> Any:
    """Epoch ``seconds`` in the type of ``sample`` (the file's ``initial_value``): a number for
    a number, ISO-8601 (``2026-01-01T00:00:00Z``) otherwise."""
    if isinstance(sample, int | float) and not isinstance(sample, bool):
        return int(seconds) if isinstance(sample, int) else seconds
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Round:
    """One dlt load of a windowed sync: the resources it loads (None: every selected one) and
    the window of each windowed resource among them."""

    resources: tuple[str, ...] | None
    windows: Mapping[str, Window]
    index: int = 0
    total: int = 1

    def describe(self) -> str:
        """``window 3/10 (orders [a, b))``, or ``load 1/1`` for a sync without windows."""
        if not self.windows:
            return f"load {self.index + 1}/{self.total}"
        spans = ", ".join(f"{w.resource} [{w.start}, {w.end})" for w in self.windows.values())
        return f"window {self.index + 1}/{self.total} ({spans})"


def plan_rounds(
    resources: list[ResolvedResource],
    selected: set[str],
    cursors: Mapping[str, Any],
    now: datetime,
) -> list[Round]:
    """The loads of one sync of the ``selected`` resources.

    Round ``k`` loads window ``k`` of every windowed resource that has one, with the resources
    resolved from it (its children); the first also loads everything else. Without a windowed
    resource, one round loads all.

    Args:
        resources: Every resource of the connector.
        selected: The names this run materializes.
        cursors: The stored cursor of each windowed resource (absent: first sync).
        now: Where the last window ends.
    """
    windowed = [r for r in resources if r.name in selected and is_windowed(r)]
    if not windowed:
        return [Round(None, {})]
    plans = {r.name: plan_windows(r, cursors.get(r.name), now) for r in windowed}
    followers = {name: _descendants(resources, name) & selected for name in plans}
    riding = set().union(*followers.values())
    others = tuple(sorted(selected - set(plans) - riding))
    total = max(len(plan) for plan in plans.values())
    rounds = []
    for k in range(total):
        windows = {name: plan[k] for name, plan in plans.items() if k < len(plan)}
        names = set(windows).union(*(followers[name] for name in windows))
        names |= set(others) if k == 0 else set()
        rounds.append(Round(tuple(sorted(names)), windows, k, total))
    return rounds


def _descendants(resources: list[ResolvedResource], name: str) -> set[str]:
    """The resources resolved from ``name``'s records, through parents in windows (the children
    of a ``children: all`` parent read a full copy of it: they load once, in the first round)."""
    full = {r.name for r in resources if r.reads_all_children}
    found: set[str] = set()
    frontier = {name} - full
    while frontier:
        frontier = {r.name for r in resources if r.parent in frontier} - found
        found |= frontier
    return found
