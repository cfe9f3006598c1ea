"""A real request budget for the demo API: N requests per fixed window and API key, 429 beyond it.

Each API key has its own budget, as real APIs count per key (requests without a key share one).
Every window's requests are counted, refused ones included, so a test can tell that clients
sharing a key never asked for more than the limit in any window. Off unless ``DemoApiConfig.rate_limit`` is set (or ``POST /_demo/ratelimit?limit=N&window=S
&headers=STYLE``). Every API answer then carries the budget in one header style:

* ``x``: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (epoch seconds);
* ``ietf``: ``RateLimit: limit=N, remaining=R, reset=S`` (IETF draft 7, seconds);
* ``ietf8``: ``RateLimit: "default";r=R;t=S`` and ``RateLimit-Policy: "default";q=N;w=W``;
* ``none``: no header, only the 429 (with ``Retry-After``) once the budget is spent.
"""

from __future__ import annotations

import math
import threading
import time

HEADER_STYLES = ("x", "ietf", "ietf8", "none")


class WindowBudget:
    """``limit`` requests per ``window`` seconds, windows starting at the first request."""

    def __init__(self, limit: int, window: float, style: str) -> None:
        if style not in HEADER_STYLES:
            raise ValueError(f"headers must be one of {HEADER_STYLES}, not {style!r}")
        self.limit, self.window, self.style = limit, window, style
        self._lock = threading.Lock()
        self._start: float | None = None
        self._used = 0
        #: Requests refused with 429.
        self.refused = 0
        #: Requests asked (allowed and refused) in each window so far, oldest first.
        self.asked: list[int] = []

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one request: ``(allowed, headers to answer with)``."""
        with self._lock:
            now = time.monotonic()
            if self._start is None or now >= self._start + self.window:
                self._start, self._used = now, 0
                self.asked.append(0)
            self.asked[-1] += 1
            allowed = self._used < self.limit
            if allowed:
                self._used += 1
            else:
                self.refused += 1
            left = self._start + self.window - now
            return allowed, self._headers(self.limit - self._used, left, allowed)

    def _headers(self, remaining: int, left: float, allowed: bool) -> dict[str, str]:
        seconds = max(1, math.ceil(left))
        headers = {} if allowed else {"Retry-After": str(seconds)}
        if self.style == "x":
            headers.update(
                {
                    "X-RateLimit-Limit": str(self.limit),
                    "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(math.ceil(time.time() + left)),
                }
            )
        elif self.style == "ietf":
            headers["RateLimit"] = f"limit={self.limit}, remaining={remaining}, reset={seconds}"
        elif self.style == "ietf8":
            headers["RateLimit"] = f'"default";r={remaining};t={seconds}'
            headers["RateLimit-Policy"] = f'"default";q={self.limit};w={math.ceil(self.window)}'
        return headers


class KeyBudgets:
    """One :class:`WindowBudget` per API key, made on the key's first request."""

    def __init__(self, limit: int, window: float, style: str) -> None:
        WindowBudget(limit, window, style)  # refuses an unknown style now, not at a request
        self.limit, self.window, self.style = limit, window, style
        self._lock = threading.Lock()
        self._by_key: dict[str, WindowBudget] = {}

    def take(self, key: str) -> tuple[bool, dict[str, str]]:
        """Spend one request of ``key``'s budget: ``(allowed, headers to answer with)``."""
        with self._lock:
            budget = self._by_key.get(key)
            if budget is None:
                budget = self._by_key[key] = WindowBudget(self.limit, self.window, self.style)
        return budget.take()

    def windows_of(self, key: str) -> list[int]:
        """Requests ``key`` asked per window so far (empty before its first request)."""
        with self._lock:
            budget = self._by_key.get(key)
        return list(budget.asked) if budget else []

    def windows(self) -> list[list[int]]:
        """Requests asked per window, one list per key (keys in first-seen order, unnamed:
        a key is a secret)."""
        with self._lock:
            budgets = list(self._by_key.values())
        return [list(b.asked) for b in budgets]
