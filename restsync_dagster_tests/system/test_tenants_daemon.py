"""Tenants under ``dagster dev`` and its daemon, against the demo API's tenant routes: an outage
of one tenant heals by the retry sensor re-running that tenant alone, and a tenant added at run
time with ``restsync tenants add`` (no redeploy, the code server still up) is synced by the next
tick of the new-tenants sensor, the others not read again. Each prints its timeline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.connector import load_connectors
from restsync_dagster.demo_api import DemoApi
from restsync_dagster.orchestration.instance import apply_pool_limits
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    assert_tenant_rows_exact,
    graphql_client,
    tenant_runs,
    tenant_variables,
)

pytestmark = pytest.mark.slow

TENANTS = ("acme", "globex", "initech")
OUTAGE_SECONDS = 30


def connector(tenants: str) -> str:
    """A ``shop`` connector of the demo API's tenant routes; ``tenants`` is its tenants: value.
    Its HTTP retries give up within seconds, so an outage of 30 s is the retry sensor's."""
    return f"""
name: shop
tenants: {tenants}
retry: {{max_retries: 2, backoff_factor: 0.5, run_retries: 6}}
source:
  client:
    base_url: "{{{{ tenant.BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ tenant.API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {{type: offset, limit: 50}}}}
"""


def start(
    start_dagster_dev: Callable[..., str],
    api: DemoApi,
    tmp_path: Path,
    tenants: str,
) -> tuple[str, dict[str, str]]:
    """``dagster dev`` over the one ``shop`` connector, every tenant's variables set (a tenant's
    variables are the deployment's, as its secrets would be); its URL and environment."""
    folder = tmp_path / "connectors"
    folder.mkdir()
    (folder / "shop.yaml").write_text(connector(tenants))
    env = {
        "RESTSYNC_CONNECTORS_DIR": str(folder),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
        "RESTSYNC_RETRY_SENSOR_INTERVAL_SECONDS": "5",
        "RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS": "5",
        **tenant_variables(api, "shop", TENANTS, "generic"),
    }
    url = start_dagster_dev(env)
    # The pool's limit (tenants.max_concurrent) before any run claims it, as restsync sync does.
    with dg.DagsterInstance.from_config(str(Settings.from_env().dagster_home)) as instance:
        apply_pool_limits(instance, load_connectors([folder]))
    return url, env


def wait_for(
    home: str, done: Callable[[dict[str, list[dg.RunRecord]]], bool], seconds: float
) -> dict[str, list[dg.RunRecord]]:
    """Poll the runs by tenant until ``done`` says so; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    runs: dict[str, list[dg.RunRecord]] = {}
    while time.monotonic() < deadline:
        with dg.DagsterInstance.from_config(home) as instance:
            runs = tenant_runs(instance)
        if done(runs):
            return runs
        time.sleep(2)
    pytest.fail(f"not done within {seconds:.0f} s: {timeline(runs)}")


def succeeded(runs: dict[str, list[dg.RunRecord]], tenants: Sequence[str]) -> bool:
    return all(
        runs.get(t) and runs[t][-1].dagster_run.status == dg.DagsterRunStatus.SUCCESS
        for t in tenants
    )


def _started(records: list[dg.RunRecord]) -> bool:
    return bool(records) and records[0].dagster_run.status not in (
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
    )


def timeline(runs: dict[str, list[dg.RunRecord]]) -> str:
    lines = []
    for tenant, records in sorted(runs.items()):
        for r in records:
            tags = r.dagster_run.tags
            lines.append(
                f"{tenant:<8} run {r.dagster_run.run_id[:8]} {r.dagster_run.status.value:<8} "
                f"attempt {tags.get('restsync/attempt', '0')} "
                f"{tags.get('restsync/retry_reason', '')}"
            )
    return "\n" + "\n".join(lines)


@pytest.mark.slow
def test_one_tenants_outage_is_retried_for_that_tenant_alone_and_heals(
    start_dagster_dev, start_demo_api, restsync_home, tmp_path
):
    api: DemoApi = start_demo_api(tenants=TENANTS)
    url, _ = start(
        start_dagster_dev, api, tmp_path, f"{{keys: [{', '.join(TENANTS)}], max_concurrent: 3}}"
    )
    home = str(Settings.from_env().dagster_home)
    client = graphql_client(url)
    launched = {
        tenant: client.submit_job_execution(  # one run per tenant, as a backfill makes them
            "shop_sync",
            repository_location_name="restsync",
            repository_name="__repository__",
            tags={"dagster/partition": tenant},
        )
        for tenant in ("initech", "acme", "globex")
    }
    # The outage starts as initech's run starts (its process still loading the code), so that
    # it meets the run whatever the queue's and the machine's delays.
    wait_for(home, lambda runs: _started(runs.get("initech", [])), 120)
    api.tenant_outage("initech", OUTAGE_SECONDS)

    runs = wait_for(home, lambda runs: succeeded(runs, TENANTS), 420)
    print(timeline(runs))

    # acme and globex: one run each, never retried; initech: failed, then retried until healed.
    assert [len(runs["acme"]), len(runs["globex"])] == [1, 1]
    chain = runs["initech"]
    assert chain[0].dagster_run.run_id == launched["initech"]
    assert chain[0].dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert len(chain) >= 2
    root = chain[0].dagster_run.run_id
    for attempt, record in enumerate(chain[1:], start=1):
        tags = record.dagster_run.tags
        assert tags["restsync/retry_of"] == root and tags["restsync/attempt"] == str(attempt)
        assert tags["dagster/partition"] == "initech"
        assert "503" in tags["restsync/retry_reason"], tags["restsync/retry_reason"]
        assert tags["dagster/sensor_name"] == "retry_transient_failures"
    assert set(runs) == set(TENANTS), "no run of any other partition"

    # The healthy tenants were read by their one run, and never again.
    records = api.tenant_records()
    for tenant in ("acme", "globex"):
        ended = runs[tenant][0].end_time
        assert ended is not None and records[tenant]["last_at"] <= ended, tenant
        assert records[tenant]["statuses"].keys() == {"200"}, records[tenant]["statuses"]
    assert records["initech"]["statuses"].get("503", 0) > 0
    assert_tenant_rows_exact(restsync_home, api, "shop.items", "generic", "items", TENANTS)


def restsync(env: dict[str, str], *args: str) -> str:
    """``restsync ARGS`` in a process of its own, against the same DAGSTER_HOME as the daemon."""
    done = subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"restsync {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_tenant_added_at_run_time_is_synced_by_the_next_tick_without_reading_the_others(
    start_dagster_dev, start_demo_api, restsync_home, tmp_path
):
    api: DemoApi = start_demo_api(tenants=TENANTS)
    url, env = start(start_dagster_dev, api, tmp_path, "{dynamic: true}")
    home = str(Settings.from_env().dagster_home)
    env["DAGSTER_HOME"] = home
    loaded = _code_locations(url)

    restsync(env, "tenants", "add", "shop", "acme", "globex")
    first = wait_for(home, lambda runs: succeeded(runs, ["acme", "globex"]), 300)
    before = api.tenant_records()
    assert before["initech"]["requests"] == 0

    added_at = time.time()
    out = restsync(env, "tenants", "add", "shop", "initech")
    assert "added tenant 'initech'" in out
    runs = wait_for(home, lambda runs: succeeded(runs, TENANTS), 300)
    # Two more sensor ticks (5 s each): nothing else is requested.
    time.sleep(15)
    with dg.DagsterInstance.from_config(home) as instance:
        runs = tenant_runs(instance)
        assert instance.get_dynamic_partitions("shop_tenants") == ["acme", "globex", "initech"]
    print(timeline(runs))

    assert {t: len(r) for t, r in runs.items()} == {"acme": 1, "globex": 1, "initech": 1}
    assert [r.dagster_run.run_id for t in ("acme", "globex") for r in first[t]] == [
        r.dagster_run.run_id for t in ("acme", "globex") for r in runs[t]
    ]
    initech = runs["initech"][0]
    assert initech.dagster_run.tags["dagster/sensor_name"] == "sync_new_tenants"
    print(f"initech synced {initech.create_timestamp.timestamp() - added_at:.1f} s after its add")
    after = api.tenant_records()
    for tenant in ("acme", "globex"):
        assert after[tenant]["requests"] == before[tenant]["requests"], f"{tenant} re-read"
    assert_tenant_rows_exact(restsync_home, api, "shop.items", "generic", "items", TENANTS)
    assert _code_locations(url) == loaded, "the code location was reloaded"


_LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries { name updatedTimestamp loadStatus } } } }
"""


def _code_locations(url: str) -> dict[str, float]:
    """Each code location of the ``dagster dev`` at ``url`` -> when it was last (re)loaded."""
    answer = graphql_client(url)._execute(_LOCATIONS)
    entries = answer["workspaceOrError"]["locationEntries"]
    return {e["name"]: e["updatedTimestamp"] for e in entries if e["loadStatus"] == "LOADED"}
