"""Runs whose process died on this machine (SIGKILL, out of memory): marked failed, slots freed.

A run killed in the middle of its sync step stays ``STARTED`` in the instance and keeps the
connector's pool slot (limit 1), so every later sync of that connector waits for a slot forever.
Dagster's run monitoring fixes this for run launchers that can check a worker's health (the
Kubernetes launcher of ``deploy/dagster.yaml``); the default launcher of ``dagster dev`` and
``execute_in_process`` (``restsync sync``) cannot.

What restsync adds: every run records the process its sync step runs in (``restsync/worker``,
``<host>:<pid>``; ``restsync sync`` sets it when it creates the run). A run killed before its
step began has no such tag yet, but already holds its slot: on an instance with SQLite storage
(one machine by construction) the process is then the one Dagster's executor named in the run's
event log ("Executing steps in process (pid: N)"). Before ``restsync sync`` starts a connector, and on every tick of the retry sensor, the
in-progress runs of the connector whose process on this host no longer exists are reported
failed (with a message saying so) and their pool slots freed. Runs on other hosts are left to
Dagster's run monitoring. (The storage is told by its class name, ``Sqlite...Storage``, as of
dagster 1.13.)
"""

from __future__ import annotations

import os
import socket

import dagster as dg

from restsync_dagster.load.locks import process_exists
from restsync_dagster.names import TAG_CONNECTOR, TAG_WORKER

IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def worker_tag() -> dict[str, str]:
    """``restsync/worker`` for a run executing in this process."""
    return {TAG_WORKER: f"{socket.gethostname()}:{os.getpid()}"}


def _single_machine(instance: dg.DagsterInstance) -> bool:
    return type(instance.event_log_storage).__name__.startswith("Sqlite")


def _worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun, host: str) -> int | None:
    """The process ``run`` executes in, if it is on this host; None when unknown."""
    worker_host, _, pid = run.tags.get(TAG_WORKER, "").rpartition(":")
    if pid.isdigit():
        return int(pid) if worker_host == host else None
    if not _single_machine(instance):
        return None
    # Dagster's executors say "Executing steps in process (pid: N)" before any step claims a slot.
    for entry in reversed(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        text = getattr((data.metadata if data else {}).get("pid"), "value", None)
        if text is not None and str(text).isdigit():
            return int(str(text))
    return None


def release_dead_runs(instance: dg.DagsterInstance, connectors: list[str]) -> list[str]:
    """Fail the in-progress runs of ``connectors`` whose process on this host is gone, and free
    their pool slots; returns their run ids."""
    host = socket.gethostname()
    released = []
    for connector in connectors:
        runs = instance.get_runs(
            filters=dg.RunsFilter(statuses=IN_PROGRESS, tags={TAG_CONNECTOR: connector}),
            limit=100,
        )
        for run in runs:
            pid = _worker_pid(instance, run, host)
            if pid is None or process_exists(pid):
                continue
            instance.report_run_failed(
                run,
                message=(
                    f"connector {connector!r}: the process of this run ({pid} on {host}) is gone "
                    "(killed or crashed); restsync marked the run failed and freed its pool slots. "
                    "Nothing it had not committed was loaded; the next sync starts from the last "
                    "committed cursor."
                ),
            )
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released
