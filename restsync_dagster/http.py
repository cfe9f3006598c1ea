"""The HTTP session every connector's requests go through: retries with backoff, and counters.

dlt reads its global retry settings when a source is built, so the session is built here,
explicitly, from the connector's ``retry:`` block and handed to ``rest_api_source`` as
``client.session``. It is dlt's own retry machinery (tenacity, ``Retry-After`` aware) with two
additions: the waits are capped by ``retry.max_delay_seconds``, and every attempt, status and wait
is counted in :class:`HttpStats` so each materialization can report what the HTTP layer absorbed.
"""

from __future__ import annotations

import codecs
import contextlib
import json as json_module
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, HTTPError, Timeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_any,
    retry_if_exception_type,
    stop_after_attempt,
)

from restsync_dagster.redaction import redact_url

#: Failures of the transport itself; always worth another attempt.
TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (ConnectionError, Timeout, ChunkedEncodingError)


@dataclass(frozen=True)
class RetryPolicy:
    """How one connector retries a single HTTP request."""

    statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retries: int = 3
    backoff_factor: float = 2.0
    max_delay_seconds: float = 60.0
    timeout_seconds: float = 60.0

    def wait_seconds(self, retry_number: int, retry_after: float | None = None) -> float:
        """The wait before retry ``retry_number`` (1-based): ``factor * 2**(n-1)``, or the server's
        ``Retry-After`` when it sent one, capped at ``max_delay_seconds``."""
        wait = (
            retry_after
            if retry_after is not None
            else self.backoff_factor * 2 ** (retry_number - 1)
        )
        return max(0.0, min(wait, self.max_delay_seconds))


@dataclass
class HttpCounters:
    """Requests, statuses, retries and waits of one resource (or of a whole run)."""

    requests: int = 0
    retries: int = 0
    seconds_waited: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0

    def as_metadata(self) -> dict[str, Any]:
        """Counters as plain values, for materialization metadata."""
        return {
            "http_requests": self.requests,
            "http_retries": self.retries,
            "http_429s": self.statuses.get(429, 0),
            "http_5xx": sum(n for code, n in self.statuses.items() if code >= 500),
            "http_transport_errors": self.transport_errors,
            "http_seconds_waited": round(self.seconds_waited, 3),
        }


class HttpStats:
    """What the HTTP layer did during one run, in total and per resource. Thread-safe.

    Args:
        route: Maps a request URL to the resource that made it (None when unknown).
    """

    def __init__(
        self, route: Callable[[str], str | None] | None = None, keep_log: bool = False
    ) -> None:
        self._route = route or (lambda _url: None)
        self._lock = threading.Lock()
        self.total = HttpCounters()
        self.by_resource: dict[str, HttpCounters] = {}
        self.last_url: str | None = None
        #: ``(redacted url, status or None for a transport error)`` per attempt, when kept.
        self.log: list[tuple[str, int | None]] | None = [] if keep_log else None

    def resource_of(self, url: str | None) -> str | None:
        """The resource that requested ``url``, when the router knows it."""
        return self._route(url) if url else None

    def _counters(self, url: str | None) -> list[HttpCounters]:
        resource = self._route(url) if url else None
        if resource is None:
            return [self.total]
        return [self.total, self.by_resource.setdefault(resource, HttpCounters())]

    def attempt(self, url: str | None) -> None:
        with self._lock:
            for c in self._counters(url):
                c.requests += 1
            if url:
                self.last_url = redact_url(url)

    def status(self, url: str | None, code: int) -> None:
        with self._lock:
            for c in self._counters(url):
                c.statuses[code] += 1
            self._remember(url, code)

    def transport_error(self, url: str | None) -> None:
        with self._lock:
            for c in self._counters(url):
                c.transport_errors += 1
            self._remember(url, None)

    def _remember(self, url: str | None, code: int | None) -> None:
        if self.log is not None and url and len(self.log) < 10_000:
            self.log.append((redact_url(url), code))

    def waited(self, url: str | None, seconds: float) -> None:
        with self._lock:
            for c in self._counters(url):
                c.retries += 1
                c.seconds_waited += seconds

    def as_metadata(self, resource: str | None = None) -> dict[str, Any]:
        """Counters of ``resource`` (or of the whole run) as metadata values."""
        with self._lock:
            counters = self.total if resource is None else self.by_resource.get(resource)
            return (counters or HttpCounters()).as_metadata()


def path_router(paths: Mapping[str, str]) -> Callable[[str], str | None]:
    """A router from request URL to resource name, by endpoint path.

    Args:
        paths: resource name -> endpoint path; ``{placeholders}`` match one path segment.
    """
    patterns = []
    for resource, path in paths.items():
        parts = re.split(r"\{[^}]*\}", path.strip("/"))
        regex = "[^/]+".join(re.escape(part) for part in parts)
        patterns.append((len(path), re.compile(f"/{regex}/?$"), resource))
    patterns.sort(key=lambda item: item[0], reverse=True)

    def route(url: str) -> str | None:
        url_path = urlsplit(url).path
        for _, pattern, resource in patterns:
            if pattern.search(url_path):
                return resource
        return None

    return route


class RequestLimiter:
    """At most ``max_concurrency`` requests in flight and ``requests_per_second`` in any
    one-second window (a sliding log, so bursts at a second's edge cannot double the rate)."""

    def __init__(self, requests_per_second: float | None = None, max_concurrency: int = 1) -> None:
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._per_second = int(requests_per_second) if requests_per_second else None
        self._interval = (
            1.0 / requests_per_second if requests_per_second and requests_per_second < 1 else None
        )
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot, after waiting for the rate to allow another request."""
        with self._slots:
            self._wait_for_rate()
            yield

    def _wait_for_rate(self) -> None:
        if self._per_second is None and self._interval is None:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                if self._interval is not None:  # fewer than one per second: space them out
                    wait = (self._sent[-1] + self._interval - now) if self._sent else 0.0
                else:
                    while self._sent and now - self._sent[0] >= 1.0:
                        self._sent.popleft()
                    full = len(self._sent) >= (self._per_second or 1)
                    wait = (self._sent[0] + 1.0 - now) if full else 0.0
                if wait <= 0:
                    self._sent.append(now)
                    if len(self._sent) > 10_000:
                        self._sent.popleft()
                    return
            time.sleep(wait)


def _response_of(state: RetryCallState) -> Response | None:
    outcome = state.outcome
    if outcome is None:
        return None
    exc = outcome.exception()
    if exc is not None:
        return exc.response if isinstance(exc, HTTPError) else None
    result = outcome.result()
    return result if isinstance(result, Response) else None


def _retry_after_seconds(response: Response | None) -> float | None:
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    import datetime as _dt

    return max(0.0, (moment - _dt.datetime.now(moment.tzinfo)).total_seconds())


class _RetryOnStatus:
    def __init__(self, statuses: tuple[int, ...]) -> None:
        self.statuses = frozenset(statuses)

    def __call__(self, state: RetryCallState) -> bool:
        response = _response_of(state)
        return response is not None and response.status_code in self.statuses


def _memoize_json(response: Response) -> None:
    """Parse the body once, strictly: dlt's client, its paginator (for ``total``) and the page
    checks each call ``response.json()``, which would parse the same bytes three times, and
    requests decodes invalid UTF-8 with replacement characters, silently corrupting text."""
    cache: list[Any] = []

    def parse(**kwargs: Any) -> Any:
        try:
            if kwargs:
                return json_module.loads(_strict_text(response), **kwargs)
            if not cache:
                cache.append(json_module.loads(_strict_text(response)))
            return cache[0]
        except (ValueError, UnicodeDecodeError) as exc:
            # Pages are fetched concurrently: the URL "requested last" may be another page's.
            exc.restsync_url = response.url  # type: ignore[attr-defined]
            raise

    response.json = parse  # type: ignore[method-assign]


def _strict_text(response: Response) -> str | bytes:
    """The body for ``json.loads``: bytes (UTF-8/16/32 detected, invalid bytes refused), or text
    decoded strictly with the charset the server declared."""
    content_type = response.headers.get("Content-Type", "")
    declared = next(
        (p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";") if "charset=" in p),
        None,
    )
    if declared and declared.lower().replace("-", "") not in ("utf8", "utf16", "utf32"):
        if not _known_codec(declared):  # as unreadable as a body that does not decode
            from restsync_dagster.errors import UnknownCharsetError

            raise UnknownCharsetError(declared)
        return response.content.decode(declared)
    return response.content


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _refuse_html_success(response: Response, stats: HttpStats) -> None:
    """An HTML page answered with 2xx is a proxy or maintenance page, never an API response."""
    content_type = response.headers.get("Content-Type", "")
    if 200 <= response.status_code < 300 and content_type.lower().startswith("text/html"):
        from restsync_dagster.errors import ResponseContractError

        raise ResponseContractError(
            stats.resource_of(response.url) or "?",
            redact_url(response.url or ""),
            f"the API answered {response.status_code} with an HTML page ({content_type}), not JSON",
        )


def build_session(
    policy: RetryPolicy, stats: HttpStats | None = None, limiter: RequestLimiter | None = None
) -> Any:
    """A ``requests`` session that retries like the policy says and counts what it did.

    Args:
        policy: The connector's retry settings.
        stats: Where to count requests, statuses, retries and waits (a fresh one if omitted).
        limiter: The connector's rate and concurrency limits, held by every attempt.

    Returns:
        A dlt ``Session`` (``raise_for_status=False``: dlt's REST client raises itself).
    """
    from dlt.sources.helpers.requests.session import Session

    counters: HttpStats = stats if stats is not None else HttpStats()
    gate = limiter if limiter is not None else RequestLimiter(max_concurrency=64)

    class RetryingSession(Session):
        """dlt's Session whose ``send`` retries transient failures with backoff."""

        def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
            retrying = Retrying(
                wait=_wait,
                retry=retry_any(
                    _RetryOnStatus(policy.statuses),
                    retry_if_exception_type(TRANSIENT_EXCEPTIONS),
                ),
                stop=stop_after_attempt(policy.max_retries + 1),
                reraise=True,
                before_sleep=lambda state: counters.waited(request.url, state.upcoming_sleep),
                # Out of attempts on a retryable status: hand the last response back so dlt's
                # client raises its usual HTTPError (with the URL redacted).
                retry_error_callback=lambda state: (
                    state.outcome.result() if state.outcome else None
                ),
            )
            return retrying(self._send_once, request, **kwargs)

        def _send_once(self, request: PreparedRequest, **kwargs: Any) -> Response:
            with gate.slot():
                return self._send_counted(request, **kwargs)

        def _send_counted(self, request: PreparedRequest, **kwargs: Any) -> Response:
            counters.attempt(request.url)
            try:
                response = Session.send(self, request, **kwargs)
            except HTTPError as exc:  # raised by dlt's response hook inside send()
                if exc.response is not None:
                    counters.status(request.url, exc.response.status_code)
                raise
            except TRANSIENT_EXCEPTIONS as exc:
                counters.transport_error(request.url)
                exc.restsync_url = request.url  # type: ignore[attr-defined]
                raise
            counters.status(request.url, response.status_code)
            _refuse_html_success(response, counters)
            _memoize_json(response)
            return response

    def _wait(state: RetryCallState) -> float:
        return policy.wait_seconds(state.attempt_number, _retry_after_seconds(_response_of(state)))

    session = RetryingSession(timeout=policy.timeout_seconds, raise_for_status=False)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
