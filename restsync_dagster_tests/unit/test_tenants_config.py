"""The ``tenants:`` key: parsing, the ``{{ tenant.* }}`` templates, a connector bound to one
tenant (the variables it reads and nothing else), and the problems a file with tenants can have,
each naming the file and the key path."""

from __future__ import annotations

import dagster as dg
import pytest

from restsync_dagster import names
from restsync_dagster.connector import ConnectorFileError, parse_connector, read_connector_files
from restsync_dagster.connector.templates import (
    MissingEnvVarError,
    TemplateError,
    bind_tenant,
    find_refs,
    render,
)
from restsync_dagster.connector.tenants import for_tenant, tenant_variables
from restsync_dagster.failures.errors import ConfigurationError
from restsync_dagster.orchestration.partitions import (
    build_asset_partitions_def,
    run_pipeline_name,
    run_tenant,
    tenant_of_partition_key,
    tenant_partition_key,
)
from restsync_dagster.settings import TrustPolicy

SHOP = """
name: shop
tenants: {keys: [acme, globex-eu]}
source:
  client:
    base_url: "{{ tenant.BASE_URL | default('https://api.shop.example') }}"
    auth: {type: bearer, token: "{{ tenant.API_KEY }}"}
    headers: {X-Account: "{{ tenant.key }}", X-Proxy: "{{ env.SHOP_PROXY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: orders
      endpoint: {path: /v1/orders, data_selector: data, paginator: {type: offset, limit: 100}}
"""


def problems_of(text: str, trust: TrustPolicy | None = None) -> list[str]:
    with pytest.raises(ConnectorFileError) as caught:
        parse_connector(text, "shop.yaml", trust=trust or TrustPolicy())
    return [f"{p.key_path}: {p.message}" for p in caught.value.problems]


def test_tenant_references_bind_to_the_tenants_own_variables_and_key():
    text = "https://{{ tenant.key }}.shop.example/{{ tenant.REGION | default('eu') }}?q={x}"
    bound = bind_tenant(text, "SHOP_ACME_", "acme")
    assert bound == "https://acme.shop.example/{{ env.SHOP_ACME_REGION | default('eu') }}?q={x}"
    assert render(bound, {}) == "https://acme.shop.example/eu?q={x}"
    assert render(bound, {"SHOP_ACME_REGION": "us"}) == "https://acme.shop.example/us?q={x}"


def test_an_unbound_tenant_reference_is_never_sent_as_written():
    with pytest.raises(TemplateError, match="not bound to a tenant"):
        render("Bearer {{ tenant.API_KEY }}", {"API_KEY": "x"})


def test_other_braces_stay_dlts():
    assert find_refs("{{ allItems {{ id }} }} {tenants}") == []
    (ref,) = find_refs("{{ tenant.key }}")
    assert ref.is_tenant_key and ref.tenant


def test_a_file_with_tenants_reads_shared_and_tenant_variables_apart():
    connector = parse_connector(SHOP, "shop.yaml", trust=TrustPolicy())
    assert [v.name for v in connector.env_vars] == ["SHOP_PROXY"]
    assert [v.name for v in connector.tenant_vars] == ["BASE_URL", "API_KEY"]
    assert [v.name for v in tenant_variables(connector, "globex-eu")] == [
        "SHOP_GLOBEX_EU_BASE_URL",
        "SHOP_GLOBEX_EU_API_KEY",
        "SHOP_PROXY",
    ]


def test_a_connector_bound_to_a_tenant_reads_that_tenants_variables_only():
    connector = parse_connector(SHOP, "shop.yaml", trust=TrustPolicy())
    acme = for_tenant(connector, "acme")
    assert acme.tenant == "acme"
    assert {v.name for v in acme.env_vars} == {
        "SHOP_ACME_BASE_URL",
        "SHOP_ACME_API_KEY",
        "SHOP_PROXY",
    }
    assert acme.secret_env == ["SHOP_ACME_API_KEY"]
    assert acme.config.source["client"]["headers"]["X-Account"] == "acme"
    assert acme.config.rate_key == "shop.acme"
    assert names.pipeline_name(acme.pipeline_scope) == "restsync_shop__tenant_acme"
    assert run_pipeline_name(acme, []) == "restsync_shop__tenant_acme"
    assert acme.config.dataset_name == "shop"
    with pytest.raises(MissingEnvVarError, match="SHOP_ACME_API_KEY"):
        render(acme.config.source["client"]["auth"]["token"], {"SHOP_GLOBEX_EU_API_KEY": "x"})


def test_binding_refuses_an_unknown_or_invalid_tenant():
    connector = parse_connector(SHOP, "shop.yaml", trust=TrustPolicy())
    with pytest.raises(ConfigurationError, match="no tenant 'initech'; tenants: acme, globex-eu"):
        for_tenant(connector, "initech")
    with pytest.raises(ConfigurationError, match="not a valid tenant key"):
        for_tenant(connector, "Acme")


def test_datasets_give_each_tenant_its_own_dataset():
    connector = parse_connector(
        SHOP.replace("keys: [acme, globex-eu]", "keys: [acme, globex-eu], tables: datasets"),
        "shop.yaml",
        trust=TrustPolicy(),
    )
    assert for_tenant(connector, "globex-eu").config.dataset_name == "shop_globex_eu"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("keys: [acme, globex-eu]", "keys: [acme, acme]"),
            "tenants.keys: tenant 'acme' is listed twice",
        ),
        (
            ("keys: [acme, globex-eu]", "keys: [a-b, a_b]"),
            "tenants.keys: tenants 'a-b' and 'a_b' would read the same variables (A_B)",
        ),
        (("keys: [acme, globex-eu]", "keys: [Acme]"), "'Acme' is not a valid tenant key"),
        (("keys: [acme, globex-eu]", "keys: [a], dynamic: true"), "not both"),
        (("keys: [acme, globex-eu]", "column: account"), "tenants: give the tenants"),
        (
            ("keys: [acme, globex-eu]", "keys: [a], variables: SHOP_"),
            "tenants.variables: 'SHOP_' must hold {TENANT} exactly once",
        ),
        (
            ("write_disposition: merge", "write_disposition: replace"),
            "source.resource_defaults.write_disposition: resource 'orders' replaces its table",
        ),
        (
            ("write_disposition: merge", "write_disposition: {disposition: merge, strategy: scd2}"),
            "source.resource_defaults.write_disposition.strategy: resource 'orders': an scd2 merge",
        ),
        (("primary_key: id", "primary_key: [id, tenant]"), "'tenant' is the tenant column"),
        (
            ("keys: [acme, globex-eu]", "keys: [acme, acme_eu]"),
            "source.client.headers.X-Proxy: SHOP_PROXY",
        ),
    ],
)
def test_problems_of_a_file_with_tenants_name_the_key_path(change, expected):
    text = SHOP.replace(*change)
    if "acme_eu" in text:  # acme's PROXY variable would be acme_eu's... with these references:
        text = text.replace("tenant.BASE_URL", "tenant.EU_PROXY").replace(
            "env.SHOP_PROXY", "env.SHOP_ACME_EU_PROXY"
        )
        expected = "SHOP_ACME_EU_PROXY is a variable of tenant 'acme'"
    found = problems_of(text)
    assert any(expected in line for line in found), found


def test_two_tenants_reading_one_variable_is_refused():
    text = SHOP.replace("keys: [acme, globex-eu]", "keys: [acme, acme_eu]").replace(
        "tenant.BASE_URL", "tenant.EU_API_KEY"
    )
    found = problems_of(text)
    assert any(
        "tenants 'acme' and 'acme_eu' would both read SHOP_ACME_EU_API_KEY" in line
        for line in found
    ), found


def test_a_tenant_reference_without_tenants_is_refused():
    text = SHOP.replace("tenants: {keys: [acme, globex-eu]}\n", "")
    assert "source.client.auth.token: {{ tenant... }} needs a 'tenants:' key" in " ".join(
        problems_of(text)
    )


def test_confinement_refuses_a_shared_variable_that_looks_like_a_tenants():
    # Not a listed tenant's, but a dynamic or later tenant 'initech' would own it.
    text = SHOP.replace("env.SHOP_PROXY", "env.SHOP_INITECH_API_KEY")
    found = problems_of(text, TrustPolicy(confine_env=True))
    assert any(
        line.startswith("source.client.headers.X-Proxy: SHOP_INITECH_API_KEY looks like a tenant")
        for line in found
    ), found
    outside = SHOP.replace(
        "keys: [acme, globex-eu]", "keys: [acme], variables: 'BILLING_{TENANT}_'"
    )
    assert any(
        line.startswith("tenants.variables: connector 'shop' may not read BILLING_{TENANT}_*")
        for line in problems_of(outside, TrustPolicy(confine_env=True))
    )
    # Without confinement both files load.
    parse_connector(text, "shop.yaml", trust=TrustPolicy())


def test_tenants_are_partitions_and_a_run_knows_its_tenant_from_its_tags():
    connector = parse_connector(SHOP, "shop.yaml", trust=TrustPolicy())
    partitions = build_asset_partitions_def(connector)
    assert isinstance(partitions, dg.StaticPartitionsDefinition)
    assert partitions.get_partition_keys() == ["acme", "globex-eu"]
    assert run_tenant(connector, {names.DAGSTER_PARTITION_TAG: "acme"}) == "acme"
    with pytest.raises(ConfigurationError, match="a run syncs one tenant"):
        run_tenant(connector, {})
    with pytest.raises(ConfigurationError, match="launch one run per tenant"):
        run_tenant(
            connector,
            {names.DAGSTER_RANGE_START_TAG: "acme", names.DAGSTER_RANGE_END_TAG: "globex-eu"},
        )


def test_tenants_by_day_are_multi_partitions():
    text = SHOP.replace("tenants:", "partitions: {daily: {start: 2026-01-01}}\ntenants:").replace(
        "data_selector: data,",
        "data_selector: data, incremental: {start_param: since, cursor_path: updated_at, "
        "initial_value: '2026-01-01T00:00:00Z'},",
    )
    connector = parse_connector(text, "shop.yaml", trust=TrustPolicy())
    partitions = build_asset_partitions_def(connector)
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    key = tenant_partition_key(connector, "acme", "2026-01-02")
    assert partitions.has_partition_key(key)
    assert tenant_of_partition_key(connector, key) == "acme"
    assert run_tenant(connector, {names.DAGSTER_PARTITION_TAG: key}) == "acme"


def test_dynamic_tenants_are_dynamic_partitions():
    connector = parse_connector(
        SHOP.replace("keys: [acme, globex-eu]", "dynamic: true"), "shop.yaml", trust=TrustPolicy()
    )
    partitions = build_asset_partitions_def(connector)
    assert isinstance(partitions, dg.DynamicPartitionsDefinition)
    assert partitions.name == "shop_tenants"
    assert for_tenant(connector, "anyone").tenant == "anyone"


def test_a_connector_named_like_a_tenants_pipeline_is_refused(tmp_path):
    (tmp_path / "shop.yaml").write_text(SHOP)
    other = """
name: shop__tenant_acme
source:
  client: {base_url: "https://api.shop.example"}
  resources: [orders]
"""
    (tmp_path / "z.yaml").write_text(other)
    files = read_connector_files([tmp_path], trust=TrustPolicy())
    (problems,) = files.bad_files.values()
    assert "is the pipeline of a tenant of connector 'shop'" in problems[0].message


def test_with_confinement_a_tenants_variable_owned_by_another_connector_is_refused(tmp_path):
    (tmp_path / "shop.yaml").write_text(SHOP)
    (tmp_path / "shop_acme.yaml").write_text(
        """
name: shop_acme
source:
  client: {base_url: "https://api.shop.example", auth: {type: bearer, token: "{{ env.SHOP_ACME_API_KEY }}"}}
  resources: [orders]
"""
    )
    confined = read_connector_files([tmp_path], trust=TrustPolicy(confine_env=True))
    messages = [p.message for problems in confined.bad_files.values() for p in problems]
    assert any(
        "tenant 'acme' of connector 'shop' may not read SHOP_ACME_API_KEY: it belongs to "
        "connector 'shop_acme'" in m
        for m in messages
    ), messages
    assert read_connector_files([tmp_path], trust=TrustPolicy()).bad_files == {}
