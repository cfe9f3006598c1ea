"""Why a resource's pages ended, in words, and whether a single page looks like a full one.

``restsync preview`` prints the reason per resource; a sync that read exactly one full page and
found no next one warns (an API that sends a next link only when asked for a page, a cursor path
that finds nothing): the commonest way a sync "succeeds" with a fraction of the data.
"""

from __future__ import annotations

from typing import Any

from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    OffsetPaginator,
    RangePaginator,
)

#: Query parameters that usually carry a page size.
_PAGE_SIZE_PARAMS = ("limit", "per_page", "page_size", "pagesize", "_limit", "size", "count",
                     "max_results", "maxresults", "top", "$top", "first")  # fmt: skip


def page_size(paginator: BasePaginator, params: dict[str, Any]) -> int | None:
    """How many records a full page holds, when the paginator or the parameters say."""
    limit = getattr(paginator, "limit", None)
    if isinstance(limit, int) and not isinstance(limit, bool):
        return limit
    for name, value in params.items():
        if str(name).lower() in _PAGE_SIZE_PARAMS:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def stop_reason(paginator: BasePaginator, pages: int, total: int | None) -> str:
    """Why ``paginator`` found no next page, in words ("offset reached total 500")."""
    from dlt.sources.helpers.rest_client.paginators import (
        HeaderLinkPaginator,
        JSONLinkPaginator,
        JSONResponseCursorPaginator,
        SinglePagePaginator,
    )

    after = f"after page {pages}"
    if isinstance(paginator, RangePaginator):
        return _range_reason(paginator, total)
    if isinstance(paginator, HeaderLinkPaginator):
        return f"no Link rel={paginator.links_next_key!r} {after}"
    if isinstance(paginator, JSONLinkPaginator):
        return f"no next link at {str(paginator.next_url_path)!r} {after}"
    if isinstance(paginator, JSONResponseCursorPaginator):
        return f"no cursor at {str(paginator.cursor_path)!r} {after}"
    if isinstance(paginator, SinglePagePaginator):
        return "a single page (no paginator reads more)"
    return f"{type(paginator).__name__} found no next page {after}"


def _range_reason(paginator: RangePaginator, total: int | None) -> str:
    from restsync_dagster.extract.record_totals import RecordTotalPageNumberPaginator

    what = "offset" if isinstance(paginator, OffsetPaginator) else "page"
    value = paginator.current_value
    if (
        isinstance(paginator, RecordTotalPageNumberPaginator)
        and paginator.records_total is not None
        and paginator.served >= paginator.records_total
    ):
        return f"records reached total {paginator.records_total}"
    if paginator.maximum_value is not None and value >= paginator.maximum_value:
        return f"{what} reached its maximum {paginator.maximum_value}"
    if total is not None:
        return f"{what} reached total {total}"
    if paginator.has_more_path is not None:
        return f"{str(paginator.has_more_path)!r} said no more"
    if paginator.stop_after_empty_page:
        return "empty page"
    return f"{what} {value}: no next page"
