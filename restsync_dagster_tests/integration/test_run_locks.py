"""What the locks do to real runs: a run whose lock session ends stops before loading (transient),
connectors sharing a dataset load one at a time across processes, and DuckDB is refused under a
run launcher that moves runs off the machine."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import dagster as dg
import pytest

from restsync_dagster.load.locks import load_one_at_a_time
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import (
    in_pod,
    line_process,
    point_connectors_at,
    step_failure,
    sync_job,
)


@pytest.mark.postgres
def test_a_run_whose_lock_session_ends_before_its_load_fails_as_transient_and_loads_nothing(
    start_demo_api, restsync_home, postgres_server, postgres_database, monkeypatch
):
    api = start_demo_api(latency_ms=30)
    point_connectors_at(api, monkeypatch)
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    results: list[dg.ExecuteInProcessResult] = []
    with dg.instance_for_test() as instance:
        worker = threading.Thread(target=lambda: results.append(sync_job("ecommerce", instance)))
        worker.start()
        deadline = time.monotonic() + 120
        while len(api.requests("/ecommerce/")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # A database restart or a network cut, as the run's lock session sees it.
        (ended,) = postgres_server.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE 'restsync ecommerce run %'"
        )
        assert ended == (1,)
        worker.join(timeout=300)
    (result,) = results
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "lock_lost"
    assert metadata["restsync/transient"] is True
    assert "This looks transient" in message
    assert postgres_server.password not in message
    loaded = postgres_server.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ecommerce' "
        "AND table_name IN ('customers', 'products', 'orders')",
        postgres_database,
    )
    assert loaded == [(0,)], "nothing was loaded without the lock"


#: Connector ``a``'s load into dataset ``shared``, held open inside the load lock until stdin
#: closes (a long load, made deterministic).
SLOW_LOAD = r"""
import sys
import dlt
from restsync_dagster.settings import Settings
from restsync_dagster.load.destination import build_pipeline
from restsync_dagster.load.locks import load_one_at_a_time
settings = Settings.from_env()
pipeline = dlt.pipeline(pipeline_name="restsync_a", pipelines_dir=str(settings.pipelines_dir),
                        destination="postgres", dataset_name="shared")
original = pipeline.load
def slow_load(*args, **kwargs):
    print("loading", flush=True)
    sys.stdin.read()
    return original(*args, **kwargs)
pipeline.load = slow_load
load_one_at_a_time(pipeline, settings, "a")
pipeline.run([{"id": i} for i in range(5)], table_name="a_items")
print("done", flush=True)
"""


@pytest.mark.postgres
def test_connectors_sharing_a_dataset_load_one_at_a_time_across_processes(
    restsync_home, postgres_server, postgres_database, monkeypatch, tmp_path
):
    import dlt

    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    other = line_process(
        [sys.executable, "-c", SLOW_LOAD],
        {**os.environ, "RESTSYNC_HOME": str(tmp_path / "other_home")},
        stdin=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "loading"
        settings = Settings.from_env()
        pipeline = dlt.pipeline(
            pipeline_name="restsync_b",
            pipelines_dir=str(settings.pipelines_dir),
            destination="postgres",
            dataset_name="shared",
        )
        waited, done = threading.Event(), threading.Event()
        load_one_at_a_time(pipeline, settings, "b", waited.set)

        def load_b() -> None:
            pipeline.run([{"id": i} for i in range(7)], table_name="b_items")
            done.set()

        thread = threading.Thread(target=load_b, daemon=True)
        thread.start()
        assert waited.wait(timeout=120), "b's load did not wait for a's, which holds the dataset"
        assert not done.is_set()
        assert other.stdin is not None
        other.stdin.close()
        output = other.stdout.read()
        assert other.wait(timeout=120) == 0
        assert output.strip() == "done", output
        thread.join(timeout=120)
        assert done.is_set()
    finally:
        other.kill()
    for table, rows in (("a_items", 5), ("b_items", 7)):
        assert postgres_server.execute(
            f"SELECT count(*) FROM shared.{table}", postgres_database
        ) == [(rows,)]


def test_duckdb_is_refused_before_any_request_under_a_launcher_that_moves_runs(demo_env, tmp_path):
    # The test suite's launcher that runs each run in a pod of its own (never reached here).
    launcher = {
        "module": "restsync_dagster_tests.pods.launcher",
        "class": "PodRunLauncher",
        "config": {"root": str(tmp_path / "pods")},
    }
    with dg.instance_for_test(overrides={"run_launcher": launcher}) as instance:
        result = sync_job("generic", instance)
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "destination_config"
    assert metadata["restsync/transient"] is False
    assert (
        "RESTSYNC_DESTINATION='duckdb' is a file on the run's own machine, and this instance's "
        "run launcher (PodRunLauncher) starts runs elsewhere"
    ) in message
    assert "load into PostgreSQL (RESTSYNC_DESTINATION=postgres)" in message
    assert demo_env.requests("/generic/") == []


def _race_create_schema(postgres_server, database: str, load) -> Any:
    """Run ``load`` while another session (outside restsync's locks) creates its schema in a
    transaction, committed once ``load``'s own ``CREATE SCHEMA`` waits on it: dlt then finds
    the schema it was creating already there. Returns what ``load`` returned or raised."""
    outsider = postgres_server.connect(database)
    outsider.autocommit = False
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(load())
        except Exception as exc:
            outcome.append(exc)

    try:
        with outsider.cursor() as cursor:
            cursor.execute("CREATE SCHEMA raced")
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = postgres_server.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE 'CREATE SCHEMA%'",
                database,
            )
            if waiting != [(0,)]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the load never waited on the other session's CREATE SCHEMA")
        outsider.commit()
        thread.join(timeout=300)
    finally:
        outsider.close()
    (result,) = outcome
    return result


def _raced_pipeline(settings: Settings, name: str) -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(settings.pipelines_dir),
        destination="postgres",
        dataset_name="raced",
    )


@pytest.mark.postgres
def test_a_create_schema_race_is_classified_transient(
    restsync_home, postgres_server, postgres_database, monkeypatch
):
    from restsync_dagster.failures.classify import classify

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    pipeline = _raced_pipeline(Settings.from_env(), "restsync_plain")
    raised = _race_create_schema(
        postgres_server, postgres_database, lambda: pipeline.run([{"id": 1}], table_name="items")
    )
    assert isinstance(raised, Exception), "dlt did not fail on the race"
    failure = classify(raised, connector="plain", retry_statuses=())
    assert (failure.kind, failure.transient) == ("schema_update", True), failure.message()
    assert "Another load changed the destination's schema" in failure.message()


@pytest.mark.postgres
def test_a_create_schema_race_with_a_writer_outside_the_locks_is_retried_and_lands(
    restsync_home, postgres_server, postgres_database, monkeypatch
):
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    settings = Settings.from_env()
    pipeline = _raced_pipeline(settings, "restsync_shop")
    load_one_at_a_time(pipeline, settings, "shop")
    outcome = _race_create_schema(
        postgres_server,
        postgres_database,
        lambda: pipeline.run([{"id": i} for i in range(3)], table_name="items"),
    )
    assert not isinstance(outcome, Exception), outcome
    assert postgres_server.execute("SELECT count(*) FROM raced.items", postgres_database) == [(3,)]


@pytest.mark.postgres
def test_a_lock_timeout_and_a_duplicate_dlt_id_from_postgresql_are_transient(
    postgres_server, postgres_database
):
    """Real errors of the server, wrapped as dlt wraps a failed load job."""
    import psycopg2
    from dlt.destinations.exceptions import DatabaseTransientException
    from dlt.load.exceptions import LoadClientJobFailed

    from restsync_dagster.failures.classify import classify

    postgres_server.execute(
        "CREATE TABLE items (id int, _dlt_id text UNIQUE); INSERT INTO items VALUES (1, 'row-one')",
        postgres_database,
    )
    holder, waiter = (
        postgres_server.connect(postgres_database),
        postgres_server.connect(postgres_database),
    )
    try:
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        with waiter.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg2.Error) as timed_out:
                cursor.execute("INSERT INTO items VALUES (2, 'row-two')")
        holder.rollback()
        with waiter.cursor() as cursor, pytest.raises(psycopg2.Error) as duplicate:
            cursor.execute("INSERT INTO items VALUES (1, 'row-one')")
    finally:
        holder.close()
        waiter.close()
    for error, kind in ((timed_out.value, "lock_wait"), (duplicate.value, "concurrent_write")):
        wrapped = DatabaseTransientException(error)
        job = LoadClientJobFailed("1", "items.1.insert_values", str(error), wrapped)
        for raised in (wrapped, job):
            failure = classify(raised, connector="shop", retry_statuses=())
            assert (failure.kind, failure.transient) == (kind, True), failure.message()


@pytest.mark.postgres
def test_two_syncs_of_one_connector_in_two_pods_take_turns_and_load_exactly(
    unshare_allowed,
    start_demo_api,
    restsync_home,
    production_dagster_home,
    postgres_server,
    postgres_database,
    monkeypatch,
):
    """Two ``restsync sync ecommerce`` at once, each in its own pod (own filesystem over
    ``RESTSYNC_HOME``, own host name and pids), sharing only PostgreSQL (instance and
    warehouse) and the API: both succeed, one waits for the other, and the tables hold exactly
    the API's records. Pools counted per run (the setting for parallel partitions) do not count
    runs outside the queue, so only restsync's lock keeps the two apart."""
    config = production_dagster_home / "dagster.yaml"
    config.write_text(config.read_text().replace("granularity: op", "granularity: run"))
    api = start_demo_api(latency_ms=20)
    point_connectors_at(api, monkeypatch)
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    env = {**os.environ, "DAGSTER_HOME": str(production_dagster_home)}
    restsync_home.mkdir(parents=True, exist_ok=True)
    pods = [
        line_process(
            in_pod(name, [sys.executable, "-m", "restsync_dagster.cli", "sync", "ecommerce", "-q"]),
            env,
        )
        for name in ("pod-a", "pod-b")
    ]
    outputs = [pod.communicate(timeout=600)[0] for pod in pods]
    assert [pod.returncode for pod in pods] == [0, 0], outputs

    with dg.DagsterInstance.from_config(str(production_dagster_home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"restsync/connector": "ecommerce"}))
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        logs = ["\n".join(str(e.message) for e in instance.all_logs(r.run_id)) for r in runs]
    waited = [log for log in logs if "another run of this connector is syncing; waiting" in log]
    assert waited, "neither waited for the other's pipeline lock"
    for collection in ("customers", "products", "orders"):
        rows = postgres_server.execute(
            f"SELECT id, count(*) FROM ecommerce.{collection} GROUP BY id ORDER BY id",
            postgres_database,
        )
        expected = sorted(r["id"] for r in api.expected_rows("ecommerce", collection))
        assert [i for i, _ in rows] == expected, collection
        assert {n for _, n in rows} == {1}, f"duplicate ids in {collection}"


def test_dagsters_own_local_launchers_are_known_by_their_class(tmp_path):
    """Fails when Dagster moves or renames the launchers launchers.py names (dagster 1.13)."""
    from restsync_dagster.orchestration.launchers import LOCAL_LAUNCHERS, run_launcher_class

    with dg.instance_for_test() as from_a_home:
        assert run_launcher_class(from_a_home) in LOCAL_LAUNCHERS
        type(from_a_home.run_launcher)  # built: now read from the instance itself
        assert run_launcher_class(from_a_home) in LOCAL_LAUNCHERS
    assert run_launcher_class(dg.DagsterInstance.ephemeral()) in LOCAL_LAUNCHERS
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "run_launcher: {module: dagster._core.launcher, class: DefaultRunLauncher}\n"
    )
    with dg.DagsterInstance.from_config(str(home)) as configured:
        assert run_launcher_class(configured) in LOCAL_LAUNCHERS
