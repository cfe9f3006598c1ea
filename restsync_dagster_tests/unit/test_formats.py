"""JSON lines and CSV bodies become records, or fail naming the line or row."""

from __future__ import annotations

import gzip

import pytest

from restsync_dagster.extract.formats import BodyFormatError, parse_records, ungzipped


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
