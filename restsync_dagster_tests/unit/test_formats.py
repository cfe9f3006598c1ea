"""JSON lines and CSV bodies become records, or fail naming the line or row; JSON documents parse
exactly as the standard library parses them (orjson only where it gives the same)."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from restsync_dagster.extract.formats import (
    BodyFormatError,
    loads_json,
    parse_records,
    ungzipped,
)


def test_json_lines_become_records_and_blank_lines_are_skipped():
    assert parse_records('{"id": 1}\n\n{"id": 2}\n', "jsonl") == ([{"id": 1}, {"id": 2}], ())


@pytest.mark.parametrize(
    ("text", "words"),
    [('{"id": 1}\n[1, 2]\n', "line 2 of the JSON lines is a list"), ("{oops\n", "line 1")],
)
def test_a_json_line_that_is_not_an_object_is_refused(text, words):
    with pytest.raises(BodyFormatError, match=words):
        parse_records(text, "jsonl")


def test_csv_rows_become_records_with_empty_cells_as_null():
    records, header = parse_records('id,name,note\n1,"A, Inc.",\n2,B,x\n', "csv")
    assert header == ("id", "name", "note")
    assert records == [
        {"id": "1", "name": "A, Inc.", "note": None},
        {"id": "2", "name": "B", "note": "x"},
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("id,name\n1,A\n2\n", "CSV row 3 has 1 cells, the header has 2"),
        ("id,name\n1,A,extra\n", "CSV row 2 has 3 cells, the header has 2"),
        ("id,id\n1,2\n", "the CSV header names 'id' twice"),
    ],
)
def test_a_ragged_csv_row_or_a_repeated_column_is_refused(text, words):
    with pytest.raises(BodyFormatError, match=words):
        parse_records(text, "csv")


def test_a_gzip_file_is_decoded_and_anything_else_is_left_alone():
    packed = gzip.compress(b"id\n1\n")
    assert ungzipped(packed, "application/gzip") == b"id\n1\n"
    assert ungzipped(b"id\n1\n", "text/csv") == b"id\n1\n"


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"id": 1, "n": 2.5, "s": "\xc3\xa9", "none": null, "ok": true}], "total": 1}',
        b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809}',
        b'{"edge": 9223372036854775807, "u": 18446744073709551615}',
        b'{"x": NaN, "y": Infinity, "z": -Infinity}',
        b'{"a": 1, "a": 2}',
        b'"\\ud800"',
        b"[1e400, 5e-324, 1.7976931348623157e308, 0.1, 1E2, -0.0]",
        '{"utf16": "\u00e9"}'.encode("utf-16"),
        '{"text": "already decoded"}',
    ],
)
def test_json_bodies_parse_exactly_as_the_standard_library_parses_them(body):
    expected = json.loads(body)
    parsed = loads_json(body)
    assert repr(parsed) == repr(expected)


@pytest.mark.parametrize("body", [b"{bad", b'{"a": 1,}', b"[01]", b'"\xff"', b""])
def test_json_the_standard_library_refuses_is_refused(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        loads_json(body)


def test_floats_parse_to_the_same_value_as_the_standard_library():
    rng = random.Random(7)
    values = [rng.uniform(-1e6, 1e6) for _ in range(2000)] + [rng.random() * 10 ** rng.randint(-300, 300) for _ in range(2000)]  # fmt: skip
    body = json.dumps(values).encode()
    assert loads_json(body) == json.loads(body)
