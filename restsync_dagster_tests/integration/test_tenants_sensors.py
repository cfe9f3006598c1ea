"""Tenants through the retry sensor, the new-tenants sensor, schedules and ``restsync sync``, on a
real DagsterInstance with runs that really ran against the demo API's tenant routes."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster import names
from restsync_dagster.cli import main
from restsync_dagster.definitions import load_definitions
from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import assert_tenant_rows_exact
from restsync_dagster_tests.retry_flow import tick, wait_until_due

TENANTS = ("acme", "globex", "initech")

SHOP = """
name: shop
tenants: {tenants}
{schedule}
source:
  client:
    base_url: "{{{{ tenant.BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ tenant.API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {{type: offset, limit: 100}}}}
retry:
  max_retries: 1
  backoff_factor: 0.01
  run_retries: 2
  run_base_delay_seconds: 0.3
"""


@pytest.fixture
def tenants_api(start_demo_api) -> DemoApi:
    return start_demo_api(tenants=TENANTS)


def write_shop(folder: Path, api: DemoApi, monkeypatch, tenants: str, schedule: str = "") -> None:
    """``shop`` with ``tenants``, the only connector loaded, every tenant's variables set."""
    folder.mkdir(exist_ok=True)
    (folder / "shop.yaml").write_text(SHOP.format(tenants=tenants, schedule=schedule))
    for tenant in TENANTS:
        monkeypatch.setenv(f"SHOP_{tenant.upper()}_BASE_URL", api.tenant_url(tenant, "generic"))
        monkeypatch.setenv(f"SHOP_{tenant.upper()}_API_KEY", api.tenant_key(tenant))
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(folder))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")


def run_tenant(instance: dg.DagsterInstance, tenant: str) -> dg.ExecuteInProcessResult:
    return (
        load_definitions()
        .resolve_job_def("shop_sync")
        .execute_in_process(instance=instance, raise_on_error=False, partition_key=tenant)
    )


def test_two_tenants_failing_together_are_retried_each_for_its_own_partition(
    tenants_api, instance, restsync_home, tmp_path, monkeypatch
):
    write_shop(tmp_path / "connectors", tenants_api, monkeypatch, "{keys: [acme, globex, initech]}")
    for tenant in ("acme", "initech"):
        tenants_api.tenant_outage(tenant, 60)
    failed = {t: run_tenant(instance, t) for t in TENANTS}
    assert [failed[t].success for t in TENANTS] == [False, True, False]

    wait_until_due()
    requests = tick(instance).run_requests
    # One retry per failed tenant in the same tick: a pending retry of acme does not hold
    # up initech's (before tenants: one retry per connector per tick).
    assert sorted((r.partition_key, r.tags["restsync/retry_of"]) for r in requests) == [
        ("acme", failed["acme"].run_id),
        ("initech", failed["initech"].run_id),
    ]
    assert all("503" in r.tags["restsync/retry_reason"] for r in requests)

    tenants_api.tenant_outage("acme", 0)
    tenants_api.tenant_outage("initech", 0)
    globex_requests = tenants_api.tenant_records()["globex"]["requests"]
    for request in requests:
        assert launch_partition(instance, request).success
    assert tenants_api.tenant_records()["globex"]["requests"] == globex_requests
    assert tick(instance).run_requests == []
    assert_tenant_rows_exact(restsync_home, tenants_api, "shop.items", "generic", "items", TENANTS)


def launch_partition(instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """A retry request executed as the daemon would: same job, selection, partition and tags."""
    return (
        load_definitions()
        .resolve_job_def(request.job_name)
        .execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=request.asset_selection,
            partition_key=request.partition_key,
            tags=request.tags,
        )
    )


def test_a_revoked_tenant_is_not_retried_and_a_removed_one_is_not_retried(
    tenants_api, instance, tmp_path, monkeypatch
):
    write_shop(tmp_path / "connectors", tenants_api, monkeypatch, "{dynamic: true}")
    instance.add_dynamic_partitions(names.tenants_partitions_name("shop"), ["acme", "globex"])
    tenants_api.revoke_tenant("acme")
    tenants_api.tenant_outage("globex", 60)
    revoked, down = run_tenant(instance, "acme"), run_tenant(instance, "globex")
    assert not revoked.success and not down.success
    instance.delete_dynamic_partition(names.tenants_partitions_name("shop"), "globex")

    wait_until_due()
    assert tick(instance).run_requests == []
    acme = instance.get_run_by_id(revoked.run_id).tags
    assert acme["restsync/retry/shop"] == "not_retried"
    assert acme["restsync/retry_reason/shop"] == "permanent failure: 401"
    globex = instance.get_run_by_id(down.run_id).tags
    assert globex["restsync/retry/shop"] == "not_retried"
    assert "tenant 'globex' was removed" in globex["restsync/retry_reason/shop"]


def new_tenants_tick(instance: dg.DagsterInstance) -> dg.SensorResult:
    definitions = load_definitions()
    sensor = definitions.get_sensor_def(names.NEW_TENANTS_SENSOR)
    # With its ref, as the daemon's context has: Dagster checks a dynamic key through it.
    with dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), definitions=definitions
    ) as context:
        return sensor.evaluate_tick(context)


def test_the_new_tenants_sensor_requests_only_tenants_never_synced(
    tenants_api, instance, restsync_home, tmp_path, monkeypatch
):
    write_shop(tmp_path / "connectors", tenants_api, monkeypatch, "{dynamic: true}")
    partitions = names.tenants_partitions_name("shop")
    assert new_tenants_tick(instance).run_requests == []  # no tenant yet

    instance.add_dynamic_partitions(partitions, ["acme"])
    (request,) = new_tenants_tick(instance).run_requests
    assert (request.partition_key, request.run_key) == ("acme", "restsync-new-tenant:shop:acme")
    assert request.tags[names.TAG_TENANT] == "acme"
    assert launch_partition(instance, request).success

    instance.add_dynamic_partitions(partitions, ["globex"])
    (request,) = new_tenants_tick(instance).run_requests
    assert request.partition_key == "globex"
    acme_requests = tenants_api.tenant_records()["acme"]["requests"]
    assert launch_partition(instance, request).success
    assert new_tenants_tick(instance).run_requests == []
    assert tenants_api.tenant_records()["acme"]["requests"] == acme_requests
    assert_tenant_rows_exact(
        restsync_home, tenants_api, "shop.items", "generic", "items", ["acme", "globex"]
    )


@pytest.mark.parametrize("tenants", ["{keys: [acme, globex, initech]}", "{dynamic: true}"])
def test_a_schedule_launches_one_run_per_tenant_and_none_for_a_removed_one(
    tenants_api, instance, tmp_path, monkeypatch, tenants
):
    write_shop(
        tmp_path / "connectors", tenants_api, monkeypatch, tenants, schedule='schedule: "0 6 * * *"'
    )
    if "dynamic" in tenants:
        partitions = names.tenants_partitions_name("shop")
        instance.add_dynamic_partitions(partitions, list(TENANTS))
        instance.delete_dynamic_partition(partitions, "globex")
    definitions = load_definitions()
    schedule = definitions.get_schedule_def(names.schedule_name("shop"))
    with dg.build_schedule_context(
        instance=instance, repository_def=definitions.get_repository_def()
    ) as context:
        result = schedule.evaluate_tick(context)
    wanted = ["acme", "initech"] if "dynamic" in tenants else list(TENANTS)
    assert sorted(r.partition_key for r in result.run_requests or []) == wanted


def test_restsync_sync_runs_each_tenant_and_a_revoked_one_fails_alone(
    tenants_api, instance, restsync_home, tmp_path, monkeypatch, capsys
):
    write_shop(tmp_path / "connectors", tenants_api, monkeypatch, "{keys: [acme, globex, initech]}")
    tenants_api.revoke_tenant("globex")
    assert main(["sync", "shop", "--json", "-q"]) == 1
    outcomes = json.loads(capsys.readouterr().out)
    assert {o["tenant"]: o["status"] for o in outcomes} == {
        "acme": "ok",
        "globex": "failed",
        "initech": "ok",
    }
    assert "401" in next(o["error"] for o in outcomes if o["tenant"] == "globex")
    assert_tenant_rows_exact(
        restsync_home, tenants_api, "shop.items", "generic", "items", ["acme", "initech"]
    )

    assert main(["sync", "shop", "--tenant", "globx"]) == 2
    assert "did you mean 'globex'" in capsys.readouterr().err
    tenants_api.revoke_tenant("globex", revoked=False)
    assert main(["sync", "shop", "--tenant", "globex", "-q"]) == 0
    assert "shop/items [globex]" in capsys.readouterr().out


def test_validate_names_each_tenants_unset_variables_and_list_shows_the_tenants(
    tenants_api, restsync_home, tmp_path, monkeypatch, capsys
):
    write_shop(tmp_path / "connectors", tenants_api, monkeypatch, "{keys: [acme, globex, initech]}")
    secret = tenants_api.tenant_key("acme")
    monkeypatch.delenv("SHOP_GLOBEX_API_KEY")
    monkeypatch.delenv("SHOP_INITECH_BASE_URL")
    capsys.readouterr()

    assert main(["validate", "shop"]) == 0
    out = capsys.readouterr().out
    assert "tenant acme: all set" in out
    assert "tenant globex: NOT SET: SHOP_GLOBEX_API_KEY" in out
    assert "tenant initech: NOT SET: SHOP_INITECH_BASE_URL" in out
    assert "2 required variable(s) not set here" in out
    assert main(["validate", "shop", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)["connectors"][0]["tenants"]
    assert {t["key"]: t["unset"] for t in described["tenants"]} == {
        "acme": [],
        "globex": ["SHOP_GLOBEX_API_KEY"],
        "initech": ["SHOP_INITECH_BASE_URL"],
    }
    assert described["variables"] == "SHOP_{TENANT}_"

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "tenants (static, 3): acme, globex, initech" in listed
    assert secret not in out + listed
