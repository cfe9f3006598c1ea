"""One rate budget per API key: the parts of a key's limits that its slots get add up to the
limits, two runs holding slots never spend more of a window than the headers allow, and
connectors sharing a key must declare the same limits (the slots themselves:
integration/test_rate_slots.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict

from restsync_dagster.connector import (
    ConnectorFileError,
    load_connectors,
    parse_connector,
    read_connector_files,
)
from restsync_dagster.extract.budget import HeaderBudget
from restsync_dagster.extract.limiter import RequestLimiter
from restsync_dagster.extract.share import RateShare

CONNECTOR = """
name: {name}
{extra}
source:
  client: {{base_url: "https://api.example.com"}}
  resources:
    - name: items
      endpoint: {{path: /items}}
"""


@pytest.mark.parametrize("total", [0, 1, 2, 3, 7, 8, 10, 99, 100, 101])
@pytest.mark.parametrize("slots", [1, 2, 3, 4, 7, 64])
def test_the_parts_of_every_slot_add_up_to_the_whole_and_differ_by_at_most_one(total, slots):
    parts = [RateShare(index, slots).part(total) for index in range(slots)]
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1


def test_a_requests_per_second_is_cut_into_whole_requests_that_never_exceed_it():
    assert [RateShare(i, 4).requests_per_second(10) for i in range(4)] == [2, 2, 3, 3]
    assert [RateShare(i, 4).requests_per_second(8.9) for i in range(4)] == [2, 2, 2, 2]
    assert RateShare(0, 1).requests_per_second(0.5) == 0.5, "one slot: the limit as written"
    assert RateShare(0, 3).requests_per_second(None) is None
    # No more slots than whole requests a second: each run sends at least one a second.
    assert RateShare.slot_count(4, 10) == 4
    assert RateShare.slot_count(4, 2.5) == 2
    assert RateShare.slot_count(4, 0.5) == 1
    assert RateShare.slot_count(4, None) == 4


def test_requests_in_flight_are_shared_but_every_run_may_send_one():
    assert [RateShare(i, 2).concurrency(4) for i in range(2)] == [2, 2]
    assert [RateShare(i, 4).concurrency(2) for i in range(4)] == [1, 1, 1, 1]
    assert RateShare(0, 1).concurrency(3) == 3


def told(remaining: int, reset: float = 0.6, limit: int = 10) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict(
        {"RateLimit": f"limit={limit}, remaining={remaining}, reset={reset}"}
    )


def test_runs_holding_two_slots_of_a_key_spend_at_most_its_window_together():
    # Two runs are told the same count left at once: each spends only its part (5 of 10), where
    # without slots each would spend all it was told and the API would refuse the excess.
    runs = [HeaderBudget(share=RateShare(i, 2)) for i in range(2)]
    for budget in runs:
        budget.spend()
        budget.observe(told(9))  # both learned the window at once
    sent = [1, 1]

    def spend_one(budget: HeaderBudget, done: threading.Event) -> None:
        budget.spend()
        done.set()

    def spend_all(index: int) -> None:
        deadline = time.monotonic() + 0.3  # well inside the window
        while time.monotonic() < deadline:
            done = threading.Event()
            threading.Thread(target=spend_one, args=(runs[index], done), daemon=True).start()
            if not done.wait(0.35):
                return
            sent[index] += 1
            runs[index].observe(told(9 - sent[index]))  # the key's count, as each is told

    threads = [threading.Thread(target=spend_all, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sent == [5, 5]


def test_a_single_run_spends_all_the_headers_tell_as_before():
    budget = HeaderBudget(share=RateShare(0, 1))
    for left in range(9, 0, -1):
        budget.spend()
        budget.observe(told(left, reset=5))
    started = time.monotonic()
    budget.spend()  # the tenth: one left
    assert time.monotonic() - started < 0.1


def test_without_a_told_limit_the_share_is_cut_from_what_was_seen_left():
    budget = HeaderBudget(share=RateShare(0, 2))
    budget.spend()
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "5"}))
    budget.spend()  # 2 of (5 + 1) // 2 = 3
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "5"}))
    budget.spend()
    budget.observe(CaseInsensitiveDict({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "5"}))
    done = threading.Event()
    threading.Thread(target=lambda: (budget.spend(), done.set()), daemon=True).start()
    assert not done.wait(0.3), "its part (3) is spent, though 1 is left for the other run"


def test_a_slot_is_handed_on_only_once_its_requests_count_in_no_window():
    limiter = RequestLimiter(requests_per_second=8)
    assert limiter.counted_until() == 0.0, "nothing sent: nothing to wait for"
    with limiter.slot():
        sent = time.monotonic()
    assert sent < limiter.counted_until() <= sent + 1.01, "the last request's second"
    budget = HeaderBudget(share=RateShare(0, 2))
    shared = RequestLimiter(budget=budget)
    with shared.slot():
        pass
    told_at = time.monotonic()
    shared.answered(told(5, reset=30))
    assert told_at + 29 < shared.counted_until() <= time.monotonic() + 30, "the window it named"


PARTITIONED = """
name: {name}
rate_limit: {rate_limit}
partitions: {{daily: {{start: "2026-01-01"}}, max_concurrent: 4}}
source:
  client: {{base_url: "https://api.example.com"}}
  resources:
    - name: items
      endpoint:
        path: /items
        incremental: {{start_param: since, cursor_path: updated_at, initial_value: "2026-01-01"}}
"""


def write(directory: Path, name: str, rate_limit: str, partitioned: bool = False) -> None:
    text = (
        PARTITIONED.format(name=name, rate_limit=rate_limit)
        if partitioned
        else CONNECTOR.format(name=name, extra=f"rate_limit: {rate_limit}")
    )
    (directory / f"{name}.yaml").write_text(text)


def test_connectors_sharing_a_key_must_declare_the_same_limits(tmp_path: Path):
    write(tmp_path, "crm", "{key: acme, requests_per_second: 10, runs: 2}")
    write(tmp_path, "sales", "{key: acme, requests_per_second: 5, runs: 2}")
    write(tmp_path, "billing", "{key: acme, requests_per_second: 10, runs: 2}")
    with pytest.raises(ConnectorFileError) as info:
        load_connectors([tmp_path])
    assert [str(dataclasses.replace(p, line=None)) for p in info.value.problems] == [
        f"{tmp_path / 'sales.yaml'}: rate_limit: connector 'sales' shares rate key 'acme' with "
        f"connector 'billing' but declares requests_per_second 5.0 where "
        f"{tmp_path / 'billing.yaml'} has 10.0: the connectors of a key share one budget, so "
        "give them the same rate_limit (requests_per_second, max_concurrency, from_headers, "
        "reserve, runs; runs defaults to partitions.max_concurrent)"
    ]


def test_a_connector_declaring_other_limits_for_a_key_leaves_out_only_itself(tmp_path: Path):
    write(tmp_path, "billing", "{key: acme, requests_per_second: 10, runs: 2}")
    write(tmp_path, "crm", "{key: acme, requests_per_second: 10, runs: 2}")
    write(tmp_path, "sales", "{key: acme, requests_per_second: 5, runs: 2}")
    files = read_connector_files([tmp_path])
    assert [c.name for c in files.connectors] == ["billing", "crm"]
    assert list(files.bad_files) == [tmp_path / "sales.yaml"]
    (problem,) = files.bad_files[tmp_path / "sales.yaml"]
    assert problem.key_path == "rate_limit"


def test_the_key_defaults_to_the_connector_and_runs_to_its_parallel_partitions(tmp_path: Path):
    write(tmp_path, "crm", "{requests_per_second: 10}")
    write(tmp_path, "shop", "{key: crm, requests_per_second: 10}", partitioned=True)
    with pytest.raises(ConnectorFileError) as info:
        load_connectors([tmp_path])
    (problem,) = info.value.problems
    assert f"declares runs 4 where {tmp_path / 'crm.yaml'} has 1" in problem.message
    write(tmp_path, "crm", "{requests_per_second: 10, runs: 4}")
    crm, shop = load_connectors([tmp_path])
    assert (crm.config.rate_key, crm.config.rate_runs) == ("crm", 4)
    assert (shop.config.rate_key, shop.config.rate_runs) == ("crm", 4)


def test_a_rate_key_must_be_a_plain_name():
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(
            CONNECTOR.format(name="crm", extra="rate_limit: {key: Acme Prod}"), "c.yaml"
        )
    (problem,) = info.value.problems
    assert problem.key_path == "rate_limit.key"
    assert "is not a valid rate key" in problem.message
