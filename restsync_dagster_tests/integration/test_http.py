"""The retrying session against a real local server: which failures it retries, how long it waits."""

import socket
import threading
import time

import pytest
import requests

from restsync_dagster.extract.adapter import unreachable_error
from restsync_dagster.extract.counters import HttpStats, resource_of, tag_request
from restsync_dagster.extract.http import RetryPolicy, build_session
from restsync_dagster.failures.errors import ConnectionRefused, HostNotFound, TlsError
from restsync_dagster.failures.retry_after import parse_retry_after


def test_the_waits_double_from_the_backoff_factor_and_are_capped(start_demo_api):
    api = start_demo_api(fault_rate=1.0, fault_statuses=(503,), fault_max_consecutive=3)
    stats = HttpStats()
    session = build_session(RetryPolicy(backoff_factor=0.2, max_delay_seconds=0.5), stats)
    session.get(api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"})
    # 0.2, 0.4, then 0.8 capped at 0.5, measured between the attempts the adapter saw.
    assert stats.total.retries == 3
    assert stats.total.seconds_waited == pytest.approx(1.1, abs=0.25)


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:40 GMT", now=1767225600.0) == 100.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now=1767225700.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


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
    assert stats.total.seconds_waited == pytest.approx(1.0, abs=0.2)  # measured between attempts


def test_a_refused_connection_fails_at_once_as_restsyncs_own_error():
    stats = HttpStats()
    session = build_session(RetryPolicy(max_retries=3, backoff_factor=0.01), stats)
    with pytest.raises(ConnectionRefused, match=r"Connection refused at 127\.0\.0\.1:9"):
        session.get("http://127.0.0.1:9/unused?api_key=SECRETKEY")  # closed on loopback
    assert stats.total.requests == 1, "a wrong port does not fix itself: no retry"


def test_a_host_that_does_not_resolve_and_a_tls_failure_are_named_as_such():
    import socket
    import ssl

    dns = requests.ConnectionError(OSError("Failed to resolve"))
    dns.args[0].__cause__ = socket.gaierror(-2, "Name or service not known")
    found = unreachable_error(dns, "https://api.example.test/v1/x?token=SECRETKEY")
    assert isinstance(found, HostNotFound) and "'api.example.test' does not resolve" in str(found)
    assert "SECRETKEY" not in str(found)
    tls = requests.exceptions.SSLError(ssl.SSLError("CERTIFICATE_VERIFY_FAILED"))
    found = unreachable_error(tls, "https://api.example.test:8443/v1")
    assert isinstance(found, TlsError) and "TLS with api.example.test:8443 failed" in str(found)
    assert unreachable_error(requests.ConnectionError("reset by peer"), "https://h/") is None


def test_connection_errors_are_retried_then_raised():
    stats = HttpStats()
    session = build_session(
        RetryPolicy(max_retries=2, backoff_factor=0.01, timeout_seconds=2), stats
    )
    with socket.socket() as silent:  # accepts, then closes every connection without a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]

        def hang_up() -> None:
            for _ in range(3):
                connection, _ = silent.accept()
                connection.close()

        threading.Thread(target=hang_up, daemon=True).start()
        with pytest.raises(requests.ConnectionError):
            session.get(f"http://127.0.0.1:{port}/unused")
    assert stats.total.requests == 3 and stats.total.transport_errors == 3


def test_requests_are_counted_for_the_resource_their_request_is_tagged_with(start_demo_api):
    api = start_demo_api(fault_rate=1.0, fault_statuses=(503,), fault_max_consecutive=1)
    stats = HttpStats()
    session = build_session(RetryPolicy(backoff_factor=0.01), stats)
    request = requests.Request(
        "GET", api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"}
    )
    tag_request(request, "items")
    prepared = session.prepare_request(request)
    assert resource_of(prepared) == "items"
    assert session.send(prepared).status_code == 200
    session.get(api.url("generic") + "/v1/customers", params={"api_key": "demo-generic-key"})
    assert stats.as_metadata("items")["http_requests"] == 2  # the 503, then the retry
    assert stats.as_metadata("items")["http_retries"] == 1
    assert stats.total.requests == 4 and stats.as_metadata("records")["http_requests"] == 0
