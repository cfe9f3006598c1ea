"""Starting syncs the ways production does, telling which phase a sync is in, and killing it.

A sync's phase is read from what it leaves behind, never from inside it: dlt's working directory
(a package being extracted under ``normalize/<hash>/``, extracted under ``normalize/extracted/``,
being loaded under ``load/normalized/``) and the run's event log in the Dagster instance (the
checks step started; the first materialization written, when the instance is mid-write).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster_tests.soak.world import World

PHASES = ("extract", "normalize", "load", "checks", "instance")
LAUNCHES = ("cli", "schedule", "two_at_once")
_STARTED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]


def packages(pipelines_dir: Path) -> set[str]:
    """Every load package directory of every pipeline, with the stage it sits in."""
    found = set()
    for stage in ("normalize/*/*", "load/new/*", "load/normalized/*"):
        found |= {str(p.relative_to(pipelines_dir)) for p in pipelines_dir.glob(f"*/{stage}")}
    return found


def dlt_phases(pipelines_dir: Path, before: set[str]) -> set[str]:
    """The phases new packages (not there at ``before``) are in."""
    phases = set()
    for package in packages(pipelines_dir) - before:
        parts = package.split("/")
        if parts[1] == "load":
            phases.add("load" if parts[2] == "normalized" else "normalize")
        elif parts[2] == "extracted":
            phases.add("normalize")
        else:
            phases.add("extract")
    return phases


def instance_phases(instance: dg.DagsterInstance, since: float) -> set[str]:
    """``checks`` once a running sync's checks step started, ``instance`` once it is writing
    its materializations."""
    phases = set()
    runs = instance.get_run_records(filters=dg.RunsFilter(statuses=_STARTED), limit=10)
    for record in runs:
        if record.create_timestamp.timestamp() < since:
            continue
        run_id = record.dagster_run.run_id
        if instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1
        ).records:
            phases.add("instance")
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START):
            if entry.step_key and "check" in entry.step_key:
                phases.add("checks")
    return phases


@dataclass
class Sync:
    """One process that syncs: a ``restsync sync``, a schedule tick or a retry sensor tick."""

    how: str  # cli | schedule | sensor
    process: subprocess.Popen[str]
    started: float = field(default_factory=time.time)
    killed: tuple[str, str] | None = None  # (phase, signal name)
    hung: bool = False

    def wait(self, timeout: float = 300) -> tuple[int, str]:
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.hung = True
            os.killpg(self.process.pid, signal.SIGKILL)
            out, _ = self.process.communicate()
        return self.process.returncode, out

    def outcome(self, out: str) -> dict[str, Any]:
        """The worker's JSON line (schedule and sensor ticks); empty for ``restsync sync``."""
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return dict(json.loads(line))
        return {}


def start(world: World, how: str, connectors: tuple[str, ...]) -> Sync:
    """Start one sync process of kind ``how``."""
    if how == "cli":
        command = [sys.executable, "-m", "restsync_dagster.cli", "sync", *connectors, "--quiet"]
    elif how == "schedule":
        command = [
            sys.executable,
            "-m",
            "restsync_dagster_tests.soak.worker",
            "schedule",
            *connectors,
        ]
    else:
        command = [sys.executable, "-m", "restsync_dagster_tests.soak.worker", "sensor"]
    process = subprocess.Popen(
        command, env=world.env, cwd=world.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    STARTED.append(process)
    return Sync(how, process)


#: Every sync process started (each in a session of its own, so a kill reaches its children).
STARTED: list[subprocess.Popen[str]] = []


def stop_all() -> None:
    """SIGKILL the syncs still running (the soak is ending)."""
    for process in STARTED:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def kill_in_phase(
    world: World,
    instance: dg.DagsterInstance,
    sync: Sync,
    phase: str,
    sig: signal.Signals,
    before: set[str],
    during_load: Any = None,
    limit: float = 120,
) -> bool:
    """Send ``sig`` to ``sync``'s process group as soon as it is in ``phase``; False if it ended
    first. ``during_load`` is called once when a load starts (the PostgreSQL restart)."""
    deadline = time.monotonic() + limit
    loaded = False
    while time.monotonic() < deadline and sync.process.poll() is None:
        phases = dlt_phases(world.pipelines_dir, before)
        if phase in ("checks", "instance"):
            phases |= instance_phases(instance, sync.started)
        if during_load is not None and "load" in phases and not loaded:
            loaded = True
            during_load()
        if phase in phases:
            try:
                os.killpg(sync.process.pid, sig)
            except ProcessLookupError:
                return False
            sync.killed = (phase, sig.name)
            # Reaped at once, as a shell or a daemon would: a zombie still looks alive.
            # (A SIGTERM not obeyed within 30 s: the final wait tells.)
            with contextlib.suppress(subprocess.TimeoutExpired):
                sync.process.wait(timeout=30)
            return True
        time.sleep(0.01)
    return False


def watch_loads(
    world: World, sync: Sync, before: set[str], during_load: Any, limit: float = 120
) -> None:
    """Call ``during_load`` once when ``sync`` starts loading (no kill)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and sync.process.poll() is None:
        if "load" in dlt_phases(world.pipelines_dir, before):
            during_load()
            return
        time.sleep(0.01)


def checks_step(connector: str) -> str:
    return names.checks_op_name(connector)
