"""The chaos soak: ``python3 scripts/dev.py soak [--minutes N] [--cycles N] [--seed S]
[--destination duckdb|postgres]`` (see docs/reliability.md).

Loops for a fixed time or number of cycles. Each cycle's plan (changes upstream, faults, how
syncs start, which phase is killed with which signal) is drawn from ``--seed``, so a seed and a
cycle number name a scenario; when a kill lands depends on timing, as it does in production.
Exits 1 at the first discrepancy, printing the seed and cycle that reproduce it.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from restsync_dagster.connector import load_connectors
from restsync_dagster.orchestration.instance import open_instance
from restsync_dagster.settings import Settings
from restsync_dagster_tests.soak.cycle import Tally, run_cycle
from restsync_dagster_tests.soak.launch import stop_all
from restsync_dagster_tests.soak.pods import PodDeployment, run_pod_cycle
from restsync_dagster_tests.soak.world import World


def report(tally: Tally, lost: int, duplicated: int, stale: int, seconds: float) -> str:
    def counts(counter: object) -> str:
        items = sorted(counter.items()) if hasattr(counter, "items") else []  # type: ignore[attr-defined]
        return ", ".join(f"{k} {v}" for k, v in items) or "none"

    faults = sum(tally.faults.values())
    kills = sum(tally.kills.values())
    return "\n".join((
        f"soak: {tally.cycles} cycles in {seconds / 60:.1f} min",
        f"syncs started: {sum(tally.syncs.values())} ({counts(tally.syncs)}), runs {tally.runs}",
        f"upstream changes: {counts(tally.truth)}",
        f"faults injected: {counts(tally.faults)}",
        f"kills by phase: {counts(tally.kills)}; kills that missed (sync ended first): {tally.missed_kills}",
        f"recoveries by layer: {counts(tally.recoveries)}",
        f"{tally.cycles} cycles, {faults} faults, {kills} kills: "
        f"{lost} lost, {duplicated} duplicated, {stale} stale",
    ))  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/dev.py soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--cycles", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--destination", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--keep", action="store_true", help="keep the soak's directory")
    parser.add_argument(
        "--pods",
        action="store_true",
        help="every run on a host of its own: dagster dev launching into pods, whole pods "
        "killed, PostgreSQL restarted (implies --destination postgres; needs root)",
    )
    args = parser.parse_args(argv)
    if args.pods:
        args.destination = "postgres"
    if args.minutes is None and args.cycles is None:
        args.minutes = 3.0
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix=f"restsync-soak-{args.seed}-"))
    world = World(root, args.seed, args.destination)
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes is not None else float("inf")
    mode = ", pods" if args.pods else ""
    print(f"soak: seed {args.seed}, {args.destination}{mode}, in {root}", flush=True)
    pods = None
    try:
        settings = Settings.from_env(world.env)
        connectors = {c.name: c for c in load_connectors(settings.connector_dirs)}
        if args.pods:
            pods = PodDeployment(world)
        with pods.instance() if pods else open_instance(settings) as instance:
            while time.monotonic() < deadline and (
                args.cycles is None or tally.cycles < args.cycles
            ):
                number = tally.cycles + 1
                if pods is not None:
                    story, found = run_pod_cycle(pods, rng, tally, connectors)
                else:
                    story, found = run_cycle(world, instance, rng, tally, connectors)
                plan = story["plan"]
                print(f"cycle {number}: {story.get('launch', plan.launch)}, faults "
                      f"{plan.faults or 'none'}, kill {plan.kill and 'pod' if pods else plan.kill}, "
                      f"postgres restart {plan.restart_postgres}, "
                      f"{'; '.join(story['truth'])}", flush=True)  # fmt: skip
                if found:
                    words = [d.word for d in found]
                    print("\n".join(str(d) for d in found[:20]), file=sys.stderr)
                    for output in story["outputs"]:
                        print(output, file=sys.stderr)
                    print(report(tally, words.count("lost"), words.count("duplicated"),
                                 len(words) - words.count("lost") - words.count("duplicated"),
                                 time.monotonic() - started))  # fmt: skip
                    how = "--pods" if args.pods else f"--destination {args.destination}"
                    print(f"first discrepancy: seed {args.seed}, cycle {number} "
                          f"(python3 scripts/dev.py soak --seed {args.seed} --cycles {number} "
                          f"{how})")  # fmt: skip
                    return 1
    finally:
        if pods is not None:
            pods.close()
        stop_all()
        world.close()
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    print(report(tally, 0, 0, 0, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
