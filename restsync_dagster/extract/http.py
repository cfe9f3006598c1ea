"""The HTTP session of a run: dlt's retrying client, with restsync's transport adapter mounted.

Retries are dlt's own (``dlt.sources.helpers.requests.Client``), configured per connector from its
``retry:`` block (statuses, ``max_retries`` + 1 attempts, ``backoff_factor * 2**(n-1)`` seconds,
``Retry-After`` honoured, every wait capped at ``max_delay_seconds``). What restsync adds sits in
the adapter each attempt passes through (:mod:`restsync_dagster.extract.adapter`): rate and
concurrency limits, counters per resource, prefetched pages and strict bodies. The session is
handed to ``rest_api_source`` as ``client.session``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restsync_dagster.connector import Connector
from restsync_dagster.extract.adapter import RestsyncAdapter, RetryNotices
from restsync_dagster.extract.body_actions import retry_on_body
from restsync_dagster.extract.budget import HeaderBudget
from restsync_dagster.extract.counters import HttpStats
from restsync_dagster.extract.limiter import RequestLimiter
from restsync_dagster.extract.prefetch import Prefetcher


@dataclass(frozen=True)
class RetryPolicy:
    """How one connector retries a single HTTP request (its ``retry:`` and ``timeout_seconds``)."""

    statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retries: int = 3
    backoff_factor: float = 2.0
    max_delay_seconds: float = 60.0
    timeout_seconds: float = 60.0

    @classmethod
    def of(cls, connector: Connector) -> RetryPolicy:
        """The policy a connector file declares."""
        retry = connector.config.retry
        return cls(
            statuses=retry.statuses,
            max_retries=retry.max_retries,
            backoff_factor=retry.backoff_factor,
            max_delay_seconds=retry.max_delay_seconds,
            timeout_seconds=connector.config.timeout_seconds,
        )


def build_session(
    policy: RetryPolicy,
    stats: HttpStats | None = None,
    limiter: RequestLimiter | None = None,
    prefetched: Any = None,
    formats: Mapping[str, str] | None = None,
) -> Any:
    """A ``requests`` session that retries like ``policy`` says and counts what it did.

    Args:
        policy: The connector's retry settings.
        stats: Where to count requests, statuses, retries and waits (a fresh one if omitted).
        limiter: The connector's rate and concurrency limits, held by every attempt.
        prefetched: A :class:`~restsync_dagster.extract.prefetch.Prefetcher` whose answers are
            served to the requests they were fetched for.
        formats: Resource -> its endpoint's ``response_format`` (``json`` when absent).

    Returns:
        A dlt ``Session`` (``raise_for_status=False``: dlt's REST client raises itself).
    """
    from dlt.sources.helpers.requests.retry import Client

    client = Client(
        request_timeout=policy.timeout_seconds,
        raise_for_status=False,
        status_codes=policy.statuses,
        request_max_attempts=policy.max_retries + 1,
        request_backoff_factor=policy.backoff_factor,
        request_max_retry_delay=policy.max_delay_seconds,
        respect_retry_after_header=True,
        retry_condition=retry_on_body,  # a 200 whose body asks for a retry (body_actions.py)
    )
    session = client.session
    adapter = RestsyncAdapter(
        stats if stats is not None else HttpStats(),
        limiter if limiter is not None else RequestLimiter(max_concurrency=64),
        prefetched,
        retries=RetryNotices(
            policy.statuses, policy.max_retries, policy.backoff_factor, policy.max_delay_seconds
        ),
        formats=formats,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def session_for(connector: Connector, stats: HttpStats, prefetched: Any = None) -> Any:
    """The connector's HTTP session: its retries, its rate and concurrency limits, counted."""
    rate = connector.config.rate_limit
    budget = HeaderBudget(rate.reserve) if rate.from_headers else None
    limiter = RequestLimiter(rate.requests_per_second, rate.max_concurrency, budget)
    formats = {
        r.name: str(r.endpoint["response_format"])
        for r in connector.resources
        if r.endpoint.get("response_format")
    }
    return build_session(RetryPolicy.of(connector), stats, limiter, prefetched, formats)


def prefetcher_for(session: Any, workers: int) -> Prefetcher | None:
    """A prefetcher serving ``session``'s requests, when more than one may be in flight."""
    if workers <= 1:
        return None
    prefetcher = Prefetcher(session, workers)
    adapter_of(session).prefetched = prefetcher
    return prefetcher


def adapter_of(session: Any) -> RestsyncAdapter:
    """The restsync adapter mounted on ``session`` (for the prefetcher)."""
    adapter = session.get_adapter("https://")
    assert isinstance(adapter, RestsyncAdapter)
    return adapter
