"""The trust boundary of a connector file: with the deployment's settings on, a file reads only
its connector's variables and names callables only from allowed modules; a file that breaks them
is refused with one line naming the file, the key path, the connector and the variable or
callable. With the settings off (the default), files are trusted as code, as before."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from restsync_dagster.connector import ConnectorFileError, load_connectors, parse_connector
from restsync_dagster.settings import BUNDLED_CONNECTORS_DIR, SettingsError, TrustPolicy

CONFINED = TrustPolicy(confine_env=True)


def connector_file(name: str, *, token: str, extra: str = "", steps: str = "") -> str:
    """A connector file of ``name`` whose bearer token is ``{{ env.<token> }}``."""
    return f"""\
name: {name}
{extra}source:
  client:
    base_url: "{{{{ env.{name.upper()}_BASE_URL | default('https://{name}.example.com') }}}}"
    auth: {{type: bearer, token: "{{{{ env.{token} }}}}"}}
  resources:
    - name: orders
      endpoint: {{path: /v1/orders, data_selector: data, paginator: {{type: offset, limit: 100}}}}
{steps}"""


def problems_of(text: str, trust: TrustPolicy, file: str = "billing.yaml") -> list[str]:
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(text, file, trust=trust)
    return [str(dataclasses.replace(p, line=None)) for p in info.value.problems]


def test_a_file_that_reads_another_connectors_variable_is_refused_naming_file_and_variable():
    (problem,) = problems_of(connector_file("billing", token="SHOP_TOKEN"), CONFINED)
    assert problem == (
        "billing.yaml: source.client.auth.token: connector 'billing' may not read SHOP_TOKEN: "
        "RESTSYNC_CONFINE_ENV is on and it reads only BILLING_* and the names its 'env:' lists"
    )


def test_a_file_that_reads_its_own_variables_passes_when_confined():
    connector = parse_connector(
        connector_file("billing", token="BILLING_TOKEN"), "billing.yaml", trust=CONFINED
    )
    assert sorted(v.name for v in connector.env_vars) == ["BILLING_BASE_URL", "BILLING_TOKEN"]


def test_without_confinement_a_file_may_read_any_variable_as_before():
    connector = parse_connector(
        connector_file("billing", token="SHOP_TOKEN"), "billing.yaml", trust=TrustPolicy()
    )
    assert "SHOP_TOKEN" in connector.secret_env


def test_the_bundled_examples_are_valid_under_both_settings():
    strict = TrustPolicy(confine_env=True, allowed_callable_modules=())
    assert len(load_connectors([BUNDLED_CONNECTORS_DIR], trust=strict)) == 5


def test_a_shared_variable_is_read_only_when_the_file_lists_it_and_the_deployment_allows_it():
    text = connector_file(
        "billing", token="SHARED_PROXY_TOKEN", extra="env: [SHARED_PROXY_TOKEN]\n"
    )
    allowed = dataclasses.replace(CONFINED, shared_env_vars=("SHARED_PROXY_TOKEN",))
    assert "SHARED_PROXY_TOKEN" in parse_connector(text, "billing.yaml", trust=allowed).secret_env
    assert problems_of(text, CONFINED) == [
        "billing.yaml: env[0]: connector 'billing' may not read SHARED_PROXY_TOKEN: "
        "RESTSYNC_CONFINE_ENV is on and RESTSYNC_SHARED_ENV_VARS does not allow it "
        "(allowed: none)"
    ]
    unlisted = connector_file("billing", token="SHARED_PROXY_TOKEN")
    assert problems_of(unlisted, allowed) == [
        "billing.yaml: source.client.auth.token: connector 'billing' may not read "
        "SHARED_PROXY_TOKEN: RESTSYNC_CONFINE_ENV is on and it reads only BILLING_* and the "
        "names its 'env:' lists"
    ]


@pytest.mark.parametrize(
    ("name", "variable", "why"),
    [
        ("dagster_pg", "DAGSTER_PG_PASSWORD", "DAGSTER_* belongs to the deployment"),
        ("aws", "AWS_SECRET_ACCESS_KEY", "AWS_* belongs to the deployment"),
        ("destination", "DESTINATION__POSTGRES__CREDENTIALS", "a name with '__' is dlt's"),
    ],
)
def test_a_connector_name_does_not_win_the_deployments_variables(name, variable, why):
    problems = problems_of(connector_file(name, token=variable), CONFINED, f"{name}.yaml")
    (problem,) = [p for p in problems if ".auth.token:" in p]
    assert problem.startswith(
        f"{name}.yaml: source.client.auth.token: connector {name!r} may not read {variable}: "
    )
    assert why in problem


def test_a_variable_belongs_to_the_longest_connector_name_loaded_with_it(tmp_path: Path):
    (tmp_path / "shop.yaml").write_text(connector_file("shop", token="SHOP_EU_TOKEN"))
    (tmp_path / "shop_eu.yaml").write_text(connector_file("shop_eu", token="SHOP_EU_TOKEN"))
    with pytest.raises(ConnectorFileError) as info:
        load_connectors([tmp_path], trust=CONFINED)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'shop.yaml'}: source.client.auth.token: connector 'shop' may not read "
        "SHOP_EU_TOKEN: "
        "it belongs to connector 'shop_eu' (SHOP_EU_*)"
    ]
    (tmp_path / "shop_eu.yaml").unlink()
    assert [c.name for c in load_connectors([tmp_path], trust=CONFINED)] == ["shop"]


STEP = "      processing_steps: [{{map: '{}'}}]\n"


@pytest.fixture
def step_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Modules ``mycompany.steps`` and ``otherpkg.evil`` on ``sys.path``; importing ``evil``
    writes a marker file, so a test sees whether validation ran its code."""
    marker = tmp_path / "imported"
    for package, module, body in [
        ("mycompany", "steps", "def tidy(record):\n    return record\n"),
        (
            "otherpkg",
            "evil",
            f"open({str(marker)!r}, 'w').close()\ndef run(record):\n    return record\n",
        ),
    ]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    for name in [n for n in sys.modules if n.split(".")[0] in ("mycompany", "otherpkg")]:
        del sys.modules[name]


def test_a_callable_outside_the_allowed_modules_is_refused_before_it_is_imported(step_module):
    trust = TrustPolicy(allowed_callable_modules=("mycompany.steps",))
    text = connector_file("billing", token="BILLING_TOKEN", steps=STEP.format("otherpkg.evil:run"))
    assert problems_of(text, trust) == [
        "billing.yaml: source.resources[0].processing_steps[0].map: connector 'billing' may not "
        "call 'otherpkg.evil:run': module 'otherpkg.evil' is not in "
        "RESTSYNC_ALLOWED_CALLABLE_MODULES (mycompany.steps)"
    ]
    assert not step_module.exists()


def test_a_callable_from_an_allowed_module_passes(step_module):
    trust = TrustPolicy(allowed_callable_modules=("mycompany.steps",))
    text = connector_file(
        "billing", token="BILLING_TOKEN", steps=STEP.format("mycompany.steps:tidy")
    )
    assert parse_connector(text, "billing.yaml", trust=trust).name == "billing"


def test_an_allowed_module_allows_its_submodules_but_not_a_longer_name(step_module):
    trust = TrustPolicy(allowed_callable_modules=("mycompany",))
    good = connector_file(
        "billing", token="BILLING_TOKEN", steps=STEP.format("mycompany.steps:tidy")
    )
    assert parse_connector(good, "billing.yaml", trust=trust).name == "billing"
    near = TrustPolicy(allowed_callable_modules=("mycompany.step",))
    (problem,) = problems_of(good, near)
    assert "module 'mycompany.steps' is not in RESTSYNC_ALLOWED_CALLABLE_MODULES" in problem


def test_the_settings_are_read_from_the_environment_and_bad_values_are_refused():
    assert TrustPolicy.from_env({}) == TrustPolicy()
    read = TrustPolicy.from_env(
        {
            "RESTSYNC_CONFINE_ENV": "true",
            "RESTSYNC_SHARED_ENV_VARS": "SHARED_PROXY_TOKEN, OTHER",
            "RESTSYNC_ALLOWED_CALLABLE_MODULES": "mycompany.steps,otherpkg",
        }
    )
    assert read == TrustPolicy(
        confine_env=True,
        shared_env_vars=("SHARED_PROXY_TOKEN", "OTHER"),
        allowed_callable_modules=("mycompany.steps", "otherpkg"),
    )
    assert TrustPolicy.from_env({"RESTSYNC_ALLOWED_CALLABLE_MODULES": "none"}) == TrustPolicy(
        allowed_callable_modules=()
    )
    with pytest.raises(SettingsError, match="RESTSYNC_ALLOWED_CALLABLE_MODULES: 'my-co' is not"):
        TrustPolicy.from_env({"RESTSYNC_ALLOWED_CALLABLE_MODULES": "my-co"})
    with pytest.raises(SettingsError, match="RESTSYNC_CONFINE_ENV='maybe'"):
        TrustPolicy.from_env({"RESTSYNC_CONFINE_ENV": "maybe"})


def test_files_are_checked_against_the_deployments_settings_when_none_are_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "billing.yaml").write_text(connector_file("billing", token="SHOP_TOKEN"))
    monkeypatch.setenv("RESTSYNC_CONFINE_ENV", "true")
    with pytest.raises(ConnectorFileError, match="connector 'billing' may not read SHOP_TOKEN"):
        load_connectors([tmp_path])
