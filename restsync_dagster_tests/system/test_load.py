"""Load: 50 generated connectors of 3 resources each, all materialized in one Dagster instance
through the queued run coordinator of ``dagster dev``. Every run succeeds, with no state clash."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import warehouse

CONNECTORS = 50
CONNECTOR = """
name: load_{n:02d}
source:
  client:
    base_url: "{{{{ env.LOAD_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.LOAD_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: customers
      endpoint: {{path: /generic/v1/customers, data_selector: data, paginator: {{type: offset, limit: 100}}}}
    - name: items
      endpoint: {{path: /generic/v1/items, data_selector: data, paginator: {{type: offset, limit: 100}}}}
    - name: events
      endpoint: {{path: /analytics/v1/events, data_selector: data, paginator: {{type: offset, limit: 100}}}}
"""
DAGSTER_YAML = """
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


@pytest.mark.slow
def test_fifty_connectors_sync_side_by_side_in_one_instance(
    start_dagster_dev, start_demo_api, restsync_home, tmp_path
):
    api = start_demo_api(api_keys={"*": "load-key"})
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    for n in range(CONNECTORS):
        (connectors / f"load_{n:02d}.yaml").write_text(CONNECTOR.format(n=n))
    url = start_dagster_dev(
        {
            "RESTSYNC_CONNECTORS_DIR": str(connectors),
            "RESTSYNC_INCLUDE_EXAMPLES": "false",
            "LOAD_BASE_URL": api.url(),
            "LOAD_API_KEY": "load-key",
        },
        dagster_yaml=DAGSTER_YAML,
    )
    host, port = url.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port))
    started = time.monotonic()
    run_ids = [
        client.submit_job_execution(
            f"load_{n:02d}_sync",
            repository_location_name="restsync",
            repository_name="__repository__",
        )
        for n in range(CONNECTORS)
    ]
    dagster_home = str(Settings.from_env().dagster_home)
    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        with dg.DagsterInstance.from_config(dagster_home) as instance:
            statuses = [instance.get_run_by_id(r).status for r in run_ids]  # type: ignore[union-attr]
        if all(s in done for s in statuses):
            break
        time.sleep(3)
    elapsed = time.monotonic() - started
    print(f"\n{CONNECTORS} connectors x 3 resources: {elapsed:.0f}s through the queue")
    assert statuses == [dg.DagsterRunStatus.SUCCESS] * CONNECTORS
    with warehouse(restsync_home) as con:
        for n in range(CONNECTORS):
            counts = con.execute(
                f"select (select count(*) from load_{n:02d}.customers), "
                f"(select count(*) from load_{n:02d}.items), (select count(*) from load_{n:02d}.events)"
            ).fetchall()
            assert counts == [(250, 420, 640)], n
