"""Every guarantee holds when runs don't share a machine: each run in a pod of its own (mount,
UTS and PID namespaces, private tmpfs over its local directories), launched by a real
``dagster-daemon`` through a run launcher that does what ``K8sRunLauncher``'s Job does, and
``restsync`` commands in pods of their own; only PostgreSQL (Dagster's storage and the
warehouse) and the demo API are shared, over 127.0.0.1 (``restsync_dagster_tests/pods/``).

Where two runs race, the test makes the interleaving deterministic: a session of its own holds
``LOCK TABLE`` on a final table, so the first load waits inside its merge while the other run
either waits for its turn (restsync's lock) or reaches the tables too. ``pg_locks`` tells which:
every pod's sessions carry the pod's name.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

import dagster as dg
import pytest

from restsync_dagster import names
from restsync_dagster_tests.helpers import most_in_flight
from restsync_dagster_tests.pods.deployment import Deployment, wait_for
from restsync_dagster_tests.pods.launcher import run_pod_name
from restsync_dagster_tests.pods.namespaces import kill_pods
from restsync_dagster_tests.soak.connectors import Table
from restsync_dagster_tests.soak.verify import compare_table, cursors_behind_data

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_SOURCE = """
source:
  client:
    base_url: "{{ env.SHOP_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.SHOP_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
"""
_ORDERS = """
    - name: orders
      endpoint:
        path: /v1/orders
        data_selector: data
        paginator: {type: offset, limit: 50}
        incremental:
          start_param: updated_since
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""
#: Customers re-read whole and merged (every sync merges into ``shop.customers``), orders
#: incremental on ``updated_at``.
SHOP = (
    "name: shop\n"
    + _SOURCE
    + "    - name: customers\n"
    + "      endpoint: {path: /v1/customers, data_selector: data, paginator: {type: offset, limit: 50}}\n"
    + _ORDERS
)
TABLES = (
    Table("shop", "customers", "ecommerce.customers"),
    Table("shop", "orders", "ecommerce.orders", incremental=True),
)


def daily_shop(max_concurrent: int) -> str:
    """Orders partitioned by day, ``max_concurrent`` days at once, one day per backfill run."""
    return (
        "name: shop\n"
        f"partitions: {{daily: {{start: 2026-01-01}}, max_concurrent: {max_concurrent}, "
        "backfill: {max_partitions_per_run: 1}}\n"
        + _SOURCE
        + _ORDERS.replace("cursor_path:", "end_param: updated_until\n          cursor_path:")
    )


# ------------------------------------------------------------------------------------------------
# What the scenarios read back


def assert_warehouse_equals_api(deployment: Deployment) -> None:
    """Every table holds exactly what the API serves (each id once, current values, nothing
    else), and the stored cursor claims no record the table does not hold."""
    found = cursors_behind_data(deployment, TABLES)
    for table in TABLES:
        found += compare_table(deployment, table)
        served = len(deployment.api.expected_rows(*table.collection.split(".")))
        ((stored,),) = deployment.sql(f"SELECT count(*) FROM {table.connector}.{table.resource}")
        if stored != served:
            found.append(f"{table.resource}: {stored} rows, the API serves {served}")  # type: ignore[arg-type]
    assert not found, "\n".join(map(str, found[:20]))


def orders_per_day(deployment: Deployment, days: list[str]) -> tuple[dict, dict]:
    """(stored, served) orders per day of ``days``: {day: (rows, distinct ids)}."""
    rows = deployment.sql(
        "SELECT substr(updated_at::text, 1, 10), count(*), count(DISTINCT id) "
        "FROM shop.orders GROUP BY 1 ORDER BY 1"
    )
    end = f"{days[-1][:8]}{int(days[-1][8:]) + 1:02d}T00:00:00Z"
    served = Counter(
        r["updated_at"][:10]
        for r in deployment.api.expected_rows(
            "ecommerce", "orders", since=f"{days[0]}T00:00:00Z", until=end
        )
    )
    return {day: (n, unique) for day, n, unique in rows}, {d: (n, n) for d, n in served.items()}


def statuses(deployment: Deployment, run_ids: list[str]) -> dict[str, str]:
    """Each run's status, with its failure messages when it failed."""
    records = deployment.wait_until_finished(run_ids)
    return {
        r.dagster_run.run_id[:8]: r.dagster_run.status.value
        + "".join(f"\n  {m[:600]}" for m in deployment.failures(r.dagster_run.run_id))
        for r in records
    }


def loading(deployment: Deployment, pods: set[str]) -> set[str]:
    """The pods among ``pods`` with a session waiting on a table of the ``shop`` datasets (the
    held final table, or a staging table another load holds): they are inside their load."""
    return {
        app
        for app, kind, relation in deployment.lock_waits()
        if kind == "relation" and relation.startswith("shop") and app in pods
    }


def waits_its_turn(deployment: Deployment, pod: str, run_id: str | None) -> bool:
    """Whether ``pod``'s run waits for restsync's lock: a session of it (or one naming its run)
    waits for an advisory lock, or its run logged that it waits for another run."""
    for app, kind, _ in deployment.lock_waits():
        if kind == "advisory" and (app == pod or (run_id and run_id[:8] in app)):
            return True
    return bool(run_id) and any("waiting" in m for m in deployment.messages(run_id or ""))


def sync_in_pod(deployment: Deployment, name: str, *args: str, timeout: float = 600) -> None:
    """``restsync sync ARGS`` in a pod of its own, to the end; fails the test if it fails."""
    process = deployment.restsync(name, "sync", *args)
    code = process.wait(timeout=timeout)
    assert code == 0, f"restsync sync {' '.join(args)} exited {code}:\n{deployment.log(name)}"


def race(
    deployment: Deployment, table: str, queue: Callable[[], str], cli_args: list[str]
) -> tuple[str, list[str]]:
    """A queued run (``queue()`` returns its id) and ``restsync sync CLI_ARGS`` in another pod,
    started together while ``table`` is held. Once one of them waits inside its load, wait until
    the other one either waits for its turn or reaches the tables too, then let go. Returns what
    was seen and the two run ids (once both ended)."""
    before = {r.dagster_run.run_id for r in deployment.cli_runs()}
    with deployment.hold(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"):
        queued = queue()
        cli = deployment.restsync("writer-cli", "sync", *cli_args)
        pods = {run_pod_name(queued), "writer-cli"}

        def cli_run() -> str | None:
            new = [r.dagster_run.run_id for r in deployment.cli_runs()]
            return next((r for r in new if r not in before), None)

        (first,) = wait_for(f"a load waiting for {table}", lambda: loading(deployment, pods))
        other = (pods - {first}).pop()
        other_run = queued if other != "writer-cli" else None

        def verdict() -> str | None:
            inside = loading(deployment, pods)
            if len(inside) == 2:
                waits = [w for w in deployment.lock_waits() if w[0] in pods]
                return f"both runs inside their loads at once: {first} and {other} wait {waits}"
            if waits_its_turn(deployment, other, other_run or cli_run()):
                return "serialized"
            return None

        seen = wait_for(f"{other} loading too, or waiting for its turn", verdict)
    cli.wait(timeout=600)
    cli_id = cli_run()
    assert cli_id is not None, deployment.log("writer-cli")
    return seen, [queued, cli_id]


# ------------------------------------------------------------------------------------------------
# The scenarios


def test_a_queued_sync_and_a_cli_sync_in_two_pods_take_turns_and_land_every_row_once(
    pod_deployment: Callable[..., Deployment],
):
    deployment = pod_deployment(SHOP, latency_ms=20)
    sync_in_pod(deployment, "seed", "shop")
    deployment.api.advance("ecommerce.orders", insert=120, update=40, hours=2)

    seen, run_ids = race(
        deployment, "shop.customers", lambda: deployment.submit("shop_sync"), ["shop"]
    )

    assert seen == "serialized"
    assert set(statuses(deployment, run_ids).values()) == {"SUCCESS"}, statuses(deployment, run_ids)
    assert_warehouse_equals_api(deployment)


DAY, OTHER_DAY = "2026-01-01", "2026-01-02"


def test_the_same_day_from_a_backfill_and_the_cli_in_two_pods_is_loaded_once_exactly(
    pod_deployment: Callable[..., Deployment],
):
    deployment = pod_deployment(daily_shop(max_concurrent=2), latency_ms=20)
    sync_in_pod(deployment, "seed", "shop", "--partition", OTHER_DAY)

    def backfill() -> str:
        backfill_id = deployment.backfill(["shop", "orders"], [DAY])
        (run,) = wait_for(
            "the backfill's run",
            lambda: deployment.runs(**{"dagster/backfill": backfill_id}),
        )
        return run.dagster_run.run_id

    seen, run_ids = race(deployment, "shop.orders", backfill, ["shop", "--partition", DAY])

    assert seen == "serialized"
    assert set(statuses(deployment, run_ids).values()) == {"SUCCESS"}, statuses(deployment, run_ids)
    stored, served = orders_per_day(deployment, [DAY, OTHER_DAY])
    assert stored == served, "rows per day: (rows, distinct ids)"


def test_an_eight_day_backfill_in_pods_into_a_fresh_dataset_succeeds_four_at_a_time(
    pod_deployment: Callable[..., Deployment],
):
    days = [f"2026-01-0{d}" for d in range(1, 9)]
    deployment = pod_deployment(daily_shop(max_concurrent=4), latency_ms=20)

    def backfill_runs() -> list[dg.RunRecord]:
        return deployment.runs(**{"dagster/backfill": backfill_id})

    # An uncommitted CREATE SCHEMA of the dataset: every load that creates it waits for it.
    with deployment.hold("CREATE SCHEMA shop"):
        backfill_id = deployment.backfill(["shop", "orders"], days)
        wait_for("a load creating the dataset", deployment.blocked_by_hold)

        def verdict() -> str | None:
            creating = deployment.blocked_by_hold()
            if len(creating) >= 2:
                return f"{len(creating)} loads creating the dataset at once: {sorted(creating)}"
            others = [
                r.dagster_run.run_id
                for r in backfill_runs()
                if run_pod_name(r.dagster_run.run_id) not in creating
                and r.dagster_run.status == dg.DagsterRunStatus.STARTED
            ]
            if any(waits_its_turn(deployment, run_pod_name(r), r) for r in others):
                return "serialized"
            return None

        seen = wait_for("another partition's load creating the dataset too, or waiting", verdict)
    records = wait_for(
        "the backfill's 8 runs", lambda: [r for r in [backfill_runs()] if len(r) == 8]
    )[0]
    outcome = statuses(deployment, [r.dagster_run.run_id for r in records])
    in_flight = most_in_flight(backfill_runs())
    print(f"\nmost runs in flight at once: {in_flight} of {len(days)}")

    assert seen == "serialized"
    assert set(outcome.values()) == {"SUCCESS"}, outcome
    assert 2 <= in_flight <= 4
    stored, served = orders_per_day(deployment, days)
    assert stored == served, "rows per day: (rows, distinct ids)"


def test_a_pod_killed_mid_load_frees_its_locks_in_seconds_and_the_next_sync_is_exact(
    pod_deployment: Callable[..., Deployment],
):
    deployment = pod_deployment(SHOP, latency_ms=20)
    sync_in_pod(deployment, "seed", "shop")
    deployment.api.advance("ecommerce.orders", insert=120, update=40, hours=2)

    with deployment.hold(HOLD_CUSTOMERS):
        run_id = deployment.submit("shop_sync")
        pod = run_pod_name(run_id)
        wait_for("the run's load waiting for shop.customers", lambda: loading(deployment, {pod}))
        held = deployment.advisory_locks(run_id)
        assert held, "the run holds no lock in PostgreSQL while it loads"
        kill_pods(pod)
        freed = wait_for(
            "the killed pod's locks freed",
            lambda: not deployment.advisory_locks(run_id),
            timeout=15,
        )
        assert freed
    sync_in_pod(deployment, "next", "shop")

    record = deployment.wait_until_finished([run_id], timeout=120)[0]
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert_warehouse_equals_api(deployment)


SHARED_HOSTNAME = "restsync-shared"
HOLD_CUSTOMERS = "LOCK TABLE shop.customers IN ACCESS EXCLUSIVE MODE"


def test_the_sweep_in_a_pod_with_the_same_hostname_never_fails_a_live_run(
    pod_deployment: Callable[..., Deployment],
):
    # Run pods share one hostname and number their processes from 4001, as a long-lived pod
    # does: the other pod, numbering from 1, has no such process.
    deployment = pod_deployment(SHOP, hostname=SHARED_HOSTNAME, first_pid=4000, latency_ms=20)
    sync_in_pod(deployment, "seed", "shop")
    deployment.api.advance("ecommerce.orders", insert=120, update=40, hours=2)

    with deployment.hold(HOLD_CUSTOMERS):
        live = deployment.submit("shop_sync")
        wait_for("the run's load waiting", lambda: loading(deployment, {run_pod_name(live)}))
        with deployment.instance() as instance:
            run = instance.get_run_by_id(live)
            worker = run.tags.get(names.TAG_WORKER) if run else None
        # The retry sensor's tick and a `restsync sync` both sweep for dead runs first.
        sensor = deployment.start(
            "sweeper",
            [sys.executable, "-m", "restsync_dagster_tests.soak.worker", "sensor"],
            hostname=SHARED_HOSTNAME,
        )
        sensor.wait(timeout=300)
        before = {r.dagster_run.run_id for r in deployment.cli_runs()}
        cli = deployment.restsync("cli-shared", "sync", "shop", hostname=SHARED_HOSTNAME)
        wait_for(
            "the CLI's run (created after its sweep)",
            lambda: {r.dagster_run.run_id for r in deployment.cli_runs()} - before,
        )
    cli.wait(timeout=600)
    (cli_run,) = {r.dagster_run.run_id for r in deployment.cli_runs()} - before

    with deployment.instance() as instance:
        failures = instance.all_logs(live, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert not failures, f"the live run ({worker}) was failed: {failures[0].message}"
    outcome = statuses(deployment, [live, cli_run])
    assert set(outcome.values()) == {"SUCCESS"}, outcome
    assert_warehouse_equals_api(deployment)


def test_duckdb_under_the_pod_launcher_is_refused_before_any_request(
    pod_deployment: Callable[..., Deployment],
):
    deployment = pod_deployment(SHOP, destination="duckdb")
    run_id = deployment.submit("shop_sync")
    (record,) = deployment.wait_until_finished([run_id])
    failures = deployment.failures(run_id)
    print("\n".join(failures))
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert any("duckdb" in m.lower() and "launcher" in m.lower() for m in failures), failures
    assert deployment.api.requests("/ecommerce") == []
