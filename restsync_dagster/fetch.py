"""Fetching pages fast: concurrently when the offsets are known, as Arrow batches when flat.

dlt's REST client reads one page after the other, and hands every record to dlt's Python
normalizer. Two things move that ceiling, both inside the client dlt builds per resource (so
auth, incremental parameters, hooks and the page checks all stay dlt's and restsync's own):

* **Concurrent offsets.** Once the first page of an offset-paginated endpoint has told the
  ``total``, every other offset is known: up to ``rate_limit.max_concurrency`` of them are
  requested at once (the session also enforces the limit, and ``requests_per_second``), and the
  pages are handed on in offset order, each through the same checks as a sequential read.
* **Arrow batches.** Records of a top-level resource are gathered into Arrow tables of a few
  thousand rows, so dlt writes them as parquet without normalizing each record in Python. Types
  follow dlt's own inference (ISO-8601 strings become timestamps, all-null fields make no
  column). A batch with nested values (dicts, lists), or values pyarrow cannot type, goes to
  dlt's normalizer as records instead, so nested data still lands in dlt's child tables.
"""

from __future__ import annotations

import contextlib
import copy
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dlt.common import jsonpath
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.client import PageData
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

from restsync_dagster.pages import ContractCheckingPaginator, declared_total

ARROW_BATCH_ROWS = 5_000
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"


@dataclass(frozen=True)
class FetchPlan:
    """How one connector's resources are fetched."""

    max_concurrency: int = 1
    #: Resources whose flat records may travel as Arrow batches.
    arrow_resources: frozenset[str] = frozenset()
    #: Request path -> resource name.
    route: Callable[[str], str | None] = field(default=lambda _path: None)
    primary_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Per resource, fields left as text in Arrow (incremental cursors: dlt compares them raw).
    keep_text: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Resource name -> the table it loads (``table_name:``), whose stored types batches follow.
    table_names: dict[str, str] = field(default_factory=dict)
    batch_rows: int = ARROW_BATCH_ROWS


def client_class(plan: FetchPlan) -> type[RESTClient]:
    """A ``RESTClient`` subclass that fetches and batches according to ``plan``."""

    class FastRESTClient(RESTClient):
        def paginate(  # type: ignore[override]
            self,
            path: str = "",
            method: Any = "GET",
            params: dict[str, Any] | None = None,
            json: dict[str, Any] | None = None,
            auth: Any = None,
            paginator: Any = None,
            data_selector: Any = None,
            hooks: Any = None,
            headers: dict[str, Any] | None = None,
            *,
            data: Any = None,
            **kwargs: Any,
        ) -> Iterator[Any]:
            if isinstance(data_selector, str):
                # dlt parses the JSONPath of the selector again for every page (~0.3 ms each).
                data_selector = jsonpath.compile_path(data_selector)
            args = dict(
                path=path, method=method, params=params, json=json, auth=auth,
                paginator=paginator, data_selector=data_selector, hooks=hooks,
                headers=headers, data=data, **kwargs,
            )  # fmt: skip
            if _concurrent(plan, method, paginator, data_selector, json, data):
                pages: Iterator[Any] = _concurrent_pages(self, plan.max_concurrency, **args)
            else:
                pages = super().paginate(**args)
            # The page checks know their resource; the path alone is ambiguous when two
            # resources read one endpoint (with different params).
            contract = getattr(paginator, "contract", None)
            resource = getattr(contract, "resource", None) or plan.route(path)
            if resource is not None and resource in plan.arrow_resources:
                yield from arrow_batches(
                    pages,
                    plan.primary_keys.get(resource, ()),
                    plan.batch_rows,
                    plan.keep_text.get(resource, frozenset()),
                    known_columns(plan.table_names.get(resource, resource)),
                )
            else:
                yield from pages

    return FastRESTClient


def _concurrent(
    plan: FetchPlan, method: Any, paginator: Any, selector: Any, json: Any, data: Any
) -> bool:
    if plan.max_concurrency <= 1 or str(method).upper() != "GET" or not selector:
        return False
    if json is not None or data is not None or not isinstance(paginator, ContractCheckingPaginator):
        return False
    if paginator.contract.max_pages is not None:
        return False  # a preview reads a few pages, one after the other
    inner = paginator.inner
    return (
        isinstance(inner, OffsetPaginator)
        and bool(inner.param_name)
        and inner.param_body_path is None
        and inner.total_path is not None
        and inner.has_more_path is None
    )


def _concurrent_pages(
    client: RESTClient,
    workers: int,
    *,
    path: str,
    method: Any,
    params: dict[str, Any] | None,
    json: Any,
    auth: Any,
    paginator: ContractCheckingPaginator,
    data_selector: Any,
    hooks: Any,
    headers: dict[str, Any] | None,
    data: Any,
    **kwargs: Any,
) -> Iterator[PageData[Any]]:
    """The first page, then every remaining offset, ``max_concurrency`` at a time, in order."""
    hooks = dict(hooks or {})
    if "response" not in hooks:
        hooks["response"] = [client._create_response_handler()]
    request = client._create_request(
        path_or_url=path, method=method, headers=headers, params=params, json=json, data=data,
        auth=auth, hooks=hooks,
    )  # fmt: skip
    paginator.init_request(request)
    response = client._send_request(request, **kwargs)
    page = client.extract_response(response, data_selector)
    total = declared_total(paginator.inner, response)
    paginator.update_state(response, page)
    paginator.update_request(request)
    yield PageData(page, request=request, response=response, paginator=paginator, auth=auth)
    if not paginator.has_next_page or total is None:
        if paginator.has_next_page:  # no total after all: read on one page at a time
            yield from _sequential_rest(client, request, paginator, data_selector, auth, **kwargs)
        return
    inner: OffsetPaginator = paginator.inner  # type: ignore[assignment]
    end = total if inner.maximum_value is None else min(total, inner.maximum_value)
    offsets = iter(range(int(inner.current_value), end, inner.limit))
    window: deque[tuple[Future[Any], Any]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restsync-fetch") as pool:

        def submit() -> bool:
            offset = next(offsets, None)
            if offset is None:
                return False
            page_request = copy.copy(request)
            page_request.params = {**(request.params or {}), inner.param_name: offset}
            window.append((pool.submit(client._send_request, page_request, **kwargs), page_request))
            return True

        try:
            while len(window) < 2 * workers and submit():
                pass
            while window:
                future, page_request = window.popleft()
                response = future.result()
                page = client.extract_response(response, data_selector)
                paginator.update_state(response, page)
                yield PageData(
                    page, request=page_request, response=response, paginator=paginator, auth=auth
                )
                if not paginator.has_next_page:
                    return
                submit()
        finally:
            for pending, _ in window:
                pending.cancel()
    if paginator.has_next_page:  # a later page moved the total up: read on, one at a time
        paginator.update_request(request)
        yield from _sequential_rest(client, request, paginator, data_selector, auth, **kwargs)


def _sequential_rest(
    client: RESTClient, request: Any, paginator: Any, data_selector: Any, auth: Any, **kwargs: Any
) -> Iterator[PageData[Any]]:
    while paginator.has_next_page:
        response = client._send_request(request, **kwargs)
        page = client.extract_response(response, data_selector)
        paginator.update_state(response, page)
        paginator.update_request(request)
        yield PageData(page, request=request, response=response, paginator=paginator, auth=auth)


@dataclass
class KnownColumns:
    """The column types dlt already holds for a table (from earlier loads, or earlier batches
    of this one), keyed by the names the API sends."""

    types: dict[str, str] = field(default_factory=dict)
    normalize: Callable[[str], str] = field(default=lambda name: name)

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
    return KnownColumns(types, naming.normalize_identifier)


def arrow_batches(
    pages: Iterator[Sequence[Any]],
    primary_key: tuple[str, ...],
    batch_rows: int = ARROW_BATCH_ROWS,
    keep_text: frozenset[str] = frozenset(),
    known: KnownColumns | None = None,
) -> Iterator[Any]:
    """Regroup pages of records into Arrow tables of about ``batch_rows`` rows.

    Once a batch cannot be typed as flat columns (nested values, mixed types) or its types
    differ from those dlt already holds for the table (``known``), the rest of the sequence
    goes on as records, so dlt's normalizer handles it exactly as it would without Arrow
    (a changed type becomes a variant column), and a table never alternates between the two.
    """
    known = known if known is not None else KnownColumns()
    buffer: list[dict[str, Any]] = []
    as_records = False
    for page in pages:
        if as_records:
            yield page
            continue
        if page and not isinstance(page[0], dict):
            as_records = True
            yield from _flush(buffer)
            yield page
            continue
        buffer.extend(page)
        if len(buffer) >= batch_rows:
            table = records_to_arrow(buffer, primary_key, keep_text, known)
            if table is None:
                as_records = True
                yield from _flush(buffer)
            else:
                known.learn(table)
                yield table
                buffer = []
    if buffer:
        table = None if as_records else records_to_arrow(buffer, primary_key, keep_text, known)
        yield table if table is not None else buffer


def _flush(buffer: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    if buffer:
        yield list(buffer)
        buffer.clear()


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
    dlt's normalizer would coerce them); any other difference returns None.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from dlt.common.libs.pyarrow import get_column_type_from_py_arrow

    known = known if known is not None else KnownColumns()
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
        elif pa.types.is_string(kind) and column.null_count < len(column) and expected != "text":
            valid = pc.drop_null(column)
            if pc.all(pc.match_substring_regex(valid, _ISO_TIMESTAMP)).as_py():
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    column = column.cast(pa.timestamp("us", tz="UTC"))
        if expected is not None:
            actual = get_column_type_from_py_arrow(column.type).get("data_type")
            if expected == "double" and actual == "bigint":
                column = column.cast(pa.float64())
            elif actual != expected:
                return None  # dlt's normalizer decides: coercion or a variant column
        fields.append(pa.field(name, column.type, nullable=name not in primary_key))
        columns.append(column)
    try:
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))
    except (pa.ArrowInvalid, ValueError):
        return None
