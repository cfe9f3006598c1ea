"""Offset pages fetched ahead of dlt, up to ``rate_limit.max_concurrency`` at a time.

dlt's REST client reads one page after the other. Once the first page of an offset-paginated
endpoint has told the ``total``, every further offset is known, so the page checks
(:class:`~restsync_dagster.extract.pages.ContractCheckingPaginator`) ask the :class:`Prefetcher`
to send the next few requests now, on worker threads, as single attempts through the transport
adapter. When dlt's client then sends the same request, the adapter hands it the answer that is
already there (or on its way). Everything else stays dlt's: the order of pages, auth, the
incremental parameters, the response hooks, and the retries (a prefetched failure is dlt's first
attempt; its retries go to the network as usual). Only public seams are used: a paginator
instance, ``Session.prepare_request`` and the transport adapter.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from requests import PreparedRequest, Request, Response

RequestKey = tuple[str, str, tuple[tuple[str, str], ...], bytes]


def request_key(request: PreparedRequest) -> RequestKey:
    """Method, URL without query, sorted query pairs and body: equal for equal requests."""
    parts = urlsplit(request.url or "")
    query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    return (str(request.method), parts._replace(query="").geturl(), query, body)


class Prefetcher:
    """Sends requests ahead of dlt and keeps their answers until dlt asks for them.

    Args:
        session: The run's session (its adapter must be a ``RestsyncAdapter``).
        workers: At most this many prefetched requests in flight.
    """

    def __init__(self, session: Any, workers: int) -> None:
        self.session = session
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._waiting: dict[RequestKey, Future[Response]] = {}
        self._closed = False

    def ahead(self, request: Request, params: Iterable[dict[str, Any]]) -> None:
        """Send ``request`` once per parameter set of ``params`` (each merged into a copy of its
        query), unless one with the same key is already waiting."""
        adapter = self.session.get_adapter("https://")
        for extra in params:
            page = copy.copy(request)
            page.params = {**(request.params or {}), **extra}
            prepared = self.session.prepare_request(page)
            key = request_key(prepared)
            with self._lock:
                if self._closed or key in self._waiting:
                    continue
                pool = self._pool or ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="restsync-prefetch"
                )
                self._pool = pool
                self._waiting[key] = pool.submit(self._send, adapter, prepared)

    def pending(self) -> int:
        """Answers fetched (or on their way) that dlt has not taken yet."""
        with self._lock:
            return len(self._waiting)

    def take(self, request: PreparedRequest) -> Future[Response] | None:
        """The answer fetched for ``request``, if one was; each is handed out once."""
        if not self._waiting:
            return None
        with self._lock:
            return self._waiting.pop(request_key(request), None)

    def _send(self, adapter: Any, prepared: PreparedRequest) -> Response:
        # The run's session reads the proxy and CA settings once per host (http.py).
        settings = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        response: Response = adapter.send_now(prepared, timeout=self.session.timeout, **settings)
        _ = response.content  # read the body here, on the worker
        return response

    def close(self) -> None:
        """Drop what was not taken and stop the workers (the end of a run)."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting.values()), {}
            pool, self._pool = self._pool, None
        for future in waiting:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
