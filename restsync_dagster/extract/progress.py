"""Progress of a long sync: pages and rows fetched, and the rate, as it happens.

Two audiences. The run log gets a line every ``RESTSYNC_PROGRESS_INTERVAL_SECONDS``. Anything
else listening (``restsync sync`` draws a live line per resource on a terminal) gets structured
events on the standard logger ``restsync.progress``: each record's ``restsync_progress`` attribute
is a :class:`ProgressSnapshot`. The HTTP layer announces retries on ``restsync.http`` likewise
(see :mod:`restsync_dagster.extract.adapter`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: Structured progress events; ``record.restsync_progress`` is a :class:`ProgressSnapshot`.
PROGRESS_LOGGER = logging.getLogger("restsync.progress")
#: At most this often (seconds) an event goes to ``restsync.progress``.
EVENT_INTERVAL = 0.25


@dataclass(frozen=True)
class ProgressSnapshot:
    """Pages and rows per resource of one connector so far."""

    connector: str
    elapsed: float
    pages: Mapping[str, int]
    rows: Mapping[str, int]
    #: Why each finished resource's pagination stopped.
    stopped: Mapping[str, str] = field(default_factory=dict)
    #: A windowed sync's windows committed and its windows in all, ``(done, total)``.
    windows: tuple[int, int] | None = None


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
        self._last_event = self._started - EVENT_INTERVAL
        self.pages: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.stopped: dict[str, str] = {}
        self.windows: tuple[int, int] | None = None

    def page(self, resource: str, rows: int) -> None:
        """One page of ``rows`` records of ``resource`` arrived."""
        with self._lock:
            self.pages[resource] += 1
            self.rows[resource] += rows
            now = self._clock()
            event = now - self._last_event >= EVENT_INTERVAL
            if event:
                self._last_event = now
            line = None
            if now - self._last_report >= self._interval:
                self._last_report = now
                line = self.describe(now)
        if event:
            self.emit()
        if line is not None:
            self._report(line)

    def stop(self, resource: str, reason: str) -> None:
        """``resource``'s pagination ended, for ``reason`` ("offset reached total 500"...)."""
        with self._lock:
            self.stopped[resource] = reason
        self.emit()

    def notice(self, text: str) -> None:
        """A warning worth a line of its own where progress is shown (``restsync sync``'s
        stderr): a corrected page size, a single full page."""
        PROGRESS_LOGGER.warning("%s", text, extra={"restsync_notice": text})

    def window(self, done: int, total: int) -> None:
        """``done`` windows of ``total`` are committed (a windowed sync)."""
        with self._lock:
            self.windows = (done, total)
        self.emit()

    def snapshot(self) -> ProgressSnapshot:
        """The counts so far."""
        with self._lock:
            return ProgressSnapshot(
                self.connector,
                self._clock() - self._started,
                dict(self.pages),
                dict(self.rows),
                dict(self.stopped),
                self.windows,
            )

    def emit(self) -> None:
        """Send the counts to ``restsync.progress`` (whoever listens)."""
        if PROGRESS_LOGGER.isEnabledFor(logging.INFO):
            snapshot = self.snapshot()
            PROGRESS_LOGGER.info(
                "connector %r: %s pages", self.connector, sum(snapshot.pages.values()),
                extra={"restsync_progress": snapshot},
            )  # fmt: skip

    def describe(self, now: float | None = None) -> str:
        """``connector 'x': 42 pages, 4,200 rows in 8.0 s (525 rows/s); events 30 pages...``"""
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        total_rows, total_pages = sum(self.rows.values()), sum(self.pages.values())
        per_resource = ", ".join(
            f"{name} {self.pages[name]} pages/{self.rows[name]:,} rows"
            for name in sorted(self.pages)
        )
        windows = f", {self.windows[0]}/{self.windows[1]} windows" if self.windows else ""
        return (
            f"connector {self.connector!r}: {total_pages} pages, {total_rows:,} rows fetched in "
            f"{elapsed:.1f} s ({total_rows / elapsed:,.0f} rows/s){windows}; {per_resource}"
        )


def one_full_page_warning(connector: str, resource: str, why: str) -> str:
    """The warning for a resource that ended after one full page: its paginator may be wrong."""
    return (
        f"connector {connector!r}, resource {resource!r}: one full page, then {why}. If the API "
        "holds more, the paginator may be missing what it needs: some APIs send a next link only "
        "when the request names a page (add it to 'params'), or put the cursor elsewhere. "
        f"'restsync preview {connector} --resource {resource} --pages 3' shows what it read."
    )
