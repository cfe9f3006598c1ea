"""The ``restsync`` command, in process and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from restsync_dagster.cli import main
from restsync_dagster_tests.helpers import point_connectors_at, table_count

REPO = Path(__file__).resolve().parents[2]


def restsync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def test_validate_lists_connectors_resources_and_the_variables_each_needs(restsync_home, capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "ecommerce  (" in out and "resources: customers, products, orders" in out
    assert "env ECOMMERCE_API_KEY: secret, required" in out
    assert "env ECOMMERCE_BASE_URL: variable, default 'http://127.0.0.1:8765/ecommerce'" in out
    assert "\n5 connector(s) valid.\n" in out
    # restsync_home clears every connector variable: each required one is named as unset.
    assert out.rstrip().splitlines()[-1].startswith("5 required variable(s) not set here: ")


def test_validate_json_is_machine_readable(restsync_home, capsys):
    assert main(["validate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["problems"] == []
    described = {c["name"]: c for c in report["connectors"]}
    assert described["database"]["resources"] == ["databases", "records"]
    assert described["database"]["example"] is True


def test_validate_json_is_json_when_files_are_broken_too(
    restsync_home, tmp_path, monkeypatch, capsys
):
    (tmp_path / "broken.yaml").write_text("name: broken\nretry: {max_retries: -2}\nsource: {}\n")
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(tmp_path))
    assert main(["validate", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["connectors"] == []
    assert {k: report["problems"][0][k] for k in ("file", "key_path")} == {
        "file": str(tmp_path / "broken.yaml"),
        "key_path": "retry.max_retries",
    }


def test_validate_and_list_name_only_the_connectors_asked_for_and_mark_the_examples(
    restsync_home, capsys
):
    assert main(["validate", "generic", "analytics"]) == 0
    out = capsys.readouterr().out
    assert "generic  (" in out and "analytics  (" in out and "database" not in out
    assert "[bundled example]" in out
    assert main(["validate", "nope"]) == 2
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listed] == [
        "analytics", "communications", "database", "ecommerce", "generic",
    ]  # fmt: skip
    assert all(c["example"] for c in listed)


def test_the_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("restsync 0.")


def test_validate_exits_1_with_one_line_per_problem_and_no_traceback(restsync_home, tmp_path):
    (tmp_path / "broken.yaml").write_text("name: broken\nretry: {max_retries: -2}\nsource: {}\n")
    env = {**os.environ, "RESTSYNC_CONNECTORS_DIR": str(tmp_path)}
    result = restsync("validate", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "restsync: 2 problems in connector files:"
    assert (
        "broken.yaml:2: retry.max_retries: Input should be greater than or equal to 0" in lines[1]
    )
    assert "broken.yaml:3: source.resources: must be a non-empty list of resources" in lines[2]


def test_sync_json_reports_every_resource_and_a_second_sync_keeps_the_counts(
    demo_env, restsync_home, tmp_path
):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    first = restsync("sync", "--json", env=env)
    assert first.returncode == 0, first.stderr
    outcomes = json.loads(first.stdout)
    assert len(outcomes) == 11
    assert all(o["status"] == "ok" and o["rows_loaded"] > 0 for o in outcomes)
    orders = next(o for o in outcomes if o["asset_key"] == "ecommerce/orders")
    assert orders == {
        **orders,
        "connector": "ecommerce",
        "resource": "orders",
        "table": "warehouse.ecommerce.orders",
        "rows_loaded": 510,
    }
    counts = {o["table"]: table_count(restsync_home, o["table"].split(".", 1)[1]) for o in outcomes}
    second = restsync("sync", "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert {
        o["table"]: table_count(restsync_home, o["table"].split(".", 1)[1]) for o in outcomes
    } == counts
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 10, "each connector ran twice, recorded in DAGSTER_HOME"
        assert {r.job_name for r in runs} == {
            "analytics_sync", "communications_sync", "database_sync", "ecommerce_sync", "generic_sync",
        }  # fmt: skip


def test_sync_of_an_unknown_connector_exits_2_and_names_the_known_ones(restsync_home, capsys):
    assert main(["sync", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown connector(s): nope; known: analytics, communications, database" in err


def test_sync_without_the_api_key_fails_naming_the_variable(
    demo_env, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("GENERIC_API_KEY")
    assert main(["sync", "generic"]) == 1
    captured = capsys.readouterr()
    assert "FAILED   generic/customers" in captured.out
    assert "environment variable(s) not set: GENERIC_API_KEY" in captured.err
    assert demo_env.requests() == []


def test_a_failed_sync_prints_the_reason_but_never_the_key(
    start_demo_api, restsync_home, tmp_path, monkeypatch, capsys
):
    api = start_demo_api(api_keys={"generic": "the-right-key-123"})
    point_connectors_at(api, monkeypatch)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("GENERIC_API_KEY", "a-wrong-key-4f9a7c")
    assert main(["sync", "generic", "--json"]) == 1
    captured = capsys.readouterr()
    outcomes = {o["resource"]: o for o in json.loads(captured.out)}
    assert outcomes["customers"]["status"] == "failed"
    assert "the API answered HTTP 401" in outcomes["customers"]["error"]
    assert "check GENERIC_API_KEY" in outcomes["customers"]["error"], "the 401 names the variable"
    # items was never tried: not failed with another resource's error, and its table is named.
    assert outcomes["items"] == {
        **outcomes["items"],
        "status": "not_run",
        "error": None,
        "table": "warehouse.generic.items",
    }
    assert "customers" in outcomes["items"]["reason"]
    assert "a-wrong-key-4f9a7c" not in captured.out + captured.err


OPEN_INSTANCE = """
import sys
from restsync_dagster.orchestration.instance import open_instance
from restsync_dagster.settings import Settings
with open_instance(Settings.from_env()) as instance:
    instance.get_runs_count()
"""


def test_syncs_starting_at_once_on_a_fresh_dagster_home_do_not_race_to_create_it(tmp_path):
    # Unguarded, a third of such processes fail while creating the SQLite storages
    # (UNIQUE constraint failed: alembic_version, or "more than one head").
    failures = []
    for attempt in range(5):
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / f"home{attempt}")}
        Path(env["DAGSTER_HOME"]).mkdir()
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_INSTANCE], env=env, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        for process in processes:
            _, err = process.communicate(timeout=120)
            if process.returncode != 0:
                lines = err.strip().splitlines()
                failures.append(next((ln for ln in reversed(lines) if "Error" in ln), lines[-1]))
    assert failures == []


def test_sync_and_preview_send_nothing_to_dlts_usage_telemetry(demo_env, restsync_home, tmp_path):
    # dlt reports anonymous usage events over HTTP unless told not to; restsync requests nothing
    # but the APIs its files name. Here dlt's endpoint is a recorder on 127.0.0.1.
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "RUNTIME__DLTHUB_TELEMETRY_ENDPOINT": f"http://127.0.0.1:{server.server_port}/track",
        }
        env.pop("RUNTIME__DLTHUB_TELEMETRY", None)
        (tmp_path / "dagster_home").mkdir()
        for command in (["sync", "generic"], ["preview", "generic"]):
            result = restsync(*command, env=env)
            assert result.returncode == 0, result.stderr
            assert seen == [], command
        # The recorder would have heard it: asked for, dlt's events do arrive.
        result = restsync("sync", "generic", env={**env, "RUNTIME__DLTHUB_TELEMETRY": "true"})
        assert result.returncode == 0, result.stderr
        assert seen, "dlt reports to the recorder when telemetry is on"
    finally:
        server.shutdown()
        server.server_close()
