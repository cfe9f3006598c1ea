"""A run's share of an API key's rate limits: which of the key's slots it holds, of how many.

The slot is taken above this floor (``orchestration/held.py``, over ``load/locks.py``); only its
number and the slot count come down here, to :mod:`restsync_dagster.extract.limiter` and
:mod:`restsync_dagster.extract.budget`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateShare:
    """Slot ``index`` of a rate key's ``slots``: the part of the key's limits one run spends.

    A total of ``n`` is cut into ``(n + index) // slots`` for each slot, parts that differ by at
    most one and add up to exactly ``n`` (10 requests per second in 4 slots: 2, 2, 3, 3).
    """

    index: int = 0
    slots: int = 1

    def part(self, total: int) -> int:
        """This slot's part of ``total`` (0 when ``total`` is smaller than the slot count and
        this slot gets none of it)."""
        return (max(0, total) + self.index) // self.slots

    @staticmethod
    def slot_count(runs: int, requests_per_second: float | None) -> int:
        """How many runs may spend a key at once: ``runs``, but no more than the whole requests
        of a second (a run cannot send less than one request a second and keep every
        one-second window of the key within its limit; below 1 per second, one run)."""
        if requests_per_second is None:
            return max(1, runs)
        return max(1, min(runs, int(requests_per_second)))

    def describe(self) -> str:
        """``slot 2 of 4``, for the run's log."""
        return f"slot {self.index + 1} of {self.slots}"

    def requests_per_second(self, total: float | None) -> float | None:
        """This slot's requests per second of the key's ``total`` (all of it in one slot;
        :meth:`slot_count` keeps the slots within its whole requests, so each part is one or
        more, and the parts add up to at most ``total``)."""
        if total is None or self.slots <= 1:
            return total
        return float(max(1, self.part(int(total))))

    def concurrency(self, total: int) -> int:
        """This slot's requests in flight of the key's ``total``: its part, but at least one, or
        the run could not send at all (with fewer in flight than slots, the key then has up to
        one per run in flight)."""
        if self.slots <= 1:
            return total
        return max(1, self.part(total))

    def of_window(self, limit: int) -> int:
        """This slot's requests of a window of ``limit`` that the API's headers tell, at least
        one (a window smaller than the slot count is over-spent by up to one request a run)."""
        return max(1, self.part(limit))
