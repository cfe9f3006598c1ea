"""The steps a new user takes, each a real ``restsync`` subprocess against the demo API on
127.0.0.1: the tour's preview from a second terminal, ``init`` followed by the command it prints,
a connector file given by its path, ``validate`` naming the variables still unset, and where the
warehouse and dlt's working directories go when the command runs from another folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import clean_env, demo_variables, shell, table_count


def test_a_second_terminal_previews_the_tours_connector_after_eval_demo_env(
    demo_api: DemoApi, tmp_path: Path
):
    env = clean_env(RESTSYNC_HOME=str(tmp_path / "home"))
    port = demo_api.port
    bare = shell("restsync preview generic --pages 2", tmp_path, env)
    assert bare.returncode == 1
    assert "GENERIC_API_KEY" in bare.stderr and 'eval "$(restsync demo-env)"' in bare.stderr

    done = shell(
        f'eval "$(restsync demo-env --api-port {port})"\nrestsync preview generic --pages 2',
        tmp_path,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert "resource customers: pagination stopped" in done.stdout
    assert "Nothing was written." in done.stdout
    assert len(demo_api.requests("/generic/v1/customers")) == 2  # the two pages asked for
    assert all(r.key_present for r in demo_api.requests("/generic/v1/"))


def test_init_from_the_demo_apis_document_then_the_printed_command_works_and_the_file_syncs(
    demo_api: DemoApi, tmp_path: Path
):
    env = clean_env(RESTSYNC_HOME=str(tmp_path / "home"))
    spec = f"{demo_api.url('ecommerce')}/openapi.json"
    init = shell(f"restsync init shop --from-openapi {spec}", tmp_path, env)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "shop.yaml").is_file()
    printed = re.search(r"set (\w+), check .*, then: (restsync preview \S+)$", init.stdout, re.M)
    assert printed, init.stdout
    variable, command = printed.groups()
    assert (variable, command) == ("SHOP_API_KEY", "restsync preview ./shop.yaml")

    env["SHOP_API_KEY"] = "demo-ecommerce-key"
    preview = shell(command, tmp_path, env)
    assert preview.returncode == 0, preview.stderr
    assert "table customers" in preview.stdout

    for given in ("./shop.yaml", "shop.yaml", str(tmp_path / "shop.yaml")):
        validated = shell(f"restsync validate {given}", tmp_path, env)
        assert validated.returncode == 0, validated.stderr
        assert "1 connector(s) valid." in validated.stdout
    by_name = shell("restsync validate shop", tmp_path, env)
    assert by_name.returncode == 2
    assert "give its path: ./shop.yaml" in by_name.stderr

    synced = shell("restsync sync ./shop.yaml --json", tmp_path, env)
    assert synced.returncode == 0, synced.stderr
    outcomes = json.loads(synced.stdout)
    assert {(o["resource"], o["status"]) for o in outcomes} == {
        ("customers", "ok"),
        ("products", "ok"),
        ("orders", "ok"),
    }
    assert table_count(tmp_path / "home", "shop.customers") == len(
        demo_api.expected_rows("ecommerce", "customers")
    )


def test_validate_says_valid_and_names_each_required_variable_that_is_unset(tmp_path: Path):
    env = clean_env(RESTSYNC_HOME=str(tmp_path / "home"), GENERIC_API_KEY="x")
    done = shell("restsync validate generic ecommerce", tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "env GENERIC_API_KEY: secret, required, set" in done.stdout
    assert "env ECOMMERCE_API_KEY: secret, required, NOT SET" in done.stdout
    assert (
        "1 required variable(s) not set here: ECOMMERCE_API_KEY. A sync or preview of ecommerce "
        "fails until they are set"
    ) in done.stdout
    assert 'eval "$(restsync demo-env)"' in done.stdout
    as_json = json.loads(shell("restsync validate --json", tmp_path, env).stdout)
    unset = {v["name"] for c in as_json["connectors"] for v in c["env"] if not v["set"]}
    assert "ECOMMERCE_API_KEY" in unset and "GENERIC_API_KEY" not in unset


def test_a_sync_from_a_subfolder_uses_the_projects_warehouse_and_dlt_data_dir(
    demo_api: DemoApi, tmp_path: Path
):
    project = tmp_path / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    env = clean_env(**demo_variables(demo_api.url()))
    script = "restsync sync generic"
    first = shell(script, project, env)
    assert first.returncode == 0, first.stderr
    created = project / ".restsync" / "warehouse.duckdb"
    assert f"creating the warehouse {created} (the project folder's" in first.stderr
    from_below = shell(script, project / "notebooks" / "deep", env)
    assert from_below.returncode == 0, from_below.stderr
    assert "creating the warehouse" not in from_below.stderr
    assert not (project / "notebooks" / "deep" / ".restsync").exists()
    assert (project / ".restsync" / "warehouse.duckdb").is_file()
    assert table_count(project / ".restsync", "generic.customers") == 250

    data_dir = tmp_path / "dlt_data"
    dlt = shell(script, project, {**env, "DLT_DATA_DIR": str(data_dir)})
    assert dlt.returncode == 0, dlt.stderr
    assert (data_dir / "pipelines" / "restsync_generic").is_dir()


@pytest.mark.parametrize("value", ["state", "./state"])
def test_a_relative_restsync_home_is_refused_with_what_to_give(tmp_path: Path, value: str):
    done = shell("restsync list", tmp_path, clean_env(RESTSYNC_HOME=value))
    assert done.returncode == 2
    assert f"RESTSYNC_HOME={value!r} is relative; give an absolute path" in done.stderr
    assert "Traceback" not in done.stderr
