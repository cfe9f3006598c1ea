"""Which resources may commit a sync in several load packages (extract/packages.py): merge on a
primary key, with or without a cursor; every other write disposition, a merge key, scd2, a
bounded, lagging or ordered cursor, a transformer, a parallel resource or a page limit keeps the
run in one package, with the reason."""

from __future__ import annotations

from typing import Any

import dlt
import pytest

from restsync_dagster.extract.packages import why_one_package


def source_of(*resources: Any) -> Any:
    @dlt.source(name="rules")
    def rules() -> Any:
        return resources

    return rules()


def records(**hints: Any) -> Any:
    return dlt.resource([{"id": 1, "updated_at": 1}], name="records", **hints)


def test_merge_on_a_primary_key_may_commit_in_parts_with_or_without_a_cursor():
    assert why_one_package(source_of(records(write_disposition="merge", primary_key="id"))) is None
    upsert = {"disposition": "merge", "strategy": "upsert"}
    assert why_one_package(source_of(records(write_disposition=upsert, primary_key="id"))) is None
    cursor = dlt.sources.incremental("updated_at")
    merged = records(write_disposition="merge", primary_key="id", incremental=cursor)
    assert why_one_package(source_of(merged)) is None


@pytest.mark.parametrize(
    ("hints", "reason"),
    [
        ({"write_disposition": "append"}, "is written with 'append'"),
        ({"write_disposition": "append", "primary_key": "id"}, "is written with 'append'"),
        ({"write_disposition": "replace", "primary_key": "id"}, "is written with 'replace'"),
        ({"write_disposition": "merge"}, "merges without a primary key"),
        ({"write_disposition": "merge", "merge_key": "id"}, "merges on a merge_key"),
        (
            {"write_disposition": "merge", "primary_key": "id", "merge_key": "updated_at"},
            "merges on a merge_key",
        ),
        (
            {"write_disposition": {"disposition": "merge", "strategy": "scd2"}},
            "merges with strategy 'scd2'",
        ),
        (
            {
                "write_disposition": "append",
                "primary_key": "id",
                "incremental": dlt.sources.incremental("updated_at"),
            },
            "is written with 'append'",
        ),
        (
            {
                "write_disposition": "merge",
                "primary_key": "id",
                "incremental": dlt.sources.incremental("updated_at", initial_value=0, end_value=5),
            },
            "reads a bounded range of its cursor (end_value)",
        ),
        (
            {
                "write_disposition": "merge",
                "primary_key": "id",
                "incremental": dlt.sources.incremental("updated_at", lag=1),
            },
            "lags its cursor",
        ),
        (
            {
                "write_disposition": "merge",
                "primary_key": "id",
                "incremental": dlt.sources.incremental("updated_at", row_order="asc"),
            },
            "declares a row_order (dlt may end its pages early)",
        ),
    ],
)
def test_what_a_later_package_could_undo_or_skip_stays_in_one_package(hints, reason):
    assert why_one_package(source_of(records(**hints))) == f"resource 'records' {reason}"


def test_a_resource_read_from_another_or_limited_stays_in_one_package():
    parent = records(write_disposition="merge", primary_key="id")

    @dlt.transformer(name="details", write_disposition="merge", primary_key="id")
    def details(item: Any) -> Any:
        yield item

    assert why_one_package(source_of(parent, parent | details)) == (
        "resource 'details' is resolved from another resource's records"
    )

    def pages() -> Any:
        yield [{"id": 1}]

    parallel = dlt.resource(
        pages, name="records", write_disposition="merge", primary_key="id"
    ).parallelize()
    assert why_one_package(source_of(parallel)) == (
        "resource 'records' is extracted in parallel (dlt defers its pages)"
    )
    limited = records(write_disposition="merge", primary_key="id").add_limit(3)
    assert why_one_package(source_of(limited)) == (
        "resource 'records' reads a limited number of pages"
    )
