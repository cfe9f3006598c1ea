"""One connector file that cannot be used fails only its own connector: the code location loads
the others (which sync against the demo API), the bad file's assets say what is wrong and fail
when materialized, and ``restsync validate`` still fails on it, naming the path as given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import SHAPE_SECRET, step_failure, table_ids

GOOD = """
name: good
source:
  client:
    base_url: "{{ env.GOOD_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.GOOD_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint: {path: /generic/v1/items, data_selector: data, paginator: {type: offset, limit: 100}}
"""
BAD_CRON = """
name: shop
schedule: "0 25 * * *"
source:
  client: {base_url: "{{ env.SHOP_BASE_URL }}"}
  resources:
    - name: customers
      endpoint: {path: /v1/customers, data_selector: data}
    - name: orders
      endpoint: {path: /v1/orders, data_selector: data}
"""
PROBLEM = "schedule.cron: '0 25 * * *': the hour 25 is out of range 0-23"


@pytest.fixture
def api(start_demo_api) -> DemoApi:
    return start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"generic.items": 250})


@pytest.fixture
def connectors(restsync_home, tmp_path, monkeypatch, api) -> Path:
    directory = tmp_path / "conns"
    directory.mkdir()
    (directory / "good.yaml").write_text(GOOD)
    (directory / "shop.yaml").write_text(BAD_CRON)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(directory))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("GOOD_BASE_URL", api.url())
    monkeypatch.setenv("GOOD_API_KEY", SHAPE_SECRET)
    return directory


def test_a_bad_cron_in_one_file_leaves_the_other_connectors_loaded_and_syncing(
    connectors, instance, restsync_home, api
):
    definitions = load_definitions()
    keys = {k.to_user_string() for k in definitions.resolve_all_asset_keys()}
    assert keys == {"good/items", "shop/customers", "shop/orders"}
    result = definitions.resolve_job_def("good_sync").execute_in_process(instance=instance)
    assert result.success
    assert table_ids(restsync_home, "good.items") == sorted(
        r["id"] for r in api.expected_rows("generic", "items")
    )
    jobs = {job.name for job in definitions.resolve_all_job_defs()}
    assert "shop_sync" not in jobs
    assert not definitions.schedules, "shop's schedule is not built"


def test_the_bad_files_assets_say_what_is_wrong_and_fail_when_materialized(connectors, instance):
    definitions = load_definitions()
    shop = [s for s in definitions.resolve_all_asset_specs() if s.group_name == "shop"]
    line = f"{connectors / 'shop.yaml'}:3: {PROBLEM}"
    for spec in shop:
        assert "cannot be used, so this connector is not loaded" in (spec.description or "")
        assert line in (spec.description or ""), spec.description
        assert spec.metadata["restsync/problems"].value == line
        assert spec.tags["restsync/unusable_file"] == "true"
    result = dg.materialize(
        [a for a in definitions.assets or [] if isinstance(a, dg.AssetsDefinition)
         and dg.AssetKey(["shop", "orders"]) in a.keys],
        instance=instance, raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    message, metadata = step_failure(result)
    assert line in message
    assert metadata["restsync/kind"] == "invalid_config"
    assert metadata["restsync/transient"] is False


def test_restsync_validate_still_fails_naming_the_path_the_user_gave(connectors, tmp_path):
    env = {**os.environ, "RESTSYNC_CONNECTORS_DIR": "conns"}  # relative, from tmp_path
    validated = subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", "validate"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert validated.returncode == 1, validated.stdout
    assert f"  conns/shop.yaml:3: {PROBLEM}" in validated.stderr.splitlines(), validated.stderr
