"""``auth: {type: oauth2_refresh_token}``: access tokens from a refresh token, renewed when they
expire, through the run's session; the client secret and the refresh token are written nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restsync_dagster.cli import main
from restsync_dagster_tests.helpers import (
    assert_no_secret_written,
    step_failure,
    sync_job,
    warehouse,
)

CLIENT_SECRET = "client-secret-5b2e91"
REFRESH_TOKEN = "refresh-token-c47a03"
CONNECTOR = """
name: renewed
source:
  client:
    base_url: "{{ env.RENEWED_BASE_URL }}"
    auth:
      type: oauth2_refresh_token
      access_token_url: "{{ env.RENEWED_BASE_URL }}/oauth/token"
      client_id: renewed-client
      client_secret: "{{ env.RENEWED_CLIENT_SECRET }}"
      refresh_token: "{{ env.RENEWED_REFRESH_TOKEN }}"
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint: {path: /generic/v1/items, data_selector: data, paginator: {type: offset, limit: 50}}
"""


@pytest.fixture
def renewed(restsync_home, tmp_path, monkeypatch, start_demo_api):
    def start(**oauth):
        api = start_demo_api(
            counts={"generic.items": 600},
            latency_ms=40,
            oauth_client_id="renewed-client",
            oauth_client_secret=CLIENT_SECRET,
            oauth_refresh_token=REFRESH_TOKEN,
            **oauth,
        )
        directory = tmp_path / "connectors"
        directory.mkdir(exist_ok=True)
        (directory / "renewed.yaml").write_text(CONNECTOR)
        monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(directory))
        monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
        monkeypatch.setenv("RENEWED_BASE_URL", api.url())
        monkeypatch.setenv("RENEWED_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.setenv("RENEWED_REFRESH_TOKEN", REFRESH_TOKEN)
        return api

    return start


def assert_written_nowhere(home: Path, instance, output: str) -> None:
    for secret in (CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in output
        assert_no_secret_written(home, instance, secret)


def test_tokens_are_renewed_as_they_expire_and_a_rotated_refresh_token_is_used(
    renewed, instance, restsync_home, capfd
):
    api = renewed(oauth_expires_in=0.3, oauth_rotate=True)
    assert sync_job("renewed", instance).success
    assert api.stats()["tokens_issued"] >= 2, "13 pages of 40 ms outlive a 0.3 s token"
    assert "401" not in api.stats()["status_counts"], "renewed before it ran out"
    with warehouse(restsync_home) as con:
        rows = con.execute("select count(*), count(distinct id) from renewed.items").fetchall()
    assert rows == [(600, 600)]
    output = capfd.readouterr()
    assert_written_nowhere(restsync_home, instance, output.out + output.err)


def test_a_second_sync_and_a_preview_hold_and_nothing_leaks(
    renewed, instance, restsync_home, capfd
):
    api = renewed()
    assert main(["preview", "renewed", "--pages", "1", "--json"]) == 0
    previewed = capfd.readouterr()
    assert json.loads(previewed.out)["tables"][0]["rows"] == 50
    assert not restsync_home.exists()
    assert sync_job("renewed", instance).success
    assert sync_job("renewed", instance).success
    with warehouse(restsync_home) as con:
        rows = con.execute("select count(*), count(distinct id) from renewed.items").fetchall()
    assert rows == [(600, 600)]
    assert api.stats()["tokens_issued"] == 3, "one per run: preview and two syncs"
    output = capfd.readouterr()
    everything = previewed.out + previewed.err + output.out + output.err
    assert_written_nowhere(restsync_home, instance, everything)


def test_a_refused_refresh_token_fails_with_the_servers_words_masked_and_leaks_nothing(
    renewed, instance, restsync_home, monkeypatch, capfd
):
    renewed()
    monkeypatch.setenv("RENEWED_REFRESH_TOKEN", "refresh-token-wrong-99")
    result = sync_job("renewed", instance)
    assert not result.success
    message, metadata = step_failure(result)
    assert metadata["restsync/status"] == 400 and "/oauth/token" in metadata["restsync/url"]
    assert metadata["restsync/detail"] == (
        "The OAuth server refused the request: invalid_grant (refresh token '***' is not valid "
        "or has expired). Check RENEWED_CLIENT_SECRET, RENEWED_REFRESH_TOKEN."
    )
    output = capfd.readouterr()
    assert "refresh-token-wrong-99" not in output.out + output.err + message
    assert_written_nowhere(restsync_home, instance, output.out + output.err)


def test_preview_lists_the_token_request_as_a_post_and_a_refusal_in_the_servers_words(
    renewed, monkeypatch, capsys
):
    renewed()
    assert main(["preview", "renewed", "--pages", "2"]) == 0
    out = capsys.readouterr().out
    listed = [
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and "->" in line
    ]
    assert listed == ["POST", "GET", "GET"], out
    assert "  POST http://127.0.0.1:" in out and "/oauth/token -> 200" in out
    monkeypatch.setenv("RENEWED_REFRESH_TOKEN", "refresh-token-wrong-99")
    assert main(["preview", "renewed"]) == 1
    err = capsys.readouterr().err
    assert "invalid_grant (refresh token '***' is not valid or has expired)" in err
    assert "refresh-token-wrong-99" not in err
