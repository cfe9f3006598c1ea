"""Offset pages whose total is told by a response header, not the body.

Many APIs answer a bare list and count the records in a header: ``X-Total-Count: 500`` or
``Content-Range: items 0-99/500``. dlt's ``OffsetPaginator`` reads the total from the body only
(``total_path``), so a file writes ``paginator: {type: offset, limit: 100, total_header:
X-Total-Count}`` (:mod:`restsync_dagster.connector.extensions`) and gets a
:class:`HeaderTotalOffsetPaginator`: dlt's own offset paginator, told each page's total through
its public ``maximum_value``. The page checks read the same total
(:func:`restsync_dagster.extract.pages.declared_total`), so the prefetcher fetches the further
offsets ahead and a total that contradicts the records still fails the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dlt.sources.helpers.rest_client.paginators import BasePaginator, OffsetPaginator
from requests import Response

from restsync_dagster.connector.extensions import paginator_extensions

_CONTENT_RANGE = re.compile(r"^\s*(?:[A-Za-z]+\s+)?(?:\d+-\d+|\*)/(\d+|\*)\s*$")


def total_from_header(name: str, value: str | None) -> int | None:
    """The record count a header tells: a number (``X-Total-Count: 500``), or the length of a
    ``Content-Range`` (``items 0-99/500``; ``*`` for an unknown length gives None).

    Raises:
        ValueError: the header is there but says no count.
    """
    if value is None:
        return None
    if name.lower() == "content-range" or "/" in value:
        match = _CONTENT_RANGE.match(value)
        if match is None:
            raise ValueError(f"{name}: {value!r} is not a range such as 'items 0-99/500'")
        return None if match.group(1) == "*" else int(match.group(1))
    text = value.strip()
    if not text.isdigit():
        raise ValueError(f"{name}: {value!r} is not a count of records")
    return int(text)


class HeaderTotalOffsetPaginator(OffsetPaginator):
    """dlt's ``OffsetPaginator`` reading the total from the ``total_header`` response header."""

    def __init__(self, total_header: str, limit: int, **kwargs: Any) -> None:
        kwargs["total_path"] = None  # the body holds no total
        super().__init__(limit=limit, **kwargs)
        self.total_header = total_header
        #: The file's own ``maximum_offset``, if any; each page's total caps it further.
        self.file_maximum = self.maximum_value

    def header_total(self, response: Response) -> int | None:
        """The total the page's header tells (None when it is absent or unknown).

        Raises:
            ValueError: the header says no count.
        """
        return total_from_header(self.total_header, response.headers.get(self.total_header))

    def init_request(self, request: Any) -> None:
        self.maximum_value = self.file_maximum
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        total = self.header_total(response)
        if total is None:
            raise ValueError(
                f"the response has no {self.total_header!r} header with the total (total_header)"
            )
        cap = self.file_maximum
        self.maximum_value = total if cap is None else min(total, cap)
        super().update_state(response, data)

    def __str__(self) -> str:
        return f"{super().__str__()} (total from header {self.total_header})"


def paginator_from_config(config: Any) -> BasePaginator | None:
    """The paginator a file's ``paginator:`` value names (None for ``auto`` or nothing), restsync's
    keys included."""
    from dlt.sources.rest_api.config_setup import create_paginator

    from restsync_dagster.extract.record_totals import RecordTotalPageNumberPaginator

    extra = paginator_extensions(config)
    if "total_header" in extra and isinstance(config, Mapping):
        arguments = {k: v for k, v in config.items() if k not in extra and k != "type"}
        return HeaderTotalOffsetPaginator(str(extra["total_header"]), **arguments)
    if "total_records_path" in extra and isinstance(config, Mapping):
        arguments = {k: v for k, v in config.items() if k not in extra and k != "type"}
        return RecordTotalPageNumberPaginator(
            str(extra["total_records_path"]), int(extra["page_size"]), **arguments
        )
    return create_paginator(config)
