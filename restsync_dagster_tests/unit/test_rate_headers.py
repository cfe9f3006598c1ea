"""Rate-limit headers read in both families, and a budget that waits for the reset instead of
sending a request the API would refuse."""

from __future__ import annotations

import threading
import time

import pytest
from requests.structures import CaseInsensitiveDict

from restsync_dagster.extract.budget import HeaderBudget
from restsync_dagster.extract.rate_headers import RateBudget, read_rate_headers

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "budget"),
    [
        ({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(NOW) + 30)}, (7, 30.0)),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}, (0, 12.0)),
        ({"RateLimit": "limit=100, remaining=5, reset=9"}, (5, 9.0, 100)),
        ({"RateLimit-Remaining": "3", "RateLimit-Reset": "4"}, (3, 4.0)),
        ({"RateLimit": '"default";r=2;t=6'}, (2, 6.0)),
        ({"RateLimit": '"default";r=0', "RateLimit-Policy": '"default";q=10;w=60'}, (0, 60.0, 10)),
        ({"X-RateLimit-Remaining": "4"}, (4, None)),
        ({"X-RateLimit-Remaining": "4", "X-RateLimit-Limit": "60"}, (4, None, 60)),
    ],
)
def test_both_header_families_tell_the_budget(headers, budget):
    told = read_rate_headers(CaseInsensitiveDict(headers), now=NOW)
    assert told == RateBudget(*budget)


def test_headers_without_a_budget_tell_nothing():
    assert read_rate_headers(CaseInsensitiveDict({"X-RateLimit-Remaining": "many"})) is None
    assert read_rate_headers(CaseInsensitiveDict({"Content-Type": "application/json"})) is None


def test_a_spent_budget_waits_for_the_reset():
    budget = HeaderBudget()
    budget.spend()
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "0.3"}))
    started = time.monotonic()
    budget.spend()  # the last one: no wait
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.3"}))
    assert time.monotonic() - started < 0.1
    budget.spend()  # none left: waits for the window to reset
    assert 0.25 <= time.monotonic() - started < 2.0
    assert budget.waited >= 0.25


def test_an_unknown_budget_sends_one_request_first_to_learn_it():
    budget = HeaderBudget()
    budget.spend()  # the first request goes alone
    second = threading.Event()
    threading.Thread(target=lambda: (budget.spend(), second.set()), daemon=True).start()
    assert not second.wait(0.2), "the second waits for the first answer"
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "5"}))
    assert second.wait(1.0)


def test_requests_in_flight_count_as_spent_and_the_reserve_is_kept():
    budget = HeaderBudget(reserve=1)
    budget.spend()
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "0.4"}))
    for _ in range(3):
        budget.spend()
    # An answer says 3 left, reset in 0.4 s; the two others still in flight will spend two.
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "0.4"}))
    done = threading.Event()
    threading.Thread(target=lambda: (budget.spend(), done.set()), daemon=True).start()
    assert not done.wait(0.2), "3 left - 2 in flight = 1, the reserve: wait"
    assert done.wait(3.0), "the window resets and the request goes"


def test_an_older_answer_arriving_late_never_raises_the_count():
    budget = HeaderBudget()
    budget.spend()
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "5"}))
    budget.spend()
    budget.spend()
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}))
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "5"}))
    done = threading.Event()
    threading.Thread(target=lambda: (budget.spend(), done.set()), daemon=True).start()
    assert not done.wait(0.3), "the later answer said none is left; the older one cannot undo it"
