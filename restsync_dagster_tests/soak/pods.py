"""The soak's pods mode (``--pods``): every sync runs on a host of its own.

The soak's PostgreSQL server holds the warehouse and Dagster's storage (database
``restsync_soak_dagster``); ``dagster dev`` runs beside it, its daemon launching every queued run
into a pod through the pod launcher (``restsync_dagster_tests/pods/``), and the retry sensor
ticking every 2 s. A cycle changes the API's truth and turns faults on as the plain soak does,
then starts syncs the ways a deployment does (queued runs of each connector, ``restsync sync`` in
a pod, or both at once), may SIGKILL one whole pod at a moment drawn from the seed, and may stop
and restart PostgreSQL while they run. Then it lets the deployment heal by itself (the sweep
fails runs whose pod is gone, the retry sensor retries), and compares the warehouse with the
API: 0 lost, 0 duplicated, 0 stale, or it says which.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg
import sqlalchemy.exc
from dagster_graphql import DagsterGraphQLClientError

from restsync_dagster import names
from restsync_dagster.cli.demo import stop_process_group
from restsync_dagster_tests.helpers import (
    REPO,
    PostgresServer,
    postgres_instance_env,
    start_dagster_dev_process,
)
from restsync_dagster_tests.pods.deployment import FINISHED, Deployment, pod_dagster_yaml
from restsync_dagster_tests.pods.launcher import run_pod_name
from restsync_dagster_tests.pods.namespaces import kill_pods
from restsync_dagster_tests.soak import faults
from restsync_dagster_tests.soak.connectors import CONNECTORS
from restsync_dagster_tests.soak.cycle import Tally, compare
from restsync_dagster_tests.soak.verify import Discrepancy, sensor_rules
from restsync_dagster_tests.soak.world import World

T = TypeVar("T")

INSTANCE_DATABASE = "restsync_soak_dagster"
LAUNCHES = ("queued", "cli", "queued_and_cli")
#: Seconds the deployment must stay quiet (no run in progress) before a cycle is compared: a
#: retry run the sensor (ticking every 2 s) is about to request would start within them.
QUIET_SECONDS = 8


class PodDeployment:
    """``dagster dev`` launching into pods, over the soak's world (PostgreSQL destination)."""

    def __init__(self, world: World) -> None:
        assert world.postgres is not None, "the pods soak loads into PostgreSQL"
        self.world = world
        server = PostgresServer.from_dsn(world.postgres.dsn)
        server.execute(f"CREATE DATABASE {INSTANCE_DATABASE}")
        pods_root = world.root / "pods"
        pods_root.mkdir()
        dagster_home = world.root / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(pod_dagster_yaml(pods_root))
        env = {
            **world.env,
            **postgres_instance_env(server, INSTANCE_DATABASE),
            "DAGSTER_HOME": str(dagster_home),
            "RESTSYNC_RETRY_SENSOR_INTERVAL_SECONDS": "2",
            "PYTHONPATH": str(REPO),
        }
        world.env.update(env)
        # This process reads the same instance: its dagster.yaml reads these variables.
        os.environ.update(postgres_instance_env(server, INSTANCE_DATABASE))
        self.log = open(world.root / "dagster_dev.log", "wb")  # noqa: SIM115 - closed in close()
        self.process, url = start_dagster_dev_process(env, self.log)
        if url is None:
            self.close()
            raise RuntimeError("dagster dev did not start: see dagster_dev.log (--keep)")
        self.deployment = Deployment(
            url, dagster_home, env, pods_root, server, INSTANCE_DATABASE, world.api
        )
        self.pods = 0
        #: Retry runs (first attempts) that had succeeded by the end of the previous cycle.
        self.retries_seen = 0

    def instance(self) -> contextlib.AbstractContextManager[dg.DagsterInstance]:
        return self.deployment.instance()

    def close(self) -> None:
        kill_pods(str(self.world.root / "pods"))
        stop_process_group(self.process)
        kill_pods(str(self.world.root / "pods"))  # one launched while it stopped
        self.log.close()

    def in_progress(self) -> list[dg.RunRecord]:
        def read() -> list[dg.RunRecord]:
            with self.instance() as instance:
                return [
                    r
                    for r in instance.get_run_records(limit=200)
                    if r.dagster_run.status not in FINISHED
                ]

        return _read_through_bounces(read)


def _read_through_bounces(read: Callable[[], T], timeout: float = 60) -> T:
    """``read()`` of the harness's own instance, asked again while PostgreSQL is down: the cycle's
    restart may land between two polls (a closed pooled connection, then refused ones)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except sqlalchemy.exc.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _wait_started(pods: PodDeployment, run_id: str, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout

    def read() -> dg.DagsterRun | None:
        with pods.instance() as instance:
            return instance.get_run_by_id(run_id)

    while time.monotonic() < deadline:
        run = _read_through_bounces(read)
        if run is not None and run.status == dg.DagsterRunStatus.STARTED:
            return True
        if run is not None and run.status in FINISHED:
            return False
        time.sleep(0.2)
    return False


def _settle(pods: PodDeployment, timeout: float = 300) -> list[Discrepancy]:
    """Wait until no run is in progress for ``QUIET_SECONDS``; a run still going after
    ``timeout`` (a killed pod's run nobody failed) is reported stale."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if pods.in_progress():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return []
        time.sleep(0.5)
    return [
        Discrepancy(
            "stale",
            f"run {r.dagster_run.run_id} ({r.dagster_run.job_name}) still "
            f"{r.dagster_run.status.value} {timeout:.0f} s after its cycle's syncs started; "
            f"tags {_restsync_tags(r.dagster_run)}",
        )
        for r in pods.in_progress()
    ]


def _restsync_tags(run: dg.DagsterRun) -> dict[str, str]:
    """The tags that tell who made ``run`` and how it proves itself alive (no secret in them)."""
    return {k: v for k, v in run.tags.items() if k.startswith(("restsync", "dagster/sensor"))}


def run_pod_cycle(
    pods: PodDeployment,
    rng: random.Random,
    tally: Tally,
    connectors: dict[str, Any],
) -> tuple[dict[str, Any], list[Discrepancy]]:
    """One cycle in pods; returns what it did and the discrepancies found."""
    world, deployment = pods.world, pods.deployment
    plan = faults.draw(rng, "postgres")
    launch = rng.choice(LAUNCHES)
    story: dict[str, Any] = {"truth": faults.change_truth(world, rng, tally.truth), "plan": plan}
    story["launch"] = launch
    timers = faults.turn_on(world, rng, plan)
    tally.faults.update(plan.faults)

    victims: list[str] = []
    cli = None
    if launch in ("queued", "queued_and_cli"):
        for connector in CONNECTORS:
            run_id = _submit(deployment, names.job_name(connector))
            victims.append(run_pod_name(run_id))
            tally.syncs["queued"] += 1
    if launch in ("cli", "queued_and_cli"):
        pods.pods += 1
        name = f"cli-{pods.pods}"
        cli = deployment.restsync(name, "sync", *CONNECTORS, "--quiet")
        victims.append(name)
        tally.syncs["cli"] += 1

    restart = None
    if plan.restart_postgres:
        restart = threading.Thread(
            target=_bounce, args=(world, rng.uniform(1, 4), rng.uniform(1, 3))
        )
        restart.start()
    if plan.kill:
        victim = rng.choice(victims)
        started = (
            _wait_started(pods, victim.removeprefix("run-")) if victim.startswith("run-") else True
        )
        delay = rng.uniform(0.5, 6)
        time.sleep(delay)  # a kill lands when it lands, as a node's loss does
        if started and kill_pods(victim):
            tally.kills["a run's pod" if victim.startswith("run-") else "a CLI pod"] += 1
        else:
            tally.missed_kills += 1
    if cli is not None:
        try:
            cli.wait(timeout=300)
        except Exception:
            kill_pods(victims[-1])
    if restart is not None:
        restart.join()
        tally.faults["postgres_restart"] += 1
    found = _settle(pods)
    faults.heal(world, timers)
    found += _settle(pods)
    with pods.instance() as instance:
        found += sensor_rules(instance, connectors)
        tally.runs = instance.get_runs_count()
        retried = instance.get_runs(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], tags={names.TAG_ATTEMPT: "1"})
        )
    new_retries = len(retried) - pods.retries_seen
    if new_retries > 0:
        tally.recoveries["run retry"] += new_retries
        pods.retries_seen = len(retried)
    current = compare(world)
    if current:
        # What the next schedule would do: a queued run of each connector, then compare again.
        ids = [_submit(deployment, names.job_name(c)) for c in CONNECTORS]
        deployment.wait_until_finished(ids, timeout=300)
        tally.recoveries["next schedule"] += 1
        current = compare(world)
    story["outputs"] = [deployment.log(v)[-3000:] for v in victims if not v.startswith("run-")]
    tally.cycles += 1
    return story, found + current


def _submit(deployment: Deployment, job: str) -> str:
    """Queue a run; after a PostgreSQL restart the webserver's first query may meet a pooled
    connection the server closed, and a client asks again, as this does (three times at most)."""
    for attempt in range(3):
        try:
            return deployment.submit(job)
        except DagsterGraphQLClientError as exc:
            if "OperationalError" not in str(exc) or attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _bounce(world: World, after: float, pause: float) -> None:
    """Stop PostgreSQL ``after`` seconds into the cycle, start it again ``pause`` s later."""
    assert world.postgres is not None
    time.sleep(after)
    world.postgres.stop()
    time.sleep(pause)
    world.postgres.start()
