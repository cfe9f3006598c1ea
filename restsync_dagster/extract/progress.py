"""Progress of a long sync: pages and rows fetched, and the rate, in the run log every few seconds."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable


class Progress:
    """Counts pages and rows per resource as they arrive; reports at most every ``interval`` s.

    Args:
        connector: The connector's name, for the messages.
        report: Where a line goes (the run's ``context.log.info``).
        interval: Seconds between two reports.
    """

    def __init__(
        self,
        connector: str,
        report: Callable[[str], None],
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self._report = report
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_report = self._started
        self.pages: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def page(self, resource: str, rows: int) -> None:
        """One page of ``rows`` records of ``resource`` arrived."""
        with self._lock:
            self.pages[resource] += 1
            self.rows[resource] += rows
            now = self._clock()
            if now - self._last_report < self._interval:
                return
            self._last_report = now
            line = self.describe(now)
        self._report(line)

    def describe(self, now: float | None = None) -> str:
        """``connector 'x': 42 pages, 4,200 rows in 8.0 s (525 rows/s); events 30 pages...``"""
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        total_rows, total_pages = sum(self.rows.values()), sum(self.pages.values())
        per_resource = ", ".join(
            f"{name} {self.pages[name]} pages/{self.rows[name]:,} rows"
            for name in sorted(self.pages)
        )
        return (
            f"connector {self.connector!r}: {total_pages} pages, {total_rows:,} rows fetched in "
            f"{elapsed:.1f} s ({total_rows / elapsed:,.0f} rows/s); {per_resource}"
        )
