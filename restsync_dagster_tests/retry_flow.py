"""A retry flow on a real instance, shared by the sensor tests on SQLite and on PostgreSQL:
connectors quick to fail, runs executed as the daemon would, and one sensor tick at a time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dagster as dg

from restsync_dagster.definitions import load_definitions
from restsync_dagster.orchestration.retry_sensor import SENSOR_NAME

CONNECTOR = """
name: {name}
source:
  client:
    base_url: "{{{{ env.{upper}_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.{upper}_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: customers
      endpoint: {{path: /v1/customers, data_selector: data, paginator: {{type: offset, limit: 100}}}}
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {{type: offset, limit: 100}}}}
retry:
  max_retries: 1
  backoff_factor: 0.01
  run_retries: 2
  run_base_delay_seconds: 0.3
"""


def tick(instance: dg.DagsterInstance):
    definitions = load_definitions()
    sensor = definitions.get_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(instance=instance, definitions=definitions) as context:
        return sensor.evaluate_tick(context)


def run(instance, job: str, **kwargs) -> dg.ExecuteInProcessResult:
    return (
        load_definitions()
        .resolve_job_def(job)
        .execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    )


def launch(instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute a run request the way the daemon would (same job, selection and tags)."""
    return run(
        instance, request.job_name, asset_selection=request.asset_selection, tags=request.tags
    )


def wait_until_due(seconds: float = 0.3 * 1.2 + 0.05) -> None:
    time.sleep(seconds)


def write_quick_connectors(directory: Path, api_url: str, monkeypatch: Any) -> None:
    """Connectors ``shop`` and ``depot`` on the demo API's generic vertical at ``api_url``, the
    only ones loaded (quick to fail: one HTTP retry, retry runs 0.3 s apart)."""
    directory.mkdir(exist_ok=True)
    for name in ("shop", "depot"):
        (directory / f"{name}.yaml").write_text(CONNECTOR.format(name=name, upper=name.upper()))
        monkeypatch.setenv(f"{name.upper()}_BASE_URL", api_url)
        monkeypatch.setenv(f"{name.upper()}_API_KEY", "demo-generic-key")
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(directory))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
