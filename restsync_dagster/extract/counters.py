"""What the HTTP layer did during a run, in total and per resource, and how a request says which
resource it belongs to.

Identity travels with the request: the page checks of each resource (see
:mod:`restsync_dagster.extract.pages`) register a :class:`ResourceTag` as a response hook on the
resource's ``requests.Request``. ``requests`` copies hooks into every ``PreparedRequest`` made from
it, so the transport adapter reads the resource off the request it sends, retries included.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from requests import PreparedRequest, Request

from restsync_dagster.failures.redaction import redact_url


class ResourceTag:
    """A response hook that does nothing but name the resource its request belongs to."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def __deepcopy__(self, memo: dict[int, Any]) -> ResourceTag:
        return self  # immutable: dlt copies requests and paginators per request sequence


def tag_request(request: Request, resource: str) -> None:
    """Mark ``request`` (and every request prepared from it) as ``resource``'s."""
    hooks = request.hooks.get("response") or []
    if not any(isinstance(h, ResourceTag) for h in hooks):
        request.register_hook("response", ResourceTag(resource))


def resource_of(request: PreparedRequest | Request | None) -> str | None:
    """The resource ``request`` was tagged with, if any."""
    hooks = (getattr(request, "hooks", None) or {}).get("response") or []
    return next((h.resource for h in hooks if isinstance(h, ResourceTag)), None)


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
    """Counters of one run, in total and per resource. Thread-safe.

    Args:
        keep_log: Also keep ``(method, redacted url, status or None)`` per attempt (previews).
    """

    def __init__(self, keep_log: bool = False) -> None:
        self._lock = threading.Lock()
        self.total = HttpCounters()
        self.by_resource: dict[str, HttpCounters] = {}
        #: ``(method, redacted url, status or None for a transport error)`` per attempt, when
        #: kept.
        self.log: list[tuple[str, str, int | None]] | None = [] if keep_log else None

    def _counters(self, resource: str | None) -> list[HttpCounters]:
        if resource is None:
            return [self.total]
        return [self.total, self.by_resource.setdefault(resource, HttpCounters())]

    def attempt(self, resource: str | None, retry_wait: float | None) -> None:
        """One attempt is about to be sent; ``retry_wait`` is set when it repeats a failed one."""
        with self._lock:
            for c in self._counters(resource):
                c.requests += 1
                if retry_wait is not None:
                    c.retries += 1
                    c.seconds_waited += retry_wait

    def status(self, resource: str | None, url: str | None, code: int, method: str) -> None:
        with self._lock:
            for c in self._counters(resource):
                c.statuses[code] += 1
            self._remember(method, url, code)

    def transport_error(self, resource: str | None, url: str | None, method: str) -> None:
        with self._lock:
            for c in self._counters(resource):
                c.transport_errors += 1
            self._remember(method, url, None)

    def _remember(self, method: str, url: str | None, code: int | None) -> None:
        if self.log is not None and url and len(self.log) < 10_000:
            self.log.append((method.upper(), redact_url(url), code))

    def as_metadata(self, resource: str | None = None) -> dict[str, Any]:
        """Counters of ``resource`` (or of the whole run) as metadata values."""
        with self._lock:
            counters = self.total if resource is None else self.by_resource.get(resource)
            return (counters or HttpCounters()).as_metadata()
