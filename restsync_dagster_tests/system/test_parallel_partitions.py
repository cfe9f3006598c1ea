"""Partition runs of one connector sync side by side on PostgreSQL, up to ``max_concurrent``:
an 8-day backfill under ``dagster dev`` (its daemon launching queued runs), read back from the
instance's run records and from the destination."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.connector import load_connectors
from restsync_dagster.orchestration.instance import apply_pool_limits
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    PostgresServer,
    launch_backfill,
    most_in_flight,
    wait_for_backfill,
)

pytestmark = pytest.mark.postgres

DAYS = [f"2026-01-0{d}" for d in range(1, 9)]

CONNECTOR = """
name: shop
partitions: {daily: {start: 2026-01-01}, max_concurrent: 4, backfill: {max_partitions_per_run: 1}}
source:
  client:
    base_url: "{{ env.SHOP_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.SHOP_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: orders
      endpoint:
        path: /v1/orders
        data_selector: data
        paginator: {type: offset, limit: 20}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""

#: A queue that launches runs while their pool has a free slot, counted per run.
DAGSTER_YAML = """
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config: {dequeue_interval_seconds: 1}
concurrency:
  pools: {default_limit: 1, granularity: run}
telemetry: {enabled: false}
"""


@pytest.mark.slow
def test_an_eight_day_backfill_runs_at_most_four_partitions_at_once_with_exact_rows(
    postgres_server: PostgresServer,
    postgres_database: str,
    start_dagster_dev,
    start_demo_api,
    restsync_home: Path,
    tmp_path: Path,
):
    # Slow pages, so that each run lasts long enough for the queue to overlap them.
    api = start_demo_api(latency_ms=50)
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "shop.yaml").write_text(CONNECTOR)
    env = {
        "RESTSYNC_CONNECTORS_DIR": str(connectors),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
        "RESTSYNC_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": postgres_server.dsn(postgres_database),
        "SHOP_BASE_URL": api.url("ecommerce"),
        "SHOP_API_KEY": "demo-ecommerce-key",
    }
    url = start_dagster_dev(env, dagster_yaml=DAGSTER_YAML)
    home = str(Settings.from_env().dagster_home)
    with dg.DagsterInstance.from_config(home) as instance:
        assert apply_pool_limits(instance, load_connectors([connectors])) == {"restsync_shop": 4}
    backfill_id = launch_backfill(url, ["shop", "orders"], DAYS)

    records = wait_for_backfill(home, backfill_id, len(DAYS))
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    # multi_run(max_partitions_per_run=1): one run per day, tagged as a range of one key.
    tags = [r.dagster_run.tags for r in records]
    assert sorted(t["dagster/asset_partition_range_start"] for t in tags) == DAYS
    assert all(
        t["dagster/asset_partition_range_end"] == t["dagster/asset_partition_range_start"]
        for t in tags
    )
    in_flight = most_in_flight(records)
    print(f"\nmost runs in flight at once: {in_flight} of {len(records)}")
    assert 2 <= in_flight <= 4

    rows = postgres_server.execute(
        "SELECT substr(updated_at::text, 1, 10), count(*), count(DISTINCT id) "
        "FROM shop.orders GROUP BY 1 ORDER BY 1",
        postgres_database,
    )
    expected = Counter(
        r["updated_at"][:10]
        for r in api.expected_rows(
            "ecommerce", "orders", since="2026-01-01T00:00:00Z", until="2026-01-09T00:00:00Z"
        )
    )
    assert {day: (n, n) for day, n in expected.items()} == {
        day: (n, unique) for day, n, unique in rows
    }
    # Each run had a pipeline of its own: its own state row, staging dataset and working dir.
    states = postgres_server.execute(
        "SELECT DISTINCT pipeline_name FROM shop._dlt_pipeline_state ORDER BY 1", postgres_database
    )
    assert [name for (name,) in states] == [f"restsync_shop__{d.replace('-', '_')}" for d in DAYS]
    staging = postgres_server.execute(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'shop_staging_%'",
        postgres_database,
    )
    assert staging == [(len(DAYS),)]
    pipelines = Settings.from_env().pipelines_dir
    assert not (pipelines / "restsync_shop").exists()
