"""Connectors that name the same ``rate_limit.key`` spend one API key's budget together, so they
must declare the same limits: the budget is the key's, not any one file's. Checked wherever a
set of connectors is loaded (a directory, a code location's components)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from restsync_dagster.connector.connector import Connector
from restsync_dagster.connector.problems import Problem, shown_path

#: What a key's connectors must agree on, as each reads it.
_SHARED = ("requests_per_second", "max_concurrency", "from_headers", "reserve", "runs")


def key_limits(connector: Connector) -> dict[str, Any]:
    """The limits ``connector`` declares for its rate key (``runs`` resolved)."""
    rate = connector.config.rate_limit
    limits: dict[str, Any] = {name: getattr(rate, name) for name in _SHARED}
    limits["runs"] = connector.config.rate_runs
    return limits


def rate_key_problems(connectors: Sequence[Connector]) -> list[Problem]:
    """One problem per connector whose limits differ from those of the first connector (in
    load order) that names the same rate key."""
    first: dict[str, Connector] = {}
    problems = []
    for connector in connectors:
        key = connector.config.rate_key
        other = first.setdefault(key, connector)
        if other is connector:
            continue
        mine, theirs = key_limits(connector), key_limits(other)
        differ = [
            f"{name} {mine[name]!r} where {shown_path(other.file)} has {theirs[name]!r}"
            for name in _SHARED
            if mine[name] != theirs[name]
        ]
        if differ:
            problems.append(
                Problem(
                    shown_path(connector.file),
                    "rate_limit",
                    f"connector {connector.name!r} shares rate key {key!r} with connector "
                    f"{other.name!r} but declares {', '.join(differ)}: the connectors of a key "
                    "share one budget, so give them the same rate_limit ("
                    + ", ".join(_SHARED)
                    + "; runs defaults to partitions.max_concurrent)",
                )
            )
    return problems
