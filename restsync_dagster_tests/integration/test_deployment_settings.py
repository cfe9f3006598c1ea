"""Settings restsync applies to any instance it runs against, not only the demo's: each
connector's pool exists, with its file's limit, before the first run claims it."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions

SHOP = """
name: shop
partitions: {daily: {start: 2026-01-01}, max_concurrent: 4}
source:
  client: {base_url: "https://shop.example.com"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: orders
      endpoint:
        path: /v1/orders
        data_selector: data
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


@pytest.mark.postgres
def test_the_retry_sensors_tick_creates_every_pool_with_its_limit_before_any_claim(
    production_instance, restsync_home, postgres_server, postgres_database, tmp_path, monkeypatch
):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "shop.yaml").write_text(SHOP)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "true")
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(postgres_database))
    storage = production_instance.event_log_storage
    assert storage.get_concurrency_keys() == set(), "a fresh instance has no pool"

    definitions = load_definitions()
    (sensor,) = definitions.sensors
    sensor(dg.build_sensor_context(instance=production_instance))

    pools = {
        f"restsync_{name}"
        for name in ("shop", "generic", "ecommerce", "analytics", "communications", "database")
    }
    assert storage.get_concurrency_keys() == pools
    limits = {pool: storage.get_concurrency_info(pool).slot_count for pool in pools}
    assert limits == {pool: 4 if pool == "restsync_shop" else 1 for pool in pools}


@pytest.mark.postgres
def test_restsync_sync_works_with_a_read_only_dagster_home(
    unshare_allowed, demo_env, production_dagster_home, restsync_home
):
    """``DAGSTER_HOME`` mounted read-only (a ConfigMap, ``readOnlyRootFilesystem``), storage in
    PostgreSQL: a mount namespace of the sync's own makes the home read-only, even for root."""
    import os
    import subprocess
    import sys

    from restsync_dagster_tests.helpers import REPO

    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "sh",
            "-c",
            'mount --bind "$DAGSTER_HOME" "$DAGSTER_HOME" && '
            'mount -o remount,ro,bind "$DAGSTER_HOME" && exec "$@"',
            "sh",
            sys.executable,
            "-m",
            "restsync_dagster.cli",
            "sync",
            "generic",
        ],
        env={**os.environ, "DAGSTER_HOME": str(production_dagster_home)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Read-only file system" not in done.stdout + done.stderr
    assert sorted(os.listdir(production_dagster_home)) == ["dagster.yaml"]


def test_a_database_error_is_told_by_its_cause_never_by_a_bare_link(tmp_path):
    """A real SQLAlchemy error (a unique key raced, as Dagster's pool creation does), as a run's
    failure carries it: its last line is only "(Background on this error at: ...)"."""
    import sys

    import sqlalchemy as sa
    from dagster._utils.error import serializable_error_info_from_exc_info

    from restsync_dagster.cli.sync import last_meaningful_line

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE pools (key TEXT UNIQUE)"))
        connection.execute(sa.text("INSERT INTO pools VALUES ('restsync_shop')"))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO pools VALUES ('restsync_shop')"))
    except sa.exc.IntegrityError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    assert error.message.strip().splitlines()[-1].startswith("(Background on this error at: ")

    assert last_meaningful_line(error.message, error.cls_name) == (
        "sqlalchemy.exc.IntegrityError: (sqlite3.IntegrityError) UNIQUE constraint failed: pools.key"
    )


@pytest.mark.parametrize(("value", "tag"), [(None, "43200"), ("3600", "3600"), ("0", None)])
def test_every_sync_job_carries_the_maximum_runtime_run_monitoring_enforces(
    restsync_home, monkeypatch, value, tag
):
    if value is not None:
        monkeypatch.setenv("RESTSYNC_MAX_RUNTIME_SECONDS", value)
    jobs = [j for j in load_definitions().resolve_all_job_defs() if j.name.endswith("_sync")]
    assert jobs
    assert {j.tags.get("dagster/max_runtime") for j in jobs} == {tag}
