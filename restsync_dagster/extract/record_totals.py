"""Page numbers with a total that counts records, not pages.

dlt's ``PageNumberPaginator`` reads ``total_path`` as a number of *pages*. Many APIs page by
number and count *records*: json-graphql-server's ``_allItemsMeta { count }``, GitHub's
``total_count`` beside ``page``/``per_page``. Given to dlt as ``total_path``, such a count makes
dlt ask for hundreds of empty pages (or stop at the first empty one, a request late). A file
writes ``paginator: {type: page_number, page_size: 100, total_records_path: data._allItemsMeta.
count}`` (:mod:`restsync_dagster.connector.extensions`) and gets a
:class:`RecordTotalPageNumberPaginator`: dlt's own paginator, told the last page through its
public ``maximum_value`` (``base_page + ceil(total / page_size)``).

What it adds besides the stop: the records served are counted against the total, so a server
whose pages hold fewer records than ``page_size`` (a cap), a total that is too low, or an empty
page before the total fails the page instead of ending the pages with records left unread.
"""

from __future__ import annotations

import math
from typing import Any

from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Response


class RecordTotalPageNumberPaginator(PageNumberPaginator):
    """dlt's ``PageNumberPaginator`` whose total (``total_records_path``) counts records."""

    def __init__(self, total_records_path: str, page_size: int, **kwargs: Any) -> None:
        kwargs["total_path"] = None  # dlt's total counts pages; this one counts records
        super().__init__(**kwargs)
        self.total_records_path = total_records_path
        self.page_size = page_size
        #: The file's own ``maximum_page``, if any; each page's total caps it further.
        self.file_maximum = self.maximum_value
        #: Records served so far in this request sequence, and the last total read.
        self.served = 0
        self.records_total: int | None = None

    def init_request(self, request: Any) -> None:
        self.maximum_value = self.file_maximum
        self.served = 0
        self.records_total = None
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        from dlt.common import jsonpath

        found = jsonpath.find_values(self.total_records_path, response.json())
        total = found[0] if found else None
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(
                f"the response has no count of records at {self.total_records_path!r} "
                f"(total_records_path); it holds {total!r}"
            )
        count = len(data or [])
        self.served += count
        self.records_total = total
        if self.served > total:
            raise ValueError(
                f"{self.served} records served but total_records={total} (the total is too low)"
            )
        last = self.initial_value + math.ceil(total / self.page_size)
        cap = self.file_maximum
        self.maximum_value = last if cap is None else min(last, cap)
        super().update_state(response, data)
        if not self.has_next_page and self.served < total and cap is None:
            said = "the page is empty" if not count else f"page {self.current_value - 1} ends them"
            raise ValueError(
                f"the pages end with {self.served} of total_records={total} records ({said}): "
                f"do the API's pages hold page_size={self.page_size} records?"
            )

    def __str__(self) -> str:
        return f"{super().__str__()} (records total at {self.total_records_path})"
