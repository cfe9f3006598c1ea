"""Whether a resource read every record the API told of: the completeness checks of its pages.

dlt's paginators step as configured: an offset by ``limit``, a page number by one, a link or a
cursor where the file says it is. An API that serves fewer records a page than asked (a capped
page size), or tells of more pages in a place the paginator does not read, is then paged past in
silence and the sync says "ok". :class:`SequenceCompleteness` runs inside the page checks
(:class:`~restsync_dagster.extract.pages.ContractCheckingPaginator`), around the wrapped dlt
paginator's own ``update_state``, and compares what the API told with what was read:

* ``page_size``: an offset paginator given fewer records than it asked for while more remain (the
  body echoes a smaller ``limit``/``per_page``/``page_size``..., a total or ``has_more`` says so,
  or the next page holds records): dlt's paginator is told to step by the records served (its
  public ``limit`` and ``value_step``), so nothing is skipped, and a warning names the limit to
  set, once per resource;
* ``totals``: a page shorter than the page size the API serves, before the total is reached,
  fails naming the page (as do the checks of a total against the records in pages.py);
* ``next_links``: when the paginator stops, a next link or cursor it did not follow (in the body,
  or a ``Link: rel=next`` header) fails, naming the paginator to set; a ``json_link`` path that
  holds something other than a link fails before it is requested;
* ``empty_first_page``: an empty first page of a full load under an offset or page-number
  paginator is asked once more without the paginator's parameters; records there mean the API
  does not read them (a link-paged API answering ``page=0`` with nothing).

Each check can be turned off per endpoint (``completeness: {totals: false}``) for an API that
does not tell the truth about itself. What ours adds to dlt's paginators is the comparison; the
stepping stays theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    HeaderLinkPaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    RangePaginator,
)
from requests import Response

from restsync_dagster.connector.extensions import COMPLETENESS_CHECKS
from restsync_dagster.failures.errors import IncompleteReadError, PaginatorMistakeError
from restsync_dagster.failures.redaction import redact_url

#: Body keys that echo a page size (compared without case, ``_`` and ``-``). Not the request
#: parameters of stops.py: in a body, ``count`` is usually a total, not a page size.
#: In order of preference: ``size`` is last, as some APIs (Confluence) use it for the records of
#: this page beside a ``limit``.
_PAGE_SIZE_KEYS = (
    "limit",
    "perpage",
    "pagesize",
    "maxresults",
    "pagelimit",
    "itemsperpage",
    "size",
)
#: Body objects that may hold the echoed page size or a next link.
_PAGING_OBJECTS = frozenset({"meta", "pagination", "paging", "page", "links", "cursor", "_links"})
#: Seconds the empty-first-page probe waits for its answer.
PROBE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Checks:
    """Which completeness checks run for one resource (``completeness:`` in its endpoint)."""

    totals: bool = True
    page_size: bool = True
    next_links: bool = True
    empty_first_page: bool = True

    @classmethod
    def from_config(cls, value: Any) -> Checks:
        """The checks a ``completeness:`` value leaves on (validated by the connector rules)."""
        if value is False:
            return cls(False, False, False, False)
        if isinstance(value, Mapping):
            return cls(**{k: bool(v) for k, v in value.items() if k in COMPLETENESS_CHECKS})
        return cls()


def paginator_type(paginator: BasePaginator) -> str:
    """The ``type:`` a file writes for ``paginator`` (``offset``, ``json_link``...)."""
    from dlt.sources.rest_api.config_setup import PAGINATOR_MAP

    known = [(name, cls) for name, cls in PAGINATOR_MAP.items() if isinstance(cls, type)]
    exact = [name for name, cls in known if type(paginator) is cls]
    loose = [name for name, cls in known if isinstance(paginator, cls)]
    return (exact or loose or [type(paginator).__name__])[0]


def is_link(value: Any) -> bool:
    """Whether a value can be requested as the next page's URL (absolute or relative)."""
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.strip()
    return text.startswith(("http://", "https://", "/", "?", "./", "../")) or "/" in text


def next_references(body: Any) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every non-empty next link or cursor a body holds: keys naming
    ``next`` at the top level and in paging objects (``links.next``, ``meta.next_cursor``),
    links first. dlt's detector (``find_next_page_path``) stops at the first such key, even a
    cursor beside a link; the checks need them all."""
    if not isinstance(body, Mapping):
        return
    found: list[tuple[str, Any]] = []
    for key, value in body.items():
        name = str(key)
        if isinstance(value, Mapping) and name.lower().lstrip("_@") in _PAGING_OBJECTS | {"next"}:
            for inner_key, inner_value in value.items():
                inner_name = str(inner_key)
                path = f"{name}.{inner_name}"
                if "next" in inner_name.lower() or (
                    "next" in name.lower() and inner_name.lower() in ("href", "url")
                ):
                    found.append((path, inner_value))
        elif "next" in name.lower():
            found.append((name, value))
    for index, (path, value) in enumerate(found):
        if isinstance(value, Mapping):  # {"next": {"href": "..."}}
            link = next(
                ((k, v) for k, v in value.items() if str(k).lower() in ("href", "url")), None
            )
            found[index] = (f"{path}.{link[0]}", link[1]) if link else (path, None)
    usable = [(p, v) for p, v in found if _present(v)]
    yield from sorted(usable, key=lambda item: not is_link(item[1]))


def _present(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float)


def suggestion(path: str, value: Any) -> str:
    """The paginator that reads ``value`` at ``path``."""
    if is_link(value):
        return f"{{type: json_link, next_url_path: {path}}}"
    return (
        f"{{type: cursor, cursor_path: {path}, cursor_param: <the parameter the API reads it "
        "from>}"
    )


def echoed_page_size(body: Any, limit_param: str | None) -> tuple[str, int] | None:
    """The page size a body echoes (``"limit": 100``, ``meta.per_page``), with its key."""
    if not isinstance(body, Mapping):
        return None
    preferred = [_normal(limit_param)] if limit_param else []
    preferred += [name for name in _PAGE_SIZE_KEYS if name not in preferred]
    places: list[tuple[str, Mapping[str, Any]]] = [("", body)]
    places += [
        (f"{key}.", value)
        for key, value in body.items()
        if isinstance(value, Mapping) and str(key).lower().lstrip("_@") in _PAGING_OBJECTS
    ]
    for name in preferred:
        for prefix, block in places:
            for key, value in block.items():
                count = _count(value)
                if _normal(str(key)) == name and count is not None:
                    return f"{prefix}{key}", count
    return None


def _normal(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").lstrip("$@")


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


@dataclass
class _ShortPage:
    """A short page of a sequence without a total: whether it was the last is told by the next."""

    page: int
    served: int
    asked: int


@dataclass
class _Gap:
    """A page shorter than the page size before the total: records left out of it, or a total
    too high (then the next page is empty, and the total check says so)."""

    page: int
    served: int
    asked: int
    offset: int
    total: int


class SequenceCompleteness:
    """The completeness checks of one request sequence (one resource, or one parent's child
    pages). Made fresh by the page checks for every sequence."""

    def __init__(
        self,
        resource: str,
        checks: Checks,
        notice: Callable[[str], None],
        *,
        detected: bool = False,
        probe_empty: bool = False,
    ) -> None:
        self.resource = resource
        self.checks = checks
        self.notice = notice
        #: Whether the paginator was detected (the file names none).
        self.detected = detected
        self.probe_empty = probe_empty
        #: The records a page holds, once the API has shown it (offset paginators).
        self.size: int | None = None
        self._short: _ShortPage | None = None
        self._gap: _Gap | None = None

    # --- page size (offset paginators) -------------------------------------------------------

    def before_step(
        self,
        inner: BasePaginator,
        response: Response,
        served: int,
        page: int,
        offset: int | None,
        total: int | None,
    ) -> None:
        """Before dlt's ``update_state``: make an offset paginator step by what the API serves
        (see the module's docstring). ``page`` counts from 1; ``total`` is None when unknown or
        when the ``totals`` check is off."""
        if not isinstance(inner, OffsetPaginator) or not isinstance(offset, int):
            return
        adapt = self.checks.page_size
        gap, self._gap = self._gap, None
        if gap is not None and served > 0:
            self._gap_failure(response, gap, f"page {page} holds records again")
        short, self._short = self._short, None
        if short is not None and served > 0:
            self._confirmed(inner, short, page)
        if served == 0:
            return
        body = _json(response)
        asked = int(inner.limit)
        echoed = echoed_page_size(body, inner.limit_param)
        more = self._more(inner, body, offset, served, total)
        if adapt and echoed is not None and echoed[1] < asked and served <= echoed[1]:
            evidence = f"it answered {echoed[0]}={echoed[1]} to limit={asked}"
            self._adopt(inner, echoed[1], asked, evidence)
        elif served < asked and more:
            if adapt and (page == 1 or (self.size is None and total is None)):
                left = f"total={total} leaves {total - offset - served} more" if total else "more"
                evidence = f"page {page} held {served} records for limit={asked} and {left}"
                self._adopt(inner, served, asked, evidence)
            elif self.checks.totals and total is not None:
                # Records left out of this page, or a total too high: the next page tells.
                self._gap = _Gap(page, served, asked, offset, total)
        elif adapt and served < asked and more is None:
            # Without a total a short page is usually the last. Stepping by the records served
            # costs nothing if it is, and skips nothing if it is not (the next page tells).
            self._short = _ShortPage(page, served, asked)
            inner.value_step = served

    def ended(self, response: Response) -> None:
        """The pages ended: a short page before the total, with nothing after it, left the rest
        of the total unread."""
        if self._gap is not None:
            self._gap_failure(response, self._gap, "the pages ended there")

    def _gap_failure(self, response: Response, gap: _Gap, then: str) -> NoReturn:
        left = gap.total - gap.offset - gap.served
        self.fail(
            response,
            f"page {gap.page} holds {gap.served} records where the API serves {gap.asked} a "
            f"page, and total={gap.total} leaves {left} more; {then}, so records were skipped",
            gap.offset,
            key="completeness.totals",
            fix="if the API's pages vary in size, set completeness: {totals: false}",
        )

    def after_step(self, inner: BasePaginator) -> None:
        """After dlt's ``update_state``: a one-page step by the records served is undone."""
        if isinstance(inner, OffsetPaginator):
            inner.value_step = inner.limit

    def _more(
        self, inner: OffsetPaginator, body: Any, offset: int, served: int, total: int | None
    ) -> bool | None:
        """Whether the API says records remain after this page (None: it does not say)."""
        if total is not None:
            return offset + served < total
        if inner.has_more_path is not None:
            from dlt.common import jsonpath

            values = jsonpath.find_values(inner.has_more_path, body)
            if values and isinstance(values[0], bool):
                return values[0]
        return None

    def _adopt(self, inner: OffsetPaginator, size: int, asked: int, evidence: str) -> None:
        self.size = size
        inner.limit = inner.value_step = size
        self.notice(
            f"the API serves at most {size} records a page ({evidence}); restsync steps the "
            f"offset by {size}, so no record is skipped. Set the paginator's limit: {size} "
            "to ask for what it serves"
        )

    def _confirmed(self, inner: OffsetPaginator, short: _ShortPage, page: int) -> None:
        """A short page without a total was followed by records: the API serves fewer records
        a page than asked."""
        evidence = (
            f"page {short.page} held {short.served} records for limit={short.asked}, and page "
            f"{page} held more"
        )
        if self.size is None and short.page == 1:
            self._adopt(inner, short.served, short.asked, evidence)
        else:
            self.notice(
                f"{evidence}; restsync stepped the offset by the records served, so none was "
                "skipped"
            )

    # --- next links and cursors ----------------------------------------------------------------

    def check_link(self, inner: BasePaginator, response: Response, page: int) -> None:
        """A ``json_link`` about to follow something that is not a link fails first."""
        if not self.checks.next_links or not isinstance(inner, JSONLinkPaginator):
            return
        if not inner.has_next_page:
            return
        from dlt.common import jsonpath

        body = _json(response)
        values = jsonpath.find_values(inner.next_url_path, body)
        value = values[0] if values else None
        if value is None or is_link(value):
            return
        path = str(inner.next_url_path)
        links = [(p, v) for p, v in next_references(body) if p != path and is_link(v)]
        fix = (
            f"the response has a link at {links[0][0]!r}: set next_url_path: {links[0][0]}"
            if links
            else f"if it is a cursor, set the paginator to {suggestion(path, value)}"
        )
        self.mistake(
            response,
            f"the paginator json_link's next_url_path {path!r} holds {_shown(value)}, which is "
            f"not a link (page {page + 1} would be requested at a URL made of it)",
            key="paginator.next_url_path",
            fix=fix,
            check=None,
        )

    def check_unfollowed(
        self, inner: BasePaginator, response: Response, page: int, why: str
    ) -> None:
        """When the pages end: a next link or cursor the paginator did not follow fails."""
        if not self.checks.next_links:
            return
        capped_by_file = isinstance(inner, RangePaginator) and inner.maximum_value is not None
        if capped_by_file and inner.current_value >= inner.maximum_value:  # type: ignore[attr-defined]
            return  # stopped where the file asked
        header = response.links.get("next", {}).get("url")
        if header and not isinstance(inner, HeaderLinkPaginator):
            self._unfollowed(inner, response, page, why, "the Link header's rel=next", header,
                             "{type: header_link}")  # fmt: skip
            return
        own = _own_path(inner)
        references = list(next_references(_json(response)))
        if own is not None and any(path == own for path, _ in references):
            return  # its own link or cursor is there: it stopped for another reason
        for path, value in references:
            where = f"{path!r} in the response body"
            self._unfollowed(inner, response, page, why, where, value, suggestion(path, value))

    def _unfollowed(
        self,
        inner: BasePaginator,
        response: Response,
        page: int,
        why: str,
        where: str,
        value: Any,
        fix: str,
    ) -> NoReturn:
        self.mistake(
            response,
            f"the pages ended at page {page} ({why}), but {where} holds a next "
            f"{'link' if is_link(value) else 'cursor'} ({_shown(value)}) that the paginator "
            f"{self._named(inner)} does not follow: the API has more records",
            key="paginator",
            fix=f"set the endpoint's paginator to {fix}",
            check="next_links",
        )

    def next_link_hint(self, response: Response) -> str:
        """A sentence naming the paginator a body's next link or cursor calls for, or ''."""
        for path, value in next_references(_json(response)):
            return (
                f" The response holds a next reference at {path!r}: set the endpoint's paginator "
                f"to {suggestion(path, value)}."
            )
        return ""

    # --- an empty first page -----------------------------------------------------------------

    def check_empty_first(self, inner: BasePaginator, response: Response, selector: Any) -> None:
        """An empty first page, asked again without the paginator's parameters: records there
        mean the API does not read them."""
        if not (self.checks.empty_first_page and self.probe_empty):
            return
        if not isinstance(inner, RangePaginator) or not inner.param_name:
            return
        sent = {str(inner.param_name)}
        if isinstance(inner, OffsetPaginator) and inner.limit_param:
            sent.add(str(inner.limit_param))
        records, probe = _probe_without(response, sent, selector)
        if not records or probe is None:
            return
        asked = ", ".join(
            f"{k}={v}" for k, v in parse_qsl(urlsplit(response.url or "").query) if k in sent
        )
        fix = self.next_link_hint(probe).strip()
        if not fix and isinstance(inner, PageNumberPaginator) and inner.base_index == 0:
            fix = "if the API counts pages from 1, set the paginator's base_page: 1"
        self.mistake(
            response,
            f"page 1 ({asked}) was empty, but the same request without "
            f"{' and '.join(repr(s) for s in sorted(sent))} answers {len(records)} records: "
            f"the API does not read the parameters of paginator {self._named(inner)}",
            key="paginator",
            fix=fix or "set the paginator the API's documentation describes",
            check="empty_first_page",
        )

    # --- failures ------------------------------------------------------------------------------

    def _named(self, inner: BasePaginator) -> str:
        named = f"{{type: {paginator_type(inner)}}}"
        return f"{named} (detected: the file names none)" if self.detected else named

    def fail(
        self, response: Response, problem: str, offset: int | None, *, key: str, fix: str
    ) -> NoReturn:
        url = redact_url(response.url or "")
        raise IncompleteReadError(
            self.resource, url, f"{problem}. To change: {fix}", offset, key=key
        )

    def mistake(
        self, response: Response, problem: str, *, key: str, fix: str, check: str | None
    ) -> NoReturn:
        """Fail with a :class:`PaginatorMistakeError`; ``check`` names the ``completeness``
        check that turns it off, for an API whose answers mislead it."""
        url = redact_url(response.url or "")
        text = f"paginator mistake: {problem}. To change: {fix.rstrip('.')}"
        if check is not None:
            text += f" (or, if the API misleads this check, set completeness: {{{check}: false}})"
        raise PaginatorMistakeError(self.resource, url, text, key=key)


def _own_path(inner: BasePaginator) -> str | None:
    if isinstance(inner, JSONLinkPaginator):
        return str(inner.next_url_path)
    if isinstance(inner, JSONResponseCursorPaginator):
        return str(inner.cursor_path)
    return None


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _shown(value: Any) -> str:
    text = redact_url(value) if isinstance(value, str) else repr(value)
    return repr(text[:120]) if isinstance(value, str) else text[:120]


def _probe_without(
    response: Response, names: set[str], selector: Any
) -> tuple[list[Any], Response | None]:
    """The records the first request answers without the query parameters ``names`` (one
    request, through the same adapter: limited, counted, authenticated as the page was)."""
    from dlt.sources.helpers.rest_client.detector import find_response_page_data

    request = response.request
    adapter = getattr(response, "connection", None)
    if request is None or adapter is None or str(request.method).upper() != "GET":
        return [], None
    parts = urlsplit(request.url or "")
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    probe = request.copy()
    probe.url = urlunsplit(parts._replace(query=urlencode(kept)))
    try:
        answer = adapter.send(probe, timeout=PROBE_TIMEOUT_SECONDS)
        if not 200 <= answer.status_code < 300:
            return [], None
        body = answer.json()
    except Exception:  # a probe that fails proves nothing either way
        return [], None
    if selector:
        from dlt.common import jsonpath

        found = jsonpath.find_values(selector, body)
        records = found[0] if len(found) == 1 else found
    else:
        records = find_response_page_data(body)[1]
    return (records if isinstance(records, list) else []), answer
