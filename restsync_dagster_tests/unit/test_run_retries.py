"""Backoff across runs and the retry decision, as pure functions."""

import pytest

from restsync_dagster.failures.classify import SyncFailure
from restsync_dagster.failures.errors import FailureKind
from restsync_dagster.orchestration.retry_decisions import (
    FailedRun,
    RetryAction,
    RunRetryPolicy,
    decide,
    retry_delay,
    run_key,
)


def StepFailure(
    connector: str,
    cause: str,
    transient: bool,
    retry_after: float | None = None,
    resource: str | None = None,
) -> SyncFailure:
    """A sync's failure as the sensor reads it back: ``cause`` is a status or a kind."""
    status = int(cause) if cause.isdigit() else None
    kind = FailureKind.HTTP_STATUS if status is not None else FailureKind(cause)
    return SyncFailure(connector, resource, kind, status, None, retry_after, transient, "")


POLICY = RunRetryPolicy(max_retries=3, base_delay_seconds=60)


def failed(
    attempt: int = 0, *failures: SyncFailure, pending=("shop/orders",), ended_at=1000.0
) -> FailedRun:
    tags = {"restsync/retry_of": "root", "restsync/attempt": str(attempt)} if attempt else {}
    return FailedRun(
        run_id=f"run{attempt}",
        ended_at=ended_at,
        tags=tags,
        failures=failures or (StepFailure("shop", "503", True, None, "orders"),),
        unmaterialized={"shop": frozenset(pending)},
    )


def test_attempt_n_waits_base_times_two_to_the_n_minus_one_plus_at_most_a_fifth():
    for attempt, nominal in ((1, 60), (2, 120), (3, 240)):
        delay = retry_delay(attempt, POLICY, seed="chain")
        assert nominal <= delay <= nominal * 1.2


def test_jitter_is_stable_per_chain_and_differs_between_chains():
    assert retry_delay(1, POLICY, seed="a") == retry_delay(1, POLICY, seed="a")
    delays = {retry_delay(1, POLICY, seed=f"chain{i}") for i in range(20)}
    assert len(delays) > 10, "chains that failed together do not retry in lockstep"


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not():
    assert retry_delay(1, POLICY, retry_after=900, seed="x") == 900
    assert retry_delay(1, POLICY, retry_after=5, seed="x") >= 60


def test_a_transient_failure_waits_until_due_then_retries_what_was_not_materialized():
    run = failed()
    due = 1000 + retry_delay(1, POLICY, seed="run0:shop")
    waiting = decide(run, "shop", POLICY, due - 1, has_successor=False, connector_busy=False)
    assert waiting.action == "wait" and waiting.attempt == 1
    now = decide(run, "shop", POLICY, due + 1, has_successor=False, connector_busy=False)
    assert (now.action, now.attempt, now.asset_keys) == ("retry", 1, frozenset({"shop/orders"}))


@pytest.mark.parametrize("cause", ["401", "403", "404", "bad_response", "missing_env_var"])
def test_a_permanent_failure_is_never_retried(cause):
    run = failed(0, StepFailure("shop", cause, False))
    decision = decide(run, "shop", POLICY, 10**9, has_successor=False, connector_busy=False)
    assert decision.action == "not_retried" and cause in decision.reason


def test_after_max_retries_the_chain_stops_and_names_the_last_cause():
    run = failed(3, StepFailure("shop", "429", True, None, "orders"))
    decision = decide(run, "shop", POLICY, 10**9, has_successor=False, connector_busy=False)
    assert decision.action == "exhausted"
    assert decision.reason == "gave up after 3 retry run(s); last cause: 429 on orders"


def test_a_run_already_retried_or_superseded_gets_no_new_retry():
    run = failed()
    assert (
        decide(run, "shop", POLICY, 10**9, has_successor=True, connector_busy=False).action
        == "retried"
    )
    superseded = decide(
        run, "shop", POLICY, 10**9, has_successor=False, connector_busy=False,
        materialized_since={"shop/orders"},
    )  # fmt: skip
    assert superseded.action == "superseded"


def test_a_due_retry_waits_while_another_retry_of_the_connector_is_pending():
    decision = decide(failed(), "shop", POLICY, 10**9, has_successor=False, connector_busy=True)
    assert decision.action == "busy"


def test_only_assets_not_materialized_since_are_retried():
    run = failed(0, pending=("shop/orders", "shop/customers"))
    decision = decide(
        run, "shop", POLICY, 10**9, has_successor=False, connector_busy=False,
        materialized_since={"shop/customers"},
    )  # fmt: skip
    assert decision.asset_keys == frozenset({"shop/orders"})


def test_run_keys_are_unique_per_chain_connector_and_attempt():
    keys = {run_key(r, c, a) for r in ("r1", "r2") for c in ("a", "b") for a in (1, 2)}
    assert len(keys) == 8


def test_a_tenant_removed_since_its_run_failed_is_not_retried():
    decision = decide(
        failed(),
        "shop",
        POLICY,
        10**9,
        has_successor=False,
        connector_busy=False,
        removed_tenant="acme",
    )
    assert decision.action == RetryAction.NOT_RETRIED
    assert "tenant 'acme' was removed" in decision.reason
