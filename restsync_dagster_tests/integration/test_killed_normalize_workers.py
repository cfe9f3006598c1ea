"""dlt's normalize worker processes of a sync killed by SIGKILL outlive it, waiting forever for
work; the next sync ends them (load/normalize.py) and loads every record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from restsync_dagster.load.normalize import (
    PARENT_VARIABLE,
    parent_marker,
    stop_orphaned_workers,
    usable_cores,
)
from restsync_dagster_tests.helpers import warehouse
from restsync_dagster_tests.integration.test_killed_runs import restsync_sync

KEY = "nested-key"
TICKETS = 20_000


def connector() -> str:
    return yaml.safe_dump(
        {
            "name": "nest",
            "rate_limit": {"max_concurrency": 4},
            # Records for dlt's own normalizer, which runs the workers (Arrow pages need none).
            "arrow": False,
            "source": {
                "client": {
                    "base_url": "{{ env.NEST_BASE_URL }}",
                    "auth": {
                        "type": "api_key",
                        "name": "api_key",
                        "location": "query",
                        "api_key": "{{ env.NEST_API_KEY }}",
                    },
                },
                "resources": [
                    {
                        "name": "tickets",
                        "primary_key": "id",
                        "write_disposition": "merge",
                        "endpoint": {
                            "path": "/generic/v1/tickets",
                            "data_selector": "data",
                            "paginator": {"type": "offset", "limit": 100},
                        },
                    }
                ],
            },
        }
    )


def workers_of(parent: int, working_dir: Path) -> list[int]:
    """Processes that inherited ``parent``'s :data:`PARENT_VARIABLE` for ``working_dir``."""
    marker = f"{PARENT_VARIABLE}={parent_marker(parent, str(working_dir))}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for its new parent to reap does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the workers are found through /proc")
def test_the_normalize_workers_of_a_killed_sync_are_ended_by_the_next_sync(
    start_demo_api, restsync_home, tmp_path, monkeypatch
):
    if usable_cores() < 2:
        pytest.skip("one core: restsync normalizes in one process")
    api = start_demo_api(api_keys={"*": KEY}, counts={"generic.tickets": TICKETS})
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "nest.yaml").write_text(connector())
    for name, value in {
        "RESTSYNC_CONNECTORS_DIR": str(connectors),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
        "NEST_BASE_URL": api.url(),
        "NEST_API_KEY": KEY,
        # Extracted files of 2,000 tickets: ten, so the run normalizes in worker processes.
        "RESTSYNC_NORMALIZE_WORKERS": "auto",
        "SOURCES__DATA_WRITER__FILE_MAX_ITEMS": "2000",
        "SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS": "500",
    }.items():
        monkeypatch.setenv(name, value)

    killed = restsync_sync("nest")
    # Killed once a worker has begun writing child tables (only dlt's normalizer makes them),
    # with files of its share still to go.
    working_dir = restsync_home / "dlt" / "restsync_nest"
    normalized = working_dir / "load" / "new"
    deadline = time.monotonic() + 120
    while not list(normalized.glob("*/new_jobs/tickets__*")):
        assert killed.poll() is None, killed.communicate()[0]
        assert time.monotonic() < deadline, "the sync never normalized"
        time.sleep(0.01)
    workers = workers_of(killed.pid, working_dir)
    os.kill(killed.pid, signal.SIGKILL)
    assert workers, "the sync normalized in worker processes"
    killed.wait(timeout=30)
    time.sleep(1)
    assert [w for w in workers if running(w)], "the workers outlived their run"

    after = restsync_sync("nest")
    output, _ = after.communicate(timeout=300)
    assert after.returncode == 0, output

    assert not [w for w in workers if running(w)], "the next sync ended them"
    with warehouse(restsync_home) as con:
        assert con.execute("select count(*), count(distinct id) from nest.tickets").fetchone() == (
            TICKETS,
            TICKETS,
        )


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the workers are found through /proc")
def test_only_the_orphans_of_the_pipeline_that_normalizes_are_ended(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mine, theirs = str(tmp_path / "mine"), str(tmp_path / "theirs")
    orphans = {
        directory: subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            env={**os.environ, PARENT_VARIABLE: parent_marker(gone.pid, directory)},
        )
        for directory in (mine, theirs)
    }
    alive = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, PARENT_VARIABLE: parent_marker(os.getpid(), mine)},
    )
    try:
        assert stop_orphaned_workers(mine) == [orphans[mine].pid]
        assert orphans[mine].wait(timeout=10) == -signal.SIGKILL
        assert orphans[theirs].poll() is None and alive.poll() is None
    finally:
        for process in (*orphans.values(), alive):
            process.kill()
            process.wait()
