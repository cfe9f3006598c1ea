"""The code location: what it contains, and that loading it reads no secret and makes no request."""

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.connector import ConnectorFileError
from restsync_dagster.definitions import load_definitions

EXPECTED_ASSETS = {
    "analytics/events", "analytics/sessions",
    "communications/contacts", "communications/messages",
    "database/databases", "database/records",
    "ecommerce/customers", "ecommerce/orders", "ecommerce/products",
    "generic/customers", "generic/items",
}  # fmt: skip
CONNECTORS = ("analytics", "communications", "database", "ecommerce", "generic")

USER_CONNECTOR = """
name: billing
description: Invoices from a billing API
source:
  client:
    base_url: https://billing.example.com
    auth: {type: bearer, token: "{{ env.BILLING_TOKEN }}"}
  resources:
    - name: invoices
      endpoint: {path: /v2/invoices, data_selector: items, paginator: {type: offset, limit: 50}}
"""


def test_definitions_load_with_no_environment_variable_set(restsync_home):
    definitions = load_definitions()
    keys = {key.to_user_string() for key in definitions.resolve_all_asset_keys()}
    assert keys == EXPECTED_ASSETS


def test_loading_makes_no_request_even_when_the_api_is_reachable(
    restsync_home, demo_api, monkeypatch
):
    for connector in CONNECTORS:
        monkeypatch.setenv(f"{connector.upper()}_BASE_URL", demo_api.url(connector))
    load_definitions().resolve_all_asset_specs()
    assert demo_api.requests() == []


def test_importing_the_module_reads_no_connector_file(restsync_home, tmp_path, monkeypatch):
    import importlib

    import restsync_dagster.definitions as module

    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(tmp_path / "does-not-exist"))
    importlib.reload(module)  # would raise if files were read at import
    with pytest.raises(ConnectorFileError, match="connector directory does not exist"):
        module.load_definitions()


def test_each_connector_has_a_group_a_job_a_schedule_and_an_env_resource(restsync_home):
    definitions = load_definitions()
    specs = {spec.key.to_user_string(): spec for spec in definitions.resolve_all_asset_specs()}
    assert {spec.group_name for spec in specs.values()} == set(CONNECTORS)
    job_names = {job.name for job in definitions.resolve_all_job_defs()}
    assert {f"{c}_sync" for c in CONNECTORS} <= job_names
    schedules = (
        {s.name: s for s in definitions.resolve_schedule_defs()}
        if hasattr(definitions, "resolve_schedule_defs")
        else {s.name: s for s in definitions.schedules}
    )
    assert set(schedules) == {f"{c}_schedule" for c in CONNECTORS}
    assert schedules["analytics_schedule"].cron_schedule == "0 * * * *"
    assert schedules["analytics_schedule"].default_status == dg.DefaultScheduleStatus.RUNNING
    assert {f"{c}_env" for c in CONNECTORS} | {"dlt"} <= set(definitions.resources)


def test_asset_specs_carry_what_the_connector_file_says(restsync_home):
    specs = {s.key.to_user_string(): s for s in load_definitions().resolve_all_asset_specs()}
    orders = specs["ecommerce/orders"]
    assert orders.owners == ["data-eng@example.com"]
    user_tags = {k: v for k, v in orders.tags.items() if not k.startswith("dagster/kind/")}
    assert user_tags == {"domain": "sales", "example": "true"}
    assert set(orders.kinds) == {"dlt", "duckdb"}
    assert orders.metadata["dagster/table_name"] == "warehouse.ecommerce.orders"
    assert "GET /v1/orders" in (orders.description or "")
    assert [d.asset_key.to_user_string() for d in specs["database/records"].deps] == [
        "database/databases"
    ]
    assert list(specs["database/databases"].deps) == []
    policy = orders.freshness_policy
    assert policy is not None and policy.fail_window.to_timedelta() == timedelta(hours=1)


def test_a_sync_job_binds_only_its_own_connectors_resources(restsync_home):
    # Every other connector's variables in each job's run-config schema would make loading the
    # code location grow with the square of the number of connectors.
    definitions = load_definitions()
    job = definitions.resolve_job_def("ecommerce_sync")
    assert set(job.resource_defs) == {"dlt", "ecommerce_env", "io_manager"}
    run_config_resources = job.run_config_schema.config_type.fields["resources"].config_type
    assert "analytics_env" not in run_config_resources.fields
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "ecommerce/customers",
        "ecommerce/products",
        "ecommerce/orders",
    }


def test_the_env_resource_binds_each_required_variable_to_an_env_var(restsync_home):
    resource = load_definitions().resources["analytics_env"]
    assert set(type(resource).model_fields) == {"ANALYTICS_API_KEY"}
    assert isinstance(resource.ANALYTICS_API_KEY, dg.EnvVar)
    assert resource.ANALYTICS_API_KEY == "ANALYTICS_API_KEY", (
        "the field holds the name, not a value"
    )


def test_user_connector_directories_replace_the_examples_unless_they_are_asked_for(
    restsync_home, tmp_path, monkeypatch
):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "billing.yaml").write_text(USER_CONNECTOR)
    (second / "crm.yaml").write_text(
        USER_CONNECTOR.replace("billing", "crm").replace("BILLING", "CRM")
    )
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", f"{first}:{second}")
    keys = {k.to_user_string() for k in load_definitions().resolve_all_asset_keys()}
    assert keys == {"billing/invoices", "crm/invoices"}
    schedules = {s.name for s in load_definitions().schedules or []}
    assert "analytics_schedule" not in schedules, "the examples' schedules go with them"
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "true")
    keys = {k.to_user_string() for k in load_definitions().resolve_all_asset_keys()}
    assert {"billing/invoices", "crm/invoices"} | EXPECTED_ASSETS == keys


def test_a_bad_user_file_leaves_out_only_its_connector_with_its_problems(
    restsync_home, tmp_path, monkeypatch
):
    (tmp_path / "billing.yaml").write_text(USER_CONNECTOR.replace("limit: 50", "limit: fifty"))
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(tmp_path))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "true")
    definitions = load_definitions()
    keys = {k.to_user_string() for k in definitions.resolve_all_asset_keys()}
    assert keys == EXPECTED_ASSETS | {"billing/invoices"}, "the examples load beside it"
    spec = next(s for s in definitions.resolve_all_asset_specs() if s.group_name == "billing")
    assert re.search(
        rf"{re.escape(str(tmp_path / 'billing.yaml'))}:\d+: "
        r"source\.resources\[0\]\.endpoint\.paginator\.limit: must be a positive integer",
        spec.description or "",
    )
    assert "billing_sync" not in {job.name for job in definitions.resolve_all_job_defs()}


def test_dagster_loads_the_code_location_and_warns_with_the_same_message(restsync_home, tmp_path):
    bad_dir = tmp_path / "connectors"
    bad_dir.mkdir()
    (bad_dir / "billing.yaml").write_text(USER_CONNECTOR.replace("description", "descripton"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "restsync_dagster.definitions",
        ],
        env={
            **_clean_env(),
            "RESTSYNC_CONNECTORS_DIR": str(bad_dir),
            "RESTSYNC_HOME": str(restsync_home),
        },
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"billing\.yaml:\d+: descripton: unknown key \(did you mean 'description'\?\)",
        result.stdout + result.stderr,
    )


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("RESTSYNC_", "DAGSTER_HOME"))}
