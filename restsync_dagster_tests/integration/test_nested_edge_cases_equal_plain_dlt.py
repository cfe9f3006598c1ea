"""Records of many shapes land through restsync's Arrow step exactly as plain dlt lands them.

Each case is loaded twice with dlt's own pipeline into DuckDB: as records (dlt's normalizer) and
through :class:`~restsync_dagster.extract.arrow.ArrowPages` (the vectorized normalizer, or dlt's
normalizer where it falls back). Every table, its columns in order with their types, every row
in its place under its root record, and dlt's id formulas on every child row are the same. The
cases: the design study's edge values (types changing, timestamps, flags, nesting, naming,
unicode), and shapes other than the demo's tickets (deep nesting, lists of scalars, empty
objects, keys dlt's naming convention rewrites, a second load with updated and emptied lists),
and shapes the normalizer leaves to dlt (lists of lists, colliding keys, mixed lists).

Each case that goes through the vectorized normalizer also runs against a deliberately broken
one (the id formula, the variant rule, the first-value rule, the types of earlier batches, the
naming convention) and must then
land something else: the comparison can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from restsync_dagster.extract import relational
from restsync_dagster.extract.relational import RelationalArrow
from restsync_dagster_tests.helpers import land_pages, landed_tables

Runs = list[list[list[dict[str, Any]]]]


def one(*records: dict[str, Any]) -> Runs:
    """One load of one page."""
    return [[list(records)]]


CASES: dict[str, tuple[Runs, str | None]] = {
    # The design study's edge values (reference/nested-arrow/edge_compare.py).
    "text first, then numbers and a flag": (
        one({"id": 1, "v": "12"}, {"id": 2, "v": 5}, {"id": 3, "v": 7.5}, {"id": 4, "v": True}),
        "first value",
    ),
    "a fraction first, then a whole number": (
        one({"id": 1, "s": 4.5}, {"id": 2, "s": 4}, {"id": 3, "s": None}),
        "first value",
    ),
    "a number, then strings": (
        one(
            {"id": 1, "s": 3},
            {"id": 2, "s": " 42 "},
            {"id": 3, "s": "0x1F"},
            {"id": 4, "s": "1_000"},
            {"id": 5, "s": "x"},
            {"id": 6, "s": 2.0},
            {"id": 7, "s": 2.5},
        ),
        "variant rule",
    ),
    "timestamps of every kind": (
        one(
            {"id": 1, "t": "2024-01-15T10:00:00Z"},
            {"id": 2, "t": "2024-01-15T10:00:00.123456+02:00"},
            {"id": 3, "t": "2024-01-15T10:00:00"},
            {"id": 4, "t": "2024/01/15 10:00"},
            {"id": 5, "t": "n/a"},
            {"id": 6, "t": "2024-01-15"},
            {"id": 7, "t": 1700000000},
            {"id": 8, "t": ""},
        ),
        "variant rule",
    ),
    "text first, then a timestamp": (
        one({"id": 1, "t": "n/a"}, {"id": 2, "t": "2024-01-15T10:00:00Z"}),
        "first value",
    ),
    "flags, then other values": (
        one(
            {"id": 1, "b": True},
            {"id": 2, "b": 0},
            {"id": 3, "b": "false"},
            {"id": 4, "b": "maybe"},
            {"id": 5, "b": 1.5},
        ),
        "variant rule",
    ),
    "nulls, empty lists and objects at every level": (
        one(
            {
                "id": 1,
                "m": {"a": {"b": None}, "l": [None, "x", None]},
                "c": [{"x": 1, "d": {"e": "q"}}, None, {}, {"x": None, "k": [1, 2]}],
            },
            {"id": 2, "m": None, "c": []},
            {"id": 3, "m": {}, "c": None},
            {"id": 4, "c": [{"x": 2.5, "k": []}]},
        ),
        "id formula",
    ),
    "keys dlt's naming convention rewrites": (
        one(
            {
                "id": 1,
                "CamelCase": 1,
                "with space": "a",
                "a.b": 2,
                "x-y": 3,
                "123start": 4,
                "": "blank",
                "a": {"B c": {"D": 2}},
                "Lst Items": [{"Inner Key": 1, "Deeper List": [{"Z": 1}]}],
            },
        ),
        "naming",
    ),
    "unicode keys and values": (
        one(
            {
                "id": 1,
                "s": 'żółć \u2028 "q" \\ \n',
                "e": "\U0001f600",
                "Größe": "groß",
                "名前": "名",
                "tags": [{"étiquette": "été"}],
            },
            {"id": 2, "s": None, "Größe": "klein", "tags": []},
        ),
        "naming",
    ),
    # Shapes other than the demo's tickets.
    "deep nesting: lists of objects four levels down": (
        one(
            {"id": 1, "a": [{"b": [{"c": [{"d": [{"e": 1, "f": {"g": "x"}}, {"e": 2}]}]}]}]},
            {"id": 2, "a": [{"b": []}, {"b": [{"c": [{"d": []}, {"d": [{"e": 3}]}]}]}]},
            {"id": 3, "a": None},
        ),
        "id formula",
    ),
    "lists of scalars": (
        one(
            {"id": 1, "ints": [1, 2, None, 3], "words": ["a"], "flags": [True, False], "none": []},
            {"id": 2, "ints": [], "words": None, "flags": [False], "none": [None]},
            {"id": 3, "ints": [7], "words": ["b", "c"], "stamps": ["2024-01-15T10:00:00Z"]},
        ),
        "id formula",
    ),
    "empty objects": (
        one(
            {"id": 1, "o": {}, "l": [{}, {}], "p": {"q": {}}, "r": {"s": {"t": 1}}},
            {"id": 2, "o": {"k": 1}, "l": [{"k": "v"}], "p": {}},
        ),
        "id formula",
    ),
    "whole numbers over two pages, then fractions": (
        [[[{"id": 1, "n": 1, "l": [{"x": 1}]}], [{"id": 2, "n": 2.5, "l": [{"x": 1.5}]}]]],
        "stored types",
    ),
    "a second load with updated and emptied lists": (
        [
            [[{"id": 1, "l": [{"x": 1}, {"x": 2}], "s": [1, 2]}, {"id": 2, "l": [{"x": 3}]}]],
            [[{"id": 1, "l": [], "s": [3]}, {"id": 2, "l": [{"x": 4}, {"x": 5}], "s": None}]],
        ],
        "id formula",
    ),
    # Shapes the vectorized normalizer leaves to dlt's.
    "lists of lists": (one({"id": 1, "m": [[1, 2], [3]]}, {"id": 2, "m": [[4]]}), None),
    "two keys with one name": (one({"id": 1, "a__b": 1, "a": {"b": 2}}), None),
    "a list of mixed scalars": (one({"id": 1, "l": [1, "a", 2.5]}), None),
    "an object and a scalar under one key": (
        one({"id": 1, "o": {"k": 1}}, {"id": 2, "o": 5}),
        None,
    ),
    "a variant column dlt types as a timestamp": (
        one({"id": 1, "n": 1}, {"id": 2, "n": "2024-01-15T10:00:00Z"}),
        None,
    ),
}


@pytest.mark.parametrize("disposition", ["append", "merge", "replace"])
@pytest.mark.parametrize("case", list(CASES))
def test_records_of_every_shape_land_as_plain_dlt_lands_them(case, disposition, tmp_path):
    runs, _ = CASES[case]
    plain, ours = land_both(tmp_path, runs, disposition)
    assert ours == plain
    assert all(broken == 0 for _, _, broken in ours.values()), "dlt's id formulas"


@pytest.mark.parametrize("strategy", ["upsert", "scd2"])
def test_upsert_and_scd2_ids_are_left_to_dlts_normalizer_and_land_the_same(strategy, tmp_path):
    """dlt derives their root ids from the record (key_hash, row_hash): not modelled."""
    runs = CASES["a second load with updated and emptied lists"][0]
    plain, ours = land_both(tmp_path, runs, {"disposition": "merge", "strategy": strategy})
    assert ours == plain


def land_both(tmp_path: Path, runs: Runs, disposition: Any) -> tuple[Any, Any]:
    hints = {"primary_key": "id", "write_disposition": disposition}
    plain = landed_tables(land_pages(tmp_path, "plain", runs, arrow=False, **hints))
    ours = landed_tables(land_pages(tmp_path, "ours", runs, arrow=True, **hints))
    return plain, ours


# ------------------------------------------------------------------ broken normalizers


def _later_first_type(self: RelationalArrow, name: str, groups: dict[str, Any]) -> str | None:
    """The first-value rule broken: the LAST value types a new column."""
    from dlt.common.schema.utils import autodetect_sc_type

    last: tuple[int, str] | None = None
    for kind, (mask, _) in groups.items():
        hits = [] if kind == "_origin" else pc.indices_nonzero(mask)
        if len(hits) and (last is None or hits[-1].as_py() > last[0]):
            last = (hits[-1].as_py(), kind)
    if last is None:
        return None
    value = groups[last[1]][1][last[0]].as_py()
    if "_origin" in groups and last[1] == "double":
        value = relational._nth(*groups["_origin"], last[0])
    return (
        autodetect_sc_type(["iso_timestamp"], type(value), value)
        or relational.PY_TO_DLT[type(value)]
    )


class _OtherNaming:
    """The naming convention broken: paths joined by ``_`` instead of ``__`` (dlt's extract
    normalizes each name again, so a name it would rewrite is not enough to tell)."""

    def __init__(self, naming: Any) -> None:
        self._naming = naming

    def __getattr__(self, name: str) -> Any:
        return getattr(self._naming, name)

    def shorten_fragments(self, *fragments: str) -> str:
        return "_".join(fragments)


def _break(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "id formula":
        nested_ids = relational.nested_ids
        monkeypatch.setattr(
            relational, "nested_ids", lambda ids, table, idx: nested_ids(ids, table, pc.add(idx, 1))
        )
    elif how == "variant rule":
        coerce: Callable[..., None] = relational._coerce
        monkeypatch.setattr(
            relational, "_coerce", lambda t, k, m, v, main, variants: coerce(t, k, m, v, main, {})
        )
    elif how == "first value":
        monkeypatch.setattr(RelationalArrow, "_first_type", _later_first_type)
    elif how == "stored types":
        normalize = RelationalArrow.normalize

        def forgetful(self: RelationalArrow, records: list[dict[str, Any]]) -> Any:
            self.known.clear()
            return normalize(self, records)

        monkeypatch.setattr(RelationalArrow, "normalize", forgetful)
    elif how == "naming":
        init = RelationalArrow.__init__

        def raw_init(self: RelationalArrow, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self.naming = _OtherNaming(self.naming)

        monkeypatch.setattr(RelationalArrow, "__init__", raw_init)


@pytest.mark.parametrize("case", [name for name, (_, how) in CASES.items() if how])
def test_a_broken_normalizer_lands_other_tables_for_every_case(case, tmp_path, monkeypatch):
    runs, how = CASES[case]
    assert how is not None
    _break(monkeypatch, how)
    try:
        plain, ours = land_both(tmp_path, runs, "merge")
    except Exception:  # dlt refusing the broken tables is a difference too
        return
    broken_ids = sum(broken for _, _, broken in ours.values())
    assert ours != plain or broken_ids, f"{how} broken, yet the same tables landed"


def test_on_a_dlt_the_seam_does_not_fit_every_page_goes_to_dlts_normalizer(tmp_path, monkeypatch):
    """Another dlt version (or a changed ``Extract._compute_metrics``): nothing is patched, the
    step says why once, and dlt's own normalizer lands the very same tables."""
    from restsync_dagster.extract import arrow, dlt_seam

    reason = (
        "the seam (restsync_dagster/extract/dlt_seam.py) was written for dlt 1.31.x, found 9.9.9"
    )
    monkeypatch.setattr(dlt_seam, "install", lambda: reason)
    told: list[tuple[str, str]] = []
    step = arrow.ArrowPages  # land_pages builds its step from the module, as build_source does
    monkeypatch.setattr(
        arrow, "ArrowPages", lambda name: step(name, on_fallback=lambda *said: told.append(said))
    )
    runs = CASES["a second load with updated and emptied lists"][0]
    plain, ours = land_both(tmp_path, runs, "merge")
    assert ours == plain
    assert told == [("records", reason), ("records", reason)], "once per resource and run"
