"""A multi-tenant connector as a Dagster component, the way a user makes one: ``create-dagster
project``, ``dg scaffold defs ... --tenants acme,globex``, ``dg check defs``, ``dg list defs`` and
``dg launch`` of one tenant's partition, each a real subprocess (see test_component.py for how
restsync reaches the project)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import (
    assert_tenant_rows_exact,
    create_dg_project,
    files_holding,
    tenant_variables,
    warehouse,
)

pytestmark = pytest.mark.slow

COMPONENT = "restsync_dagster.RestApiComponent"


def test_a_scaffolded_multi_tenant_component_checks_and_launches_one_tenants_partition(
    tmp_path: Path, start_demo_api
):
    api: DemoApi = start_demo_api(tenants=("acme", "globex"))
    project = create_dg_project(tmp_path, "agency", tmp_path / "agency_home")
    # Every tenant's variables set from the start, as a deployment's secrets are.
    project.env.update(tenant_variables(api, "shop", ["acme", "globex"], "generic"))

    project.dg("scaffold", "defs", COMPONENT, "shop", "--tenants", "acme,globex")
    defs_yaml = project.defs / "shop" / "defs.yaml"
    text = defs_yaml.read_text()
    assert "keys: [acme, globex]" in text and '"{{ tenant.API_KEY }}"' in text
    project.dg("check", "defs")  # as scaffolded

    for old, new in (
        ("name: X-API-Key ", "name: api_key   "),
        ("location: header ", "location: query  "),
        ("- name: records", "- name: items"),
        ("path: /v1/records", "path: /v1/items"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    defs_yaml.write_text(text)
    project.dg("check", "defs")  # as edited

    listed = json.loads(project.dg("list", "defs", "--json").stdout)
    assert [asset["asset_key"] for asset in listed["assets"]] == ["shop/items"]
    project.dg("launch", "--assets", 'key:"shop/*"', "--partition", "acme")

    home = Path(project.env["RESTSYNC_HOME"])
    counts = assert_tenant_rows_exact(home, api, "shop.items", "generic", "items", ["acme"])
    assert counts["acme"] > 0
    with warehouse(home) as con:
        tenants = con.execute("select distinct tenant from shop.items").fetchall()
    assert tenants == [("acme",)], "only the launched tenant's partition was synced"
    records = api.tenant_records()
    assert records["globex"]["requests"] == 0
    assert records["acme"]["cross_tenant_attempts"] == 0
    for key in (api.tenant_key("acme"), api.tenant_key("globex")):
        assert files_holding(project.root, key) == []
        assert not [out for out in project.output if key in out]
