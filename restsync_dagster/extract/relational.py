"""dlt 1.31's relational normalizer, vectorized: a batch of records -> one Arrow table per table.

dlt's ``DataItemNormalizer`` (``dlt.common.normalizers.json.relational``) flattens and un-nests
each record in Python, and dlt never un-nests Arrow. :class:`RelationalArrow` does the same work
on a whole batch: ``pyarrow.infer_type`` and ``pyarrow.array`` convert the records into one
nested ``StructArray`` in C++, struct fields become ``a__b`` columns, and ``list_flatten`` with
``list_parent_indices`` give each list's child table. What it lands is what dlt's normalizer
makes of the same records, read from dlt and checked against it
(``integration/test_nested_tables_equal_plain_dlt.py``, ``unit/test_relational_arrow.py``):

* names from the schema's naming convention (``normalize_path``, ``shorten_fragments``,
  ``normalize_tables_path``; ``_empty`` for a blank key), ``max_table_nesting`` (deeper objects
  and lists become ``json`` columns, dumped with dlt's own ``json``);
* types: a column the live schema already types keeps its type; a new column takes the type of
  its first non-null value (dlt's ``autodetect_sc_type`` and preferred types decide, as for
  dlt); all-null fields make no column; values of another type are coerced with dlt's own
  ``coerce_value`` on their distinct values only, or go to the variant column dlt would make
  (``x__v_text``);
* dlt's system columns with dlt's formulas: ``_dlt_load_id`` and a random ``_dlt_id``
  (``generate_dlt_ids``) in the root table; in a child table ``_dlt_parent_id``,
  ``_dlt_list_idx`` and ``_dlt_id`` = ``digest128(f"{parent_id}_{table}_{list_idx}")``, and
  ``_dlt_root_id`` where dlt propagates it (merge with delete-insert).

What it does not model raises :class:`NotModelled` with the reason, and the caller hands that
batch to dlt's normalizer: key-hash or row-hash root ids (upsert, scd2), schema contracts,
propagation beyond the root key, a JSON normalizer other than dlt's relational one, lists of
lists, a list of mixed scalars, an object and a scalar under one key, two keys with one
normalized name, fields named like dlt's own columns, integers beyond 2**53 among doubles,
detections other than ``iso_timestamp``, column types other than text, bigint, double, bool and
timestamp, nested tables carrying hints of their own, and a variant column dlt would type
otherwise than its values.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


class NotModelled(Exception):
    """This batch needs dlt's own normalizer; the message says why."""


DLT_TO_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
PY_TO_DLT: dict[type, str] = {str: "text", int: "bigint", float: "double", bool: "bool"}
#: ISO-8601 strings arrow's timestamp parser and dlt's (pendulum) read alike; others go through
#: dlt's ``coerce_value``.
STRICT_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
#: Table properties of a nested table dlt makes itself; any other came from the user's hints.
NESTED_TABLE_KEYS = frozenset({"name", "columns", "parent", "x-normalizer", "resource"})
_UTC = datetime.UTC


@dataclass
class Leaf:
    """A column of a table: its dlt name and the dict keys that lead to it within a row."""

    name: str
    keys: tuple[str, ...]
    pos: int
    #: An object or list dlt keeps whole (``max_table_nesting``, a ``json`` column).
    json: bool = False


@dataclass
class Table:
    """A table of the plan: the root or a child made of a list."""

    name: str
    keys: tuple[str, ...]
    parent: Table | None
    level: int
    scalar_list: bool = False
    leaves: list[Leaf] = field(default_factory=list)
    children: list[Table] = field(default_factory=list)


@dataclass
class Settings:
    """What dlt's normalizer reads from the schema for one root table."""

    root: str
    propagate_root_key: bool
    max_nesting: int
    detections: tuple[str, ...]


def settings_for(schema: Any, root_table: str) -> Settings:
    """dlt's normalizer settings of ``root_table`` in ``schema`` (which must hold the table, as
    dlt's extract adds it), or :class:`NotModelled`."""
    from dlt.common.normalizers.json.helpers import get_root_row_id_type
    from dlt.common.normalizers.json.relational import DataItemNormalizer

    naming = schema.naming
    root = naming.normalize_table_identifier(root_table)
    try:
        config = DataItemNormalizer.get_normalizer_config(schema) or {}
    except Exception as exc:  # InvalidJsonNormalizer: another JSON normalizer module
        raise NotModelled(
            f"the schema's JSON normalizer is not dlt's relational one ({exc})"
        ) from None
    propagation = config.get("propagation") or {}
    tables = propagation.get("tables") or {}
    row_id = naming.normalize_identifier("_dlt_id")
    root_id = naming.normalize_identifier("_dlt_root_id")
    if propagation.get("root") or any(
        name != root or dict(props) != {row_id: root_id} for name, props in tables.items()
    ):
        raise NotModelled("a propagation config beyond the root key")
    if get_root_row_id_type(schema, root) != "random":
        raise NotModelled("key_hash or row_hash root ids (upsert, scd2)")
    table = schema.tables.get(root) or {}
    if table.get("schema_contract") or (schema.settings or {}).get("schema_contract"):
        raise NotModelled("a schema contract")
    for name, other in schema.tables.items():
        if other.get("parent") and name.startswith(root + "__"):
            extra = set(other) - NESTED_TABLE_KEYS
            if extra:
                raise NotModelled(f"nested table {name} carries hints ({', '.join(sorted(extra))})")
    detections = tuple((schema.settings or {}).get("detections") or ())
    if set(detections) - {"iso_timestamp"}:
        raise NotModelled(f"type detections {', '.join(detections)}")
    max_nesting = (table.get("x-normalizer") or {}).get("max_nesting")
    if max_nesting is None:
        max_nesting = config.get("max_nesting", 1000)
    return Settings(
        root=root,
        propagate_root_key=root in tables,
        max_nesting=int(max_nesting if max_nesting is not None else 1000),
        detections=detections,
    )


class RelationalArrow:
    """Batches of records of one resource -> ``{table: pyarrow.Table}`` as dlt would make them.

    Args:
        schema: dlt's live schema (read, never changed): stored types, naming, settings.
        root_table: The resource's table.
        load_id: The load package's id (``_dlt_load_id``).
        settings: The root table's settings, when ``schema`` does not hold the table yet.
    """

    def __init__(
        self, schema: Any, root_table: str, load_id: str, settings: Settings | None = None
    ) -> None:
        self.schema = schema
        self.naming = schema.naming
        self.settings = settings or settings_for(schema, root_table)
        self.root = self.settings.root
        self.load_id = load_id
        self.system = {
            self.naming.normalize_identifier(name)
            for name in ("_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_list_idx")
        } | {self.naming.normalize_identifier("_dlt_root_id")}
        #: dlt's types of every column: the schema's, then what earlier batches typed.
        self.known: dict[str, dict[str, str]] = {
            name: {
                c: col["data_type"]
                for c, col in t.get("columns", {}).items()
                if col.get("data_type")
            }
            for name, t in schema.tables.items()
        }
        #: Leaf paths seen with values of several JSON types (read in Python from then on).
        self._mixed: set[tuple[str, ...]] = set()
        #: Each child table's parent, for the hints.
        self.parents: dict[str, str] = {}
        #: Variant columns made so far.
        self.variants: set[str] = set()

    # ---------------------------------------------------------------------------------- plan

    def _json_typed(self, table: str, column: str, level: int) -> bool:
        """dlt's ``is_nested_type``: kept whole below the nesting limit, or typed ``json``."""
        if level <= 0:
            return True
        found = self.schema.tables.get(table, {}).get("columns", {}).get(column) or {}
        return (found.get("data_type") or self.schema.get_preferred_type(column)) == "json"

    def _plan(self, table: Table, kind: pa.DataType, path: tuple[str, ...]) -> None:
        """dlt's ``_flatten`` over a struct type: a LIFO stack of objects, lists as child tables."""
        naming = self.naming
        stack: list[tuple[pa.DataType, int, tuple[str, ...], tuple[str, ...]]] = [
            (kind, table.level, (), ())
        ]
        seen: set[str] = set()
        lists = []
        while stack:
            struct, level, prefix, keys = stack.pop()
            for item in struct:
                key = item.name
                name = naming.normalize_path(key) if key and not key.isspace() else "_empty"
                column = name if not prefix else naming.shorten_fragments(*prefix, name)
                value_type = item.type
                whole = False
                if pa.types.is_struct(value_type):
                    if not self._json_typed(table.name, column, level):
                        stack.append((value_type, level - 1, (*prefix, name), (*keys, key)))
                        continue
                    whole = True
                elif pa.types.is_list(value_type) or pa.types.is_large_list(value_type):
                    if not self._json_typed(table.name, column, level):
                        ident = (*prefix, naming.normalize_tables_path(key))
                        lists.append((ident, (*keys, key), value_type))
                        continue
                    whole = True
                elif pa.types.is_null(value_type):
                    continue  # only nulls: dlt makes no column
                if column in seen:
                    raise NotModelled(f"two keys of {table.name} normalize to {column}")
                if column in self.system:
                    raise NotModelled(f"a field named like dlt's own column {column}")
                seen.add(column)
                table.leaves.append(Leaf(column, (*keys, key), len(table.leaves), whole))
        for ident, keys, list_type in lists:
            value_type = list_type.value_type
            child = Table(naming.shorten_fragments(*path, *ident), keys, table, table.level - 1)
            self.parents[child.name] = table.name
            if pa.types.is_struct(value_type):
                self._plan(child, value_type, (*path, *ident))
            elif pa.types.is_list(value_type) or pa.types.is_large_list(value_type):
                raise NotModelled(f"a list of lists ({child.name})")
            elif not pa.types.is_null(value_type):
                child.scalar_list = True
                child.leaves.append(Leaf(naming.normalize_identifier("value"), (), 0))
            table.children.append(child)

    # ----------------------------------------------------------------------------------- run

    def normalize(self, records: list[dict[str, Any]]) -> dict[str, pa.Table]:
        """Every table dlt would make of ``records``, in dlt's order (parents first)."""
        try:
            kind = pa.infer_type(records)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise NotModelled(f"values pyarrow cannot type together ({exc})") from None
        if not pa.types.is_struct(kind):
            raise NotModelled("records that are not objects")
        root = Table(self.root, (), None, self.settings.max_nesting)
        self._plan(root, kind, (self.root,))
        array = self._convert(records, kind, root)
        out: dict[str, pa.Table] = {}
        self._emit(root, array, records, (), None, out)
        return out

    def _convert(
        self, records: list[dict[str, Any]], kind: pa.DataType, root: Table
    ) -> pa.StructArray:
        """The records as one StructArray, without the leaves read in Python (json columns,
        mixed types: found once, remembered for the next batches)."""
        kind = _without_all(kind, _leaf_paths(root, json_only=True))
        try:
            return pa.array(records, type=_without_all(kind, self._mixed))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        for path, types in _leaf_types(records, _leaf_paths(root)).items():
            types = types - {type(None)}
            if len(types) > 1 and not types <= {int, float}:
                if path and path[-1] == "[]":
                    raise NotModelled(f"a list of mixed scalars at {'.'.join(path)}")
                self._mixed.add(path)
        try:
            return pa.array(records, type=_without_all(kind, self._mixed))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise NotModelled(f"conversion: {exc}") from None

    def _emit(
        self,
        table: Table,
        array: pa.Array,
        records: list[dict[str, Any]],
        path: tuple[str, ...],
        parent: tuple[pa.Array, pa.Array, pa.Array] | None,
        out: dict[str, pa.Table],
    ) -> None:
        """``array``: this table's rows (a StructArray, or the scalars of a list); ``path``: the
        list steps from a record to them; ``parent``: parent ids, list positions, root ids."""
        n = len(array)
        known = self.known.setdefault(table.name, {})
        columns: dict[str, pa.Array] = {}
        first: dict[str, tuple[int, int, int]] = {}
        for leaf in table.leaves:
            for name, column in self._leaf_columns(table, leaf, array, records, path, known, n):
                columns[name] = column
                valid = pc.indices_nonzero(pc.is_valid(column))
                if len(valid):
                    first[name] = (valid[0].as_py(), leaf.pos, 1 if "__v_" in name else 0)
        ids, system = self._system_columns(table, n, parent, columns)
        stored = list(self.schema.tables.get(table.name, {}).get("columns", {}))
        position = {name: i for i, name in enumerate(stored)}

        def order(name: str) -> tuple[int, int, int]:
            if name in position:
                return (-1, position[name], 0)
            if name in system:
                return (0, 10**6 + system.index(name), 0)
            return first[name]

        names = sorted([c for c in columns if c in first] + system, key=order)
        if n:
            out[table.name] = pa.table({name: columns[name] for name in names})
        for child in table.children:
            lists = _field(array, child.keys)
            if lists is None:
                continue
            values = pc.list_flatten(lists)
            if not len(values):
                continue
            owners = pc.list_parent_indices(lists)
            offsets = lists.offsets
            positions = pc.subtract(
                pc.add(pa.array(range(len(values)), pa.int64()), offsets[0].as_py()),
                pc.take(offsets, owners).cast(pa.int64()),
            )
            root_ids = parent[2] if parent is not None else ids
            self._emit(
                child,
                values,
                records,
                (*path, *child.keys, "[]"),
                (pc.take(ids, owners), positions, pc.take(root_ids, owners)),
                out,
            )

    def _system_columns(
        self,
        table: Table,
        n: int,
        parent: tuple[pa.Array, pa.Array, pa.Array] | None,
        columns: dict[str, pa.Array],
    ) -> tuple[pa.Array, list[str]]:
        """dlt's ``_dlt_*`` columns of ``table``, added to ``columns``; returns the row ids and
        the names in dlt's order."""
        from dlt.common.normalizers.utils import generate_dlt_ids

        name = self.naming.normalize_identifier
        if parent is None:
            ids = pa.array(generate_dlt_ids(n), pa.string())
            columns[name("_dlt_load_id")] = pa.array([self.load_id] * n, pa.string())
            columns[name("_dlt_id")] = ids
            return ids, [name("_dlt_load_id"), name("_dlt_id")]
        parent_ids, positions, root_ids = parent
        ids = nested_ids(parent_ids, table.name, positions)
        system = []
        if self.settings.propagate_root_key:
            columns[name("_dlt_root_id")] = root_ids
            system.append(name("_dlt_root_id"))
        columns[name("_dlt_parent_id")] = parent_ids
        columns[name("_dlt_list_idx")] = positions
        columns[name("_dlt_id")] = ids
        return ids, [*system, name("_dlt_parent_id"), name("_dlt_list_idx"), name("_dlt_id")]

    def _leaf_columns(
        self,
        table: Table,
        leaf: Leaf,
        array: pa.Array,
        records: list[dict[str, Any]],
        path: tuple[str, ...],
        known: dict[str, str],
        n: int,
    ) -> list[tuple[str, pa.Array]]:
        """The column (and variant columns) one leaf makes."""
        full = path + leaf.keys
        if leaf.json:
            return [(leaf.name, self._json_leaf(leaf, records, full, known))]
        if full in self._mixed:
            groups = _groups_from_python(_read_leaf(records, full))
        else:
            values = array if table.scalar_list else _field(array, leaf.keys)
            if values is None:
                return []
            groups = _groups_from_arrow(values, records, full)
        if not groups:
            return []
        return list(self._typed(leaf.name, groups, known, n).items())

    def _json_leaf(
        self,
        leaf: Leaf,
        records: list[dict[str, Any]],
        full: tuple[str, ...],
        known: dict[str, str],
    ) -> pa.Array:
        """An object or list dlt keeps whole: its parquet writer stores dlt's ``json.dumps``."""
        from dlt.common.json import json as dlt_json

        values = _read_leaf(records, full)
        if any(type(v) not in (dict, list) for v in values if v is not None):
            raise NotModelled(f"a scalar where the json column {leaf.name} holds objects")
        if known.setdefault(leaf.name, "json") != "json":
            raise NotModelled(f"an object in the typed column {leaf.name}")
        dumps = dlt_json.dumps
        return pa.array([None if v is None else dumps(v) for v in values], pa.string())

    # -------------------------------------------------------------------------------- typing

    def _detections(self) -> Any:
        return list(self.settings.detections)

    def _first_type(self, name: str, groups: dict[str, Any]) -> str | None:
        """dlt's type for a new column: of its first non-null value."""
        from dlt.common.schema.utils import autodetect_sc_type

        first: tuple[int, str] | None = None
        for kind, (mask, _) in groups.items():
            if kind == "_origin":
                continue
            hits = pc.indices_nonzero(mask)
            if len(hits) and (first is None or hits[0].as_py() < first[0]):
                first = (hits[0].as_py(), kind)
        if first is None:
            return None
        index, kind = first
        value = groups[kind][1][index].as_py()
        origin = groups.get("_origin")
        if origin is not None and kind == "double":  # was that double an int in the JSON?
            value = _nth(origin[0], origin[1], index)
            kind = PY_TO_DLT[type(value)]
        preferred = self.schema.get_preferred_type(name)
        return preferred or autodetect_sc_type(self._detections(), type(value), value) or kind

    def _typed(
        self, name: str, groups: dict[str, Any], known: dict[str, str], n: int
    ) -> dict[str, pa.Array]:
        """A leaf's values as dlt types them: the column's type, coerced, and variant columns."""
        groups = {
            k: (pc.fill_null(mask, False), values) if k != "_origin" else (mask, values)
            for k, (mask, values) in groups.items()
        }
        target = known.get(name)
        if target is None:
            target = self._first_type(name, groups)
            if target is None:
                return {}
            known[name] = target
        groups.pop("_origin", None)
        if target not in DLT_TO_ARROW:
            raise NotModelled(f"column {name} of type {target}")
        main: list[tuple[pa.Array, pa.Array]] = []
        variants: dict[str, list[tuple[pa.Array, pa.Array]]] = {}
        for kind, (mask, values) in groups.items():
            _coerce(target, kind, mask, values, main, variants)
        result = {name: _assemble(main, DLT_TO_ARROW[target], n)}
        for kind, parts in variants.items():
            variant = self.naming.shorten_fragments(name, "v_" + kind)
            if variant not in known:
                known[variant] = self._variant_type(parts, kind)
            if known[variant] != kind:
                raise NotModelled(f"variant column {variant} typed {known[variant]}, not {kind}")
            result[variant] = _assemble(parts, DLT_TO_ARROW[kind], n)
            self.variants.add(variant)
        return result

    def _variant_type(self, parts: list[tuple[pa.Array, pa.Array]], kind: str) -> str:
        """dlt's type for a new variant column: its first value's."""
        from dlt.common.schema.utils import autodetect_sc_type

        anywhere = parts[0][0]
        for mask, _ in parts[1:]:
            anywhere = pc.or_(anywhere, mask)
        index = pc.indices_nonzero(anywhere)[0].as_py()
        value = next(values[index].as_py() for mask, values in parts if mask[index].as_py())
        return autodetect_sc_type(self._detections(), type(value), value) or kind


def _coerce(
    target: str,
    kind: str,
    mask: pa.Array,
    values: pa.Array,
    main: list[tuple[pa.Array, pa.Array]],
    variants: dict[str, list[tuple[pa.Array, pa.Array]]],
) -> None:
    """Values of type ``kind`` (where ``mask``) into a column of type ``target``, as dlt's
    ``coerce_value`` does; what it refuses goes to the variant column of ``kind``."""
    if kind == target:
        main.append((mask, values))
    elif (target, kind) == ("double", "bigint"):
        main.append((mask, values.cast(pa.float64())))
    elif (target, kind) == ("text", "bigint"):
        main.append((mask, values.cast(pa.string())))
    elif (target, kind) == ("bigint", "double"):
        whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less(pc.abs(values), 2.0**63))
        ok = pc.and_(mask, pc.fill_null(whole, False))
        main.append((ok, pc.if_else(ok, values, 0.0).cast(pa.int64())))
        rest = pc.and_(mask, pc.invert(ok))
        if pc.any(rest).as_py():
            variants.setdefault("double", []).append((rest, values))
    elif (target, kind) == ("timestamp", "text"):
        strict = pc.fill_null(pc.match_substring_regex(values, STRICT_TIMESTAMP), False)
        ok = pc.and_(mask, strict)
        if pc.any(ok).as_py():
            main.append((ok, pc.if_else(ok, values, None).cast(DLT_TO_ARROW["timestamp"])))
        rest = pc.and_(mask, pc.invert(strict))
        if pc.any(rest).as_py():
            _coerce_distinct(target, kind, values, rest, main, variants)
    else:
        _coerce_distinct(target, kind, values, mask, main, variants)


def _coerce_distinct(
    target: str,
    kind: str,
    values: pa.Array,
    mask: pa.Array,
    main: list[tuple[pa.Array, pa.Array]],
    variants: dict[str, list[tuple[pa.Array, pa.Array]]],
) -> None:
    """dlt's own ``coerce_value`` on the DISTINCT values of a cross-type group."""
    from dlt.common.data_types.type_helpers import coerce_value

    accepted, coerced, refused = [], [], []
    for value in pc.unique(pc.filter(values, mask)).to_pylist():
        try:
            result = coerce_value(target, kind, value)  # type: ignore[arg-type]
        except (ValueError, SyntaxError):
            refused.append(value)
            continue
        if callable(result):
            raise NotModelled("a coercion dlt answers with a variant of its own")
        if target == "timestamp":
            result = result.astimezone(_UTC) if result.tzinfo else result.replace(tzinfo=_UTC)
        accepted.append(value)
        coerced.append(result)
    if accepted:
        where = pc.index_in(values, value_set=pa.array(accepted, values.type))
        taken = pc.take(pa.array(coerced, DLT_TO_ARROW[target]), pc.fill_null(where, 0))
        main.append((pc.and_(mask, pc.is_valid(where)), taken))
    if refused:
        hit = pc.and_(mask, pc.is_in(values, value_set=pa.array(refused, values.type)))
        variants.setdefault(kind, []).append((hit, values))


def _groups_from_arrow(
    values: pa.Array, records: list[dict[str, Any]], path: tuple[str, ...]
) -> dict[str, Any]:
    """A leaf pyarrow typed: ``{dlt type: (where valid, values)}``."""
    kind = values.type
    if pa.types.is_null(kind):
        return {}
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return {"text": (pc.is_valid(values), values)}
    if pa.types.is_int64(kind):
        return {"bigint": (pc.is_valid(values), values)}
    if pa.types.is_boolean(kind):
        return {"bool": (pc.is_valid(values), values)}
    if pa.types.is_floating(kind):
        largest = pc.max(pc.abs(values)).as_py()
        if largest is not None and largest >= 2**53:
            raise NotModelled("integers beyond 2**53 may hide among doubles")
        # Whole numbers and fractions under one key: pyarrow made doubles. Only the first value's
        # JSON type matters to dlt (it types a new column), and whole doubles coerce like ints.
        return {"double": (pc.is_valid(values), values), "_origin": (records, path)}
    raise NotModelled(f"arrow type {kind}")


def _groups_from_python(values: list[Any]) -> dict[str, Any]:
    """A leaf read in Python (several JSON types): one group per type."""
    groups = {}
    for kind in {type(v) for v in values} - {type(None)}:
        dlt_type = PY_TO_DLT.get(kind)
        if dlt_type is None:
            raise NotModelled(f"python type {kind.__name__}")
        array = pa.array([v if type(v) is kind else None for v in values], DLT_TO_ARROW[dlt_type])
        groups[dlt_type] = (pc.is_valid(array), array)
    return groups


def _assemble(parts: list[tuple[pa.Array, pa.Array]], kind: pa.DataType, n: int) -> pa.Array:
    column = pa.nulls(n, kind)
    for mask, values in parts:
        column = pc.if_else(mask, values.cast(kind), column)
    return column


# ------------------------------------------------------------------------- paths and values


def _field(array: pa.Array, keys: tuple[str, ...]) -> pa.Array | None:
    for key in keys:
        index = array.type.get_field_index(key)
        if index < 0:
            return None
        array = pc.struct_field(array, [index])
    return array


def _without(kind: pa.DataType, path: tuple[str, ...]) -> pa.DataType:
    """``kind`` without the field at ``path`` (keys; ``[]`` steps into a list's values)."""
    if not path:
        return kind
    if path[0] == "[]":
        return pa.list_(_without(kind.value_type, path[1:]))
    fields = []
    for item in kind:
        if item.name != path[0]:
            fields.append(item)
        elif len(path) > 1:
            fields.append(pa.field(item.name, _without(item.type, path[1:])))
    return pa.struct(fields)


def _without_all(kind: pa.DataType, paths: Any) -> pa.DataType:
    for path in paths:
        kind = _without(kind, path)
    return kind


def _leaf_paths(table: Table, prefix: tuple[str, ...] = (), json_only: bool = False) -> list:
    paths = [prefix + leaf.keys for leaf in table.leaves if leaf.json == json_only]
    for child in table.children:
        paths += _leaf_paths(child, (*prefix, *child.keys, "[]"), json_only)
    return paths


_COMPILED: dict[tuple[tuple[str, ...], str], Callable[[list[dict[str, Any]]], Any]] = {}


def _reader(path: tuple[str, ...], kind: str) -> Callable[[list[dict[str, Any]]], Any]:
    """A compiled comprehension over the values at ``path`` in ``list_flatten`` order: their
    list (``values``) or the set of their types (``types``). Keys enter the code as ``repr``
    literals."""
    found = _COMPILED.get((path, kind))
    if found is None:
        expression, loops = "r", []
        for i, step in enumerate(path):
            if step == "[]":
                loops.append(f"for e{i} in ({expression} or _L)")
                expression = f"e{i}"
            else:
                source = expression if i == 0 else f"({expression} or _E)"
                expression = f"{source}.get({step!r})"
        body = f"type({expression})" if kind == "types" else expression
        left, right = ("{", "}") if kind == "types" else ("[", "]")
        code = f"def f(records):\n    return {left}{body} for r in records {' '.join(loops)}{right}"
        namespace: dict[str, Any] = {"_E": {}, "_L": ()}
        exec(code, namespace)  # the code is built above from repr() literals
        found = _COMPILED[(path, kind)] = namespace["f"]
    return found


def _read_leaf(records: list[dict[str, Any]], path: tuple[str, ...]) -> list[Any]:
    try:
        return _reader(path, "values")(records)  # type: ignore[no-any-return]
    except AttributeError as exc:  # a scalar where the plan has an object
        raise NotModelled(f"an object and a scalar under one key ({exc})") from None


def _leaf_types(records: list[dict[str, Any]], paths: list) -> dict[tuple[str, ...], set]:
    try:
        return {path: _reader(path, "types")(records) for path in paths}
    except AttributeError as exc:
        raise NotModelled(f"an object and a scalar under one key ({exc})") from None


def _nth(records: list[dict[str, Any]], path: tuple[str, ...], index: int) -> Any:
    """The ``index``-th value at ``path`` in ``list_flatten`` order."""
    if "[]" not in path:
        value: Any = records[index]
        for key in path:
            value = value.get(key) if type(value) is dict else None
        return value
    return _read_leaf(records, path)[index]


# ------------------------------------------------------------------------------------- ids


def _id_bytes() -> int:
    from dlt.common.normalizers.utils import DLT_ID_LENGTH_BYTES

    return int(DLT_ID_LENGTH_BYTES)


def nested_ids(parent_ids: pa.Array, table: str, positions: pa.Array) -> pa.Array:
    """dlt's ``get_nested_row_hash`` for every row at once:
    ``digest128(f"{parent_id}_{table}_{list_idx}", DLT_ID_LENGTH_BYTES)``, base64 without ``=``."""
    size = _id_bytes()
    pad = (-size) % 3  # zero bytes that make each digest a whole number of base64 groups
    chars = -(-4 * size // 3)
    keys = pc.binary_join_element_wise(
        parent_ids, pa.scalar(table), positions.cast(pa.string()), "_"
    )
    shake, zeros = hashlib.shake_128, b"\0" * pad
    raw = b"".join([shake(k).digest(size) + zeros for k in keys.cast(pa.binary()).to_pylist()])
    width = (size + pad) * 4 // 3
    encoded = base64.b64encode(raw)
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(keys), [None, pa.py_buffer(encoded)]
    )
    return pc.binary_slice(fixed, 0, chars).cast(pa.string())
