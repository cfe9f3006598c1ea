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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from restsync_dagster.extract.rate_headers import read_rate_headers

#: When the headers tell no reset, wait this long before trying again.
_UNKNOWN_RESET_SECONDS = 1.0
#: Never wait longer than this for one reset (a header far in the future is a broken header).
_MAX_WAIT_SECONDS = 300.0


class HeaderBudget:
    """The requests the API's headers allow, shared by every request of a run.

    Args:
        reserve: Requests to leave unspent (for other clients of the same key).
    """

    def __init__(self, reserve: int = 0) -> None:
        self.reserve = max(0, reserve)
        self._lock = threading.Condition()
        #: Requests left before the reset, as last told and spent since; None: not told.
        self._left: int | None = None
        self._reset_at = 0.0
        self._in_flight = 0
        #: Seconds spent waiting for resets (for the run's log and the tests).
        self.waited = 0.0

    def spend(self) -> None:
        """Take one request from the budget, waiting for the reset while none is left."""
        with self._lock:
            # While the budget is unknown, one request goes first to learn it; the others wait
            # for its answer, or at most this long (an answer that never comes blocks nobody).
            probe_until = time.monotonic() + _UNKNOWN_RESET_SECONDS
            while True:
                if self._left is None:
                    wait = probe_until - time.monotonic()
                    if self._in_flight == 0 or wait <= 0:
                        break
                elif self._left > self.reserve:
                    break
                else:
                    wait = self._reset_at - time.monotonic()
                    if wait <= 0:
                        self._left = None  # a new window: an answer tells its budget
                        continue
                started = time.monotonic()
                self._lock.wait(min(wait, _MAX_WAIT_SECONDS))
                self.waited += time.monotonic() - started
            if self._left is not None:
                self._left -= 1
            self._in_flight += 1

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from a response (one that was spent for)."""
        told = read_rate_headers(headers)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if told is None:
                return
            reset = _UNKNOWN_RESET_SECONDS if told.reset_seconds is None else told.reset_seconds
            reset_at = time.monotonic() + min(reset, _MAX_WAIT_SECONDS)
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
            self._lock.notify_all()
