"""One soak cycle: change the truth, turn faults on, start syncs, kill one, settle, compare."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from restsync_dagster_tests.soak import faults
from restsync_dagster_tests.soak.connectors import CONNECTORS, TABLES
from restsync_dagster_tests.soak.launch import Sync, kill_in_phase, packages, start, watch_loads
from restsync_dagster_tests.soak.verify import (
    Discrepancy,
    compare_table,
    cursors_behind_data,
    sensor_rules,
)
from restsync_dagster_tests.soak.world import World

SENSOR_TICKS = 6


@dataclass
class Tally:
    """What the soak did and saw, summed over cycles."""

    cycles: int = 0
    syncs: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    missed_kills: int = 0
    recoveries: Counter[str] = field(default_factory=Counter)
    truth: Counter[str] = field(default_factory=Counter)
    http_retried: int = 0


def _faulty_answers(world: World) -> int:
    counts = world.api.stats()["status_counts"]
    return sum(n for status, n in counts.items() if status in ("429", "500", "502", "503", "504"))


def _finish(syncs: list[Sync], tally: Tally) -> list[tuple[Sync, int, str]]:
    done = []
    for sync in syncs:
        code, out = sync.wait()
        tally.syncs[sync.how] += 1
        tally.runs += len(sync.outcome(out).get("runs", [])) if sync.how != "cli" else 1
        done.append((sync, code, out))
    return done


class _Bounce:
    """Stops the PostgreSQL destination as a load starts, starts it again after ``pause`` s."""

    def __init__(self, world: World, pause: float) -> None:
        self.world, self.pause = world, pause
        self.thread: threading.Thread | None = None

    def __call__(self) -> None:
        self.thread = threading.Thread(target=self._bounce, daemon=True)
        self.thread.start()

    def _bounce(self) -> None:
        assert self.world.postgres is not None
        self.world.postgres.stop()
        time.sleep(self.pause)
        self.world.postgres.start()

    def join(self) -> None:
        """Wait until the server is back."""
        if self.thread is not None:
            self.thread.join()


def _tick_while_others_run(world: World, others: list[Sync], tally: Tally) -> None:
    """The daemon's sensor ticks while the other syncs run (one may wait for the dead run's
    pool slot, which a tick frees)."""
    deadline = time.monotonic() + 240
    while any(s.process.poll() is None for s in others) and time.monotonic() < deadline:
        _finish([start(world, "sensor", ())], tally)
        time.sleep(2)


def compare(world: World) -> list[Discrepancy]:
    found = cursors_behind_data(world)
    for table in TABLES:
        found += compare_table(world, table)
    return found


def settle_by_sensor(world: World, tally: Tally) -> int:
    """Tick the retry sensor until it has nothing due; returns retry runs that succeeded."""
    succeeded = 0
    for _ in range(SENSOR_TICKS):
        time.sleep(1.0)
        ((sync, _, out),) = _finish([start(world, "sensor", ())], tally)
        outcome = sync.outcome(out)
        succeeded += sum(1 for r in outcome.get("runs", []) if r["success"])
        if not outcome.get("runs") and "due in" not in (outcome.get("skip") or ""):
            break
    return succeeded


def run_cycle(
    world: World,
    instance: dg.DagsterInstance,
    rng: random.Random,
    tally: Tally,
    connectors: dict[str, Any],
) -> tuple[dict[str, Any], list[Discrepancy]]:
    """One cycle; returns what it did and the discrepancies found (empty: all well)."""
    plan = faults.draw(rng, world.destination)
    story: dict[str, Any] = {"truth": faults.change_truth(world, rng, tally.truth), "plan": plan}
    before, faulty = packages(world.pipelines_dir), _faulty_answers(world)
    timers = faults.turn_on(world, rng, plan)
    tally.faults.update(plan.faults)
    hows = ("cli", "schedule") if plan.launch == "two_at_once" else (plan.launch,)
    syncs = [start(world, how, CONNECTORS) for how in hows]
    bounce = _Bounce(world, rng.uniform(1, 3)) if plan.restart_postgres else None
    if plan.kill:
        victim = rng.choice(syncs)
        phase, sig = plan.kill
        if kill_in_phase(world, instance, victim, phase, signal.Signals[sig], before, bounce):
            tally.kills[f"{phase} ({sig})"] += 1
            _tick_while_others_run(world, [s for s in syncs if s is not victim], tally)
        else:
            tally.missed_kills += 1
    elif bounce is not None:
        watch_loads(world, syncs[0], before, bounce)
    finished = _finish(syncs, tally)
    if bounce is not None and bounce.thread is not None:
        bounce.join()
        tally.faults["postgres_restart"] += 1
    found = cursors_behind_data(world)  # right after the kill, before anything repairs it
    found += [
        Discrepancy("stale", f"a {sync.how} sync did not end within 300 s (killed)")
        for sync, _, _ in finished
        if sync.hung
    ]
    first_time = all(code == 0 for _, code, _ in finished)
    # A stalled or truncated answer given (its path healed itself) and read again.
    absorbed = any(path not in world.api.config.misbehave for path in plan.broken_paths)
    if first_time and (_faulty_answers(world) > faulty or absorbed):
        tally.recoveries["http retry"] += 1
    elif first_time and "token_expiry" in plan.faults:
        tally.recoveries["token refresh"] += 1
    faults.heal(world, timers)
    if not first_time:
        if settle_by_sensor(world, tally):
            tally.recoveries["run retry"] += 1
        found += sensor_rules(instance, connectors)
    current = compare(world)
    if current and not first_time:
        ((_, code, out),) = _finish([start(world, "schedule", CONNECTORS)], tally)
        if code != 0:
            found.append(Discrepancy("lost", "the next schedule failed too:\n" + out[-3000:]))
        tally.recoveries["next schedule"] += 1
        current = compare(world)
    story["outputs"] = [out[-3000:] for _, code, out in finished if code != 0]
    tally.cycles += 1
    return story, found + current
