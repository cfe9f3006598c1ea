"""The one parser of rate-limit headers: how many requests are left, and when the window resets.

Two families are read:

* ``X-RateLimit-Remaining`` with ``X-RateLimit-Reset`` (GitHub, Twitter and many more); the reset
  is epoch seconds when it looks like a date (above 10^9), else seconds from now;
* the IETF ``RateLimit`` fields, both drafts: ``RateLimit: limit=100, remaining=5, reset=30``
  (draft 7, also as separate ``RateLimit-Remaining``/``RateLimit-Reset`` headers) and
  ``RateLimit: "default";r=5;t=30`` (draft 8 on, with ``RateLimit-Policy: "default";q=100;w=60``,
  whose window ``w`` stands in for a missing ``t``).

dlt has no rate limiter; :mod:`restsync_dagster.extract.budget` acts on what this tells.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

_EPOCH = 1_000_000_000
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_PARAM = re.compile(r"(?:^|[;,\s])([a-z]+)\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class RateBudget:
    """What a response tells about the budget left: requests, seconds until the reset, and the
    window's whole budget when told (``X-RateLimit-Limit``, ``limit=``, the policy's ``q``)."""

    remaining: int
    reset_seconds: float | None
    limit: int | None = None


def read_rate_headers(headers: Mapping[str, str], now: float | None = None) -> RateBudget | None:
    """The budget a response's headers tell, or None when they tell none (or nothing readable).

    Args:
        headers: The response headers (case-insensitive, as ``requests`` gives them).
        now: Epoch seconds to measure an epoch reset from (default: the clock).
    """
    current = time.time() if now is None else now
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    if remaining is not None:
        reset = _number(headers.get("X-RateLimit-Reset"))
        if reset is not None and reset > _EPOCH:
            reset = max(0.0, reset - current)
        return RateBudget(int(remaining), reset, _whole(headers.get("X-RateLimit-Limit")))
    return _ietf(headers)


def _ietf(headers: Mapping[str, str]) -> RateBudget | None:
    combined = headers.get("RateLimit")
    params = _params(combined) if combined else {}
    remaining = params.get("remaining", params.get("r"))
    reset = params.get("reset", params.get("t"))
    limit = params.get("limit")
    if remaining is None:
        remaining = _number(headers.get("RateLimit-Remaining"))
        reset = _number(headers.get("RateLimit-Reset"))
        limit = _number(headers.get("RateLimit-Limit"))
    if remaining is None:
        return None
    policy_text = headers.get("RateLimit-Policy")
    policy = _params(policy_text) if policy_text else {}
    if reset is None:
        reset = policy.get("w")
    if limit is None:
        limit = policy.get("q")
    return RateBudget(int(remaining), reset, None if limit is None else int(limit))


def _params(value: str) -> dict[str, float]:
    return {name.lower(): float(number) for name, number in _PARAM.findall(value)}


def _whole(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMBER.match(value)
    return float(match.group(1)) if match else None
