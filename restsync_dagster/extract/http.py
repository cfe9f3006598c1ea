"""The HTTP session of a run: dlt's retrying client, with restsync's transport adapter mounted.

Retries are dlt's own (``dlt.sources.helpers.requests.Client``), configured per connector from its
``retry:`` block (statuses, ``max_retries`` + 1 attempts, ``backoff_factor * 2**(n-1)`` seconds,
``Retry-After`` honoured, every wait capped at ``max_delay_seconds``). What restsync adds sits in
the adapter each attempt passes through (:mod:`restsync_dagster.extract.adapter`): rate and
concurrency limits, counters per resource, prefetched pages and strict bodies. The session is
handed to ``rest_api_source`` as ``client.session``. It reads the environment's proxy and CA
settings once per host (:class:`EnvironmentSettings`), set through dlt's ``session_attrs``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from restsync_dagster.connector import Connector
from restsync_dagster.extract.adapter import RestsyncAdapter, RetryNotices
from restsync_dagster.extract.body_actions import retry_on_body
from restsync_dagster.extract.budget import HeaderBudget
from restsync_dagster.extract.counters import HttpStats
from restsync_dagster.extract.limiter import RequestLimiter
from restsync_dagster.extract.prefetch import Prefetcher
from restsync_dagster.extract.share import RateShare


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


class EnvironmentSettings:
    """``requests.Session.merge_environment_settings``, read once per scheme and host of a run.

    For every request, requests looks up the proxy variables (walking the whole environment twice,
    in ``urllib.request.getproxies_environment``) and the CA-bundle variables: 0.56 s of a 100k-row
    flat sync's main thread under cProfile (1,000 pages; a tenth of the sync). A run's
    environment does not change while it runs, so the answer for a host is kept. What a caller
    passes itself (proxies, stream, verify, cert) is merged as requests merges it, uncached.
    """

    def __init__(self) -> None:
        import requests

        #: A session with requests' defaults: dlt's sessions change none of these settings.
        self._defaults = requests.Session()
        self._lock = threading.Lock()
        self._by_host: dict[tuple[str, str], dict[str, Any]] = {}

    def __call__(
        self, url: str | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None:
            return dict(
                self._defaults.merge_environment_settings(url, proxies, stream, verify, cert)
            )
        parts = urlsplit(url or "")
        key = (parts.scheme, parts.netloc)
        with self._lock:
            found = self._by_host.get(key)
            if found is None:
                found = dict(self._defaults.merge_environment_settings(url, {}, None, None, None))
                self._by_host[key] = found
        return {**found, "proxies": dict(found.get("proxies") or {})}


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
        session_attrs={"merge_environment_settings": EnvironmentSettings()},
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


def session_for(
    connector: Connector, stats: HttpStats, prefetched: Any = None, share: RateShare | None = None
) -> Any:
    """The connector's HTTP session: its retries, its rate and concurrency limits (``share``'s
    part of them, when the run holds one of several slots of its rate key), counted."""
    rate = connector.config.rate_limit
    share = share or RateShare()
    budget = HeaderBudget(rate.reserve, share) if rate.from_headers else None
    limiter = RequestLimiter(
        share.requests_per_second(rate.requests_per_second),
        share.concurrency(rate.max_concurrency),
        budget,
    )
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


def rate_counted_until(session: Any) -> float:
    """When ``session``'s requests stop counting in any window of its rate key
    (``time.monotonic()``; see ``RequestLimiter.counted_until``)."""
    return adapter_of(session).limiter.counted_until()


def adapter_of(session: Any) -> RestsyncAdapter:
    """The restsync adapter mounted on ``session`` (for the prefetcher)."""
    adapter = session.get_adapter("https://")
    assert isinstance(adapter, RestsyncAdapter)
    return adapter
