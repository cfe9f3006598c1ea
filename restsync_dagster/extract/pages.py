"""Every page an API answers is checked against what the connector file promises.

:class:`ContractCheckingPaginator` wraps the paginator dlt builds from the file and, before dlt
moves on, refuses pages that would silently lose or duplicate data: a missing or non-list data
selector, records without their primary key, a primary key twice in one page, a ``total`` that
contradicts the records served (in either direction), the same page served again (a server
that would otherwise be paged forever), and a CSV header that changes between pages. Each refusal is a :class:`ResponseContractError` naming
the resource, the page's offset and the redacted URL. It can also stop after N pages (previews).

Each resource gets one, always: where the file declares no paginator, it detects one on the first
page as dlt's client would (``PaginatorFactory``). So the paginator is also where a resource's
identity joins its requests (a :class:`~restsync_dagster.extract.counters.ResourceTag` hook), and
where offset pages are handed to the :class:`~restsync_dagster.extract.prefetch.Prefetcher`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    OffsetPaginator,
    RangePaginator,
)
from requests import Request, Response

from restsync_dagster.connector import ResolvedResource
from restsync_dagster.extract.body_keys import selector_miss
from restsync_dagster.extract.counters import tag_request
from restsync_dagster.extract.header_totals import HeaderTotalOffsetPaginator, paginator_from_config
from restsync_dagster.extract.prefetch import Prefetcher
from restsync_dagster.extract.stops import page_size, stop_reason
from restsync_dagster.failures.errors import ResponseContractError
from restsync_dagster.failures.redaction import redact_url


@dataclass(frozen=True)
class PageContract:
    """What every page of one resource must satisfy."""

    resource: str
    data_selector: str | None = None
    primary_key: tuple[str, ...] = ()
    max_pages: int | None = None
    #: Told about every accepted page: ``(resource, rows)`` (progress reporting).
    on_page: Callable[[str, int], None] | None = None
    #: Told when the pages end: ``(resource, why, suspicious)``; ``suspicious`` when a single,
    #: full page came and the paginator found no next one (a next link the API sends only when
    #: asked for a page, a wrong cursor path...).
    on_stop: Callable[[str, str, bool], None] | None = None


class ContractCheckingPaginator(BasePaginator):
    """Delegates to a dlt paginator and checks each page first (see the module's docstring)."""

    def __init__(
        self,
        inner: BasePaginator | None,
        contract: PageContract,
        prefetcher: Prefetcher | None = None,
    ) -> None:
        super().__init__()
        #: The paginator the file declares; None until detected when it declares none.
        self.inner = inner
        self.contract = contract
        self.prefetcher = prefetcher
        self.pages = 0
        #: The previous page's body (compared with the next one's: a repeated page is a loop).
        self._last_body: bytes | None = None
        self._total: int | None = None
        self._params: dict[str, Any] = {}
        #: Offsets below this were handed to the prefetcher in this request sequence.
        self._handed_until = 0
        #: The first CSV page's header row; later pages must have the same.
        self._csv_header: tuple[str, ...] = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> ContractCheckingPaginator:
        # dlt copies a paginator for every request sequence (each parent row of a child
        # resource): copy the inner paginator's state, share the immutable contract (and its
        # progress callback, which holds the run's logger and cannot be copied).
        clone = copy.copy(self)
        clone.inner = copy.deepcopy(self.inner, memo)
        return clone

    def init_request(self, request: Request) -> None:
        tag_request(request, self.contract.resource)
        if self.inner is not None:
            self.inner.init_request(request)
        self.pages = 0
        self._last_body = None
        self._total = None
        self._handed_until = 0
        self._params = dict(request.params or {})
        self._csv_header = ()
        self._has_next_page = True if self.inner is None else self.inner.has_next_page

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        contract = self.contract
        offset = getattr(self.inner, "current_value", None)

        def refuse(problem: str) -> ResponseContractError:
            url = redact_url(response.url or "")
            return ResponseContractError(contract.resource, url, problem, offset)

        if contract.data_selector and (data is None or len(data) <= 1):
            _check_selector(response, contract.data_selector, refuse)
        header = getattr(response, "csv_header", ())
        if header:
            if self._csv_header and header != self._csv_header:
                raise refuse(
                    f"the CSV header changed between pages: {', '.join(self._csv_header)} became "
                    f"{', '.join(header)}"
                )
            self._csv_header = header
        if data:
            # Compared whole, not by a hashlib digest: hashlib lets go of the interpreter lock for
            # a page-sized body, and under a profiler getting it back from the prefetching threads
            # took ~2 ms a page. bytes equality compares lengths first and keeps the lock.
            body = response.content
            if body == self._last_body:
                raise refuse("the API answered the same page again; stopping instead of looping")
            self._last_body = body
            if contract.primary_key:
                _check_keys(data, contract.primary_key, refuse)
        inner = self.inner if self.inner is not None else self._detect(response)
        total = declared_total(inner, response)
        self._total = total
        try:
            inner.update_state(response, data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # dlt's paginators raise these for a missing or malformed total, cursor or link.
            raise refuse(f"the paginator cannot read the page: {_first_line(exc)}") from None
        if total is not None and isinstance(offset, int):
            served = len(data or [])
            if offset + served > total:
                raise refuse(
                    f"the page holds {served} records but total={total} leaves {max(total - offset, 0)}"
                    " (total is too low: records past it would be skipped)"
                )
            if served == 0 and offset < total:
                raise refuse(f"the page is empty but total={total} (total is too high)")
        self.pages += 1
        if contract.on_page is not None:
            contract.on_page(contract.resource, len(data or []))
        limited = contract.max_pages is not None and self.pages >= contract.max_pages
        self._has_next_page = inner.has_next_page and not limited
        if not self._has_next_page and contract.on_stop is not None:
            why = f"stopped after {self.pages} page(s), as asked" if limited else None
            served = len(data or [])
            size = page_size(inner, self._params)
            suspicious = why is None and self.pages == 1 and served > 0 and served == size
            contract.on_stop(
                contract.resource, why or stop_reason(inner, self.pages, self._total), suspicious
            )

    def update_request(self, request: Request) -> None:
        if self.inner is None:
            return
        self.inner.update_request(request)
        if self._has_next_page and self.prefetcher is not None:
            self._prefetch(request)

    def _detect(self, response: Response) -> BasePaginator:
        """The paginator dlt's client would detect for this first page."""
        from dlt.sources.helpers.rest_client.detector import PaginatorFactory
        from dlt.sources.helpers.rest_client.exceptions import PaginatorNotFound

        detected, _score = PaginatorFactory().create_paginator(response)
        if detected is None:
            raise PaginatorNotFound(
                f"No suitable `paginator` found for the response at `{redact_url(response.url)}`"
            )
        self.inner = detected
        return detected

    def _prefetch(self, request: Request) -> None:
        """Hand the next offsets to the prefetcher, once the total says which there are."""
        inner, prefetcher = self.inner, self.prefetcher
        if (
            prefetcher is None
            or self._total is None
            or self.contract.max_pages is not None  # a preview reads a few pages in order
            or not isinstance(inner, OffsetPaginator)
            or not inner.param_name
            or inner.param_body_path is not None
            or inner.has_more_path is not None
            or str(request.method).upper() != "GET"
            or request.json is not None
            or request.data
        ):
            return
        end = self._total if inner.maximum_value is None else min(self._total, inner.maximum_value)
        start = int(inner.current_value)
        stop = min(end, start + inner.limit * 2 * prefetcher.workers)
        # Only offsets not handed over yet: preparing a request costs as much as parsing a page.
        ahead = range(max(start, self._handed_until), stop, inner.limit)
        if ahead:
            self._handed_until = ahead[-1] + inner.limit
            prefetcher.ahead(request, ({inner.param_name: offset} for offset in ahead))

    def __str__(self) -> str:
        return f"{self.inner or 'detected paginator'} (checked)"


def _check_selector(response: Response, selector: str, refuse: Any) -> None:
    from dlt.common import jsonpath

    try:
        body = response.json()
    except ValueError:
        raise refuse("the response body is not JSON") from None
    found = jsonpath.find_values(selector, body)
    if not found:
        raise refuse(selector_miss(selector, body))
    if len(found) == 1 and not isinstance(found[0], list):
        raise refuse(
            f"{selector!r} (data_selector) is a {type(found[0]).__name__}, not a list of records"
        )


def _check_keys(data: Sequence[Any], key: tuple[str, ...], refuse: Any) -> None:
    if not isinstance(data[0], dict):
        return  # scalars: dlt wraps them; there is no key to check
    # Fast path over the whole page in C (set, membership); the detailed message only on failure.
    if len(key) == 1:
        values = [record.get(key[0]) if isinstance(record, dict) else None for record in data]
    else:
        values = [
            tuple(record.get(part) for part in key) if isinstance(record, dict) else None
            for record in data
        ]
    try:
        clean = None not in values and len(set(values)) == len(values)
    except TypeError:  # an unhashable key part (a list, an object)
        clean = False
    if not clean:
        _explain_keys(data, key, refuse)


def _explain_keys(data: Sequence[Any], key: tuple[str, ...], refuse: Any) -> None:
    seen: dict[tuple[Any, ...], int] = {}
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            return
        value = tuple(record.get(part) for part in key)
        if any(part is None for part in value):
            raise refuse(f"record {index} of the page has no primary key {', '.join(key)!r}")
        if not all(isinstance(part, str | int | float | bool) for part in value):
            raise refuse(f"record {index} of the page has a primary key that is not a plain value")
        if value in seen:
            shown = value[0] if len(value) == 1 else value
            raise refuse(
                f"records {seen[value]} and {index} of the page share the primary key {shown!r}"
            )
        seen[value] = index


def declared_total(paginator: BasePaginator, response: Response) -> int | None:
    """The ``total`` an offset/page paginator reads (from the body or a header), if it reads one."""
    if isinstance(paginator, HeaderTotalOffsetPaginator):
        try:
            return paginator.header_total(response)
        except ValueError:
            return None  # the paginator itself refuses the page, with the header's words
    if not isinstance(paginator, RangePaginator) or paginator.total_path is None:
        return None
    if getattr(paginator, "param_name", None) != "offset" and paginator.value_step == 1:
        return None  # page numbers count pages, not records
    try:
        from dlt.common import jsonpath

        values = jsonpath.find_values(paginator.total_path, response.json())
        return int(values[0]) if values and values[0] is not None else None
    except (ValueError, TypeError):
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def resource_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The resource dicts of a ``source:`` config (string shorthands expanded in place)."""
    resources = config.get("resources") or []
    for index, entry in enumerate(resources):
        if isinstance(entry, str):
            resources[index] = {"name": entry}
    return [e for e in resources if isinstance(e, dict)]


def install_page_checks(
    config: dict[str, Any],
    resources: list[ResolvedResource],
    max_pages: int | None = None,
    on_page: Callable[[str, int], None] | None = None,
    prefetcher: Prefetcher | None = None,
    on_stop: Callable[[str, str, bool], None] | None = None,
) -> dict[str, ContractCheckingPaginator]:
    """Give every resource its page checks: a :class:`ContractCheckingPaginator` around the
    paginator it declares (or one detected on its first page, as dlt would). Returns them by
    resource."""
    from dlt.common import jsonpath

    client_paginator = (config.get("client") or {}).get("paginator")
    by_name = {r.name: r for r in resources}
    installed: dict[str, ContractCheckingPaginator] = {}
    for entry in resource_entries(config):
        resource = by_name[entry["name"]]
        # None (and "auto") when the file declares none: the checks detect one as dlt would.
        inner = paginator_from_config(resource.endpoint.get("paginator", client_paginator))
        contract = PageContract(
            resource=resource.name,
            data_selector=resource.data_selector,
            primary_key=resource.primary_key,
            max_pages=max_pages,
            on_page=on_page,
            on_stop=on_stop,
        )
        endpoint = dict(resource.endpoint)
        endpoint["paginator"] = installed[resource.name] = ContractCheckingPaginator(
            inner, contract, prefetcher
        )
        if resource.data_selector:
            # dlt parses a selector given as text again for every page (~0.3 ms each).
            endpoint["data_selector"] = jsonpath.compile_path(resource.data_selector)
        entry["endpoint"] = endpoint
    return installed
