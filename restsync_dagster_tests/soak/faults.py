"""What a cycle changes upstream and which faults it turns on, drawn from the soak's seed.

Truth: inserts, updates and soft deletes (orders model deletes with dlt's ``hard_delete``), now
and then a new nullable field or a field sent as another type. Faults: the demo API's own
switches: a fault rate of 429 with ``Retry-After`` or of 5xx, one stalled or one truncated
body, an outage longer than the HTTP retries, OAuth tokens that expire within the run or are
revoked in the middle of it (a 401: never retried by the sensor, healed by the next schedule).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

from restsync_dagster.demo_api.data import VERTICALS
from restsync_dagster_tests.soak.connectors import HTTP_BACKOFF, HTTP_RETRIES, TABLES
from restsync_dagster_tests.soak.world import World

FAULTS = ("429", "5xx", "stall", "truncated", "outage", "token_expiry", "token_revoked")
#: Seconds of backoff the HTTP retries wait in all: an outage must outlast them.
HTTP_PATIENCE = sum(HTTP_BACKOFF * 2**n for n in range(HTTP_RETRIES))


@dataclass
class Plan:
    """One cycle, decided up front from the seed."""

    truth: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    launch: str = "cli"
    kill: tuple[str, str] | None = None  # (phase, SIGKILL | SIGTERM)
    restart_postgres: bool = False
    #: Paths given one stalled or truncated answer (healed once it was given).
    broken_paths: list[str] = field(default_factory=list)


def draw(rng: random.Random, destination: str) -> Plan:
    from restsync_dagster_tests.soak.launch import LAUNCHES, PHASES

    plan = Plan()
    plan.faults = rng.sample(FAULTS, rng.choice((0, 1, 1, 2, 2, 3)))
    plan.launch = rng.choice(LAUNCHES)
    if rng.random() < 0.6:
        plan.kill = (rng.choice(PHASES), rng.choice(("SIGKILL", "SIGTERM")))
    plan.restart_postgres = destination == "postgres" and rng.random() < 0.3
    return plan


def change_truth(world: World, rng: random.Random, tally: Counter[str]) -> list[str]:
    """Inserts, updates, deletes and sometimes a schema change, on every soaked collection."""
    done = []
    for table in TABLES:
        insert, update = rng.randint(0, 300), rng.randint(0, 60)
        delete = rng.randint(0, 15) if table.deletes else 0
        changed = world.api.advance(table.collection, insert, update, rng.uniform(0.5, 6), delete)
        for what in ("inserted", "updated", "deleted"):
            tally[what] += len(changed.get(what, []))
        done.append(f"{table.collection} +{insert} ~{update} -{delete}")
    if rng.random() < 0.25:
        # Not on an incremental table: a field re-typed on every record, with no update to
        # move updated_at, is a change no incremental sync can see (and no fault of restsync's).
        table = rng.choice([t for t in TABLES if not t.incremental])
        vertical, _, name = table.collection.partition(".")
        if rng.random() < 0.5:
            world.api.change_schema(table.collection, add=[f"extra_{rng.randint(1, 99)}"])
            tally["new nullable field"] += 1
            done.append(f"{table.collection}: a new nullable field")
        else:
            world.api.change_schema(
                table.collection, retype=[VERTICALS[vertical][name].mutable_field]
            )
            tally["changed type"] += 1
            done.append(
                f"{table.collection}: {VERTICALS[vertical][name].mutable_field} sent as text"
            )
    return done


def turn_on(world: World, rng: random.Random, plan: Plan) -> list[threading.Timer]:
    """Switch the cycle's faults on; returns timers that fire during the sync."""
    timers = []
    api = world.api
    for fault in plan.faults:
        if fault == "429":
            api.set_faults(0.2, (429,), retry_after=1)
        elif fault == "5xx":
            api.set_faults(0.2, (500, 502, 503, 504))
        elif fault in ("stall", "truncated"):
            table = rng.choice(TABLES)
            api.misbehave(table.path, fault, from_offset=rng.choice((0, 50, 100)), times=1)
            plan.broken_paths.append(table.path)
        elif fault == "outage":
            api.start_outage(HTTP_PATIENCE + rng.uniform(2, 8))
        elif fault == "token_expiry":
            api.set_token_lifetime(rng.uniform(0.2, 1.0))
        elif fault == "token_revoked":
            timers.append(threading.Timer(rng.uniform(2.5, 5), api.revoke_tokens))
    for timer in timers:
        timer.start()
    return timers


def heal(world: World, timers: list[threading.Timer]) -> None:
    """Every fault off, as an API that recovered would be; schema changes stay (they are truth)."""
    for timer in timers:
        timer.cancel()
    api = world.api
    api.set_faults(0.0)
    api.start_outage(0)
    for table in TABLES:
        api.misbehave(table.path, "none")
    api.set_token_lifetime(3600)
