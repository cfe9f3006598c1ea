"""Pages as Arrow tables, root and child tables alike, typed as dlt's normalizer types them.

dlt's normalizer handles each record in Python: for nested records that was 70% of a sync. For a
top-level resource whose records no processing step, column hint or child resource must see one
by one, :class:`ArrowPages` (a step added to the resource's pipe through dlt's public
``DltResource.add_step``) gathers pages into batches and hands each to
:class:`~restsync_dagster.extract.relational.RelationalArrow`, which makes every table dlt's
normalizer would make of them (the root table, ``<table>__<path>`` child tables with dlt's ids,
variant columns), typed by the live dlt schema. dlt writes them as parquet and its normalize step
only imports the files. Child tables reach dlt's extract through the one private seam
(``extract/dlt_seam.py``).

The step sits after dlt's incremental and ``add_limit`` steps (``placement_affinity``), so the
cursor is read from the records as plain dlt reads it. A batch the vectorized normalizer does not
model (see ``relational.py``), a dlt on which the seam does not fit (for batches with child
tables), ``normalize.parquet_normalizer`` settings that would rewrite the ids, or pages that
are not lists of objects go to dlt's normalizer as records, and so does the rest of the
resource's run: dlt types columns by the first value it meets, and Arrow batches are typed at
extract while records are typed at normalize, so a table never alternates between the two.
``on_fallback`` is told once, with the reason.

A step returns one item per page; a batch makes several tables, each with its own hints. They
go out through one outbox drained by one generator at a time (dlt's pipe takes a returned
generator as a source of items), so every table receives its batches in order.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

from dlt.extract.items_transform import ItemTransform

from restsync_dagster.extract import dlt_seam
from restsync_dagster.extract.relational import NotModelled, RelationalArrow, settings_for

#: Rows gathered into one batch: fewer, larger tables cost dlt less per row.
ARROW_BATCH_ROWS = 5_000
#: Column hints dlt's normalizer gives its own columns (``DataItemNormalizer.extend_schema``).
SYSTEM_HINTS: dict[str, dict[str, Any]] = {
    "_dlt_id": {"data_type": "text", "nullable": False, "unique": True, "row_key": True},
    "_dlt_load_id": {"data_type": "text", "nullable": False},
    "_dlt_parent_id": {"data_type": "text", "nullable": False, "parent_key": True},
    "_dlt_root_id": {"data_type": "text", "nullable": False, "root_key": True},
    "_dlt_list_idx": {"data_type": "bigint", "nullable": False},
}


class ArrowPages(ItemTransform[Any, dict[str, Any]]):
    """A pipe step that turns pages of records into dlt's tables as Arrow (see the module).

    Pages are gathered until ``batch_rows`` rows, or until the resource's paginator says no page
    follows; then they go on as one batch. Without a paginator to ask (or where the pages may
    stop without it saying so) every page is a batch of its own.

    Args:
        resource: The resource's name (for the fallback's message).
        paginator: The resource's paginator, asked whether another page follows.
        batch_rows: Rows per batch when gathering.
        on_fallback: Told ``(resource, reason)`` when the resource's records go to dlt's
            normalizer instead.
    """

    #: After dlt's incremental (1) and ``add_limit`` (1.1): both see records, as in plain dlt.
    placement_affinity = 1.5

    def __init__(
        self,
        resource: str,
        paginator: Any = None,
        batch_rows: int = ARROW_BATCH_ROWS,
        on_fallback: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.paginator = paginator
        self.batch_rows = batch_rows
        self.on_fallback = on_fallback
        #: Why this resource's records go to dlt's normalizer (None: they go as Arrow).
        self.fallback: str | None = None
        self._normalizer: RelationalArrow | None = None
        self._buffer: list[dict[str, Any]] = []
        self._pages_seen = 0
        self._outbox: collections.deque[Any] = collections.deque()
        self._draining = False
        #: The column hints last sent for each table.
        self._sent: dict[str, dict[str, Any]] = {}
        #: Asked after each page: whether the rows gathered go on now, whatever their number (a
        #: load package ends at the next page boundary: extract/packages.py).
        self.flush_now: Callable[[], bool] | None = None

    def bind(self, pipe: Any) -> ArrowPages:
        """dlt binds the step at the start of every extract. A run in several load packages
        (extract/packages.py) extracts the resource again: its batches get a new normalizer
        (the new package's load id, the schema the previous package saved) and send their
        tables' hints afresh."""
        self._normalizer = None
        self._sent = {}
        super().bind(pipe)
        return self

    def holds_rows(self) -> bool:
        """Whether rows are gathered that no batch has carried on yet."""
        return bool(self._buffer)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if self.fallback is not None:
            return self._send([item])
        if meta is not None or not isinstance(item, list):
            return self._fall_back("items that are not pages of records", [item])
        if item and not all(type(record) is dict for record in item):
            return self._fall_back("pages whose items are not all objects", [item])
        self._buffer.extend(item)
        last = self._last_page()
        early = self.flush_now is not None and self.flush_now()
        if not self._buffer or (len(self._buffer) < self.batch_rows and not last and not early):
            return None  # gathered (dlt drops a step's None); the next page goes on
        rows, self._buffer = self._buffer, []
        try:
            tables = self._tables(rows)
        except NotModelled as exc:
            return self._fall_back(str(exc), [rows])
        return self._send(tables)

    def _tables(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The batch's tables, each with dlt's hints."""
        import dlt

        problem = dlt_seam.install()
        if problem is not None:
            raise NotModelled(problem)
        normalizer = self._normalizer or self._start()
        items = []
        for name, table in normalizer.normalize(rows).items():
            columns = self._columns(normalizer, name, table)
            if self._sent.get(name) == columns:
                # The table variant dlt holds already says all this: dlt's hints cost more to
                # merge than a batch of a page costs to normalize.
                items.append(dlt.mark.with_table_name(table, name))
                continue
            self._sent[name] = columns
            items.append(
                dlt.mark.with_hints(
                    table, self._hints(normalizer, name, columns), create_table_variant=True
                )
            )
        return items

    def _start(self) -> RelationalArrow:
        """The normalizer of this run, reading the live schema of the source being extracted."""
        import dlt
        from dlt.common.configuration import resolve_configuration
        from dlt.common.schema.utils import normalize_table_identifiers
        from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable
        from dlt.normalize.configuration import ItemsNormalizerConfiguration

        parquet = resolve_configuration(
            ItemsNormalizerConfiguration(), sections=("normalize", "parquet_normalizer")
        )
        if parquet.add_dlt_id or parquet.add_dlt_load_id:
            raise NotModelled(
                "normalize.parquet_normalizer.add_dlt_id or add_dlt_load_id is set: dlt would "
                "rewrite the ids the rows carry"
            )
        schema = dlt.current.source_schema()
        resource = dlt.current.resource()
        table = resource.table_name
        if callable(table):
            raise NotModelled("a table name computed per record")
        if resource.schema_contract or dlt.current.source().schema_contract:
            raise NotModelled("a schema contract")
        if resource.nested_hints:
            raise NotModelled("nested_hints on the resource")
        try:
            load_id = dlt.current.load_package_state()["load_id"]
        except CurrentLoadPackageStateNotAvailable as exc:
            # Pages read outside a dlt pipeline's extract (a resource iterated by hand) have no
            # load package to take the load id from: dlt's normalizer gets them, as records.
            raise NotModelled("records read outside a dlt pipeline (no load package)") from exc
        root = schema.naming.normalize_table_identifier(str(table))
        if root in schema.tables:
            settings = settings_for(schema, root)
        else:
            # dlt's extract adds the resource's table with the first item it writes; the
            # settings are those of the schema with it.
            future = schema.clone()
            future.update_table(
                normalize_table_identifiers(resource.compute_table_schema(), future.naming)
            )
            settings = settings_for(future, root)
        self._normalizer = RelationalArrow(schema, root, load_id, settings)
        return self._normalizer

    @staticmethod
    def _columns(normalizer: RelationalArrow, name: str, table: Any) -> dict[str, Any]:
        """dlt's column hints of ``table``'s columns."""
        naming = normalizer.naming
        system = {naming.normalize_identifier(k): v for k, v in SYSTEM_HINTS.items()}
        known = normalizer.known[name]
        columns: dict[str, Any] = {}
        for column in table.column_names:
            hints = system.get(column)
            if hints is None:
                hints = {"data_type": known[column]}
                if column in normalizer.variants:
                    hints["variant"] = True
                    hints["description"] = f"Variant of column {column} generated by dlt"
            columns[column] = {"name": column, **hints}
        return columns

    @staticmethod
    def _hints(normalizer: RelationalArrow, name: str, columns: dict[str, Any]) -> Any:
        import dlt

        # Each table as a table variant of the resource (dlt's way to several tables from one
        # resource), so the resource's own hints stay as they are; extract/dlt_seam.py takes back
        # what a variant adds to the schema once the extract is done.
        parent = normalizer.parents.get(name)
        if parent is None:
            return dlt.mark.make_hints(table_name=name, columns=columns)
        return dlt.mark.make_hints(
            table_name=name, parent_table_name=parent, columns=columns, primary_key=[]
        )

    def _fall_back(self, reason: str, items: list[Any]) -> Any:
        """The rest of this resource's records go to dlt's normalizer; says so once."""
        self.fallback = reason
        if self.on_fallback is not None:
            self.on_fallback(self.resource, reason)
        pending, self._buffer = self._buffer, []
        if pending:
            items = [pending, *items]
        return self._send([item for item in items if item])

    def _send(self, items: list[Any]) -> Any:
        """``items`` on, in order after what the outbox still holds."""
        if not items:
            return None
        if not self._draining and not self._outbox and len(items) == 1:
            return items[0]
        self._outbox.extend(items)
        if self._draining:
            return None  # the generator already out there hands them on
        self._draining = True
        return self._drain()

    def _drain(self) -> Iterator[Any]:
        try:
            while self._outbox:
                yield self._outbox.popleft()
        finally:
            self._draining = False

    def _last_page(self) -> bool:
        """Whether no page follows this one. A paginator that did not count this page is not
        the one reading (a copy is): from then on every page is its own batch."""
        if self.paginator is None:
            return True
        pages = self.paginator.pages
        if pages <= self._pages_seen:
            self.paginator = None
            return True
        self._pages_seen = pages
        return not self.paginator.has_next_page
