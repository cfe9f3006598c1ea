"""Questions asked of the destination after a load: what a table holds and whether keys hold.

Through dlt's SQL client, so the same code serves DuckDB, PostgreSQL and any SQL destination;
destinations without one (plain files) answer None and the callers say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from restsync_dagster.load.schema_drift import SchemaSnapshot

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline


@dataclass(frozen=True)
class KeyCheck:
    """Primary key health of a table."""

    rows: int
    duplicates: int
    nulls: int

    @property
    def passed(self) -> bool:
        """True when every key is present and unique."""
        return self.duplicates == 0 and self.nulls == 0


def table_columns(pipeline: Pipeline, table: str) -> dict[str, tuple[str, bool]]:
    """The table's data columns in dlt's schema: name -> (type, nullable)."""
    try:
        columns = pipeline.default_schema.get_table_columns(table)
    except KeyError:
        return {}
    return {
        name: (str(column.get("data_type")), bool(column.get("nullable", True)))
        for name, column in columns.items()
        if not name.startswith("_dlt_")
    }


def snapshot(
    pipeline: Pipeline, table: str, load_id: str | Sequence[str] | None
) -> SchemaSnapshot | None:
    """Columns of ``table`` and those the rows of ``load_id`` (or of each of several load ids:
    a run's load packages) filled (None without SQL)."""
    columns = table_columns(pipeline, table)
    if not columns:
        return None
    observed = None
    load_ids = [load_id] if isinstance(load_id, str) else list(load_id or [])
    if load_ids:
        try:
            with pipeline.sql_client() as client:
                name = client.make_qualified_table_name(table)
                names = sorted(columns)
                counts = ", ".join(f"count({client.escape_column_name(c)})" for c in names)
                marks = ", ".join(["%s"] * len(load_ids))
                rows = client.execute_sql(
                    f"select count(*), {counts} from {name} where _dlt_load_id in ({marks})",
                    *load_ids,
                )
        except Exception:  # a destination without SQL: no observation
            rows = None
        if rows and rows[0][0]:
            observed = frozenset(c for c, n in zip(names, rows[0][1:], strict=True) if n)
    return SchemaSnapshot(columns, observed)


def check_primary_key(pipeline: Pipeline, table: str, key: Sequence[str]) -> KeyCheck:
    """Count rows, duplicate keys and rows with a null key part in ``table``.

    Raises:
        Exception: whatever the destination's SQL client raises (no SQL client, no table).
    """
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(table)
        parts = ", ".join(client.escape_column_name(column) for column in key)
        null_sql = " or ".join(f"{client.escape_column_name(c)} is null" for c in key)
        counts = client.execute_sql(
            f"select count(*), sum(case when {null_sql} then 1 else 0 end) from {name}"
        )
        extra = client.execute_sql(
            f"select coalesce(sum(n - 1), 0) from (select count(*) as n from {name} "
            f"where not ({null_sql}) group by {parts} having count(*) > 1) as dup"
        )
    total, nulls = counts[0] if counts else (0, 0)
    duplicates = extra[0][0] if extra else 0
    return KeyCheck(rows=int(total), duplicates=int(duplicates or 0), nulls=int(nulls or 0))
