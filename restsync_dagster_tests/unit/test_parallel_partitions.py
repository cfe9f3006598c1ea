"""Parallel partitions, without a run: the file's words, the refusal on DuckDB, the backfill
policy, the pipeline of each partition run, and the locks that keep runs of one day apart."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster import names
from restsync_dagster.connector import ConnectorFileError, parse_connector
from restsync_dagster.load.destination import check_parallel_partitions
from restsync_dagster.load.locks import (
    destination_identity,
    load_one_at_a_time,
    lock_store,
    pipeline_lock,
)
from restsync_dagster.orchestration.partitions import (
    build_backfill_policy,
    run_partition_keys,
    run_pipeline_name,
)
from restsync_dagster.settings import Settings

SHOP = """
name: shop
partitions: {{daily: {{start: 2026-01-01}}{extra}}}
source:
  client: {{base_url: "https://api.example.com"}}
  resources:
    - name: orders
      primary_key: id
      write_disposition: merge
      endpoint:
        path: /v1/orders
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


def shop(extra: str = ""):
    return parse_connector(SHOP.format(extra=extra), "shop.yaml", dry_build=False)


def settings_for(destination: str, monkeypatch: pytest.MonkeyPatch, home: Path) -> Settings:
    monkeypatch.setenv("RESTSYNC_HOME", str(home))
    monkeypatch.setenv("RESTSYNC_DESTINATION", destination)
    return Settings.from_env()


def test_max_concurrent_above_one_on_duckdb_is_refused_in_one_line_naming_it(monkeypatch, tmp_path):
    with pytest.raises(ConnectorFileError) as raised:
        check_parallel_partitions(
            [shop(", max_concurrent: 4")], settings_for("duckdb", monkeypatch, tmp_path)
        )
    (problem,) = raised.value.problems
    assert str(problem).startswith(
        "shop.yaml: partitions.max_concurrent: 4 partition runs at once cannot share "
        "RESTSYNC_DESTINATION='duckdb': the duckdb destination allows one writing process"
    )
    assert "\n" not in str(problem)


def test_max_concurrent_is_accepted_on_postgres_and_one_is_accepted_anywhere(monkeypatch, tmp_path):
    check_parallel_partitions(
        [shop(", max_concurrent: 4")], settings_for("postgres", monkeypatch, tmp_path)
    )
    check_parallel_partitions(
        [shop(", max_concurrent: 1")], settings_for("duckdb", monkeypatch, tmp_path)
    )


def test_a_destination_dlt_loads_one_job_at_a_time_is_refused_too(monkeypatch, tmp_path):
    with pytest.raises(ConnectorFileError, match="loader_parallelism_strategy"):
        check_parallel_partitions(
            [shop(", max_concurrent: 2")], settings_for("ducklake", monkeypatch, tmp_path)
        )


def test_the_backfill_key_chooses_dagsters_backfill_policy():
    assert build_backfill_policy(shop()) is None
    assert build_backfill_policy(shop(", backfill: single_run")) == dg.BackfillPolicy.single_run()
    assert build_backfill_policy(
        shop(", backfill: {max_partitions_per_run: 7}")
    ) == dg.BackfillPolicy.multi_run(7)


def test_a_bad_backfill_or_max_concurrent_is_a_validation_problem():
    with pytest.raises(ConnectorFileError, match=r"partitions\.max_concurrent"):
        shop(", max_concurrent: 0")
    with pytest.raises(ConnectorFileError, match=r"partitions\.backfill"):
        shop(", backfill: all_at_once")


def test_each_partition_run_side_by_side_has_a_pipeline_of_its_own():
    parallel, serial = shop(", max_concurrent: 4"), shop()
    one = {names.DAGSTER_PARTITION_TAG: "2026-01-02"}
    week = {names.DAGSTER_RANGE_START_TAG: "2026-01-02", names.DAGSTER_RANGE_END_TAG: "2026-01-08"}
    assert run_partition_keys(parallel, one) == ["2026-01-02"]
    assert len(run_partition_keys(parallel, week)) == 7
    assert run_pipeline_name(parallel, run_partition_keys(parallel, one)) == (
        "restsync_shop__2026_01_02"
    )
    assert run_pipeline_name(parallel, run_partition_keys(parallel, week)) == (
        "restsync_shop__2026_01_02__2026_01_08"
    )
    assert names.partition_staging_layout("restsync_shop__2026_01_02") == (
        "%s_staging_shop_2026_01_02"
    )
    # One at a time: the connector's own pipeline, as before.
    assert run_pipeline_name(serial, run_partition_keys(serial, one)) is None


def waits(settings: Settings, **lock) -> bool:
    """Whether taking ``pipeline_lock(**lock)`` in another thread has to wait."""
    waited = threading.Event()
    entered = threading.Event()

    def take() -> None:
        with pipeline_lock(settings, "shop", waited.set, **lock):
            entered.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    entered.wait(timeout=2) or waited.wait(timeout=2)
    return waited.is_set()


def test_runs_of_other_days_overlap_but_runs_sharing_a_day_or_the_connector_do_not(
    monkeypatch, tmp_path
):
    settings = settings_for("postgres", monkeypatch, tmp_path)
    with pipeline_lock(settings, "shop", partitions=["2026-01-02"]):
        assert not waits(settings, partitions=["2026-01-03"])
        assert waits(settings, partitions=["2026-01-01", "2026-01-02"])
        assert waits(settings)  # a run holding the connector's own pipeline
    with pipeline_lock(settings, "shop"):
        assert waits(settings, partitions=["2026-01-05"])


def test_a_partition_runs_dlt_load_step_waits_for_the_datasets_load_lock(monkeypatch, tmp_path):
    import dlt

    settings = settings_for("duckdb", monkeypatch, tmp_path)
    pipeline = dlt.pipeline(
        pipeline_name="restsync_shop__2026_01_02",
        pipelines_dir=str(settings.pipelines_dir),
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="shop",
    )
    waited, done = threading.Event(), threading.Event()
    load_one_at_a_time(pipeline, settings, "shop", waited.set)

    def sync() -> None:
        pipeline.run([{"id": 1}, {"id": 2}], table_name="orders")
        done.set()

    dataset_lock = names.load_lock_name(destination_identity(settings), "shop")
    with lock_store(settings).hold(dataset_lock):
        thread = threading.Thread(target=sync, daemon=True)
        thread.start()
        # pipeline.run (what dagster-dlt calls) reached the load step and waits for the lock.
        assert waited.wait(timeout=60)
        assert not done.is_set()
    thread.join(timeout=60)
    assert done.is_set()
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT count(*) FROM orders") == [(2,)]
