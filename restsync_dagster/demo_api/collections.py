"""The mutable state of one demo collection: inserts, updates, filters and schema changes.

The base records come from :mod:`restsync_dagster.demo_api.data` (pure functions of the index).
On top, a simulated clock lets tests insert and update records between syncs deterministically
(:meth:`Collection.advance`), soft-delete some (``deleted_at`` set, ``updated_at`` moved, the record
still served), ``updated_since``/``updated_until`` select by ``updated_at``, and schema changes (a field dropped, sent as another type, or added) plant drift for the asset checks.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from restsync_dagster.demo_api.data import EPOCH, Record, ResourceShape, mutate

_CACHE_SIZE = 64


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant (``Z`` or an offset; naive means UTC).

    Raises:
        ValueError: ``text`` is not an ISO-8601 date or date-time.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """``moment`` the way the demo API writes timestamps (``2026-01-01T00:00:00Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SchemaChange:
    """Planted drift: fields removed, sent as text, or added to every record."""

    drop: set[str] = field(default_factory=set)
    retype: set[str] = field(default_factory=set)
    add: set[str] = field(default_factory=set)


class Collection:
    """One collection's records as served now. Not thread-safe: the server holds its lock."""

    def __init__(
        self, shape: ResourceShape, seed: int, base_count: int, id_offset: int = 0
    ) -> None:
        self.shape = shape
        self.seed = seed
        self.base_count = base_count
        #: Added to every record's ``id`` (a tenant's own id range, demo_api/tenants.py).
        self.id_offset = id_offset
        self.inserted_at: list[datetime] = []
        self.updates: dict[int, tuple[int, datetime]] = {}
        #: Soft-deleted records: index -> when (served with ``deleted_at``, never updated again).
        self.deleted: dict[int, datetime] = {}
        self.schema_change = SchemaChange()
        self.revision = 0
        self._clock: datetime | None = None
        self._cache: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()

    @property
    def total(self) -> int:
        """Records served without filters."""
        return self.base_count + len(self.inserted_at)

    @property
    def clock(self) -> datetime:
        """The simulated now: after every base record's last update, then moved by advance()."""
        if self._clock is None:
            last = (self.base_count - 1) * self.shape.step_seconds + self.shape.max_lag_seconds
            self._clock = EPOCH + timedelta(seconds=max(last, 0) + 1)
        return self._clock

    def record(self, i: int) -> Record:
        """Record ``i`` as served now."""
        record = self.shape.make(self.seed, i)
        if self.id_offset:
            record["id"] += self.id_offset
        if i >= self.base_count:
            stamp = format_instant(self.inserted_at[i - self.base_count])
            record["updated_at"] = stamp
            if "created_at" in record:
                record["created_at"] = stamp
        if i in self.updates:
            version, when = self.updates[i]
            record = mutate(record, self.shape.mutable_field, version)
            record["updated_at"] = format_instant(when)
        if i in self.deleted:
            record["updated_at"] = record["deleted_at"] = format_instant(self.deleted[i])
        change = self.schema_change
        if change.drop or change.retype or change.add:
            record = {k: v for k, v in record.items() if k not in change.drop}
            for name in change.retype:
                if record.get(name) is not None:
                    # Text no parser reads back as the old type: a real change of type.
                    record[name] = f"{record[name]} (as text)"
            for name in change.add:
                record[name] = f"{name}-{i}"
        return record

    def ids(self, since: datetime | None = None, until: datetime | None = None) -> Sequence[int]:
        """Indices of the records whose ``updated_at`` is in ``[since, until)``, ascending."""
        if since is None and until is None:
            return range(self.total)
        key = (since, until, self.revision)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        step, lag = self.shape.step_seconds, self.shape.max_lag_seconds
        low = 0 if since is None else max(0, int((since - EPOCH).total_seconds() - lag) // step)
        high = (
            self.base_count
            if until is None
            else min(self.base_count, int((until - EPOCH).total_seconds()) // step + 1)
        )
        candidates = set(range(low, max(low, high))) | set(self.updates) | set(self.deleted)
        candidates |= set(range(self.base_count, self.total))
        selected = sorted(i for i in candidates if self._updated_in(i, since, until))
        self._cache[key] = selected
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return selected

    def _updated_in(self, i: int, since: datetime | None, until: datetime | None) -> bool:
        moment = parse_instant(self.record(i)["updated_at"])
        return (since is None or moment >= since) and (until is None or moment < until)

    def advance(
        self, insert: int, update: int, hours: float, delete: int = 0
    ) -> dict[str, list[int]]:
        """Move the clock ``hours`` on; insert, update and soft-delete records within that time.

        Which records are updated is drawn from a generator seeded by the collection's seed and
        revision, so the same calls give the same data.

        Returns:
            The ids (``id`` field) of the inserted, updated and deleted records.
        """
        start = self.clock
        span = timedelta(hours=hours)
        rng = random.Random(f"{self.seed}:{self.shape.path}:{self.revision}")
        existing = self.total
        alive = [i for i in range(existing) if i not in self.deleted]
        updated = sorted(rng.sample(alive, min(update, len(alive))))
        for k, i in enumerate(updated):
            version = self.updates.get(i, (0, start))[0] + 1
            self.updates[i] = (version, start + span * (k + 1) / (len(updated) + 1))
        others = [i for i in alive if i not in set(updated)]
        deleted = sorted(rng.sample(others, min(delete, len(others))))
        for k, i in enumerate(deleted):
            self.deleted[i] = start + span * (k + 1) / (len(deleted) + 1)
        inserted = list(range(existing, existing + insert))
        for k in range(insert):
            self.inserted_at.append(start + span * (k + 1) / (insert + 1))
        self._clock = start + span
        self.revision += 1
        self._cache.clear()
        return {
            "inserted": [self.record(i)["id"] for i in inserted],
            "updated": [self.record(i)["id"] for i in updated],
            "deleted": [self.record(i)["id"] for i in deleted],
        }

    def change_schema(self, drop: set[str], retype: set[str], add: set[str]) -> None:
        """Plant drift in every record served from now on (empty sets heal it)."""
        self.schema_change = SchemaChange(set(drop), set(retype), set(add))
        self.revision += 1
        self._cache.clear()
