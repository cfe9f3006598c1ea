"""The total of an offset paginator read from a header, and the page checks that hold it to the
records served."""

from __future__ import annotations

import json

import pytest
from requests import Request, Response

from restsync_dagster.extract.header_totals import (
    HeaderTotalOffsetPaginator,
    paginator_from_config,
    total_from_header,
)
from restsync_dagster.extract.pages import ContractCheckingPaginator, PageContract
from restsync_dagster.failures.errors import ResponseContractError


@pytest.mark.parametrize(
    ("name", "value", "total"),
    [
        ("X-Total-Count", "500", 500),
        ("Content-Range", "items 0-99/500", 500),
        ("Content-Range", "0-99/500", 500),
        ("Content-Range", "items */0", 0),
        ("Content-Range", "items 0-99/*", None),
        ("X-Total-Count", None, None),
    ],
)
def test_a_total_is_read_from_a_count_or_a_content_range(name, value, total):
    assert total_from_header(name, value) == total


@pytest.mark.parametrize(("name", "value"), [("X-Total-Count", "many"), ("Content-Range", "a-b")])
def test_a_header_that_says_no_count_is_an_error_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        total_from_header(name, value)


def serve(paginator, records: list[dict[str, int]], headers: dict[str, str], url: str) -> None:
    paginator.update_state(page(records, headers, url), records)


def page(records: list[dict[str, int]], headers: dict[str, str], url: str) -> Response:
    response = Response()
    response.status_code = 200
    response._content = json.dumps(records).encode()
    response.headers.update({"Content-Type": "application/json", **headers})
    response.url = url
    return response


def checked(config: dict) -> ContractCheckingPaginator:
    inner = paginator_from_config(config)
    assert isinstance(inner, HeaderTotalOffsetPaginator)
    paginator = ContractCheckingPaginator(inner, PageContract("items", primary_key=("id",)))
    paginator.init_request(Request("GET", "https://api.example.com/items"))
    return paginator


def test_the_header_total_stops_paging_at_the_last_offset():
    paginator = checked({"type": "offset", "limit": 2, "total_header": "X-Total-Count"})
    serve(paginator, [{"id": 1}, {"id": 2}], {"X-Total-Count": "3"}, "https://a/1")
    assert paginator.has_next_page
    serve(paginator, [{"id": 3}], {"X-Total-Count": "3"}, "https://a/2")
    assert not paginator.has_next_page


def test_a_header_total_too_low_fails_the_page_naming_resource_and_offset():
    paginator = checked({"type": "offset", "limit": 2, "total_header": "Content-Range"})
    with pytest.raises(ResponseContractError) as info:
        serve(
            paginator,
            [{"id": 1}, {"id": 2}],
            {"Content-Range": "items 0-1/1"},
            "https://a/?api_key=k",
        )
    assert info.value.resource == "items" and info.value.offset == 0
    assert "total is too low" in str(info.value) and "api_key=k" not in str(info.value)


def test_a_missing_total_header_fails_the_page_with_the_headers_name():
    paginator = checked({"type": "offset", "limit": 2, "total_header": "X-Total-Count"})
    with pytest.raises(ResponseContractError, match="no 'X-Total-Count' header"):
        serve(paginator, [{"id": 1}, {"id": 2}], {}, "https://a/1")
