"""A GraphQL smoke test with Dagster's own client: submit a connector's sync job to a running
``dagster dev``, poll it to success, and find the API's records in DuckDB."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster.cli.demo import demo_env
from restsync_dagster_tests.helpers import graphql_client, table_rows, wait_for_run


@pytest.mark.slow
def test_a_sync_job_submitted_over_graphql_succeeds_and_lands_the_apis_records(
    start_dagster_dev, start_demo_api, restsync_home
):
    api = start_demo_api()
    client = graphql_client(start_dagster_dev(demo_env(api.url())))

    run_id = client.submit_job_execution(
        "database_sync", repository_location_name="restsync", repository_name="__repository__"
    )

    assert wait_for_run(client, run_id) == dg.DagsterRunStatus.SUCCESS
    databases = api.expected_rows("database", "databases")
    assert [r["id"] for r in table_rows(restsync_home, "database.databases")] == sorted(
        r["id"] for r in databases
    )
    records = table_rows(restsync_home, "database.records", order_by="id")
    assert [(r["database_id"], r["id"]) for r in records] == sorted(
        (r["database_id"], r["id"]) for r in api.expected_rows("database", "records")
    )
