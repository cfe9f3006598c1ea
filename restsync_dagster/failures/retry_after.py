"""The one parser of ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

The classifier reads it to tell the retry sensor how long a rate-limited API asked to wait.
dlt's HTTP client parses the same header for its own retries (``respect_retry_after_header``).
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


def parse_retry_after(header: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when it is absent or unreadable.

    Args:
        header: ``"120"`` or ``"Wed, 21 Oct 2026 07:28:00 GMT"``.
        now: Epoch seconds to measure an HTTP-date from (default: the clock).
    """
    if not header or not header.strip():
        return None
    match = _SECONDS.match(header)
    if match:
        return float(match.group(1))
    try:
        moment = parsedate_to_datetime(header.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)
