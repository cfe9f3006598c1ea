"""The trust settings hold at every door: ``restsync validate``, the code location's load, the
``RestApiComponent``, and the run itself (which checks callables again before importing them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from restsync_dagster.connector import parse_connector
from restsync_dagster.definitions import load_definitions
from restsync_dagster.extract.source import render_source_config
from restsync_dagster.failures.errors import ConfigurationError
from restsync_dagster.settings import TrustPolicy
from restsync_dagster_tests.helpers import REPO, component_yaml
from restsync_dagster_tests.integration.test_component import REST_API, restsync_problems

BILLING = """\
name: billing
source:
  client:
    base_url: https://billing.example.com
    auth: {type: bearer, token: "{{ env.SHOP_TOKEN }}"}
  resources:
    - name: invoices
      endpoint: {path: /v1/invoices, data_selector: data, paginator: {type: offset, limit: 100}}
      processing_steps: [{map: 'json:loads'}]
"""
REFUSED_VARIABLE = (
    "source.client.auth.token: connector 'billing' may not read SHOP_TOKEN: "
    "RESTSYNC_CONFINE_ENV is on and it reads only BILLING_* and the names its 'env:' lists"
)
REFUSED_CALLABLE = (
    "source.resources[0].processing_steps[0].map: connector 'billing' may not call 'json:loads': "
    "module 'json' is not in RESTSYNC_ALLOWED_CALLABLE_MODULES (mycompany.steps)"
)
STRICT = {"RESTSYNC_CONFINE_ENV": "true", "RESTSYNC_ALLOWED_CALLABLE_MODULES": "mycompany.steps"}


def test_restsync_validate_refuses_the_file_with_one_line_per_broken_rule(restsync_home, tmp_path):
    (tmp_path / "billing.yaml").write_text(BILLING)
    env = {**os.environ, "RESTSYNC_CONNECTORS_DIR": str(tmp_path), **STRICT}
    result = subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", "validate"],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "restsync: 2 problems in connector files:",
        f"  {tmp_path / 'billing.yaml'}:9: {REFUSED_CALLABLE}",
        f"  {tmp_path / 'billing.yaml'}:5: {REFUSED_VARIABLE}",
    ]
    lenient = {k: v for k, v in env.items() if k not in STRICT}
    passed = subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", "validate"],
        env=lenient, capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert passed.returncode == 0, passed.stderr


def test_the_code_location_does_not_load_a_file_that_breaks_them(
    restsync_home, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "billing.yaml").write_text(BILLING)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(tmp_path))
    for name, value in STRICT.items():
        monkeypatch.setenv(name, value)
    definitions = load_definitions()
    assert "billing_sync" not in {job.name for job in definitions.resolve_all_job_defs()}
    stand_ins = [s for s in definitions.resolve_all_asset_specs() if s.group_name == "billing"]
    assert stand_ins, "the file's assets say why it is not loaded"
    for spec in stand_ins:
        problems = spec.metadata["restsync/problems"].value.splitlines()
        assert [line.split(": ", 1)[1] for line in problems] == [
            REFUSED_CALLABLE,
            REFUSED_VARIABLE,
        ]


def test_a_rest_api_component_is_refused_the_same_way(
    restsync_home, defs_project, monkeypatch: pytest.MonkeyPatch
):
    for name, value in STRICT.items():
        monkeypatch.setenv(name, value)
    attributes = BILLING.replace("name: billing\n", "")
    load = defs_project({"billing/defs.yaml": component_yaml(REST_API, attributes)})
    assert restsync_problems(load) == [
        f"src/P/defs/billing/defs.yaml: attributes.{REFUSED_CALLABLE}",
        f"src/P/defs/billing/defs.yaml: attributes.{REFUSED_VARIABLE}",
    ]


def test_a_run_checks_callables_again_before_importing_them(
    restsync_home, monkeypatch: pytest.MonkeyPatch
):
    connector = parse_connector(BILLING, "billing.yaml", trust=TrustPolicy())
    monkeypatch.setenv("RESTSYNC_ALLOWED_CALLABLE_MODULES", "mycompany.steps")
    with pytest.raises(ConfigurationError, match=r"billing.yaml: source.resources\[0\]"):
        render_source_config(connector, {"SHOP_TOKEN": "t"})
