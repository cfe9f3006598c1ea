"""Flat records as Arrow tables, typed as dlt would type them: no per-record Python normalizing.

dlt's normalizer handles each record in Python. For a top-level resource whose records no step,
column hint or child resource must see one by one, :class:`ArrowPages` (a step added to the
resource's pipe through dlt's public ``DltResource.add_step``) turns each page into an Arrow
table, so dlt writes it as parquet directly. Types follow dlt's own inference and the types dlt
already holds for the table: a new column takes the type of its first value (a whole number
makes ``bigint`` even if fractions follow; a string dlt's ``iso_timestamp`` detection accepts
makes ``timestamp``), all-null fields make no column. A page with nested values (dicts, lists),
values pyarrow cannot type, or values dlt would coerce into a variant column (``1.5`` after
``1``, ``"n/a"`` after a timestamp), goes to dlt's normalizer as records instead, and so does
the rest of the run: a table never alternates between the two.

Why nested records stay dlt's (measured against dlt 1.31, 2026-12-01):

* Arrow cannot hand dlt its layout. dlt makes child tables (``<table>__<path>``, linked by
  ``_dlt_parent_id``/``_dlt_root_id``) only in its normalize step; an extract step cannot write
  to one. An Arrow table marked ``parent_table_name`` fails the extract
  (``KeyError: 'resource'`` while dlt sums the extract metrics per resource), and giving it a
  ``resource`` fails the schema merge (``TablePropertiesConflictException``: a nested table
  must not name a resource). Child tables written as tables of their own would lose the
  parent link, so a merge would keep the old children of an updated record. Flattening into
  Arrow here would land different tables, so it is not done.
* dlt's parallel normalize (``normalize.workers``) is what restsync offers instead, asked for
  with ``RESTSYNC_NORMALIZE_WORKERS=auto`` (``load/normalize.py``): 200k tickets normalize in
  7.7-8.4 s with two workers against 11.3-11.9 s in one process (2 cores, quiet machine,
  2026-12-01). It is not the default: a column whose values change type can then land other
  types than plain dlt lands.
* What remains is dlt's per-record normalizer: 70% of a 50k-ticket sync in a profile
  (``JsonLItemsNormalizer``: flattening, child rows, coercing every row). JSON parsing is
  already orjson's (:func:`~restsync_dagster.extract.formats.loads_json`).

``restsync_dagster_tests/integration/test_nested_tables_equal_plain_dlt.py`` pins the layout
(objects two levels deep, lists of scalars and of objects, nulls, empty lists; merge,
incremental, replace) for whoever takes this on when dlt accepts nested tables at extract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Rows gathered into one Arrow table: fewer, larger tables cost dlt less per row.
ARROW_BATCH_ROWS = 5_000


class ArrowPages:
    """A pipe step that gathers pages of flat records into Arrow tables (see the module).

    Pages are gathered until ``batch_rows`` rows, or until the resource's paginator says no page
    follows; then they go on as one table. Without a paginator to ask (or where the pages may
    stop without it saying so) every page is a table of its own.

    Args:
        primary_key: Key columns (not nullable in the table).
        table_name: The table the resource loads (whose stored types the tables follow).
        keep_text: Fields left as text (incremental cursors: dlt compares them as sent).
        paginator: The resource's paginator, asked whether another page follows.
        batch_rows: Rows per table when gathering.
    """

    def __init__(
        self,
        primary_key: tuple[str, ...],
        table_name: str,
        keep_text: frozenset[str] = frozenset(),
        paginator: Any = None,
        batch_rows: int = ARROW_BATCH_ROWS,
    ) -> None:
        self.primary_key = primary_key
        self.table_name = table_name
        self.keep_text = keep_text
        self.paginator = paginator
        self.batch_rows = batch_rows
        self._known: KnownColumns | None = None
        self._as_records = False
        self._buffer: list[dict[str, Any]] = []
        self._pages_seen = 0

    def __call__(self, page: Any, meta: Any = None) -> Any:
        if self._as_records or not isinstance(page, list):
            return page
        if page and (not isinstance(page[0], dict) or _nests(page[0])):
            # Not flat records: dlt's normalizer takes them, page by page, from here on.
            self._as_records = True
            return self._take() + page if self._buffer else page
        self._buffer.extend(page)
        last = self._last_page()
        if not self._buffer or (len(self._buffer) < self.batch_rows and not last):
            return None  # gathered (dlt drops a step's None); the next page goes on
        rows = self._take()
        if self._known is None:
            self._known = known_columns(self.table_name)
        table = records_to_arrow(rows, self.primary_key, self.keep_text, self._known)
        if table is None:
            self._as_records = True
            return rows
        self._known.learn(table)
        return table

    def _last_page(self) -> bool:
        """Whether no page follows this one. A paginator that did not count this page is not
        the one reading (a copy is): from then on every page is its own table."""
        if self.paginator is None:
            return True
        pages = self.paginator.pages
        if pages <= self._pages_seen:
            self.paginator = None
            return True
        self._pages_seen = pages
        return not self.paginator.has_next_page

    def _take(self) -> list[dict[str, Any]]:
        rows, self._buffer = self._buffer, []
        return rows


def _nests(record: dict[str, Any]) -> bool:
    """Whether a record holds an object or a list (which :func:`records_to_arrow` refuses)."""
    return any(isinstance(value, (dict, list)) for value in record.values())


@dataclass
class KnownColumns:
    """The column types dlt already holds for a table (from earlier loads, or earlier batches
    of this one), keyed by the names the API sends."""

    types: dict[str, str] = field(default_factory=dict)
    normalize: Callable[[str], str] = field(default=lambda name: name)
    #: The schema's type detections (dlt's default: ``iso_timestamp`` alone).
    detections: tuple[str, ...] = ("iso_timestamp",)

    def get(self, name: str) -> str | None:
        return self.types.get(self.normalize(name))

    def learn(self, table: Any) -> None:
        from dlt.common.libs.pyarrow import get_column_type_from_py_arrow

        for name, kind in zip(table.column_names, table.schema.types, strict=True):
            data_type = get_column_type_from_py_arrow(kind).get("data_type")
            if data_type:
                self.types.setdefault(self.normalize(name), str(data_type))


def known_columns(table_name: str) -> KnownColumns:
    """The types dlt's schema holds for ``table_name`` while a source is extracted (empty
    outside an extraction, or on the first load)."""
    import dlt

    try:
        schema = dlt.current.source_schema()
    except Exception:
        return KnownColumns()
    naming = schema.naming
    table = schema.tables.get(naming.normalize_table_identifier(table_name)) or {}
    types = {
        name: str(column["data_type"])
        for name, column in (table.get("columns") or {}).items()
        if column.get("data_type")
    }
    detections = tuple((schema.settings or {}).get("detections") or ())
    return KnownColumns(types, naming.normalize_identifier, detections)


def records_to_arrow(
    records: list[dict[str, Any]],
    primary_key: tuple[str, ...] = (),
    keep_text: frozenset[str] = frozenset(),
    known: KnownColumns | None = None,
) -> Any:
    """An Arrow table typed as dlt would type the records, or None to leave them to dlt.

    ``keep_text`` fields stay strings (an incremental cursor is compared as the API sent it;
    a column hint types it in the destination instead). A column must have the type dlt
    already holds for it in ``known`` (whole numbers in a double column become doubles, as
    dlt's normalizer would coerce them); any other difference returns None. A new column takes
    the type dlt gives its first value; values dlt would put in a variant column (``1.5``
    after ``1``, ``"n/a"`` after a timestamp) return None. A schema detecting types beyond ISO
    timestamps returns None: only dlt's normalizer applies them.
    """
    import pyarrow as pa
    from dlt.common.libs.pyarrow import get_column_type_from_py_arrow

    known = known if known is not None else KnownColumns()
    if set(known.detections) - {"iso_timestamp"}:
        return None
    try:
        table = pa.Table.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    fields, columns = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_nested(kind):
            return None  # dicts and lists: dlt's normalizer makes them columns and child tables
        if pa.types.is_null(kind):
            continue  # dlt creates no column from nulls alone
        expected = known.get(name)
        if name in keep_text:
            expected = None  # typed by a column hint in the destination, compared as text
        elif expected is None:
            # dlt types a new column by the first value that makes it, and coerces the rest to
            # that type or puts them in a variant column.
            expected = _type_of_first_value(
                records, name, kind, "iso_timestamp" in known.detections
            )
        if pa.types.is_string(kind) and expected == "timestamp":
            try:
                column = column.cast(pa.timestamp("us", tz="UTC"))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None  # some value is not one: dlt's normalizer makes a variant column
        if expected is not None:
            actual = get_column_type_from_py_arrow(column.type).get("data_type")
            if expected == "double" and actual == "bigint":
                column = column.cast(pa.float64())
            elif expected == "bigint" and actual == "double" and _whole_numbers(column):
                try:
                    column = column.cast(pa.int64())  # dlt's normalizer coerces 2.0 to 2
                except pa.ArrowInvalid:
                    return None  # beyond a bigint
            elif actual != expected:
                return None  # dlt's normalizer decides: coercion or a variant column
        fields.append(pa.field(name, column.type, nullable=name not in primary_key))
        columns.append(column)
    try:
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))
    except (pa.ArrowInvalid, ValueError):
        return None


def _type_of_first_value(
    records: list[dict[str, Any]], name: str, kind: Any, detect_timestamps: bool
) -> str | None:
    """The type dlt's normalizer gives a new column ``name`` where pyarrow's type for the whole
    batch (``kind``) may differ: ``bigint`` when the first value is a whole number in a column
    pyarrow made ``double``, ``timestamp`` when the first string is one to dlt's
    ``iso_timestamp`` detection (its own function, so both accept the same strings), else None
    (pyarrow's type stands)."""
    import pyarrow as pa

    if not (pa.types.is_floating(kind) or (pa.types.is_string(kind) and detect_timestamps)):
        return None
    first = next((r[name] for r in records if r.get(name) is not None), None)
    if pa.types.is_floating(kind):
        return "bigint" if isinstance(first, int) and not isinstance(first, bool) else None
    from dlt.common.schema.detections import is_iso_timestamp

    return "timestamp" if isinstance(first, str) and is_iso_timestamp(str, first) else None


def _whole_numbers(column: Any) -> bool:
    import pyarrow.compute as pc

    valid = pc.drop_null(column)
    return bool(pc.all(pc.equal(valid, pc.floor(valid))).as_py())
