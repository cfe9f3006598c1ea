"""How a sync is sliced into windows: from the stored cursor less lag, or from initial_value, to
now; children ride with their windowed parent; everything else loads in the first window."""

from __future__ import annotations

from datetime import UTC, datetime

from restsync_dagster.connector.resources import resolve_resources
from restsync_dagster.extract.windows import plan_rounds, plan_windows

NOW = datetime(2026, 1, 4, 6, tzinfo=UTC)


def source(children: str | None = None, lag: int | None = None, initial: object = None) -> dict:
    incremental = {
        "cursor_path": "updated_at",
        "start_param": "since",
        "end_param": "until",
        "initial_value": initial or "2026-01-01T00:00:00Z",
        "window": "1d",
        **({"children": children} if children else {}),
        **({"lag": lag} if lag else {}),
    }
    return {
        "resources": [
            {"name": "orders", "endpoint": {"path": "/orders", "incremental": incremental}},
            {"name": "lines", "endpoint": {"path": "/orders/{resources.orders.id}/lines"}},
            {"name": "products", "endpoint": {"path": "/products"}},
        ]
    }


def test_a_first_sync_runs_from_initial_value_to_now_in_whole_windows_and_a_last_partial_one():
    orders = resolve_resources(source())[0]
    windows = plan_windows(orders, None, NOW)
    assert [(w.start, w.end) for w in windows] == [
        ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
        ("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"),
        ("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"),
        ("2026-01-04T00:00:00Z", "2026-01-04T06:00:00Z"),
    ]
    assert windows[1].describe() == "window 2/4 [2026-01-02T00:00:00Z, 2026-01-03T00:00:00Z)"


def test_a_later_sync_starts_at_the_stored_cursor_less_lag():
    orders = resolve_resources(source(lag=3600))[0]
    windows = plan_windows(orders, "2026-01-03T12:00:00Z", NOW)
    assert [(w.start, w.end) for w in windows] == [("2026-01-03T11:00:00Z", "2026-01-04T06:00:00Z")]


def test_numeric_cursors_get_numeric_windows():
    orders = resolve_resources(source(initial=1_767_225_600))[0]
    windows = plan_windows(orders, None, NOW)
    assert windows[0].start == 1_767_225_600 and windows[0].end == 1_767_225_600 + 86_400


def test_children_ride_with_each_window_and_other_resources_load_in_the_first():
    rounds = plan_rounds(resolve_resources(source()), {"orders", "lines", "products"}, {}, NOW)
    assert [r.resources for r in rounds] == [
        ("lines", "orders", "products"),
        ("lines", "orders"),
        ("lines", "orders"),
        ("lines", "orders"),
    ]
    assert rounds[2].describe().startswith("window 3/4 (orders [2026-01-03T00:00:00Z")


def test_children_of_a_children_all_parent_load_once():
    rounds = plan_rounds(resolve_resources(source("all")), {"orders", "lines"}, {}, NOW)
    assert [r.resources for r in rounds] == [
        ("lines", "orders"),
        ("orders",),
        ("orders",),
        ("orders",),
    ]


def test_without_a_windowed_resource_selected_one_load_takes_everything():
    rounds = plan_rounds(resolve_resources(source()), {"products"}, {}, NOW)
    assert [(r.resources, dict(r.windows)) for r in rounds] == [(None, {})]
