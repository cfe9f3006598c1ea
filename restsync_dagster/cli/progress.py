"""What ``restsync sync`` shows on stderr while it works: a live line per resource on a terminal,
plain lines in a pipe or a log file, nothing with ``--quiet``.

It listens to the standard loggers the extract floor writes to (``restsync.progress``: pages and
rows per resource, why pagination stopped, warnings about how a resource pages;
``restsync.http``: retries as they are decided), so a
run needs to know nothing about who watches. Colour only on a terminal; ``NO_COLOR`` is honoured
(by ``rich``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from restsync_dagster.extract.progress import PROGRESS_LOGGER, ProgressSnapshot

HTTP_LOGGER = logging.getLogger("restsync.http")


class ProgressDisplay(logging.Handler):
    """Turns progress and retry records into lines (see the module).

    Args:
        live: Draw and redraw a table (a terminal) instead of printing lines.
        interval: Seconds between two plain progress lines of one connector.
    """

    def __init__(self, live: bool, interval: float = 5.0) -> None:
        super().__init__(logging.INFO)
        from rich.console import Console

        # stderr is looked up at each write, so the run's secret masking applies to it.
        # soft_wrap: a line in a pipe or a log file stays one line, whatever its length.
        self.console = Console(stderr=True, highlight=False, soft_wrap=not live)
        self.live_mode = live
        self.interval = interval
        self._snapshots: dict[str, ProgressSnapshot] = {}
        self._printed: dict[str, float] = {}
        self._stops: set[tuple[str, str]] = set()
        self._windows: dict[str, tuple[int, int]] = {}
        self._live: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            notice = getattr(record, "restsync_retry", None)
            if notice is not None:
                self.console.print(f"  {notice}", style="yellow", markup=False)
                return
            warning = getattr(record, "restsync_notice", None)
            if warning is not None:
                self.console.print(f"  warning: {warning}", style="yellow", markup=False)
                return
            snapshot = getattr(record, "restsync_progress", None)
            if isinstance(snapshot, ProgressSnapshot):
                self._progress(snapshot)
        except Exception:  # a display must never break a sync
            self.handleError(record)

    def _progress(self, snapshot: ProgressSnapshot) -> None:
        self._snapshots[snapshot.connector] = snapshot
        if self.live_mode:
            self._redraw()
            return
        if snapshot.windows and self._windows.get(snapshot.connector) != snapshot.windows:
            self._windows[snapshot.connector] = snapshot.windows
            done, total = snapshot.windows
            self.console.print(
                f"{snapshot.connector}: {done}/{total} windows committed", markup=False
            )
        for resource, why in snapshot.stopped.items():
            if (snapshot.connector, resource) not in self._stops:
                self._stops.add((snapshot.connector, resource))
                self.console.print(self._line(snapshot, resource) + f": {why}", markup=False)
        now = time.monotonic()
        if now - self._printed.get(snapshot.connector, 0.0) >= self.interval:
            self._printed[snapshot.connector] = now
            for resource in sorted(set(snapshot.pages) - set(snapshot.stopped)):
                self.console.print(self._line(snapshot, resource), markup=False)

    @staticmethod
    def _line(snapshot: ProgressSnapshot, resource: str) -> str:
        rows = snapshot.rows.get(resource, 0)
        rate = rows / max(snapshot.elapsed, 1e-9)
        return (
            f"{snapshot.connector}/{resource}: {snapshot.pages.get(resource, 0)} pages, "
            f"{rows:,} rows, {rate:,.0f} rows/s, {snapshot.elapsed:.1f} s"
        )

    def _redraw(self) -> None:
        from rich.live import Live
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        for connector, snapshot in self._snapshots.items():
            if snapshot.windows:
                table.title = f"{connector}: {snapshot.windows[0]}/{snapshot.windows[1]} windows"
        for column in ("resource", "pages", "rows", "rows/s", "elapsed", ""):
            table.add_column(column, justify="left" if column in ("resource", "") else "right")
        for connector, snapshot in self._snapshots.items():
            for resource in sorted(snapshot.pages):
                rows = snapshot.rows.get(resource, 0)
                table.add_row(
                    f"{connector}/{resource}",
                    str(snapshot.pages[resource]),
                    f"{rows:,}",
                    f"{rows / max(snapshot.elapsed, 1e-9):,.0f}",
                    f"{snapshot.elapsed:.1f} s",
                    snapshot.stopped.get(resource, ""),
                )
        if self._live is None:
            self._live = Live(table, console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self._live.update(table)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        super().close()


@contextmanager
def showing_progress(mode: str, interval: float = 5.0) -> Iterator[ProgressDisplay | None]:
    """Attach a :class:`ProgressDisplay` for the block: ``mode`` is ``auto`` (live on a
    terminal, lines otherwise), ``plain`` or ``quiet``."""
    if mode == "quiet":
        yield None
        return
    live = mode == "auto" and sys.stderr.isatty()
    display = ProgressDisplay(live=live, interval=interval)
    loggers = (PROGRESS_LOGGER, HTTP_LOGGER)
    previous = [(lg.level, lg.propagate) for lg in loggers]
    for logger in loggers:
        logger.addHandler(display)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield display
    finally:
        for logger, (level, propagate) in zip(loggers, previous, strict=True):
            logger.removeHandler(display)
            logger.setLevel(level)
            logger.propagate = propagate
        display.close()
