"""The warehouse against the API's truth, and the retry sensor's decisions against its rules.

A discrepancy is one line naming the table, the record and what is wrong, in one of three
words: ``lost`` (a record the API serves is missing, or a child row is), ``duplicated`` (a key
twice, a child row without its parent), ``stale`` (an old value, a deleted record still there,
or a cursor ahead of the data it claims to have loaded).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import dagster as dg

from restsync_dagster.demo_api import DemoApi
from restsync_dagster.demo_api.data import VERTICALS
from restsync_dagster.names import TAG_ATTEMPT, TAG_CONNECTOR, TAG_RETRY_OF
from restsync_dagster.orchestration.retry_sensor import read_failed_run
from restsync_dagster_tests.helpers import same_value
from restsync_dagster_tests.soak.connectors import RUN_RETRIES, TABLES, Table


class Warehouse(Protocol):
    """What the checks read: the API's truth and the warehouse (the soak's :class:`World`, or a
    pod deployment)."""

    api: DemoApi

    def query(self, sql: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Discrepancy:
    """One thing the warehouse or the sensor got wrong."""

    word: str  # lost | duplicated | stale | sensor
    what: str

    def __str__(self) -> str:
        return f"{self.word}: {self.what}"


def served(world: Warehouse, table: Table) -> list[dict[str, Any]]:
    vertical, _, name = table.collection.partition(".")
    return world.api.expected_rows(vertical, name)


def _stored_value(row: dict[str, Any], column: str) -> Any:
    """A column's value, from dlt's variant column when the API changed the field's type."""
    variant = f"{column}__v_text"
    return row[variant] if row.get(variant) is not None else row.get(column)


def compare_table(world: Warehouse, table: Table) -> list[Discrepancy]:
    """Every served record present once with its current values; deleted ones gone."""
    name = f"{table.connector}.{table.resource}"
    mutable = VERTICALS[table.collection.split(".")[0]][table.collection.split(".")[1]]
    field = mutable.mutable_field
    stored = world.query(f"select * from {name}")
    found: list[Discrepancy] = []
    counts = Counter(r["id"] for r in stored)
    found += [
        Discrepancy("duplicated", f"{name}: id {i} {n} times") for i, n in counts.items() if n > 1
    ]
    by_id = {r["id"]: r for r in stored}
    for record in served(world, table):
        row = by_id.get(record["id"])
        if table.deletes and record.get("deleted_at"):
            if row is not None:
                found.append(
                    Discrepancy("stale", f"{name}: id {record['id']} deleted upstream, still here")
                )
            continue
        if row is None:
            found.append(Discrepancy("lost", f"{name}: id {record['id']} missing"))
            continue
        for column in ("updated_at", field):
            if not same_value(_stored_value(row, column), record.get(column)):
                found.append(Discrepancy(
                    "stale", f"{name}: id {record['id']} {column}={_stored_value(row, column)!r}, "
                    f"the API says {record.get(column)!r}"
                ))  # fmt: skip
    if table.child:
        found += compare_children(world, table, {r["id"]: r for r in served(world, table)})
    return found


def compare_children(
    world: Warehouse, table: Table, records: dict[int, dict[str, Any]]
) -> list[Discrepancy]:
    """Child rows: none without a parent, each parent's lines as many as the API sends."""
    parent, child = (
        f"{table.connector}.{table.resource}",
        f"{table.connector}.{table.resource}__{table.child}",
    )
    orphans = world.query(
        f"select c._dlt_parent_id from {child} c left join {parent} p on c._dlt_parent_id = p._dlt_id "
        "where p._dlt_id is null"
    )
    found = (
        [Discrepancy("duplicated", f"{child}: {len(orphans)} row(s) without a parent")]
        if orphans
        else []
    )
    lines = world.query(
        f"select p.id as id, count(*) as n from {child} c join {parent} p on c._dlt_parent_id = p._dlt_id group by p.id"
    )
    have = {r["id"]: r["n"] for r in lines}
    for row_id, n in have.items():
        want = len(records.get(row_id, {}).get(table.child) or [])
        if n != want:
            word = "duplicated" if n > want else "lost"
            found.append(
                Discrepancy(word, f"{child}: order {row_id} has {n} line(s), the API {want}")
            )
    return found


def cursor(world: Warehouse, table: Table) -> str | None:
    """The incremental cursor the destination's newest completed state holds for ``table``."""
    from dlt.pipeline.state_sync import decompress_state

    rows = world.query(
        f"select s.state from {table.connector}._dlt_pipeline_state s join {table.connector}._dlt_loads l "
        "on s._dlt_load_id = l.load_id where l.status = 0 order by s.version desc limit 1"
    )
    if not rows:
        return None
    state = decompress_state(rows[0]["state"])
    for source in state.get("sources", {}).values():
        incremental = source.get("resources", {}).get(table.resource, {}).get("incremental", {})
        for value in incremental.values():
            if value.get("last_value"):
                return str(value["last_value"])
    return None


def cursors_behind_data(world: Warehouse, tables: tuple[Table, ...] = TABLES) -> list[Discrepancy]:
    """Every record updated before the stored cursor is loaded and current: the cursor never
    claims data the warehouse does not hold. Checked after every sync, killed or not."""
    found: list[Discrepancy] = []
    for table in tables:
        if not table.incremental:
            continue
        last = cursor(world, table)
        if last is None:
            continue
        limit = datetime.fromisoformat(last.replace("Z", "+00:00"))
        name = f"{table.connector}.{table.resource}"
        stored = {r["id"]: r for r in world.query(f"select id, updated_at from {name}")}
        for record in served(world, table):
            moment = datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))
            if moment >= limit or (table.deletes and record.get("deleted_at")):
                continue
            row = stored.get(record["id"])
            if row is None or not same_value(row["updated_at"], record["updated_at"]):
                found.append(Discrepancy(
                    "stale", f"{name}: cursor {last} is ahead of id {record['id']} "
                    f"(updated {record['updated_at']}, stored {row and row['updated_at']})"
                ))  # fmt: skip
                break
    return found


def sensor_rules(instance: dg.DagsterInstance, connectors: dict[str, Any]) -> list[Discrepancy]:
    """Retry runs: never after a 401, at most ``run_retries`` per chain, each attempt once."""
    found: list[Discrepancy] = []
    retries = [r for r in instance.get_runs(limit=5000) if TAG_RETRY_OF in r.tags]
    chains = Counter(
        (r.tags[TAG_RETRY_OF], r.tags.get(TAG_CONNECTOR), r.tags.get(TAG_ATTEMPT)) for r in retries
    )
    for (root, connector, attempt), n in chains.items():
        if n > 1:
            found.append(
                Discrepancy("sensor", f"retry {attempt} of {root} ({connector}): {n} runs")
            )
    by_attempt = {
        (r.tags[TAG_RETRY_OF], r.tags.get(TAG_CONNECTOR), int(r.tags.get(TAG_ATTEMPT, "0"))): r
        for r in retries
    }
    for (root, connector, attempt), run in by_attempt.items():
        if attempt > RUN_RETRIES:
            found.append(
                Discrepancy("sensor", f"run {run.run_id}: attempt {attempt} > {RUN_RETRIES}")
            )
        previous = (
            root
            if attempt == 1
            else getattr(by_attempt.get((root, connector, attempt - 1)), "run_id", None)
        )
        records = (
            instance.get_run_records(filters=dg.RunsFilter(run_ids=[previous])) if previous else []
        )
        if records:
            failed = read_failed_run(instance, records[0], connectors)
            if any(f.status == 401 for f in failed.failures if f.connector == connector):
                found.append(Discrepancy("sensor", f"run {run.run_id} retried a 401 ({previous})"))
    return found
