"""Retrying failed runs: the backoff schedule and the decision, as pure functions.

HTTP retries (see :mod:`restsync_dagster.extract.http`) absorb blips of seconds. When an API is down or
rate-limiting for minutes, the run fails; the ``retry_transient_failures`` sensor then asks
:func:`decide` what to do with each failed run, from facts it read from the Dagster instance.
Nothing here touches Dagster, so every rule is tested alone.

Vocabulary: the *root* is the run that failed first; retry runs carry ``restsync/retry_of=<root>``
and ``restsync/attempt=<n>``. A *chain* is a root and its retries, per connector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from restsync_dagster.failures.classify import SyncFailure
from restsync_dagster.names import TAG_ATTEMPT, TAG_RETRY_OF

JITTER = 0.2  # a retry waits its nominal delay plus up to 20%
MAX_DELAY_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class RunRetryPolicy:
    """How a connector's failed runs are retried."""

    max_retries: int = 3
    base_delay_seconds: float = 60.0


def retry_delay(
    attempt: int, policy: RunRetryPolicy, retry_after: float | None = None, seed: str = ""
) -> float:
    """Seconds between a failure and retry ``attempt`` (1-based).

    ``base * 2**(attempt-1)`` plus up to 20% jitter (stable for a given ``seed``, so every sensor
    tick computes the same due time), or the server's ``Retry-After`` when that is longer.
    """
    nominal = policy.base_delay_seconds * 2 ** (attempt - 1)
    digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    delay = nominal * (1 + JITTER * fraction)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return min(delay, MAX_DELAY_SECONDS)


@dataclass(frozen=True)
class FailedRun:
    """A failed run, as the sensor read it from the instance."""

    run_id: str
    ended_at: float
    tags: Mapping[str, str]
    #: Step failures restsync described; an empty list means the failure was not a sync's.
    failures: tuple[SyncFailure, ...]
    #: Per connector, the asset keys (as strings) the run was to materialize but did not.
    unmaterialized: Mapping[str, frozenset[str]] = field(default_factory=dict)
    partition: str | None = None

    @property
    def root(self) -> str:
        """The first run of this run's chain."""
        return self.tags.get(TAG_RETRY_OF, self.run_id)

    @property
    def attempt(self) -> int:
        """0 for an original run, n for its n-th retry."""
        return int(self.tags.get(TAG_ATTEMPT, "0"))


class RetryAction(StrEnum):
    """What the sensor does about one connector of one failed run."""

    RETRY = "retry"  # request a retry run now
    WAIT = "wait"  # a retry is due later
    BUSY = "busy"  # due, but another retry of the connector is pending
    RETRIED = "retried"  # a retry of this run exists: settled
    NOT_RETRIED = "not_retried"  # a permanent failure
    EXHAUSTED = "exhausted"  # out of retry runs
    SUPERSEDED = "superseded"  # newer runs materialized what this one did not
    NONE = "none"  # the connector did not fail in this run

    @property
    def is_final(self) -> bool:
        """Whether the run's tags record this decision, so later ticks skip the run."""
        return self in (RetryAction.NOT_RETRIED, RetryAction.EXHAUSTED, RetryAction.SUPERSEDED)


@dataclass(frozen=True)
class Decision:
    """What to do about one connector of one failed run."""

    action: RetryAction
    connector: str
    reason: str
    attempt: int = 0
    due_at: float | None = None
    asset_keys: frozenset[str] = frozenset()


def run_key(root: str, connector: str, attempt: int) -> str:
    """The run key of retry ``attempt`` of ``connector`` in the chain started by ``root``: the
    sensor daemon launches a run key once, however many ticks (or restarts) request it."""
    return f"restsync-retry:{root}:{connector}:{attempt}"


def decide(
    run: FailedRun,
    connector: str,
    policy: RunRetryPolicy,
    now: float,
    *,
    has_successor: bool,
    connector_busy: bool,
    materialized_since: Collection[str] = (),
    removed_tenant: str | None = None,
) -> Decision:
    """Decide whether ``connector``'s part of a failed run gets a retry run now.

    Args:
        run: The failed run.
        connector: One connector that failed in it.
        policy: The connector's run retry settings.
        now: Current time (epoch seconds).
        has_successor: A retry of this run already exists (launched, running or done).
        connector_busy: Another retry run of this connector (of this run's tenant, for a
            connector with tenants) is queued or running.
        materialized_since: Asset keys materialized by other runs since this one ended.
        removed_tenant: The run's tenant, when it has been removed since: its syncs stop.
    """
    failures = [f for f in run.failures if f.connector == connector]
    if has_successor:
        return Decision(RetryAction.RETRIED, connector, "a retry of this run already exists")
    if not failures:
        return Decision(RetryAction.NONE, connector, "this connector did not fail in the run")
    if removed_tenant is not None:
        return Decision(
            RetryAction.NOT_RETRIED,
            connector,
            f"tenant {removed_tenant!r} was removed since the run failed: its syncs stop",
        )
    last = failures[-1]
    cause = last.cause + (f" on {last.resource}" if last.resource else "")
    if not all(f.transient for f in failures):
        permanent = next(f for f in failures if not f.transient)
        return Decision(RetryAction.NOT_RETRIED, connector, f"permanent failure: {permanent.cause}")
    attempt = run.attempt + 1
    if attempt > policy.max_retries:
        return Decision(
            RetryAction.EXHAUSTED,
            connector,
            f"gave up after {run.attempt} retry run(s); last cause: {cause}",
            attempt=run.attempt,
        )
    pending = frozenset(run.unmaterialized.get(connector, frozenset()))
    remaining = pending - frozenset(materialized_since)
    if pending and not remaining:
        return Decision(
            RetryAction.SUPERSEDED, connector, "newer runs have materialized these assets since"
        )
    retry_after = max((f.retry_after for f in failures if f.retry_after is not None), default=None)
    due_at = run.ended_at + retry_delay(
        attempt, policy, retry_after, seed=f"{run.root}:{connector}"
    )
    if now < due_at:
        return Decision(
            RetryAction.WAIT,
            connector,
            f"retry {attempt} due in {due_at - now:.0f}s after {cause}",
            attempt,
            due_at,
            remaining,
        )
    if connector_busy:
        return Decision(
            RetryAction.BUSY,
            connector,
            "another retry run of this connector is pending",
            attempt,
            due_at,
            remaining,
        )
    return Decision(
        RetryAction.RETRY, connector, f"retry {attempt} after {cause}", attempt, due_at, remaining
    )
