"""Round trip of a multi-tenant server: the demo API's tenant document (its server URL
``/t/{tenant}/generic``) -> ``restsync init`` -> a connector with dynamic tenants -> ``restsync
tenants add`` and ``restsync sync`` -> each tenant's rows, exact, in one shared table."""

from __future__ import annotations

import json

import yaml

from restsync_dagster.cli import main
from restsync_dagster.demo_api import DemoApi
from restsync_dagster.openapi.command import run_init
from restsync_dagster_tests.helpers import assert_tenant_rows_exact


def test_a_document_whose_server_names_the_tenant_syncs_each_added_tenant(
    start_demo_api, restsync_home, tmp_path, monkeypatch, capsys
):
    api: DemoApi = start_demo_api(tenants=("acme", "globex"))
    folder = tmp_path / "connectors"
    folder.mkdir()
    document = f"{api.tenant_url('acme', 'generic')}/openapi.json"
    assert (
        run_init("helpdesk", document, out=str(folder / "helpdesk.yaml"), include=["/v1/items"])
        == 0
    )
    config = yaml.safe_load((folder / "helpdesk.yaml").read_text())
    assert config["tenants"] == {"dynamic": True}
    assert config["source"]["client"]["base_url"] == (api.url() + "/t/{{ tenant.key }}/generic")
    for tenant in ("acme", "globex"):
        monkeypatch.setenv(f"HELPDESK_{tenant.upper()}_API_KEY", api.tenant_key(tenant))
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(folder))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    capsys.readouterr()

    assert main(["tenants", "add", "helpdesk", "acme", "globex"]) == 0
    assert "added tenant 'globex'" in capsys.readouterr().out
    assert main(["sync", "helpdesk", "--json", "-q"]) == 0
    outcomes = json.loads(capsys.readouterr().out)
    assert {(o["tenant"], o["status"]) for o in outcomes} == {("acme", "ok"), ("globex", "ok")}
    assert_tenant_rows_exact(
        restsync_home, api, "helpdesk.items", "generic", "items", ["acme", "globex"]
    )
    records = api.tenant_records()
    assert records["acme"]["cross_tenant_attempts"] == 0
    assert records["globex"]["cross_tenant_attempts"] == 0
