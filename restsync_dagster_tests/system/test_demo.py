"""``restsync demo`` as a new user meets it: a materialization from the UI's API, and a console
with no warning and no DEBUG line; the examples' schedules wait for the user to start them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from restsync_dagster.cli.demo import stop_process_group
from restsync_dagster_tests.helpers import free_port, graphql_client, table_count, wait_for_run

SCHEDULES = """{ schedulesOrError(repositorySelector: {repositoryName: "__repository__",
  repositoryLocationName: "restsync"}) { ... on Schedules { results { name
  scheduleState { status } } } } }"""


@pytest.mark.slow
def test_the_demo_materializes_quietly_and_leaves_the_schedules_to_the_user(
    restsync_home: Path, tmp_path: Path
):
    ui_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PYTHONWARNINGS")}
    env["RESTSYNC_HOME"] = str(restsync_home)
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "restsync_dagster.cli", "demo",
             "--api-port", str(api_port), "--port", str(ui_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{ui_port}"
            deadline = time.monotonic() + 180
            while True:
                assert demo.poll() is None, log.read_text()
                try:
                    if requests.get(f"{url}/server_info", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "the demo's UI did not answer"
                time.sleep(1)
            client = graphql_client(url)
            run_id = client.submit_job_execution("generic_sync")
            assert wait_for_run(client, run_id).value == "SUCCESS", log.read_text()
            body = requests.post(f"{url}/graphql", json={"query": SCHEDULES}, timeout=60).json()
            states = {
                s["name"]: s["scheduleState"]["status"]
                for s in body["data"]["schedulesOrError"]["results"]
            }
        finally:
            stop_process_group(demo)
    console = log.read_text(errors="replace")
    assert table_count(restsync_home, "generic.customers") == 250
    assert states and set(states.values()) == {"STOPPED"}, states
    assert "Warning" not in console and "WARNING" not in console, console
    assert " DEBUG " not in console and "- DEBUG -" not in console, console
    assert "Telemetry" not in console
