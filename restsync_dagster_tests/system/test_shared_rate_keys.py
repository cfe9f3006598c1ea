"""Runs that share an API key share its rate budget: four partition runs of one connector at once,
and two connectors on one key, each in a process of its own (``restsync sync``), loading into
PostgreSQL, against the demo API's budget per key. The API never answers 429, and no window of
its budget is asked for more than the limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from restsync_dagster.connector import load_connectors
from restsync_dagster.orchestration.instance import apply_pool_limits, open_instance
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    PostgresServer,
    assert_rate_budget_kept,
    partitions_requesting_at_once,
    rate_budget_report,
)

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
KEY = "demo-ecommerce-key"
DAYS = ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
#: The demo API's budget per key: 8 requests per one-second window.
LIMIT = 8

SHOP = """
name: shop
partitions: {{daily: {{start: 2026-01-01}}, max_concurrent: 4}}
rate_limit: {rate_limit}
retry: {{max_retries: 8, backoff_factor: 0.2}}
source:
  client:
    base_url: "{{{{ env.SHOP_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.SHOP_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: orders
      endpoint:
        path: /v1/orders
        data_selector: data
        paginator: {{type: offset, limit: 2}}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""

#: A connector of the ecommerce API reading one collection, five records a page.
ONE_COLLECTION = """
name: {name}
rate_limit: {rate_limit}
retry: {{max_retries: 8, backoff_factor: 0.2}}
source:
  client:
    base_url: "{{{{ env.{upper}_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.{upper}_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: {collection}
      endpoint: {{path: /v1/{collection}, data_selector: data, paginator: {{type: offset, limit: 5}}}}
"""


def start_syncs(
    arguments: list[list[str]], env: dict[str, str], logs: Path
) -> list[subprocess.Popen[bytes]]:
    """``restsync sync ARGS...`` once per entry, all at once, each in a process of its own."""
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index, args in enumerate(arguments):
        with open(logs / f"sync-{index}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "restsync_dagster.cli", "sync", *args],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def wait_all(processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """Wait for every sync (at most 10 minutes together); fail with the log of any that failed."""
    deadline = time.monotonic() + 600
    for index, process in enumerate(processes):
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail(
                f"syncs not finished within 600 s: {(logs / f'sync-{index}.log').read_text()}"
            )
        assert code == 0, (logs / f"sync-{index}.log").read_text()


def environment(
    restsync_home: Path, postgres_server: PostgresServer, database: str
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        "RESTSYNC_HOME": str(restsync_home),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
        "RESTSYNC_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": postgres_server.dsn(database),
    }


@pytest.mark.slow
def test_four_partition_runs_at_once_share_the_budget_the_headers_tell(
    postgres_server: PostgresServer,
    postgres_database: str,
    start_demo_api,
    restsync_home: Path,
    tmp_path: Path,
):
    api = start_demo_api(
        latency_ms=20, rate_limit=LIMIT, rate_window_seconds=1.0, rate_headers="ietf"
    )
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "shop.yaml").write_text(
        SHOP.format(rate_limit="{from_headers: true, max_concurrency: 2}")
    )
    env = {
        **environment(restsync_home, postgres_server, postgres_database),
        "RESTSYNC_CONNECTORS_DIR": str(connectors),
        "SHOP_BASE_URL": api.url("ecommerce"),
        "SHOP_API_KEY": KEY,
    }
    # As `restsync demo` does: the connector's pool admits max_concurrent runs, not 1.
    with open_instance(Settings.from_env()) as instance:
        assert apply_pool_limits(instance, load_connectors([connectors])) == {"restsync_shop": 4}
    logs = tmp_path / "logs"
    wait_all(start_syncs([["shop", "--partition", day] for day in DAYS], env, logs), logs)

    at_once = partitions_requesting_at_once(api, "/ecommerce/v1/orders", DAYS)
    print(f"\n{rate_budget_report(api.stats(), LIMIT)}; partition runs at once: {at_once}")
    assert at_once >= 3, "the runs overlap"
    assert_rate_budget_kept(api, LIMIT)
    rows = postgres_server.execute(
        "SELECT substr(updated_at::text, 1, 10), count(*), count(DISTINCT id) "
        "FROM shop.orders GROUP BY 1 ORDER BY 1",
        postgres_database,
    )
    served = Counter(
        r["updated_at"][:10]
        for r in api.expected_rows("ecommerce", "orders", since=DAYS[0], until="2026-01-06")
    )
    assert [(day, n, n) for day, n in sorted(served.items())] == [tuple(r) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("runs", [2, 1])
def test_two_connectors_on_one_key_share_its_requests_per_second(
    postgres_server: PostgresServer,
    postgres_database: str,
    start_demo_api,
    restsync_home: Path,
    tmp_path: Path,
    runs: int,
):
    # The API allows 10 a second; the key's connectors are told 8, so that the time a request
    # takes to arrive cannot move one into the next window of the API's count.
    api = start_demo_api(latency_ms=20, rate_limit=10, rate_window_seconds=1.0, rate_headers="none")
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    rate = f"{{key: ecommerce, requests_per_second: 8, max_concurrency: 2, runs: {runs}}}"
    env = {
        **environment(restsync_home, postgres_server, postgres_database),
        "RESTSYNC_CONNECTORS_DIR": str(connectors),
    }
    for name, collection in (("crm", "customers"), ("store", "orders")):
        text = ONE_COLLECTION.format(
            name=name, upper=name.upper(), collection=collection, rate_limit=rate
        )
        (connectors / f"{name}.yaml").write_text(text)
        env[f"{name.upper()}_BASE_URL"] = api.url("ecommerce")
        env[f"{name.upper()}_API_KEY"] = KEY
    logs = tmp_path / "logs"
    wait_all(start_syncs([["crm"], ["store"]], env, logs), logs)

    print(f"\n{assert_rate_budget_kept(api, 10)}")
    seen = api.requests("/ecommerce/v1/")
    times = sorted(r.at for r in seen)
    # The limiter counts a request when it is sent, the API when it arrives: a request held up
    # on its way (up to 0.2 s on a busy machine) can arrive beside the next second's.
    busiest = max(sum(1 for t in times if start <= t < start + 0.8) for start in times)
    print(f"most requests in any 0.8 s: {busiest} (the key's requests_per_second: 8)")
    assert busiest <= 8, busiest
    spans = {
        path: (min(r.at for r in seen if r.path == path), max(r.at for r in seen if r.path == path))
        for path in ("/ecommerce/v1/customers", "/ecommerce/v1/orders")
    }
    (first_start, first_end), (second_start, second_end) = spans.values()
    overlap = max(first_start, second_start) < min(first_end, second_end)
    with open_instance(Settings.from_env()) as instance:
        messages = [
            entry.message or ""
            for record in instance.get_run_records()
            for entry in instance.all_logs(record.dagster_run.run_id)
        ]
    waited = [m for m in messages if "rate key 'ecommerce' at once are running" in m]
    if runs == 2:
        assert overlap, f"both connectors held a slot of the key at once: {spans}"
        assert waited == []
    else:
        assert not overlap, (
            f"one slot: the second connector's requests wait for the first's end {spans}"
        )
        assert waited == [
            "connector 'crm': the 1 run(s) that may spend rate key 'ecommerce' at once are "
            "running; waiting for one to end"
        ] or waited == [
            "connector 'store': the 1 run(s) that may spend rate key 'ecommerce' at once are "
            "running; waiting for one to end"
        ], waited
    for table, collection in (("crm.customers", "customers"), ("store.orders", "orders")):
        count, unique = postgres_server.execute(
            f"SELECT count(*), count(DISTINCT id) FROM {table}", postgres_database
        )[0]
        assert count == unique == len(api.expected_rows("ecommerce", collection))
