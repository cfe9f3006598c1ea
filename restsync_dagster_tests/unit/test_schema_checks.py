"""The schema drift comparison, as a pure function."""

from restsync_dagster.load.schema_drift import SchemaSnapshot, diff

BASE = SchemaSnapshot(
    {"id": ("bigint", False), "amount": ("double", True), "kind": ("text", True)},
    frozenset({"id", "amount", "kind"}),
)


def test_an_unchanged_schema_has_no_drift():
    assert diff(BASE, BASE).severity is None


def test_a_new_nullable_column_is_a_warning():
    current = SchemaSnapshot({**BASE.columns, "coupon": ("text", True)}, BASE.observed | {"coupon"})
    drift = diff(BASE, current)
    assert drift.severity == "WARN" and drift.added_nullable == ("coupon",)


def test_a_column_the_last_load_no_longer_filled_is_an_error():
    current = SchemaSnapshot(BASE.columns, frozenset({"id", "amount"}))
    drift = diff(BASE, current)
    assert drift.severity == "ERROR" and drift.removed == ("kind",)
    assert drift.describe() == "removed: kind"


def test_a_variant_column_means_the_type_changed():
    current = SchemaSnapshot(
        {**BASE.columns, "amount__v_text": ("text", True)},
        frozenset({"id", "kind", "amount__v_text"}),
    )
    drift = diff(BASE, current)
    assert drift.severity == "ERROR"
    assert drift.retyped == {"amount": ("double", "text")} and drift.removed == ()


def test_a_load_without_rows_does_not_report_columns_as_removed():
    assert diff(BASE, SchemaSnapshot(BASE.columns, None)).severity is None


def test_snapshots_survive_the_round_trip_through_metadata():
    assert SchemaSnapshot.from_metadata(BASE.to_metadata()) == BASE
