"""The transport adapter every request of a run goes through, once per attempt.

``requests`` lets a session mount a transport adapter: restsync's wraps ``HTTPAdapter`` (a public
seam of ``requests``) and adds, per attempt and retries included:

* the connector's rate and concurrency limits (:class:`~restsync_dagster.extract.limiter.RequestLimiter`),
  and the budget the API's rate-limit headers tell, when the connector honours them;
* the counters of the resource the request belongs to (:mod:`restsync_dagster.extract.counters`),
  including retries and the seconds waited before them, measured, not assumed;
* answers fetched ahead of time by the prefetcher (:mod:`restsync_dagster.extract.prefetch`);
* responses in the endpoint's ``response_format`` (JSON lines, CSV: :mod:`restsync_dagster.extract.formats`);
* responses whose ``json()`` parses once and strictly (invalid UTF-8 is refused: ``requests``
  would decode it with replacement characters), and fails with the page's URL;
* a 2xx HTML page (a proxy or maintenance page) refused as a contract breach.

Retries themselves are dlt's (``dlt.sources.helpers.requests.Client``), around this adapter.
"""

from __future__ import annotations

import codecs
import json
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, RequestException, Timeout

from restsync_dagster.extract.counters import HttpStats, resource_of
from restsync_dagster.extract.formats import (
    BodyFormatError,
    loads_json,
    parse_records,
    ungzipped,
)
from restsync_dagster.extract.limiter import RequestLimiter
from restsync_dagster.failures.errors import (
    ConnectionRefused,
    HostNotFound,
    RefusedMidSync,
    ResponseBodyError,
    ResponseContractError,
    TlsError,
    UnknownCharsetError,
    UnreachableError,
)
from restsync_dagster.failures.redaction import redact_url
from restsync_dagster.failures.retry_after import parse_retry_after

#: Failures of the transport itself.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (ConnectionError, Timeout, ChunkedEncodingError)


class StrictJsonResponse(Response):
    """A response whose body is parsed once, strictly, and whose errors name its URL."""

    _parsed: Any
    _has_parsed = False
    #: The endpoint's ``response_format`` (:mod:`restsync_dagster.extract.formats`).
    body_format = "json"
    #: The resource the request was made for, when tagged.
    resource: str | None = None
    #: A CSV page's header row, once parsed (the page checks compare it across pages).
    csv_header: tuple[str, ...] = ()

    @property
    def content(self) -> bytes:  # type: ignore[override]
        try:
            return super().content  # type: ignore[no-any-return]
        except RequestException as exc:
            if exc.request is not None:
                raise
            # requests raises these while reading the body (a stall, a cut), with no request
            # attached: attach it, so the failure names the page (RequestException.request).
            raise type(exc)(*exc.args, request=self.request, response=self) from exc

    def json(self, **kwargs: Any) -> Any:
        """The body as JSON: parsed once (dlt's client, its paginator and the page checks each
        ask), from bytes (UTF-8/16/32 detected) or strictly decoded with the declared charset.

        Raises:
            ResponseBodyError: the body is not JSON, or not valid in its encoding.
            UnknownCharsetError: the declared charset has no codec.
        """
        if self._has_parsed and not kwargs:
            return self._parsed
        url = redact_url(self.url or "")
        if self.body_format != "json":
            self._parsed, self._has_parsed = self._records(url), True
            return self._parsed
        try:
            text = self._strict_text(url)
            value = json.loads(text, **kwargs) if kwargs else loads_json(text)
        except UnknownCharsetError:
            raise
        except UnicodeDecodeError:
            raise ResponseBodyError("The response body is not valid UTF-8", url=url) from None
        except ValueError:
            raise ResponseBodyError("The response body is not valid JSON", url=url) from None
        if not kwargs:
            self._parsed, self._has_parsed = value, True
        return value

    def _records(self, url: str) -> list[dict[str, Any]]:
        """The records of a ``jsonl`` or ``csv`` body (gzip files decoded)."""
        content_type = self.headers.get("Content-Type", "")
        try:
            text = ungzipped(self.content, content_type).decode(self._charset() or "utf-8")
            records, self.csv_header = parse_records(text, self.body_format)
        except (UnicodeDecodeError, LookupError, OSError, EOFError, BodyFormatError) as exc:
            problem = f"the {self.body_format} body cannot be read: {exc}"
            raise ResponseContractError(self.resource or "?", url, problem) from None
        return records

    def _charset(self) -> str | None:
        content_type = self.headers.get("Content-Type", "")
        return next(
            (
                p.split("=", 1)[1].strip().strip('"')
                for p in content_type.split(";")
                if "charset=" in p
            ),
            None,
        )

    def _strict_text(self, url: str) -> str | bytes:
        declared = self._charset()
        if declared and declared.lower().replace("-", "") not in ("utf8", "utf16", "utf32"):
            try:
                codecs.lookup(declared)
            except LookupError:
                raise UnknownCharsetError(declared, url=url) from None
            return self.content.decode(declared)
        return self.content


class RestsyncAdapter(HTTPAdapter):
    """``HTTPAdapter`` plus limits, counters, prefetched answers and strict bodies."""

    def __init__(
        self,
        stats: HttpStats,
        limiter: RequestLimiter,
        prefetched: Any = None,
        pool_maxsize: int = 32,
        retries: RetryNotices | None = None,
        formats: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_maxsize)
        #: Resource -> its endpoint's ``response_format`` (``json`` when absent).
        self.formats: Mapping[str, str] = formats or {}
        self.stats = stats
        self.limiter = limiter
        self.retries = retries
        #: Where answers fetched ahead wait to be taken (a ``Prefetcher``), if any.
        self.prefetched = prefetched
        self._lock = threading.Lock()
        self._ended: weakref.WeakKeyDictionary[PreparedRequest, float] = weakref.WeakKeyDictionary()
        self._attempts: weakref.WeakKeyDictionary[PreparedRequest, int] = (
            weakref.WeakKeyDictionary()
        )
        #: Scheme and host:port -> 2xx answers from it: a refusal after some is not a wrong
        #: address but an API gone away mid-sync.
        self._good_answers: Counter[str] = Counter()

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        ahead: Future[Response] | None = (
            self.prefetched.take(request) if self.prefetched is not None else None
        )
        with self._lock:
            attempt = self._attempts[request] = self._attempts.get(request, 0) + 1
        try:
            # A prefetched answer was counted when it was sent.
            response = ahead.result() if ahead is not None else self.send_now(request, **kwargs)
        except TRANSPORT_ERRORS as exc:
            if self.retries is not None:
                self.retries.announce(request, attempt, None, type(exc).__name__)
            raise
        finally:
            with self._lock:
                self._ended[request] = time.monotonic()
        if self.retries is not None:
            self.retries.announce(request, attempt, response, str(response.status_code))
        return response

    def send_now(self, request: PreparedRequest, **kwargs: Any) -> Response:
        """One attempt on the network, limited and counted."""
        resource = resource_of(request)
        with self._lock:
            ended = self._ended.get(request)
        # dlt's retry sends the same PreparedRequest again: the gap is the wait it chose.
        retry_wait = time.monotonic() - ended if ended is not None else None
        with self.limiter.slot():
            self.stats.attempt(resource, retry_wait)
            try:
                response = super().send(request, **kwargs)
                if not kwargs.get("stream"):
                    # Read the body inside the slot: until then the server is still sending.
                    _ = response.content
            except TRANSPORT_ERRORS as exc:
                self.limiter.answered(None)
                self.stats.transport_error(resource, request.url, str(request.method))
                unreachable = unreachable_error(exc, request.url or "")
                if isinstance(unreachable, ConnectionRefused):
                    with self._lock:
                        good = self._good_answers[_origin(request.url)]
                    if good:  # a requests ConnectionError too: dlt retries it
                        url = request.url or ""
                        raise RefusedMidSync(redact_url(url), _address(url), good, request) from exc
                if unreachable is not None:
                    raise unreachable from exc  # not a requests error: dlt does not retry it
                raise
            except BaseException:
                self.limiter.answered(None)
                raise
            self.limiter.answered(response.headers)
        if 200 <= response.status_code < 300:
            with self._lock:
                self._good_answers[_origin(request.url)] += 1
        self.stats.status(resource, request.url, response.status_code, str(request.method))
        _refuse_html_success(response, resource)
        return response

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        response = super().build_response(req, resp)
        response.__class__ = StrictJsonResponse
        assert isinstance(response, StrictJsonResponse)
        response.resource = resource_of(req)
        if response.resource is not None:
            response.body_format = self.formats.get(response.resource, "json")
        return response


#: Retries as they are decided: ``record.restsync_retry`` is a :class:`RetryNotice`.
HTTP_LOGGER = logging.getLogger("restsync.http")


@dataclass(frozen=True)
class RetryNotice:
    """A retry about to happen: ``429, retry 2/3 in 4 s (Retry-After)``."""

    resource: str | None
    cause: str
    retry: int
    of: int
    wait_seconds: float
    retry_after: bool

    def __str__(self) -> str:
        source = " (Retry-After)" if self.retry_after else ""
        where = f"{self.resource}: " if self.resource else ""
        return (
            f"{where}{self.cause}, retry {self.retry}/{self.of} in {self.wait_seconds:.0f} s"
            f"{source}"
        )


@dataclass(frozen=True)
class RetryNotices:
    """Announces dlt's retries before they happen, on ``restsync.http``. The wait is the one
    dlt's client will take: ``Retry-After`` when sent, else ``factor * 2**(n-1)``, capped."""

    statuses: tuple[int, ...]
    max_retries: int
    backoff_factor: float
    max_delay_seconds: float

    def announce(
        self, request: PreparedRequest, attempt: int, response: Response | None, cause: str
    ) -> None:
        if attempt > self.max_retries or not HTTP_LOGGER.isEnabledFor(logging.INFO):
            return
        if response is not None and response.status_code not in self.statuses:
            return
        asked = parse_retry_after(response.headers.get("Retry-After")) if response else None
        wait = asked if asked else self.backoff_factor * 2 ** (attempt - 1)
        notice = RetryNotice(
            resource_of(request), cause, attempt, self.max_retries,
            min(wait, self.max_delay_seconds), bool(asked),
        )  # fmt: skip
        HTTP_LOGGER.info("%s", notice, extra={"restsync_retry": notice})


def unreachable_error(exc: BaseException, url: str) -> UnreachableError | None:
    """A refused connection, an unknown host or a failed TLS handshake behind a ``requests``
    error, as restsync's own error; None for anything else (a reset, a timeout: worth retrying)."""
    import socket
    import ssl

    from requests.exceptions import SSLError

    address = _address(url)
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return ConnectionRefused(redact_url(url), f"Connection refused at {address}")
        if isinstance(cause, socket.gaierror):
            host = address.rsplit(":", 1)[0]
            return HostNotFound(redact_url(url), f"The host name {host!r} does not resolve")
        if isinstance(cause, SSLError | ssl.SSLError):
            reason = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else "TLS"
            return TlsError(redact_url(url), f"TLS with {address} failed: {redact_url(reason)}")
    return None


def _address(url: str) -> str:
    """``host:port`` of ``url``, without any ``user:password@``."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _origin(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{_address(url or '')}"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, arguments and urllib3's ``reason``."""
    seen: list[BaseException] = []
    stack: list[Any] = [exc]
    while stack and len(seen) < 20:
        current = stack.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(current.args)
    return seen


def _refuse_html_success(response: Response, resource: str | None) -> None:
    """An HTML page answered with 2xx is a proxy or maintenance page, never an API response."""
    content_type = response.headers.get("Content-Type", "")
    if 200 <= response.status_code < 300 and content_type.lower().startswith("text/html"):
        raise ResponseContractError(
            resource or "?",
            redact_url(response.url or ""),
            f"the API answered {response.status_code} with an HTML page ({content_type}), not JSON",
        )
