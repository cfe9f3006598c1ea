"""restsync's Dagster components loaded in process from a defs folder: they build what the same
connector files build, keep secrets unrendered, live beside each other and the project's own
assets, and fail with restsync's messages."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from restsync_dagster.component import RestApiComponent, base
from restsync_dagster.connector import ConnectorFileError
from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import (
    BUNDLED_CONNECTORS,
    VERTICALS,
    component_yaml,
    describe_code_location,
)

REST_API = "restsync_dagster.RestApiComponent"
DIRECTORY = "restsync_dagster.ConnectorDirectoryComponent"
KEY = "rsk-4f9c2a7d61e0b835"

SHOP = """\
source:
  client:
    base_url: "{{ env.SHOP_BASE_URL | default('https://shop.example.com') }}"
    auth: {type: bearer, token: "{{ env.SHOP_TOKEN }}"}
  resources:
    - name: orders
      endpoint: {path: /v1/orders, data_selector: data, paginator: {type: offset, limit: 100}}
"""

OWN_ASSET = """\
import dagster as dg


@dg.asset
def weekly_report() -> None: ...
"""


def bundled_as_components() -> dict[str, str]:
    """The five bundled connector files, each as the attributes of a ``RestApiComponent``."""
    return {
        f"{name}/defs.yaml": component_yaml(
            REST_API, (BUNDLED_CONNECTORS / f"{name}.yaml").read_text(encoding="utf-8")
        )
        for name in VERTICALS
    }


def without_provenance(description: dict[str, Any]) -> dict[str, Any]:
    """A code location's description less where things were written: the file named in the
    metadata, Dagster's code references, and the retry sensors, one per component."""
    for asset in description["assets"].values():
        asset["metadata"] = {
            k: v
            for k, v in asset["metadata"].items()
            if k != "restsync/connector_file" and not k.startswith("dagster/")
        }
    description.pop("sensors")
    return description


def test_the_bundled_connectors_as_components_build_what_their_files_build(
    restsync_home, defs_project
):
    as_components = defs_project(bundled_as_components())()
    expected = without_provenance(describe_code_location(load_definitions()))
    assert without_provenance(describe_code_location(as_components)) == expected
    sensors = {s.name: s for s in as_components.get_repository_def().sensor_defs}
    assert sorted(sensors) == sorted(f"{v}_retry_transient_failures" for v in VERTICALS)
    assert [t.job_name for t in sensors["generic_retry_transient_failures"].targets] == [
        "generic_sync"
    ]


def test_a_secret_set_when_the_definitions_load_reaches_them_nowhere(
    restsync_home, defs_project, monkeypatch
):
    monkeypatch.setenv("SHOP_TOKEN", KEY)
    monkeypatch.setenv("SHOP_BASE_URL", f"https://{KEY}.example.com")
    definitions = defs_project({"shop/defs.yaml": component_yaml(REST_API, SHOP)})()
    # What the webserver and the daemon are sent: the repository's whole snapshot.
    snapshot = dg.serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))
    assert KEY not in snapshot
    assert KEY not in json.dumps(describe_code_location(definitions))
    assert "SHOP_TOKEN" in snapshot, "the variable's name, never its value"
    env = definitions.resources["shop_env"]
    assert set(type(env).model_fields) == {"SHOP_TOKEN"}


def test_dagster_renders_default_fields_but_hands_passthrough_fields_over_as_written(
    monkeypatch,
):
    """FACTS says ``dg.Resolver.passthrough()`` keeps ``{{ env.X }}`` unrendered: re-checked."""
    monkeypatch.setenv("PASSTHROUGH_PROBE", KEY)

    class Probe(dg.Resolvable, dg.Model):
        rendered: str
        as_written: Annotated[Any, dg.Resolver.passthrough()]

    probe = Probe.resolve_from_yaml(
        "rendered: '{{ env.PASSTHROUGH_PROBE }}'\nas_written: '{{ env.PASSTHROUGH_PROBE }}'\n"
    )
    assert probe.rendered == KEY
    assert probe.as_written == "{{ env.PASSTHROUGH_PROBE }}"


def test_the_component_keeps_every_attribute_as_written(restsync_home, defs_project, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", KEY)
    defs = defs_project({"shop/defs.yaml": component_yaml(REST_API, SHOP)})
    definitions = defs()
    assert definitions.resolve_assets_def(dg.AssetKey(["shop", "orders"])) is not None
    component = RestApiComponent.from_attributes_dict(
        attributes={
            "name": "shop",
            "source": {"client": {"auth": {"token": "{{ env.SHOP_TOKEN }}"}}},
        }
    )
    assert component.source["client"]["auth"]["token"] == "{{ env.SHOP_TOKEN }}"


def test_components_and_the_projects_own_assets_load_together_sharing_one_dlt_resource(
    restsync_home, defs_project, tmp_path
):
    folder = tmp_path / "connectors"
    folder.mkdir()
    for name in ("analytics", "ecommerce"):
        text = (BUNDLED_CONNECTORS / f"{name}.yaml").read_text(encoding="utf-8")
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    definitions = defs_project(
        {
            "shop/defs.yaml": component_yaml(REST_API, SHOP),
            "crm/defs.yaml": component_yaml(
                REST_API,
                (BUNDLED_CONNECTORS / "generic.yaml").read_text().replace("generic", "crm"),
            ),
            "more/defs.yaml": component_yaml(DIRECTORY, f"path: {folder}"),
            "own.py": OWN_ASSET,
        }
    )()
    repository = definitions.get_repository_def()
    groups = {spec.group_name for spec in definitions.resolve_all_asset_specs()}
    assert groups == {"shop", "crm", "analytics", "ecommerce", "default"}
    assert {s.name for s in repository.sensor_defs} == {
        "shop_retry_transient_failures",
        "crm_retry_transient_failures",
        "more_retry_transient_failures",
    }
    more = next(s for s in repository.sensor_defs if s.name.startswith("more"))
    assert sorted(t.job_name for t in more.targets) == ["analytics_sync", "ecommerce_sync"]
    assert set(definitions.resources) == {
        "dlt",
        "shop_env",
        "crm_env",
        "analytics_env",
        "ecommerce_env",
    }


def test_the_name_defaults_to_the_folder_and_a_folder_name_that_is_no_name_says_so(
    restsync_home, defs_project
):
    definitions = defs_project({"shop/defs.yaml": component_yaml(REST_API, SHOP)})()
    assert definitions.resolve_job_def("shop_sync") is not None
    with pytest.raises(Exception) as failure:
        defs_project({"my-shop/defs.yaml": component_yaml(REST_API, SHOP)})()
    problems = [str(p) for p in failure.value.__cause__.problems]  # type: ignore[union-attr]
    assert len(problems) == 1
    assert problems[0].startswith("src/")
    assert problems[0].endswith(
        "/defs/my-shop/defs.yaml: attributes.name: 'my-shop' is not a valid connector name: use "
        "lower-case letters, digits and '_', starting with a letter (the name defaults to the "
        "folder's name: set attributes.name)"
    )


def restsync_problems(load) -> list[str]:
    """The problems of the ``ConnectorFileError`` that failed ``load``."""
    with pytest.raises(Exception) as failure:
        load()
    error: BaseException | None = failure.value
    while error is not None and not isinstance(error, ConnectorFileError):
        error = error.__cause__
    assert isinstance(error, ConnectorFileError), failure.value
    return [re.sub(r"project_[0-9a-f]+", "P", str(p)) for p in error.problems]


def test_a_component_and_a_connector_file_of_one_name_fail_naming_both(
    restsync_home, defs_project, tmp_path
):
    folder = tmp_path / "connectors"
    folder.mkdir()
    (folder / "shop.yaml").write_text("name: shop\n" + SHOP, encoding="utf-8")
    load = defs_project(
        {
            "shop/defs.yaml": component_yaml(REST_API, SHOP),
            "files/defs.yaml": component_yaml(DIRECTORY, f"path: {folder}"),
        }
    )
    assert restsync_problems(load) == [
        "shop.yaml in src/P/defs/files/defs.yaml: name: connector name 'shop' is also used by "
        "src/P/defs/shop/defs.yaml"
    ]


def test_every_problem_of_a_component_is_one_line_naming_defs_yaml_and_key_path(
    restsync_home, defs_project
):
    bad = SHOP.replace(
        "paginator: {type: offset, limit: 100}", "paginator: {type: offset, limit: 0}"
    )
    load = defs_project(
        {
            "shop/defs.yaml": component_yaml(
                REST_API, 'shedule: "0 * * * *"\ntimeout_seconds: -1\n' + bad
            )
        }
    )
    problems = restsync_problems(load)
    assert problems == [
        "src/P/defs/shop/defs.yaml: attributes.timeout_seconds: Input should be greater than 0",
        "src/P/defs/shop/defs.yaml: attributes.shedule: unknown key (did you mean 'schedule'?); "
        "allowed: allow_insecure_http, arrow, dataset, description, env, freshness, name, owners, "
        "partitions, rate_limit, retry, schedule, schema_contract, schema_discovery, source, "
        "tags, tenants, timeout_seconds",
        "src/P/defs/shop/defs.yaml: attributes.source.resources[0].endpoint.paginator.limit: "
        "must be a positive integer",
    ]


def test_a_bad_file_in_a_connector_directory_gets_a_connector_files_message(
    restsync_home, defs_project, tmp_path
):
    folder = tmp_path / "connectors"
    folder.mkdir()
    (folder / "shop.yaml").write_text("name: shop\nshedule: daily\n" + SHOP, encoding="utf-8")
    with pytest.raises(Exception) as failure:
        defs_project(
            {"files/defs.yaml": component_yaml(DIRECTORY, "path: ../../../../connectors")}
        )()
    assert "does not exist" in str(failure.getrepr())
    load = defs_project({"files/defs.yaml": component_yaml(DIRECTORY, f"path: {folder}")})
    with pytest.raises(Exception) as failure:
        load()
    assert "shop.yaml:2: shedule: unknown key (did you mean 'schedule'?)" in str(failure.getrepr())


def test_a_second_load_in_one_process_builds_nothing_again_until_an_attribute_changes(
    restsync_home, defs_project, tmp_path, monkeypatch
):
    builds = []
    real_build = base.build_definitions

    def counted(connectors, *args, **kwargs):
        builds.append([c.name for c in connectors])
        return real_build(connectors, *args, **kwargs)

    monkeypatch.setattr(base, "build_definitions", counted)
    load = defs_project({"shop/defs.yaml": component_yaml(REST_API, SHOP), "own.py": OWN_ASSET})
    load()
    load()  # as ``dg list defs`` and ``dagster definitions validate`` do
    assert builds == [["shop"]]
    (defs_yaml,) = tmp_path.glob("*/src/*/defs/shop/defs.yaml")
    defs_yaml.write_text(component_yaml(REST_API, "description: Orders\n" + SHOP))
    specs = {spec.key: spec for spec in load().resolve_all_asset_specs()}
    assert builds == [["shop"], ["shop"]]
    assert (specs[dg.AssetKey(["shop", "orders"])].description or "").startswith("Orders")
