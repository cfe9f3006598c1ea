"""Scenario F of issue 22: the partition runs of a backfill, each in a pod of its own (launched
by the daemon through the pod launcher, ``restsync_dagster_tests/pods/``), share one API key's
rate budget: its slots are advisory locks in PostgreSQL, the only thing the pods share with the
demo API. The API, which counts requests per key and window, never answers 429, and no window is
asked for more than its limit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from restsync_dagster_tests.helpers import (
    assert_rate_budget_kept,
    partitions_requesting_at_once,
    rate_budget_report,
)
from restsync_dagster_tests.pods.deployment import Deployment, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DAYS = ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
#: The demo API's budget for the key: 8 requests per one-second window.
LIMIT = 8

SHOP = """
name: shop
partitions: {daily: {start: 2026-01-01}, max_concurrent: 4, backfill: {max_partitions_per_run: 1}}
rate_limit: {from_headers: true, max_concurrency: 2}
retry: {max_retries: 8, backoff_factor: 0.2}
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
        paginator: {type: offset, limit: 2}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


def test_four_partition_runs_in_pods_share_the_keys_budget_with_no_429(
    pod_deployment: Callable[..., Deployment],
):
    deployment = pod_deployment(
        SHOP, latency_ms=20, rate_limit=LIMIT, rate_window_seconds=1.0, rate_headers="ietf"
    )
    backfill_id = deployment.backfill(["shop", "orders"], DAYS)
    records = wait_for(
        "the backfill's runs",
        lambda: [r for r in [deployment.runs(**{"dagster/backfill": backfill_id})] if len(r) == 4],
    )[0]
    finished = deployment.wait_until_finished([r.dagster_run.run_id for r in records])
    outcome = {r.dagster_run.run_id[:8]: r.dagster_run.status.value for r in finished}
    assert set(outcome.values()) == {"SUCCESS"}, outcome

    api = deployment.api
    at_once = partitions_requesting_at_once(api, "/ecommerce/v1/orders", DAYS)
    print(f"\n{rate_budget_report(api.stats(), LIMIT)}; partition runs at once: {at_once}")
    assert at_once >= 2, "the pods' runs overlap"
    assert_rate_budget_kept(api, LIMIT)

    rows = deployment.sql(
        "SELECT substr(updated_at::text, 1, 10), count(*), count(DISTINCT id) "
        "FROM shop.orders GROUP BY 1 ORDER BY 1"
    )
    served = Counter(
        r["updated_at"][:10]
        for r in deployment.api.expected_rows(
            "ecommerce", "orders", since=f"{DAYS[0]}T00:00:00Z", until="2026-01-06T00:00:00Z"
        )
    )
    assert [tuple(r) for r in rows] == [(day, n, n) for day, n in sorted(served.items())]
