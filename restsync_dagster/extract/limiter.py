"""How hard a connector may press its API: requests in flight, requests per second, and the
budget the API's rate-limit headers tell (:mod:`restsync_dagster.extract.budget`, when opted in).

One :class:`RequestLimiter` per run, shared by every resource of the connector and held by every
attempt (retries included), in the transport adapter (:mod:`restsync_dagster.extract.adapter`).
dlt has no rate limiter of its own; this is restsync's.

The limits in a connector file are an API key's (``rate_limit.key``), shared by every run that
spends the key. A run holds one of the key's slots (taken by the orchestration floor, see
``orchestration/held.py``) and gets the :class:`~restsync_dagster.extract.share.RateShare` of
that slot: its part of the requests per second, of the requests in flight and of the budget the
headers tell. The parts of all slots add up to the key's limits, so runs that hold slots at once
never exceed them (``session_for`` in :mod:`restsync_dagster.extract.http` applies the share).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping

from restsync_dagster.extract.budget import HeaderBudget


class RequestLimiter:
    """At most ``max_concurrency`` requests in flight and ``requests_per_second`` in any
    one-second window (a sliding log, so bursts at a second's edge cannot double the rate)."""

    def __init__(
        self,
        requests_per_second: float | None = None,
        max_concurrency: int = 1,
        budget: HeaderBudget | None = None,
    ) -> None:
        #: The budget the API's headers tell, when the connector honours them.
        self.budget = budget
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._per_second = int(requests_per_second) if requests_per_second else None
        self._interval = (
            1.0 / requests_per_second if requests_per_second and requests_per_second < 1 else None
        )
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot, after waiting for the rate (and the API's budget) to allow
        another request."""
        with self._slots:
            if self.budget is not None:
                self.budget.spend()
            self._wait_for_rate()
            yield

    def answered(self, headers: Mapping[str, str] | None) -> None:
        """Tell the budget what a request's answer said (None: no answer came)."""
        if self.budget is None:
            return
        if headers is None:
            self.budget.release()
        else:
            self.budget.observe(headers)

    def counted_until(self) -> float:
        """The ``time.monotonic()`` at which no request this limiter let through counts in any
        window any more: one second after the last request (``requests_per_second``), and the
        end of the last window the API's headers named for one (the budget). A run's slot of its
        rate key is handed on only then, so the next holder's part never lands in a window
        this one spent its part of (see ``orchestration/held.py``)."""
        with self._lock:
            last = self._sent[-1] + max(1.0, self._interval or 0.0) if self._sent else 0.0
        return max(last, self.budget.counted_until() if self.budget is not None else 0.0)

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
