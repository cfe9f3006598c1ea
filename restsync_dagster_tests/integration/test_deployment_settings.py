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
