"""A distinctive secret goes through every path measured to leak in dlt 1.31, then everything the
run wrote is searched for it: DAGSTER_HOME (event log, compute logs), RESTSYNC_HOME (dlt working
directories, trace files, DuckDB), stdout and stderr. Every search must find nothing."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.connector import parse_connector
from restsync_dagster.definitions import load_definitions
from restsync_dagster.extract.source import check_transport
from restsync_dagster.failures.errors import InsecureTransportError
from restsync_dagster_tests.helpers import files_holding

SECRET = "sk-live-7Hq2ZpX9wKc4"
PASSWORD = "pw-Zr8Tq4LmVx"

ITEMS = "endpoint: {path: /v1/items, data_selector: data, paginator: {type: offset, limit: 100}}"
CONNECTOR = """
name: vault
{extra}
source:
  client:
    base_url: "{base_url}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.VAULT_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      {endpoint}
retry: {{max_retries: 1, backoff_factor: 0.01}}
timeout_seconds: 1
"""


@pytest.fixture
def loopback_only(monkeypatch) -> None:
    """A guard: no test here may open a connection outside 127.0.0.0/8."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(
            ("127.", "::1")
        ):
            raise AssertionError(f"a test tried to reach {host}")
        return original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def write_vault(restsync_home, tmp_path, monkeypatch, loopback_only):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("VAULT_API_KEY", SECRET)
    monkeypatch.setenv("VAULT_PASSWORD", PASSWORD)

    def write(base_url: str, extra: str = "", endpoint: str = ITEMS) -> None:
        (connectors / "vault.yaml").write_text(
            CONNECTOR.format(base_url=base_url, extra=extra, endpoint=endpoint)
        )

    return write


def sync_and_search(tmp_path: Path, restsync_home: Path, capfd) -> tuple[bool, list[str]]:
    """Run vault_sync on a fresh DAGSTER_HOME; return success and every place a secret was found
    (the failure message, if any, is kept in ``sync_and_search.message``)."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        result = (
            load_definitions()
            .resolve_job_def("vault_sync")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
        events = " ".join(
            f"{e.message} {e.dagster_event.event_specific_data if e.dagster_event else ''}"
            for e in instance.all_logs(result.run_id)
        )
        failures = [e for e in result.all_events if e.is_step_failure]
        sync_and_search.message = (
            failures[0].step_failure_data.error.to_string() if failures else ""
        )  # type: ignore[attr-defined]
    captured = capfd.readouterr()
    found = []
    for secret in (SECRET, PASSWORD):
        if secret in events:
            found.append(f"event log: {secret}")
        if secret in captured.out + captured.err:
            found.append(f"stdout/stderr: {secret}")
        found += [f"DAGSTER_HOME/{p}" for p in files_holding(dagster_home, secret)]
        found += [f"RESTSYNC_HOME/{p}" for p in files_holding(restsync_home, secret)]
    assert (restsync_home / "dlt").exists() or not result.success, "the dlt working dir exists"
    return result.success, found


@pytest.fixture
def verbose_logging() -> Iterator[None]:
    """urllib3 and dlt at DEBUG, printed to stderr: they log full URLs with their parameters."""
    handler = logging.StreamHandler()
    loggers = [logging.getLogger("urllib3"), logging.getLogger("dlt")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)
        logger.removeHandler(handler)


CASES = {
    # name: (base url template, extra keys, endpoint, API keys, expect success)
    "a successful sync": ("{api}", "", ITEMS, SECRET, True),
    "a rejected key (dlt's own HTTPError path)": ("{api}", "", ITEMS, "other", False),
    "an endpoint with response_actions (requests' raise_for_status path)": (
        "{api}",
        "",
        "endpoint: {path: /v1/items, data_selector: data, paginator: {type: offset, limit: 100},"
        " response_actions: [{status_code: 404, action: ignore}]}",
        "other",
        False,
    ),
    "a connection error (urllib3's 'Max retries exceeded with url')": (
        "http://127.0.0.1:9/generic", "", ITEMS, SECRET, False,
    ),
    "a timeout (a server that stalls mid-body)": ("{api}", "", ITEMS, SECRET, False),
    "a parameter name outside dlt's list (api_token, x-api-key)": (
        "{api}",
        "",
        "endpoint: {path: /v1/items, data_selector: data, paginator: {type: offset, limit: 100},"
        ' params: {api_token: "{{ env.VAULT_API_KEY }}", x-api-key: "{{ env.VAULT_API_KEY }}"}}',
        "other",
        False,
    ),
    "credentials embedded in the URL": (
        "{api_userinfo}", "", ITEMS, "other", False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("logging_level", ["default", "debug"])
def test_the_secret_is_written_nowhere(
    case, logging_level, write_vault, start_demo_api, restsync_home, tmp_path, capfd, request
):
    base_url, extra, endpoint, accepted_key, succeeds = CASES[case]
    api = start_demo_api(api_keys={"generic": accepted_key})
    if case.startswith("a timeout"):
        api.misbehave("/generic/v1/items", "stall", from_offset=100)
    userinfo = api.url("generic").replace("http://", "http://user:{{ env.VAULT_PASSWORD }}@")
    write_vault(base_url.format(api=api.url("generic"), api_userinfo=userinfo), extra, endpoint)
    if logging_level == "debug":
        request.getfixturevalue("verbose_logging")
    success, found = sync_and_search(tmp_path, restsync_home, capfd)
    assert success is succeeds
    assert found == []


def test_without_redaction_by_value_debug_logging_would_leak(
    write_vault, start_demo_api, restsync_home, tmp_path, capfd, verbose_logging, monkeypatch
):
    """The protection is what passes the test above: switched off, the same run leaks."""
    import restsync_dagster.orchestration.run as sync_module

    monkeypatch.setattr(sync_module, "redacted_output", lambda redactor: _nothing())
    api = start_demo_api(api_keys={"generic": SECRET})
    write_vault(api.url("generic"))
    success, found = sync_and_search(tmp_path, restsync_home, capfd)
    assert success and any(f.startswith("stdout/stderr") for f in found)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_no_trace_pickle_is_left_in_the_dlt_working_directory(
    write_vault, restsync_home, tmp_path, capfd
):
    write_vault("http://127.0.0.1:9/generic")
    success, found = sync_and_search(tmp_path, restsync_home, capfd)
    assert not success and found == []
    assert list(restsync_home.rglob("trace.pickle")) == []


def test_credentials_never_go_over_plain_http_to_another_host(
    write_vault, restsync_home, tmp_path, capfd
):
    write_vault("http://192.0.2.10/v1")  # TEST-NET-1; the guard fixture refuses any connection
    success, found = sync_and_search(tmp_path, restsync_home, capfd)
    assert not success and found == []
    message = sync_and_search.message  # type: ignore[attr-defined]
    assert "would send its credentials over plain http:// to http://192.0.2.10/v1" in message
    assert "allow_insecure_http: true" in message


@pytest.mark.parametrize(
    "base_url",
    ["https://api.example.com", "http://127.0.0.1:8765/x", "http://localhost/x", "http://[::1]/x"],
)
def test_https_and_loopback_are_allowed_and_the_flag_allows_the_rest(base_url):
    for url, extra in ((base_url, ""), ("http://api.example.com", "allow_insecure_http: true")):
        connector = parse_connector(
            CONNECTOR.format(base_url=url, extra=extra, endpoint=ITEMS), "v.yaml"
        )
        check_transport(connector, connector.config.source)


@pytest.mark.parametrize(
    ("auth", "defaults"),
    [
        (  # the client secret goes to the token URL
            "{type: oauth2_client_credentials, access_token_url: 'http://auth.example.com/token', "
            "client_id: me, client_secret: '{{ env.VAULT_API_KEY }}'}",
            "{primary_key: id}",
        ),
        (  # every resource inherits an absolute endpoint on another host
            "{type: api_key, name: api_key, location: query, api_key: '{{ env.VAULT_API_KEY }}'}",
            "{primary_key: id, endpoint: {path: 'http://other.example.com/v1/items'}}",
        ),
    ],
)
def test_every_url_of_the_source_is_held_to_the_same_transport_rule(auth, defaults):
    text = (
        CONNECTOR.format(base_url="https://api.example.com", extra="", endpoint=ITEMS)
        .replace(
            'auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.VAULT_API_KEY }}"}',
            f"auth: {auth}",
        )
        .replace(
            "resource_defaults: {primary_key: id, write_disposition: merge}",
            f"resource_defaults: {defaults}",
        )
        .replace("endpoint: {path: /v1/items, ", "endpoint: {")
    )
    connector = parse_connector(text, "v.yaml")
    with pytest.raises(InsecureTransportError, match="over plain http://"):
        check_transport(connector, connector.config.source)
