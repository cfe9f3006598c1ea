"""What the locks do to real runs: a run whose lock session ends stops before loading (transient),
connectors sharing a dataset load one at a time across processes, and DuckDB is refused under a
run launcher that moves runs off the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import dagster as dg
import pytest
from dagster._core.launcher import RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from restsync_dagster.load.locks import load_one_at_a_time
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import REPO, point_connectors_at, step_failure, sync_job


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
    other = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOAD],
        env={**os.environ, "RESTSYNC_HOME": str(tmp_path / "other_home")},
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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


class AwayRunLauncher(RunLauncher, ConfigurableClass):
    """A run launcher that would start runs on another machine (as the Kubernetes, Docker and
    ECS launchers do); these tests never launch through it."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]
    ) -> AwayRunLauncher:
        return cls(inst_data=inst_data)

    def launch_run(self, context: Any) -> None:
        raise NotImplementedError

    def terminate(self, run_id: str) -> bool:
        raise NotImplementedError


def test_duckdb_is_refused_before_any_request_under_a_launcher_that_moves_runs(demo_env, tmp_path):
    launcher = {"module": __name__, "class": "AwayRunLauncher"}
    with dg.instance_for_test(overrides={"run_launcher": launcher}) as instance:
        result = sync_job("generic", instance)
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/kind"] == "destination_config"
    assert metadata["restsync/transient"] is False
    assert (
        "RESTSYNC_DESTINATION='duckdb' is a file on the run's own machine, and this instance's "
        "run launcher (AwayRunLauncher) starts runs elsewhere"
    ) in message
    assert "load into PostgreSQL (RESTSYNC_DESTINATION=postgres)" in message
    assert demo_env.requests("/generic/") == []
