"""Runs whose process died on this machine (SIGKILL, out of memory): marked failed, slots freed.

A run killed in the middle of its sync step stays ``STARTED`` in the instance and keeps the
connector's pool slot (limit 1), so every later sync of that connector waits for a slot forever.
Dagster's run monitoring fixes this for run launchers that can check a worker's health (the
Kubernetes launcher of ``deploy/dagster.yaml``); the default launcher of ``dagster dev`` and
``execute_in_process`` (``restsync sync``) cannot.

What restsync adds: every run records the process its sync step runs in (``restsync/worker``,
``<host>:<pid>``). Before ``restsync sync`` starts a connector, and on every tick of the retry
sensor, the in-progress runs of the connector on this host whose process no longer exists are
reported failed (with a message saying so) and their pool slots freed. Runs on other hosts are
left to Dagster's run monitoring.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


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
            worker_host, _, pid = run.tags.get(TAG_WORKER, "").rpartition(":")
            if worker_host != host or not pid.isdigit() or _alive(int(pid)):
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
