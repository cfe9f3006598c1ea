"""A distinctive API key goes through successful and failed syncs, and is then searched for in
everything written: DAGSTER_HOME, RESTSYNC_HOME (dlt working dirs, DuckDB), stdout and stderr."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest

from restsync_dagster.definitions import load_definitions

SECRET = "sk-live-7Hq2ZpX9wKc4"

CONNECTOR = """
name: vault
source:
  client:
    base_url: "{{ env.VAULT_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.VAULT_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint: {path: /v1/items, data_selector: data, paginator: {type: offset, limit: 100}}
retry: {max_retries: 1, backoff_factor: 0.01}
timeout_seconds: 5
"""


def occurrences(root: Path, secret: str) -> list[str]:
    needles = {secret.encode(), quote(secret, safe="").encode()}
    found = []
    for path in root.rglob("*"):
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            found.append(str(path.relative_to(root)))
    return found


@pytest.fixture
def vault(restsync_home, tmp_path, monkeypatch):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "vault.yaml").write_text(CONNECTOR)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("VAULT_API_KEY", SECRET)
    return monkeypatch


@pytest.mark.parametrize("outcome", ["success", "rejected_key", "connection_error"])
def test_the_api_key_is_written_nowhere(
    outcome, vault, start_demo_api, restsync_home, tmp_path, capfd
):
    api = start_demo_api(api_keys={"generic": SECRET if outcome != "rejected_key" else "other-key"})
    base_url = "http://127.0.0.1:9/generic" if outcome == "connection_error" else api.url("generic")
    vault.setenv("VAULT_BASE_URL", base_url)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        result = (
            load_definitions()
            .resolve_job_def("vault_sync")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
        assert result.success is (outcome == "success")
        messages = " ".join(str(e.message) for e in instance.all_logs(result.run_id))
    assert SECRET not in messages
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err
    assert occurrences(dagster_home, SECRET) == []
    assert occurrences(restsync_home, SECRET) == []
    assert (restsync_home / "dlt").exists(), "the dlt working dir was searched"
