"""The retrying session against a real local server: which failures it retries, how long it waits."""

import time

import pytest
import requests

from restsync_dagster.http import HttpStats, RetryPolicy, build_session, path_router


def test_the_default_wait_doubles_from_the_backoff_factor_and_is_capped():
    policy = RetryPolicy(backoff_factor=2, max_delay_seconds=5)
    assert [policy.wait_seconds(n) for n in (1, 2, 3)] == [2, 4, 5]


def test_retry_after_replaces_the_computed_wait_but_stays_capped():
    policy = RetryPolicy(backoff_factor=2, max_delay_seconds=60)
    assert policy.wait_seconds(1, retry_after=30) == 30
    assert RetryPolicy(max_delay_seconds=10).wait_seconds(1, retry_after=3600) == 10


def test_transient_statuses_are_retried_until_the_server_answers(start_demo_api):
    api = start_demo_api(fault_rate=1.0, fault_statuses=(503,), fault_max_consecutive=2)
    stats = HttpStats()
    session = build_session(RetryPolicy(backoff_factor=0.01), stats)
    response = session.get(api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"})
    assert response.status_code == 200
    assert stats.total.requests == 3 and stats.total.retries == 2
    assert stats.total.statuses == {503: 2, 200: 1}
    assert len(api.requests("/generic")) == 3


def test_at_most_max_retries_then_the_last_answer_is_returned(start_demo_api):
    api = start_demo_api(fault_rate=1.0, fault_statuses=(429,), fault_max_consecutive=100)
    stats = HttpStats()
    session = build_session(RetryPolicy(max_retries=3, backoff_factor=0.01), stats)
    response = session.get(api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"})
    assert response.status_code == 429
    assert len(api.requests("/generic")) == 4, "3 retries = 4 attempts"
    assert stats.total.as_metadata()["http_429s"] == 4


def test_a_401_is_not_retried(demo_api):
    stats = HttpStats()
    session = build_session(RetryPolicy(backoff_factor=0.01), stats)
    response = session.get(demo_api.url("generic") + "/v1/items", params={"api_key": "nope"})
    assert response.status_code == 401
    assert len(demo_api.requests("/generic")) == 1 and stats.total.retries == 0


def test_the_servers_retry_after_is_honoured(start_demo_api):
    api = start_demo_api(
        fault_rate=1.0, fault_statuses=(429,), fault_retry_after=1, fault_max_consecutive=1
    )
    stats = HttpStats()
    session = build_session(RetryPolicy(backoff_factor=0.01), stats)
    started = time.perf_counter()
    session.get(api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"})
    assert time.perf_counter() - started >= 0.95
    assert stats.total.seconds_waited == pytest.approx(1.0)


def test_connection_errors_are_retried_then_raised():
    stats = HttpStats()
    session = build_session(
        RetryPolicy(max_retries=2, backoff_factor=0.01, timeout_seconds=2), stats
    )
    with pytest.raises(requests.ConnectionError):
        session.get("http://127.0.0.1:9/unused")  # port 9 (discard) is closed on loopback
    assert stats.total.requests == 3 and stats.total.transport_errors == 3


def test_requests_are_counted_per_resource_by_endpoint_path(demo_api):
    route = path_router(
        {"items": "/v1/items", "records": "/v1/databases/{resources.databases.id}/records"}
    )
    assert route("http://h/database/v1/databases/3/records?offset=0") == "records"
    assert route("http://h/generic/v1/items") == "items"
    assert route("http://h/generic/v1/other") is None
    stats = HttpStats(route)
    session = build_session(RetryPolicy(), stats)
    session.get(demo_api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"})
    assert stats.as_metadata("items")["http_requests"] == 1
    assert stats.as_metadata("records")["http_requests"] == 0
