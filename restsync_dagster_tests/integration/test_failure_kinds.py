"""Each kind of restsync error reaches the run's ``dagster.Failure`` as its own kind, never
``unknown``: the class of the error decides, not its message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.orchestration.resources import ConnectorEnv

KEY = "kinds-key-0451"

CONNECTOR = """
name: kinds
source:
  client:
    base_url: "{base_url}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.KINDS_API_KEY }}}}"}}
  resources:
    - name: customers
      primary_key: id
      endpoint: {{path: /v1/customers, data_selector: data, paginator: {{type: offset, limit: 100}}}}
{extra}
"""


@pytest.fixture
def kinds(restsync_home, tmp_path, monkeypatch, start_demo_api):
    """Write the ``kinds`` connector (against the demo API unless told otherwise)."""
    api = start_demo_api(api_keys={"*": KEY})

    def write(base_url: str | None = None, extra: str = "") -> Any:
        directory = tmp_path / "connectors"
        directory.mkdir(exist_ok=True)
        (directory / "kinds.yaml").write_text(
            CONNECTOR.format(base_url=base_url or api.url("generic"), extra=extra)
        )
        monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(directory))
        monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
        monkeypatch.setenv("KINDS_API_KEY", KEY)
        return api

    return write


def failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    (event,) = [e for e in result.all_events if e.is_step_failure]
    data = event.step_failure_data
    metadata = {k: v.value for k, v in (data.user_failure_data.metadata or {}).items()}
    return data.error.to_string(), metadata


def sync(instance: dg.DagsterInstance, **resources: Any) -> dg.ExecuteInProcessResult:
    definitions = load_definitions()
    if not resources:
        job = definitions.resolve_job_def("kinds_sync")
        return job.execute_in_process(instance=instance, raise_on_error=False)
    return dg.materialize(
        list(definitions.assets or []),
        resources={**(definitions.resources or {}), **resources},
        instance=instance,
        raise_on_error=False,
    )


def test_a_dataset_named_like_the_duckdb_file_fails_as_destination_config(
    kinds, instance, restsync_home: Path, monkeypatch
):
    api = kinds()
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(restsync_home / "kinds.duckdb"))
    message, metadata = failure(sync(instance))
    assert metadata["restsync/kind"] == "destination_config"
    assert metadata["restsync/transient"] is False
    assert "RESTSYNC_DUCKDB_PATH" in message and "connector 'kinds'" in message
    assert api.requests("/generic") == [], "refused before any request"


def test_an_unusable_field_description_fails_as_schema_discovery(kinds, instance):
    kinds(extra="schema_discovery:\n  customers: {path: /v1/customers, fields_selector: data}")
    message, metadata = failure(sync(instance))
    assert metadata["restsync/kind"] == "schema_discovery"
    assert "a field lacks 'name' or 'type'" in message


def test_credentials_over_plain_http_fail_as_insecure_transport(kinds, instance):
    kinds(base_url="http://api.example.invalid/generic")
    message, metadata = failure(sync(instance))
    assert metadata["restsync/kind"] == "insecure_transport"
    assert "over plain http://" in message and KEY not in message


def test_a_variable_missing_when_the_run_starts_fails_as_missing_env_var(kinds, instance):
    kinds()
    # An env resource that supplies nothing: the run renders the file without KINDS_API_KEY.
    message, metadata = failure(sync(instance, kinds_env=ConnectorEnv()))
    assert metadata["restsync/kind"] == "missing_env_var"
    assert "Set KINDS_API_KEY in the environment of the run" in message
