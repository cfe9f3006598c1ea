"""Slow down before the API answers 429: the budget its rate-limit headers tell, spent locally.

Opted in per connector with ``rate_limit: {from_headers: true}``. Every response's headers
(:mod:`restsync_dagster.extract.rate_headers`) say how many requests are left and when the
window resets; each request started afterwards spends one of them, requests still in flight
count as spent, and within a window an answer only ever lowers the count (answers arrive out of
order: an older one tells more than is left). While the budget is unknown (the run's start, a new window) one request goes
alone to learn it. Once none is left (or only ``reserve``), new requests wait for the reset, so the
API never has to refuse one. A 429 that comes anyway is retried by dlt as before (``Retry-After``
honoured); its headers pause the budget too. Held in the transport adapter, for every attempt.
The budget lives as long as the run: a run that starts while another client has spent the
window meets at most one 429, on its first request.

Runs that share an API key (``rate_limit.key``) each hold a slot of it
(:class:`~restsync_dagster.extract.share.RateShare`) and spend at most their slot's part of each
window's whole budget (told by ``X-RateLimit-Limit``, ``limit=`` or the policy's ``q``; else
the largest ``remaining + 1`` seen, which is never more). The count left that the headers tell
is the key's, so it alone cannot keep runs apart: two runs told "3 left" at once both spend 3.
A run counts its own requests against the window each answer names (its reset), and a request
still in flight as spent, so in any window of the API it sends no more than its part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from restsync_dagster.extract.rate_headers import read_rate_headers
from restsync_dagster.extract.share import RateShare

#: When the headers tell no reset, wait this long before trying again.
_UNKNOWN_RESET_SECONDS = 1.0
#: Never wait longer than this for one reset (a header far in the future is a broken header).
_MAX_WAIT_SECONDS = 300.0


class HeaderBudget:
    """The requests the API's headers allow, shared by every request of a run.

    Args:
        reserve: Requests to leave unspent (for other clients of the same key).
        share: The run's slot of its rate key, when more than one run may spend it.
    """

    def __init__(self, reserve: int = 0, share: RateShare | None = None) -> None:
        self.reserve = max(0, reserve)
        self.share = share if share is not None and share.slots > 1 else None
        #: When the window ends that each of this run's answered requests was counted in.
        self._mine: list[float] = []
        #: The window's whole budget, as told or (a lower bound) as seen.
        self._limit: int | None = None
        self._lock = threading.Condition()
        #: Requests left before the reset, as last told and spent since; None: not told.
        self._left: int | None = None
        self._reset_at = 0.0
        self._in_flight = 0
        #: Seconds spent waiting for resets (for the run's log and the tests).
        self.waited = 0.0

    def spend(self) -> None:
        """Take one request from the budget, waiting for the reset while none is left (or while
        this run has spent its share of the window)."""
        with self._lock:
            # While the budget is unknown, one request goes first to learn it; the others wait
            # for its answer, or at most this long (an answer that never comes blocks nobody).
            probe_until = time.monotonic() + _UNKNOWN_RESET_SECONDS
            while True:
                now = time.monotonic()
                wait = self._wait_for_budget(now, probe_until)
                if wait <= 0:
                    wait = self._wait_for_share(now)
                if wait <= 0:
                    break
                started = time.monotonic()
                self._lock.wait(min(wait, _MAX_WAIT_SECONDS))
                self.waited += time.monotonic() - started
            if self._left is not None:
                self._left -= 1
            self._in_flight += 1

    def _wait_for_budget(self, now: float, probe_until: float) -> float:
        """Seconds to wait for the key's budget (0 or less: go)."""
        if self._left is None:
            return 0.0 if self._in_flight == 0 else probe_until - now
        if self._left > self.reserve:
            return 0.0
        if self._reset_at - now <= 0:
            self._left = None  # a new window: an answer tells its budget
            return self._wait_for_budget(now, probe_until)
        return self._reset_at - now

    def _wait_for_share(self, now: float) -> float:
        """Seconds to wait until this run may spend again within its slot's part (0: go)."""
        if self.share is None or self._limit is None:
            return 0.0
        self._mine = [end for end in self._mine if end > now]
        allowed = self.share.of_window(self._limit - self.reserve)
        if len(self._mine) + self._in_flight < allowed:
            return 0.0
        # The first window of this run's requests to end; or, all in flight, their answers.
        return (min(self._mine) - now) if self._mine else _UNKNOWN_RESET_SECONDS

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from a response (one that was spent for)."""
        told = read_rate_headers(headers)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if told is None:
                self._count_mine(time.monotonic() + _UNKNOWN_RESET_SECONDS)
                return
            reset = _UNKNOWN_RESET_SECONDS if told.reset_seconds is None else told.reset_seconds
            reset_at = time.monotonic() + min(reset, _MAX_WAIT_SECONDS)
            self._count_mine(reset_at)
            whole = told.limit if told.limit is not None else told.remaining + 1
            self._limit = max(self._limit or 0, whole)
            # The others in flight may not be counted in this answer yet: count them as spent.
            left = told.remaining - self._in_flight
            if self._left is not None and time.monotonic() < self._reset_at:
                # The same window: answers arrive out of order, and an older one tells more than
                # is left. Only ever lower the count, and keep the later reset.
                left, reset_at = min(self._left, left), max(self._reset_at, reset_at)
            self._left, self._reset_at = left, reset_at
            self._lock.notify_all()

    def release(self) -> None:
        """A spent request that got no answer (a transport error)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            # It may have reached the API and been counted there.
            self._count_mine(time.monotonic() + _UNKNOWN_RESET_SECONDS)
            self._lock.notify_all()

    def counted_until(self) -> float:
        """When the last window this run's requests were counted in ends (``time.monotonic()``;
        0 when no request of this run counts in an open window; see
        ``RequestLimiter.counted_until``)."""
        with self._lock:
            return max(self._mine, default=0.0)

    def _count_mine(self, window_end: float) -> None:
        """Count one of this run's requests in the window that ends at ``window_end``."""
        if self.share is not None:
            self._mine.append(window_end)
