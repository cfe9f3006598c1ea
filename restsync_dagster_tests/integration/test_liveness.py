"""Liveness without pids, on a PostgreSQL instance: a run's process (here a "pod" with its own
PID numbering and the same host name as ours) proves the run alive by holding its lock; the
dead-run sweep never fails it, even though its ``host:pid`` names a pid that is gone on this
host, and fails it within seconds of the pod being killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import dagster as dg

from restsync_dagster.names import TAG_ALIVE_LOCK, TAG_CONNECTOR, TAG_WORKER
from restsync_dagster.orchestration import dead_runs
from restsync_dagster.orchestration.dead_runs import release_dead_runs
from restsync_dagster_tests.helpers import in_pod, line_process

#: The run's worker, as a run's step starts: prove the run alive, then live until stdin closes.
WORKER = r"""
import sys
import dagster as dg
from restsync_dagster.orchestration.dead_runs import prove_alive
from restsync_dagster.orchestration.held import run_lock_store
from restsync_dagster.settings import Settings
instance = dg.DagsterInstance.get()
run = instance.get_run_by_id(sys.argv[1])
prove_alive(instance, run, run_lock_store(instance, Settings.from_env()))
print("alive", flush=True)
sys.stdin.read()
"""


@dg.op
def generic_assets() -> None:
    """Stands for the connector's sync step (never executed here)."""


@dg.job
def generic_sync() -> None:
    generic_assets()


def production_instance_password() -> str:
    password = os.environ["DAGSTER_PG_PASSWORD"]
    assert password
    return password


def _gone_pid() -> int:
    """A pid no process on this host has now (a process that just ended)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def _started_run(instance: dg.DagsterInstance, worker: str) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        job_def=generic_sync, tags={TAG_CONNECTOR: "generic", TAG_WORKER: worker}
    )
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=run.job_name, message="go"),
    )
    instance.event_log_storage.claim_concurrency_slot("restsync_generic", run.run_id, "assets")
    return run


def test_the_sweep_never_fails_a_live_run_whose_host_and_pid_collide_and_fails_a_dead_one(
    unshare_allowed,
    production_instance,
    production_dagster_home,
    restsync_home,
):
    instance = production_instance
    instance.event_log_storage.set_concurrency_slots("restsync_generic", 1)
    host = socket.gethostname()
    # What a pod with our host name writes: its own pid, which on this host is nobody's.
    run = _started_run(instance, f"{host}:{_gone_pid()}")
    assert release_dead_runs(instance, ["generic"]) == [], "no lock yet: left to run monitoring"

    pod = line_process(
        in_pod(host, [sys.executable, "-c", WORKER, run.run_id], private_home=False),
        {**os.environ, "DAGSTER_HOME": str(production_dagster_home)},
        stdin=True,
    )
    try:
        assert pod.stdout is not None
        line = pod.stdout.readline().strip()
        assert line == "alive", line + (pod.stdout.read() if pod.poll() is not None else "")
        tagged = instance.get_run_by_id(run.run_id)
        assert tagged is not None and tagged.tags[TAG_ALIVE_LOCK].startswith("postgresql://")
        assert production_instance_password() not in tagged.tags[TAG_ALIVE_LOCK]
        for _ in range(3):
            assert release_dead_runs(instance, ["generic"]) == []
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

        os.kill(pod.pid, signal.SIGKILL)
        pod.wait(timeout=30)
        killed, released = time.monotonic(), []
        while not released and time.monotonic() - killed < 30:
            released = release_dead_runs(instance, ["generic"])
            time.sleep(0.2)
        assert released == [run.run_id]
        assert time.monotonic() - killed < 5
    finally:
        pod.kill()
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "no longer holds its lock" in (failure.message or "")
    assert not instance.event_log_storage.get_concurrency_info("restsync_generic").claimed_slots


def test_the_sweep_frees_the_slots_a_run_held_when_it_ended_without_freeing_them(tmp_path):
    """A run that run monitoring failed after its pod died never freed its pool slot."""
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots("restsync_generic", 1)
        run = _started_run(instance, "elsewhere:1")
        instance.report_run_failed(run, message="run worker's pod gone (run monitoring)")
        assert instance.event_log_storage.get_concurrency_info("restsync_generic").claimed_slots

        assert release_dead_runs(instance, ["generic"]) == []
        info = instance.event_log_storage.get_concurrency_info("restsync_generic")
        assert not info.claimed_slots


#: What ``restsync sync`` does before its run exists, then a kill before the run's first step:
#: the run is created ``NOT_STARTED`` and the process lives until stdin closes.
CREATOR = r"""
import sys
import dagster as dg
from restsync_dagster.orchestration.dead_runs import alive_from_creation
from restsync_dagster.orchestration.held import run_lock_store
from restsync_dagster.settings import Settings
from restsync_dagster_tests.integration.test_liveness import generic_sync
instance = dg.DagsterInstance.get()
run_id, tags = alive_from_creation(run_lock_store(instance, Settings.from_env()), "generic")
instance.create_run_for_job(
    job_def=generic_sync, run_id=run_id, tags={"restsync/connector": "generic", **tags}
)
print(run_id, flush=True)
sys.stdin.read()
"""


def test_a_run_whose_cli_pod_died_before_its_first_step_is_failed_by_the_sweep(
    unshare_allowed, production_instance, production_dagster_home
):
    instance = production_instance
    pod = line_process(
        in_pod("cli-pod", [sys.executable, "-c", CREATOR], private_home=False),
        {**os.environ, "DAGSTER_HOME": str(production_dagster_home)},
        stdin=True,
    )
    try:
        assert pod.stdout is not None
        run_id = pod.stdout.readline().strip()
        run = instance.get_run_by_id(run_id)
        assert run is not None, run_id + (pod.stdout.read() if pod.poll() is not None else "")
        assert run.status == dg.DagsterRunStatus.NOT_STARTED
        assert run.tags[TAG_ALIVE_LOCK].startswith("postgresql://")
        for _ in range(3):
            assert release_dead_runs(instance, ["generic"]) == [], "its creator is alive"

        os.kill(pod.pid, signal.SIGKILL)
        pod.wait(timeout=30)
        killed, released = time.monotonic(), []
        while not released and time.monotonic() - killed < 30:
            released = release_dead_runs(instance, ["generic"])
            time.sleep(0.2)
    finally:
        if pod.poll() is None:
            pod.kill()
            pod.wait(timeout=30)
    assert released == [run_id], "a run never started by a dead process stays in progress"
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_created_but_never_queued_is_failed_once_its_grace_has_passed(tmp_path, monkeypatch):
    """What the webserver leaves when queuing a run it created fails (a PostgreSQL restart)."""
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        abandoned = instance.create_run_for_job(
            job_def=generic_sync, tags={TAG_CONNECTOR: "generic"}
        )
        creating = instance.create_run_for_job(
            job_def=generic_sync, tags={TAG_CONNECTOR: "generic", TAG_ALIVE_LOCK: "elsewhere"}
        )
        assert release_dead_runs(instance, ["generic"]) == [], "within its grace"

        monkeypatch.setattr(dead_runs, "NEVER_SUBMITTED_SECONDS", 0.0)
        assert release_dead_runs(instance, ["generic"]) == [abandoned.run_id]
        assert instance.get_run_by_id(abandoned.run_id).status == dg.DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(abandoned.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "never queued or launched" in (failure.message or "")
        # One proving itself alive elsewhere is that process's to start (or the lock's to fail).
        assert instance.get_run_by_id(creating.run_id).status == dg.DagsterRunStatus.NOT_STARTED
