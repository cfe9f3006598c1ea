"""Windowed incremental syncs against the demo API: one request series per window, in order; a
sync killed with SIGKILL in a middle window resumes at that window with every record once; a
window the API refuses names itself and suggests a smaller ``window``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.demo_api.collections import format_instant, parse_instant
from restsync_dagster.demo_api.data import EPOCH, VERTICALS
from restsync_dagster_tests.helpers import (
    REPO,
    SHAPE_SECRET,
    step_failure,
    sync_job,
    table_ids,
    use_connector,
)

ORDERS = "/ecommerce/v1/orders"
DAY = timedelta(days=1)


def windowed_connector(initial: datetime, window: str = "1d", limit: int = 2) -> str:
    """Orders in windows, appended (a window read twice would show as duplicate rows)."""
    return f"""
name: shop
source:
  client:
    base_url: "{{{{ env.SHOP_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.SHOP_API_KEY }}}}"}}
  resources:
    - name: orders
      primary_key: id
      write_disposition: append
      endpoint:
        path: {ORDERS}
        data_selector: data
        paginator: {{type: offset, limit: {limit}}}
        incremental:
          cursor_path: updated_at
          start_param: updated_since
          end_param: updated_until
          initial_value: "{format_instant(initial)}"
          window: {window}
"""


def orders_in_the_last_days(api, count: int) -> datetime:
    """Insert ``count`` orders spread over the 70 hours before now; return the start of the
    first window: four days ago, on the hour (the first window holds no order)."""
    now = datetime.now(UTC)
    assert api.expected_rows("ecommerce", "orders") == [], "the test starts with no orders"
    shape = VERTICALS["ecommerce"]["orders"]  # an empty collection's clock:
    clock = EPOCH + timedelta(seconds=max(shape.max_lag_seconds - shape.step_seconds, 0) + 1)
    idle = (now - timedelta(hours=71) - clock).total_seconds() / 3600
    api.advance("ecommerce.orders", insert=0, update=0, hours=idle)
    api.advance("ecommerce.orders", insert=count, update=0, hours=70)
    return (now - 4 * DAY).replace(minute=0, second=0, microsecond=0)


def series(api) -> list[tuple[str, str, list[int]]]:
    """The orders requests as series: ``(updated_since, updated_until, [offsets])`` in order."""
    found: list[tuple[str, str, list[int]]] = []
    for request in api.requests(ORDERS):
        key = (request.params["updated_since"], request.params["updated_until"])
        offset = int(request.params["offset"])
        if found and found[-1][:2] == key:
            found[-1][2].append(offset)
        else:
            found.append((*key, [offset]))
    return found


@pytest.fixture
def shop(restsync_home, tmp_path, monkeypatch, start_demo_api):
    def make(latency_ms: float = 0, orders: int = 30, **config):
        api = start_demo_api(
            api_keys={"*": SHAPE_SECRET},
            latency_ms=latency_ms,
            counts={"ecommerce.orders": 0},
            **config,
        )
        initial = orders_in_the_last_days(api, orders)
        return api, initial

    def write(api, text: str) -> None:
        use_connector(tmp_path / "connectors", monkeypatch, api, "shop", text)

    return make, write


def test_a_windowed_first_sync_sends_one_request_series_per_window_in_order(
    shop, instance, restsync_home
):
    make, write = shop
    api, initial = make()
    write(api, windowed_connector(initial))

    result = sync_job("shop", instance)

    assert result.success
    seen = series(api)
    starts = [since for since, _, _ in seen]
    assert starts == [format_instant(initial + k * DAY) for k in range(5)], "5 windows, in order"
    assert [until for _, until, _ in seen[:4]] == starts[1:], (
        "each window ends where the next starts"
    )
    assert parse_instant(seen[-1][1]) <= datetime.now(UTC), "the last window ends at the sync's now"
    assert all(offsets == list(range(0, 2 * len(offsets), 2)) for _, _, offsets in seen)
    assert seen[0][2] == [0], "the first window holds no order: one empty page"
    expected = sorted(r["id"] for r in api.expected_rows("ecommerce", "orders"))
    assert table_ids(restsync_home, "shop.orders") == expected and len(expected) == 30
    logged = "\n".join(e.user_message for e in instance.all_logs(result.run_id))
    assert "5/5 windows" in logged and "window 3/5" in logged

    api.reset_log()
    assert sync_job("shop", instance).success
    again = series(api)
    assert [since for since, _, _ in again] == [seen[-1][1]], "the next sync starts at the last end"
    assert table_ids(restsync_home, "shop.orders") == expected, "nothing read twice"


def test_a_sync_killed_in_a_middle_window_resumes_at_that_window_with_every_record_once(
    shop, instance, restsync_home
):
    make, write = shop
    api, initial = make(latency_ms=100)
    write(api, windowed_connector(initial))
    third = format_instant(initial + 2 * DAY)
    process = subprocess.Popen(
        [sys.executable, "-m", "restsync_dagster.cli", "sync", "shop"],
        env={**os.environ, "DAGSTER_HOME": str(restsync_home.parent / "dagster-home")},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    (restsync_home.parent / "dagster-home").mkdir(exist_ok=True)
    deadline = time.monotonic() + 180
    while not any(r.params.get("updated_since") == third for r in api.requests(ORDERS)):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the sync never reached window 3"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    output = process.communicate()[0]
    assert "2/5 windows committed" in output, output[-3000:]
    stored = table_ids(restsync_home, "shop.orders")
    served = api.expected_rows("ecommerce", "orders")
    before = sorted(r["id"] for r in served if r["updated_at"] < third)
    assert stored == before, "windows 1 and 2 committed, window 3 not"

    api.reset_log()
    assert sync_job("shop", instance).success

    seen = series(api)
    assert [since for since, _, _ in seen] == [format_instant(initial + k * DAY) for k in (2, 3, 4)]
    ids = table_ids(restsync_home, "shop.orders")
    assert ids == sorted(r["id"] for r in served) and len(ids) == len(set(ids)) == 30


def test_a_window_the_api_refuses_fails_naming_it_and_suggesting_a_smaller_window(
    shop, instance, restsync_home
):
    make, write = shop
    api, initial = make(max_range_seconds=12 * 3600)
    write(api, windowed_connector(initial, window="1d"))

    result = sync_job("shop", instance)

    assert not result.success
    message, _ = step_failure(result)
    first = format_instant(initial)
    assert "HTTP 400" in message
    assert f"window 1/5 [{first}, {format_instant(initial + DAY)})" in message
    assert "try a smaller 'window' than '1d'" in message
    assert [since for since, _, _ in series(api)] == [first], "no window after the refused one"


def test_a_full_refresh_of_a_windowed_sync_starts_again_at_initial_value_with_each_record_once(
    shop, instance, restsync_home
):
    make, write = shop
    api, initial = make()
    write(api, windowed_connector(initial))
    assert sync_job("shop", instance).success
    api.reset_log()

    job = load_definitions().resolve_job_def("shop_sync")
    result = job.execute_in_process(
        instance=instance, tags={"restsync/full_refresh": "true"}, raise_on_error=False
    )

    assert result.success
    assert [s for s, _, _ in series(api)] == [format_instant(initial + k * DAY) for k in range(5)]
    ids = table_ids(restsync_home, "shop.orders")
    assert ids == sorted(r["id"] for r in api.expected_rows("ecommerce", "orders"))
    assert len(ids) == len(set(ids)) == 30, "the appended table was dropped first, not doubled"
    last_end = series(api)[-1][1]
    api.reset_log()
    assert sync_job("shop", instance).success
    assert [s for s, _, _ in series(api)] == [last_end], "the refreshed cursor was committed"
