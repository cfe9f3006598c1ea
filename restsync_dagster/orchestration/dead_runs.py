"""Runs whose process died (SIGKILL, out of memory, a lost node): marked failed, slots freed.

A run killed in the middle of its sync step stays ``STARTED`` in the instance and keeps the
connector's pool slot (limit 1), so every later sync of that connector waits for a slot forever.
Dagster's run monitoring fixes this for run launchers that can check a worker's health (the
Kubernetes launcher of ``deploy/dagster.yaml``); the default launcher of ``dagster dev`` and
``execute_in_process`` (``restsync sync``) cannot.

What restsync adds, before ``restsync sync`` starts a connector and on every tick of the retry
sensor: the in-progress runs of the connector that are provably dead are reported failed (with
a message saying so) and their pool slots freed. A run proves it is alive in one of two ways:

- **A lock held for the life of its process** (:func:`prove_alive`), where the lock store holds
  across hosts (PostgreSQL, load/locks.py): the run takes the lock ``restsync_run.<run id>`` when
  its step starts, and tags the run with the lock database (``restsync/alive_lock``). The sweep
  fails the run only when it can take that lock itself (then releases it at once): the session
  that held it has ended, so the process is gone or cut off from the database (a cut-off run
  fails at its next lock check, before it loads). Host names and pids play no part, so pods that
  share a host name and pid numbers never fail each other's runs.
- **host:pid**, on an instance with SQLite storage only (one machine by construction): the
  process of the run's ``restsync/worker`` tag (``<host>:<pid>``; ``restsync sync`` sets it when it
  creates the run), or, for a run killed before its step began, the process Dagster's executor
  named in the run's event log ("Executing steps in process (pid: N)").

A run of the connector's job that was created but never queued or launched (``NOT_STARTED``,
with neither tag, for :data:`NEVER_SUBMITTED_SECONDS`: the process creating it failed between
its two writes) never starts; the sweep fails it too, so it does not sit in progress forever.

Any other run (no tag yet, another lock database) is left to Dagster's run monitoring: a live
run is never failed. (The storage is told by its class name, ``Sqlite...Storage``, dagster 1.13.)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import time
import uuid

import dagster as dg

from restsync_dagster import names
from restsync_dagster.load.locks import LockStore, process_exists
from restsync_dagster.names import TAG_ALIVE_LOCK, TAG_CONNECTOR, TAG_WORKER, run_lock_name
from restsync_dagster.orchestration.held import run_lock_store
from restsync_dagster.settings import Settings

IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def worker_tag() -> dict[str, str]:
    """``restsync/worker`` for a run executing in this process."""
    return {TAG_WORKER: f"{socket.gethostname()}:{os.getpid()}"}


#: The liveness lock this process holds, by run id (one run at a time per process).
_ALIVE: dict[str, contextlib.ExitStack] = {}


@atexit.register
def _let_go() -> None:
    """Release the liveness lock while the interpreter still can (its exit would anyway)."""
    while _ALIVE:
        _ALIVE.popitem()[1].close()


def prove_alive(instance: dg.DagsterInstance, run: dg.DagsterRun, store: LockStore) -> None:
    """Hold ``run``'s liveness lock until this process exits (or starts another run), and tag
    the run with where it is held; on a store that holds on one machine only, tag ``host:pid``.

    Called at the start of each step of the run (the steps run in the run's own process): the
    first takes the lock, the others find it held. Names the lock session after the run, so
    ``pg_stat_activity`` tells whose locks these are."""
    connector = run.tags.get(TAG_CONNECTOR, "")
    store.name_session(f"restsync {connector} run {run.run_id[:8]}")
    if not store.across_hosts:
        instance.add_run_tags(run.run_id, worker_tag())
        return
    if run.run_id not in _ALIVE:
        for finished in list(_ALIVE):  # a process runs one run at a time: the others ended
            _ALIVE.pop(finished).close()
        stack = contextlib.ExitStack()
        stack.enter_context(store.hold(run_lock_name(run.run_id)))
        _ALIVE[run.run_id] = stack
    if run.tags.get(TAG_ALIVE_LOCK) != store.where:
        instance.add_run_tags(run.run_id, {TAG_ALIVE_LOCK: store.where})


def alive_from_creation(store: LockStore, connector: str) -> tuple[str, dict[str, str]]:
    """A run id for a run this process is about to create and execute (``restsync sync``), with
    its liveness held from before the run exists: returns the id and the tags the run must be
    created with.

    Without it, a process killed between creating its run and its first step (where
    :func:`prove_alive` takes the lock) leaves a ``NOT_STARTED`` run that nothing can tell dead
    across hosts, in progress forever (the pods soak found one, seed 23). With it, the sweep
    fails such a run like any other whose lock is free. On a store that holds on one machine
    only, the ``host:pid`` tag does the same."""
    run_id = str(uuid.uuid4())  # what Dagster's own run ids are
    store.name_session(f"restsync {connector} run {run_id[:8]}")
    if not store.across_hosts:
        return run_id, worker_tag()
    for finished in list(_ALIVE):  # a process runs one run at a time: the others ended
        _ALIVE.pop(finished).close()
    stack = contextlib.ExitStack()
    stack.enter_context(store.hold(run_lock_name(run_id)))
    _ALIVE[run_id] = stack
    return run_id, {TAG_ALIVE_LOCK: store.where}


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


def release_dead_runs(
    instance: dg.DagsterInstance, connectors: list[str], store: LockStore | None = None
) -> list[str]:
    """Fail the in-progress runs of ``connectors`` that are provably dead, and free their pool
    slots; returns their run ids."""
    store = store or run_lock_store(instance, Settings.from_env())
    released = []
    for connector in connectors:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=IN_PROGRESS, tags={TAG_CONNECTOR: connector}),
            limit=100,
        )
        for record in records:
            run = record.dagster_run
            why = _never_submitted(record) or _why_dead(instance, run, store)
            if why is None:
                continue
            instance.report_run_failed(
                run,
                message=(
                    f"connector {connector!r}: {why} (killed or crashed); restsync marked the run "
                    "failed and freed its pool slots. Nothing it had not committed was loaded; "
                    "the next sync starts from the last committed cursor."
                ),
            )
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
        free_slots_of_ended_runs(instance, connector)
    return released


def free_slots_of_ended_runs(instance: dg.DagsterInstance, connector: str) -> list[str]:
    """Free the slots of ``connector``'s pool still held by runs that have ended (a run failed by
    Dagster's run monitoring after its pod died frees none); returns those runs' ids. What
    ``free_slots_after_run_end_seconds`` does where the instance sets it."""
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return []
    info = storage.get_concurrency_info(names.pool_name(connector))
    freed = []
    for run_id in dict.fromkeys(slot.run_id for slot in info.claimed_slots):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


#: How long a run may stay ``NOT_STARTED`` with nobody proving it alive before the sweep calls it
#: abandoned. Dagster's webserver, sensors, schedules and backfills create a run and queue or
#: launch it in the same call, within a second; only a failure in between leaves it.
NEVER_SUBMITTED_SECONDS = 120.0


def _never_submitted(record: dg.RunRecord) -> str | None:
    """Why ``record``'s run is abandoned before it was queued, or None.

    The webserver creates a run and then queues it, in two writes: when the second fails (its
    pooled connection closed by a PostgreSQL restart, the pods soak found), the user sees an
    error, asks again, and the first run stays ``NOT_STARTED`` in the UI forever; Dagster's run
    monitoring watches only runs that were launched. A run ``restsync sync`` creates is not one
    of these: it carries its liveness from before it exists (:func:`alive_from_creation`)."""
    run = record.dagster_run
    if run.status != dg.DagsterRunStatus.NOT_STARTED:
        return None
    if TAG_ALIVE_LOCK in run.tags or TAG_WORKER in run.tags:
        return None
    age = time.time() - record.create_timestamp.timestamp()
    if age < NEVER_SUBMITTED_SECONDS:
        return None
    return (
        f"it was created {age:.0f} s ago and never queued or launched (the process creating it "
        "failed before it could), so it will never start"
    )


def _why_dead(instance: dg.DagsterInstance, run: dg.DagsterRun, store: LockStore) -> str | None:
    """Why ``run`` is dead, or None when it is alive or nothing here can tell."""
    alive_at = run.tags.get(TAG_ALIVE_LOCK)
    if alive_at is not None:
        if alive_at != store.where or not store.is_free(run_lock_name(run.run_id)):
            return None
        return f"the process of this run no longer holds its lock in {alive_at}, so it is gone"
    if not _single_machine(instance):
        return None
    host = socket.gethostname()
    pid = _worker_pid(instance, run, host)
    if pid is None or process_exists(pid):
        return None
    return f"the process of this run ({pid} on {host}) is gone"
