"""restsync as a Dagster component, the way a new user meets it: ``create-dagster project``, then
``dg list components``, ``dg scaffold defs``, ``dg check defs``, ``dg list defs`` and ``dg launch``,
each a real subprocess. Also bad input through ``dg check defs``, this repo's own ``dg``, and the
load time of 200 connectors as components against 200 connector files (printed, not asserted).

How restsync reaches the new project: ``create-dagster project --no-uv-sync`` makes no ``.venv``,
so every ``dg`` runs from this test's interpreter, where restsync is installed editable from this
checkout, with ``PYTHONPATH=src`` for the project's own package (see ``helpers.DgProject``).
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from restsync_dagster.demo_api import DemoApi
from restsync_dagster_tests.helpers import (
    REPO,
    DgProject,
    assert_matches_api,
    create_dg_project,
    dg_environment,
    dg_tool,
    files_holding,
)

pytestmark = pytest.mark.slow

COMPONENT = "restsync_dagster.RestApiComponent"

OWN_ASSET = '''\
import dagster as dg


@dg.asset(group_name="reports")
def weekly_report() -> None:
    """The project's own asset, beside the restsync components."""
'''


def edit(path: Path, *replacements: tuple[str, str]) -> None:
    """Edit ``path`` as a person would: each ``old`` must be there, and becomes ``new``."""
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, f"{old!r} not in {path}"
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")


def point_at(defs_yaml: Path, path: str, resource: str) -> None:
    """The edits that turn a scaffolded connector into one of the demo API's endpoints."""
    edit(
        defs_yaml,
        ("name: X-API-Key ", "name: api_key   "),
        ("location: header ", "location: query  "),
        ("- name: records", f"- name: {resource}"),
        ("path: /v1/records", f"path: {path}"),
        ('# schedule: "0 * * * *"', 'schedule: "0 6 * * *"'),
    )


def restsync_in(project: DgProject, *args: str) -> subprocess.CompletedProcess[str]:
    """``restsync ARGS`` in the project's folder, as its user types it; fails the test on error."""
    done = subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", *args],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    project.output.append(done.stdout + done.stderr)
    assert done.returncode == 0, f"restsync {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def test_the_documented_requires_python_edit_applies_to_a_new_project_and_meets_restsyncs(
    new_project,
):
    """docs/components.md: restsync needs Python 3.11 (datetime.UTC, StrEnum, typing.Self,
    tomllib), a new project says 3.10; the one-line edit the docs give makes uv accept it."""
    from packaging.specifiers import SpecifierSet

    project = new_project("py_floor")
    pyproject = project.root / "pyproject.toml"
    before = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
    ours = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    documented = (REPO / "docs" / "components.md").read_text()
    edit_line = next(line for line in documented.splitlines() if line.startswith("sed -i"))
    command = edit_line.split("#")[0].strip()
    subprocess.run(["bash", "-c", command], cwd=project.root, check=True, timeout=60)
    after = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
    assert after != before
    # Every Python the project now allows, restsync allows too.
    minors = [f"3.{minor}" for minor in range(8, 20)]
    assert all(v in SpecifierSet(ours) for v in minors if v in SpecifierSet(after))


@pytest.fixture
def new_project(tmp_path: Path) -> Callable[[str], DgProject]:
    def create(name: str) -> DgProject:
        return create_dg_project(tmp_path, name, tmp_path / f"{name}_home")

    return create


def test_a_new_project_scaffolds_checks_lists_and_launches_two_connectors_without_leaking_the_key(
    new_project, start_demo_api
):
    key = f"rsk-{secrets.token_hex(12)}"
    api: DemoApi = start_demo_api(api_keys={"*": key})
    project = new_project("shop_data")
    # Set from the start: a key rendered when the definitions load would show in every output.
    keys = {"CRM_API_KEY": key, "INVENTORY_API_KEY": key}
    project.env.update(keys)

    listed = json.loads(project.dg("list", "components", "--json").stdout)
    summaries = {item["key"]: item.get("summary") for item in listed["items"]}
    assert summaries[COMPONENT].startswith("One REST API synced into the warehouse by restsync")
    assert summaries["restsync_dagster.ConnectorDirectoryComponent"].startswith(
        "A folder of restsync connector files"
    )
    inspected = project.dg("utils", "inspect-component", COMPONENT, "--defs-yaml-json-schema")
    assert '"schedule"' in inspected.stdout and '"source"' in inspected.stdout

    for name in ("crm", "inventory"):
        project.dg("scaffold", "defs", COMPONENT, name, "--base-url", api.url("generic"))
    (project.defs / "own_assets.py").write_text(OWN_ASSET, encoding="utf-8")
    project.dg("check", "defs")  # as scaffolded

    point_at(project.defs / "crm" / "defs.yaml", "/v1/customers", "customers")
    point_at(project.defs / "inventory" / "defs.yaml", "/v1/items", "items")
    project.dg("check", "defs")  # as edited

    defs = json.loads(project.dg("list", "defs", "--json").stdout)
    groups = {asset["asset_key"]: asset["group_name"] for asset in defs["assets"]}
    assert groups == {
        "crm/customers": "crm",
        "inventory/items": "inventory",
        "weekly_report": "reports",
    }
    assert {job["name"] for job in defs["jobs"]} >= {"crm_sync", "inventory_sync"}
    assert {s["name"] for s in defs["schedules"]} == {"crm_schedule", "inventory_schedule"}
    assert {s["name"] for s in defs["sensors"]} == {
        "crm_retry_transient_failures",
        "inventory_retry_transient_failures",
    }
    assert {r["name"] for r in defs["resources"]} == {"dlt", "crm_env", "inventory_env"}

    # The restsync command in the project sees its components, not the bundled examples.
    listed = restsync_in(project, "list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["crm", "inventory"]
    previewed = restsync_in(project, "preview", "crm")
    assert "table customers" in previewed.stdout and "Nothing was written." in previewed.stdout
    assert "1 connector(s) valid." in restsync_in(project, "validate", "inventory").stdout

    project.dg("launch", "--assets", 'key:"crm/*"')
    project.dg("launch", "--assets", 'key:"inventory/*"')
    restsync_home = Path(project.env["RESTSYNC_HOME"])
    assert_matches_api(restsync_home, api, "generic", "customers", table="crm.customers")
    assert_matches_api(restsync_home, api, "generic", "items", table="inventory.items")
    assert all(r.key_present for r in api.requests("/generic/v1/"))

    dagster_home = Path(project.env["DAGSTER_HOME"])
    assert files_holding(project.root, key) == []
    assert files_holding(dagster_home, key) == []
    assert files_holding(restsync_home, key) == []
    assert not [out for out in project.output if key in out]


BAD_INPUTS = {
    "typo": (
        ('# schedule: "0 * * * *"', 'shedule: "0 * * * *"'),
        "attributes.shedule: unknown key (did you mean 'schedule'?)",
    ),
    "literal secret": (
        ('api_key: "{{ env.BILLING_API_KEY }}"', 'api_key: "sk-literal-4Yw9"'),
        "attributes.source.client.auth.api_key: a credential must come from the environment",
    ),
    "invalid source": (
        ("paginator: {type: offset, limit: 100}", "paginator: {type: offset, limit: 0}"),
        "attributes.source.resources[0].endpoint.paginator.limit: must be a positive integer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_attributes_fail_dg_check_defs_with_restsyncs_own_line(new_project, case):
    project = new_project("ledger")
    project.dg("scaffold", "defs", COMPONENT, "billing")
    replacement, message = BAD_INPUTS[case]
    edit(project.defs / "billing" / "defs.yaml", replacement)
    checked = project.dg("check", "defs", check=False)
    assert checked.returncode == 1
    assert f"src/ledger/defs/billing/defs.yaml: {message}" in checked.stdout + checked.stderr
    assert "sk-literal-4Yw9" not in checked.stdout + checked.stderr


def test_two_components_with_one_connector_name_fail_naming_both_files(new_project):
    project = new_project("ledger")
    for folder in ("billing", "billing_copy"):
        project.dg("scaffold", "defs", COMPONENT, folder)
    edit(project.defs / "billing_copy" / "defs.yaml", ("# name: billing_copy ", "name: billing "))
    checked = project.dg("check", "defs", check=False)
    output = checked.stdout + checked.stderr
    assert checked.returncode == 1
    assert (
        "src/ledger/defs/billing/defs.yaml: attributes.name: connector name 'billing' is also "
        "used by src/ledger/defs/billing_copy/defs.yaml"
    ) in output


def test_the_openapi_flag_scaffolds_a_connector_dg_check_defs_accepts(new_project):
    project = new_project("ledger")
    spec = REPO / "restsync_dagster_tests" / "data" / "openapi" / "petstore-v3.yaml"
    project.dg("scaffold", "defs", COMPONENT, "pets", "--openapi", str(spec))
    text = (project.defs / "pets" / "defs.yaml").read_text()
    assert "# guessed:" in text and "PETS_" in text
    project.dg("check", "defs")
    missing = project.dg(
        "scaffold", "defs", COMPONENT, "from_spec", "--openapi", "nope.json", check=False
    )
    assert missing.returncode == 1 and "--openapi: " in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (project.defs / "from_spec").exists()


def test_this_repos_own_dg_checks_lists_and_launches_the_bundled_connectors(
    tmp_path, start_demo_api
):
    api = start_demo_api()
    repo = DgProject(root=REPO, package="restsync_dagster", env=dg_environment(tmp_path))
    repo.env.update(
        GENERIC_BASE_URL=api.url("generic"), GENERIC_API_KEY=api.config.api_key("generic")
    )
    repo.dg("check", "defs")
    defs = json.loads(repo.dg("list", "defs", "--json").stdout)
    assert {a["group_name"] for a in defs["assets"]} == {
        "generic",
        "analytics",
        "ecommerce",
        "database",
        "communications",
    }
    assert {s["name"] for s in defs["sensors"]} == {"retry_transient_failures"}
    repo.dg("launch", "--assets", 'key:"generic/*"')
    assert_matches_api(tmp_path / "restsync", api, "generic", "customers")


# --------------------------------------------------------------------------------------------
# Load time: 200 connectors as components against 200 connector files

CONNECTORS = 200
CONNECTOR_FILE = """\
name: {name}
description: Generated connector {name}
schedule: "0 6 * * *"
source:
  client:
    base_url: "{{{{ env.{upper}_BASE_URL | default('http://127.0.0.1:8765/generic') }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.{upper}_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: customers
      endpoint: {{path: /v1/customers, data_selector: data, paginator: {{type: offset, limit: 100}}}}
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {{type: offset, limit: 100}}}}
"""

# One process per measurement, each timing one load of the code location (Dagster and dlt already
# imported) and the resolution of its repository.
TIME_FILES = """
import time, dagster, dlt, dagster_dlt
from restsync_dagster.definitions import load_definitions
started = time.perf_counter()
load_definitions().get_repository_def()
print(time.perf_counter() - started)
"""
TIME_DEFS_FOLDER = """
import sys, time, pathlib, dagster as dg, dlt, dagster_dlt
import restsync_dagster.component
started = time.perf_counter()
dg.load_from_defs_folder(path_within_project=pathlib.Path(sys.argv[1])).get_repository_def()
print(time.perf_counter() - started)
"""


def seconds(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall time of ``command``, or the time it prints last when it prints one."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return float(last) if last.replace(".", "", 1).isdigit() else wall


def test_load_time_of_200_connectors_as_components_and_as_connector_files(new_project, tmp_path):
    components = new_project("many")
    directory = new_project("one_folder")
    files = directory.root / "connectors"
    files.mkdir()
    for i in range(CONNECTORS):
        name = f"api_{i:03d}"
        text = CONNECTOR_FILE.format(name=name, upper=name.upper())
        (files / f"{name}.yaml").write_text(text, encoding="utf-8")
        (components.defs / name).mkdir()
        attributes = textwrap.indent(text, "  ")
        (components.defs / name / "defs.yaml").write_text(
            f"type: {COMPONENT}\nattributes:\n{attributes}", encoding="utf-8"
        )
    (directory.defs / "connectors").mkdir()
    (directory.defs / "connectors" / "defs.yaml").write_text(
        "type: restsync_dagster.ConnectorDirectoryComponent\nattributes:\n"
        "  path: ../../../../connectors\n",
        encoding="utf-8",
    )
    as_files = {
        **dg_environment(tmp_path / "files_home"),
        "RESTSYNC_CONNECTORS_DIR": str(files),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
    }
    python, dg = sys.executable, dg_tool("dg")
    variants = {
        "connector files": [
            ([python, "-c", TIME_FILES], REPO, as_files),
            ([dg, "list", "defs", "--json"], REPO, as_files),
        ],
        "200 RestApiComponents": [
            (
                [python, "-c", TIME_DEFS_FOLDER, str(components.defs.parent)],
                components.root,
                components.env,
            ),
            ([dg, "list", "defs", "--json"], components.root, components.env),
        ],
        "1 ConnectorDirectoryComponent": [
            (
                [python, "-c", TIME_DEFS_FOLDER, str(directory.defs.parent)],
                directory.root,
                directory.env,
            ),
            ([dg, "list", "defs", "--json"], directory.root, directory.env),
        ],
    }
    measured: dict[str, list[list[float]]] = {name: [[], []] for name in variants}
    for _ in range(3):  # interleaved, so every variant sees the same load on the shared machine
        for name, commands in variants.items():
            for i, (command, cwd, env) in enumerate(commands):
                measured[name][i].append(seconds(command, cwd, env))
    base = [statistics.median(m) for m in measured["connector files"]]
    print(
        f"\nload of {CONNECTORS} connectors, median of 3 (load in process | dg list defs --json):"
    )
    for name, (load, listed) in measured.items():
        load_s, listed_s = statistics.median(load), statistics.median(listed)
        print(
            f"  {name:30s} {load_s:6.2f} s ({load_s / base[0] - 1:+6.1%}) | "
            f"{listed_s:6.2f} s ({listed_s / base[1] - 1:+6.1%})"
        )
