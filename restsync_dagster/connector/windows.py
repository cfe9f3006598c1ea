"""restsync's keys inside dlt's ``incremental`` block: ``window`` and ``children``.

dlt's ``Incremental`` knows ``initial_value``, ``end_value`` and ``lag`` but cannot slice a range
into bounded steps (dlt-hub/dlt#3223). ``window: 1d`` asks restsync to: a sync from the stored
cursor (or ``initial_value``) to now becomes a sequence of windows, each committed before the next
(see :mod:`restsync_dagster.extract.windows`). ``children: all`` keeps child resources reading the
children of every parent, not only of the parents in this sync's window. Checked here, at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restsync_dagster.connector.extensions import CHILDREN_CHOICES
from restsync_dagster.connector.messages import did_you_mean
from restsync_dagster.connector.model import parse_duration
from restsync_dagster.connector.problems import Problem


def window_size(value: Any) -> float:
    """A ``window`` in cursor units: ``"1d"``, ``"6h"``... in seconds, or a positive number
    (seconds for a timestamp cursor, the cursor's own units for a numeric one).

    Raises:
        ValueError: neither a duration nor a positive number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a window")
    size = float(value) if isinstance(value, int | float) else parse_duration(str(value))
    if size <= 0:
        raise ValueError(f"{value!r} is not a positive window")
    return size


def incremental_problems(label: str, where: str, incremental: Any) -> list[Problem]:
    """The problems of restsync's keys in one endpoint's ``incremental`` block at ``where``."""
    if not isinstance(incremental, Mapping):
        return []
    problems: list[Problem] = []
    if "window" in incremental:
        path = f"{where}.window"
        try:
            window_size(incremental["window"])
        except ValueError:
            problems.append(
                Problem(
                    label,
                    path,
                    f"{incremental['window']!r} is not a window: write a duration such as "
                    "'1d', '6h' or '30m' (or a positive number of cursor units)",
                )
            )
        for key, why in (
            ("start_param", "each window's start is sent in it"),
            ("end_param", "each window's end is sent in it, so the API returns one window"),
            ("initial_value", "the first sync's windows start there"),
        ):
            if not incremental.get(key):
                problems.append(Problem(label, f"{where}.{key}", f"a window needs it: {why}"))
        if incremental.get("row_order"):
            problems.append(
                Problem(label, f"{where}.row_order", "windows bound the range already; drop it")
            )
    children = incremental.get("children")
    if children is not None and children not in CHILDREN_CHOICES:
        problems.append(
            Problem(
                label,
                f"{where}.children",
                f"{children!r} is not one of {', '.join(CHILDREN_CHOICES)}"
                f"{did_you_mean(str(children), CHILDREN_CHOICES)}",
            )
        )
    return problems
