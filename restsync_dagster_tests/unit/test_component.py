"""The component classes and the scaffold, without loading a project: the attributes are a
connector file's keys, the package exports the components without importing Dagster, and every
scaffolded ``defs.yaml`` is a valid connector."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from restsync_dagster.component import rest_api, scaffold
from restsync_dagster.component.scaffold import RestApiScaffoldParams, connector_name, defs_yaml
from restsync_dagster.connector import ConnectorConfig, parse_connector, parse_connector_document
from restsync_dagster_tests.helpers import REPO

TYPE = "restsync_dagster.RestApiComponent"


def test_the_attributes_are_exactly_the_keys_of_a_connector_file():
    assert list(rest_api.RestApiComponent.model_fields) == list(ConnectorConfig.model_fields)


def test_the_schema_describes_every_key_and_constrains_none_so_restsync_reports_each_problem():
    schema = rest_api.RestApiComponent.get_model_cls().model_json_schema()
    assert set(schema["properties"]) == set(ConnectorConfig.model_fields)
    assert schema.get("additionalProperties", True) is True
    assert "required" not in schema
    for key, prop in schema["properties"].items():
        assert prop.get("description"), key
        assert not {"type", "anyOf", "enum", "default"} & set(prop), key


def test_the_package_exports_the_components_without_importing_dagster():
    probe = (
        "import sys, restsync_dagster as r; print('dagster' in sys.modules); "
        "print(sorted(n for n in dir(r) if n.endswith('Component'))); "
        "print(r.RestApiComponent.__module__, 'dagster' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "False",
        "['ConnectorDirectoryComponent', 'RestApiComponent']",
        "restsync_dagster.component.rest_api True",
    ]


@pytest.mark.parametrize("auth", ["api_key", "bearer", "basic", "none"])
def test_every_scaffolded_defs_yaml_is_a_valid_connector_with_its_secrets_from_the_environment(
    auth,
):
    text = defs_yaml(TYPE, "billing", RestApiScaffoldParams(auth=auth))
    document = yaml.safe_load(text)
    assert document["type"] == TYPE
    connector = parse_connector_document({"name": "billing", **document["attributes"]}, "defs.yaml")
    assert [r.name for r in connector.resources] == ["records"]
    assert connector.resources[0].endpoint["paginator"] == {"type": "offset", "limit": 100}
    expected = {
        "api_key": ["BILLING_API_KEY"],
        "bearer": ["BILLING_TOKEN"],
        "basic": ["BILLING_PASSWORD"],
        "none": [],
    }[auth]
    assert connector.secret_env == expected


def test_a_base_url_given_to_the_scaffold_becomes_the_default_of_its_variable():
    text = defs_yaml(TYPE, "billing", RestApiScaffoldParams(base_url="https://api.billing.test/"))
    assert "{{ env.BILLING_BASE_URL | default('https://api.billing.test') }}" in text


def test_a_folder_whose_name_is_no_connector_name_gets_an_explicit_valid_one():
    assert connector_name("billing") == "billing"
    assert connector_name("My-Billing") == "my_billing"
    assert connector_name("2024") == "api_2024"
    text = defs_yaml(TYPE, "My-Billing", RestApiScaffoldParams())
    assert yaml.safe_load(text)["attributes"]["name"] == "my_billing"


def test_the_openapi_flag_makes_the_generated_connector_the_attributes(tmp_path):
    spec = REPO / "restsync_dagster_tests" / "data" / "openapi" / "petstore-v3.yaml"
    text = scaffold.openapi_defs_yaml(TYPE, "pets", RestApiScaffoldParams(openapi=str(spec)))
    document = yaml.safe_load(text)
    assert document["type"] == TYPE and document["attributes"]["name"] == "pets"
    parse_connector(yaml.safe_dump(document["attributes"]), "defs.yaml")
    with pytest.raises(SystemExit) as stopped:
        scaffold.openapi_defs_yaml(TYPE, "pets", RestApiScaffoldParams(openapi="nope.json"))
    assert "\n" not in str(stopped.value) and str(stopped.value).startswith("--openapi: ")


def test_the_two_forms_of_one_connector_in_the_docs_are_the_same_connector():
    docs = (REPO / "docs" / "components.md").read_text(encoding="utf-8")
    section = docs.split("## The same connector, twice", 1)[1]
    component, connector_file = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)[:2]
    attributes = yaml.safe_load(component)["attributes"]
    as_component = parse_connector_document({"name": "billing", **attributes}, "defs.yaml")
    as_file = parse_connector(connector_file, "billing.yaml")
    assert as_component.config == as_file.config
    assert as_component.secret_env == ["BILLING_TOKEN"]


@pytest.mark.parametrize("auth", ["api_key", "bearer", "basic"])
@pytest.mark.parametrize("tenants", ["acme,globex", "dynamic"])
def test_a_scaffolded_multi_tenant_defs_yaml_reads_each_tenants_own_variables(auth, tenants):
    from restsync_dagster.connector.tenants import tenant_variables

    text = defs_yaml(TYPE, "billing", RestApiScaffoldParams(auth=auth, tenants=tenants))
    document = yaml.safe_load(text)
    connector = parse_connector_document({"name": "billing", **document["attributes"]}, "defs.yaml")
    spec = connector.config.tenants
    assert spec is not None
    assert spec.keys == (("acme", "globex") if tenants != "dynamic" else ())
    assert spec.dynamic is (tenants == "dynamic")
    assert connector.env_vars == ()  # nothing every tenant shares
    secrets = {
        "api_key": ["BILLING_ACME_API_KEY"],
        "bearer": ["BILLING_ACME_TOKEN"],
        "basic": ["BILLING_ACME_USERNAME", "BILLING_ACME_PASSWORD"],
    }[auth]
    read = [v.name for v in tenant_variables(connector, "acme")]
    assert read == ["BILLING_ACME_BASE_URL", *secrets]


def test_the_scaffold_refuses_a_tenant_key_a_connector_file_would_refuse():
    with pytest.raises(SystemExit, match="--tenants 'Acme Corp'"):
        defs_yaml(TYPE, "billing", RestApiScaffoldParams(tenants="Acme Corp"))
