"""Eight tenants synced in parallel under ``dagster dev``'s daemon (a backfill of eight tenant
partitions, the queue launching them as the pool allows) into PostgreSQL (DuckDB takes one
writing process at a time, so its tenants' runs wait for each other), each with its own key, against an API
that counts a rate budget per key: each tenant spends its own rate key (``shop.<tenant>``), so
none is sent a 429 and no key's window is asked for more than its limit, while the tenants run
side by side."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster.connector import load_connectors
from restsync_dagster.demo_api import DemoApi
from restsync_dagster.demo_api.tenants import tenant_names
from restsync_dagster.orchestration.instance import apply_pool_limits
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    PostgresServer,
    assert_tenant_budgets_kept,
    launch_backfill,
    most_in_flight,
    tenant_variables,
    tenants_requesting_at_once,
    wait_for_backfill,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TENANTS = tenant_names(8)
#: The demo API's budget for each key: 8 requests per one-second window.
LIMIT = 8

SHOP = f"""
name: shop
tenants: {{keys: [{", ".join(TENANTS)}], max_concurrent: 8}}
rate_limit: {{from_headers: true, max_concurrency: 2}}
retry: {{max_retries: 8, backoff_factor: 0.2}}
source:
  client:
    base_url: "{{{{ tenant.BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ tenant.API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {{type: offset, limit: 2}}}}
"""

#: A queue that launches up to eight runs at once, as the pool allows: its limit is the file's
#: tenants.max_concurrent (every other pool: 1).
DAGSTER_YAML = """
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config: {dequeue_interval_seconds: 1}
concurrency:
  runs: {max_concurrent_runs: 8}
  pools: {default_limit: 1, granularity: run}
telemetry: {enabled: false}
"""


def test_eight_tenants_in_parallel_keep_each_keys_budget_with_no_429(
    postgres_server: PostgresServer,
    postgres_database: str,
    start_dagster_dev,
    start_demo_api,
    restsync_home,
    tmp_path,
):
    api: DemoApi = start_demo_api(
        tenants=TENANTS,
        counts={"generic.items": 160},
        latency_ms=20,
        rate_limit=LIMIT,
        rate_window_seconds=1.0,
        rate_headers="ietf",
    )
    folder = tmp_path / "connectors"
    folder.mkdir()
    (folder / "shop.yaml").write_text(SHOP)
    env = {
        "RESTSYNC_CONNECTORS_DIR": str(folder),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
        "RESTSYNC_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": postgres_server.dsn(postgres_database),
        **tenant_variables(api, "shop", TENANTS, "generic"),
    }
    url = start_dagster_dev(env, dagster_yaml=DAGSTER_YAML)
    home = str(Settings.from_env().dagster_home)
    with dg.DagsterInstance.from_config(home) as instance:
        assert apply_pool_limits(instance, load_connectors([folder])) == {"restsync_shop": 8}
    backfill_id = launch_backfill(url, ["shop", "items"], list(TENANTS))

    records = wait_for_backfill(home, backfill_id, len(TENANTS))
    outcome = {r.dagster_run.tags["dagster/partition"]: r.dagster_run.status for r in records}
    assert outcome == dict.fromkeys(TENANTS, dg.DagsterRunStatus.SUCCESS), outcome

    report = assert_tenant_budgets_kept(api, LIMIT)
    in_flight = most_in_flight(records)
    busiest = busiest_second(sorted(r.at for r in api.requests("/t/")))
    requesting = tenants_requesting_at_once(api)
    print(
        f"\n{report}; tenant runs at once: {in_flight} of {len(TENANTS)}, requesting at once: "
        f"{requesting}; most requests of all tenants in one second: {busiest}"
    )
    assert requesting >= 2, "the tenants' requests overlap"
    # More than one key's budget spent in one second: each tenant spends its own, not a share.
    assert busiest > LIMIT
    rows = postgres_server.execute(
        "SELECT tenant, id, count(*) FROM shop.items GROUP BY 1, 2 ORDER BY 1, 2",
        postgres_database,
    )
    expected = sorted(
        (tenant, r["id"], 1)
        for tenant in TENANTS
        for r in api.expected_rows("generic", "items", tenant=tenant)
    )
    assert rows == expected, "every tenant's rows exactly once, tagged with its tenant"
    assert len(rows) == 8 * 160


def busiest_second(times: list[float]) -> int:
    """The most of ``times`` (sorted) within any one second."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most
