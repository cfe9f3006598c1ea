"""Schema drift between two materializations of a table, as a pure comparison.

A snapshot holds the table's columns (dlt's types and nullability) and the columns the load
actually filled. dlt never drops a column and lands a value of another type in a variant column
(``amount__v_text``), so drift shows as: a new column (WARN when nullable), a column the previous
load filled and this one did not (ERROR: removed upstream), a variant column or a changed type
(ERROR).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_VARIANT = re.compile(r"^(?P<base>.+)__v_(?P<type>[a-z_]+)$")


@dataclass(frozen=True)
class SchemaSnapshot:
    """A table's columns after one load."""

    columns: Mapping[str, tuple[str, bool]]
    #: Columns with at least one non-null value among the rows of that load (None: no rows).
    observed: frozenset[str] | None = None

    def to_metadata(self) -> dict[str, Any]:
        """JSON-able form, stored on the materialization."""
        return {
            "columns": {name: [t, n] for name, (t, n) in sorted(self.columns.items())},
            "observed": sorted(self.observed) if self.observed is not None else None,
        }

    @classmethod
    def from_metadata(cls, value: Mapping[str, Any]) -> SchemaSnapshot:
        """Read back :meth:`to_metadata`."""
        columns = {name: (str(t), bool(n)) for name, (t, n) in value.get("columns", {}).items()}
        observed = value.get("observed")
        return cls(columns, frozenset(observed) if observed is not None else None)


@dataclass(frozen=True)
class SchemaDrift:
    """What changed between two snapshots."""

    added_nullable: tuple[str, ...] = ()
    added_required: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def severity(self) -> str | None:
        """``ERROR`` for removed, retyped or new required columns; ``WARN`` for new nullable
        ones; None when nothing changed."""
        if self.removed or self.retyped or self.added_required:
            return "ERROR"
        if self.added_nullable:
            return "WARN"
        return None

    def describe(self) -> str:
        """One line for people."""
        parts = []
        if self.removed:
            parts.append(f"removed: {', '.join(self.removed)}")
        if self.retyped:
            parts.append(
                "type changed: "
                + ", ".join(f"{c} {old} -> {new}" for c, (old, new) in sorted(self.retyped.items()))
            )
        if self.added_required:
            parts.append(f"new non-nullable: {', '.join(self.added_required)}")
        if self.added_nullable:
            parts.append(f"new nullable: {', '.join(self.added_nullable)}")
        return "; ".join(parts) or "no change"

    def as_metadata(self) -> dict[str, Any]:
        """The diff, for the check's metadata."""
        return {
            "added_nullable": list(self.added_nullable),
            "added_required": list(self.added_required),
            "removed": list(self.removed),
            "retyped": {c: {"from": o, "to": n} for c, (o, n) in self.retyped.items()},
        }


def diff(previous: SchemaSnapshot, current: SchemaSnapshot) -> SchemaDrift:
    """Drift from ``previous`` to ``current``."""
    retyped: dict[str, tuple[str, str]] = {}
    added_nullable, added_required = [], []
    for name, (data_type, nullable) in sorted(current.columns.items()):
        variant = _VARIANT.match(name)
        if name in previous.columns:
            old_type = previous.columns[name][0]
            if old_type != data_type:
                retyped[name] = (old_type, data_type)
            continue
        if variant and variant.group("base") in current.columns:
            base = variant.group("base")
            retyped[base] = (current.columns[base][0], variant.group("type"))
        elif nullable:
            added_nullable.append(name)
        else:
            added_required.append(name)
    removed = sorted(set(previous.columns) - set(current.columns))
    if previous.observed is not None and current.observed is not None:
        removed += sorted(
            c
            for c in previous.observed - current.observed
            if c in current.columns and c not in retyped
        )
    return SchemaDrift(tuple(added_nullable), tuple(added_required), tuple(removed), retyped)
