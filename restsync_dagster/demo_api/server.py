"""The bundled demo API: five verticals on one port, offline, deterministic.

Contract, for every vertical (``/generic``, ``/analytics``, ``/ecommerce``, ``/database``,
``/communications``):

* ``GET /<vertical>/v1/<collection>?api_key=KEY&offset=O&limit=L`` answers
  ``{"data": [...], "total": N}``; ``limit`` defaults to 100 and is capped by ``max_page_size``;
* a wrong or missing ``api_key`` answers ``401`` with a JSON error body (or a bearer token from
  ``POST /oauth/token``: :mod:`restsync_dagster.demo_api.oauth`);
* ``GET /database/v1/databases/{id}/records`` serves each database's records, and
  ``GET /ecommerce/v1/orders/{id}/lines`` each order's lines (a child of an incremental parent);
* ``updated_since``/``updated_until`` select by ``updated_at``; ``max_range_seconds`` refuses a
  wider (or unbounded) range with a 400, as APIs that cap a query's date range do;
* the same collections in other response shapes: :mod:`restsync_dagster.demo_api.shapes`, and
  as GraphQL connections: :mod:`restsync_dagster.demo_api.graphql`, and as asynchronous
  report jobs: :mod:`restsync_dagster.demo_api.reports`.

Switches for testing failure handling: latency per request, a fault rate with chosen statuses and
``Retry-After``, and an outage window (every request answers 503 for the first N seconds, or from
``POST /_demo/outage?seconds=N`` on), and a request budget per window with rate-limit headers
(:mod:`restsync_dagster.demo_api.ratelimit`). ``GET /_demo/requests`` and ``GET /_demo/stats`` expose what the
server saw, with the key removed. It is a real HTTP/1.1 server with keep-alive; Nagle's algorithm is
off, or Python's ``http.server`` stalls ~40 ms per keep-alive request.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from restsync_dagster.demo_api.collections import Collection, parse_instant
from restsync_dagster.demo_api.data import (
    DEFAULT_RECORDS_PER_DATABASE,
    VERTICALS,
    database_records,
    database_records_schema,
)
from restsync_dagster.demo_api.graphql import GRAPHQL_MISBEHAVIOURS, connection
from restsync_dagster.demo_api.hostile import BUSY_TIMES, MISBEHAVIOURS, RawBody, misbehaving
from restsync_dagster.demo_api.oauth import TokenIssuer
from restsync_dagster.demo_api.openapi import openapi_response
from restsync_dagster.demo_api.ratelimit import WindowBudget
from restsync_dagster.demo_api.reports import REPORT_MISBEHAVIOURS, ReportJobs
from restsync_dagster.demo_api.shapes import CSV_MISBEHAVIOURS, SHAPES, shaped

ALL_MISBEHAVIOURS = (
    *MISBEHAVIOURS,
    *CSV_MISBEHAVIOURS,
    *GRAPHQL_MISBEHAVIOURS,
    *REPORT_MISBEHAVIOURS,
)
DEFAULT_PORT = 8765
DEFAULT_PAGE_SIZE = 100


def default_api_key(vertical: str) -> str:
    """The key the demo API accepts for ``vertical`` unless told otherwise."""
    return f"demo-{vertical}-key"


@dataclass
class DemoApiConfig:
    """Everything that shapes what the demo API answers."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    seed: int = 7
    #: Record counts: ``{"*": N}`` for every collection, ``{"ecommerce.orders": N}`` for one.
    counts: dict[str, int] = field(default_factory=dict)
    databases: int | None = None
    records_per_database: int = DEFAULT_RECORDS_PER_DATABASE
    #: Accepted key per vertical; missing verticals accept :func:`default_api_key`.
    api_keys: dict[str, str] = field(default_factory=dict)
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = (429, 503)
    fault_retry_after: int | None = None
    #: A request (same path and parameters) never fails more often than this in a row.
    fault_max_consecutive: int = 3
    outage_seconds: float = 0.0
    outage_retry_after: int | None = None
    max_page_size: int = 1000
    #: The widest ``updated_since``..``updated_until`` range served; a wider one is a 400, as
    #: APIs that cap a query's date range answer (None: no cap).
    max_range_seconds: float | None = None
    #: Broken answers for testing: request path -> (mode, first offset affected); see MISBEHAVIOURS.
    misbehave: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: A request budget per window, 429 beyond it (see :mod:`restsync_dagster.demo_api.ratelimit`).
    rate_limit: int | None = None
    rate_window_seconds: float = 1.0
    rate_headers: str = "x"
    #: The OAuth client and refresh token ``POST /oauth/token`` accepts (demo_api/oauth.py).
    oauth_client_id: str = "demo-client"
    oauth_client_secret: str = "demo-client-secret"
    oauth_refresh_token: str = "demo-refresh-token"
    oauth_expires_in: float = 3600.0
    oauth_rotate: bool = False
    #: How long a report job runs before its result can be downloaded (demo_api/reports.py).
    report_seconds: float = 0.5
    verbose: bool = False

    def count(self, vertical: str, collection: str) -> int:
        """How many records ``vertical``'s ``collection`` holds."""
        if vertical == "database" and collection == "databases" and self.databases is not None:
            return self.databases
        key = f"{vertical}.{collection}"
        if key in self.counts:
            return self.counts[key]
        if "*" in self.counts and not (vertical == "database" and collection == "databases"):
            return self.counts["*"]
        return VERTICALS[vertical][collection].default_count

    def api_key(self, vertical: str) -> str:
        """The key accepted for ``vertical``."""
        return self.api_keys.get(vertical) or self.api_keys.get("*") or default_api_key(vertical)


@dataclass(frozen=True)
class SeenRequest:
    """One request as the server saw it, with the key removed."""

    method: str
    path: str
    params: dict[str, str]
    status: int
    at: float
    key_present: bool
    #: A GraphQL request's JSON body as sent (``{query, variables}``); None for the others.
    body: Any = None


class _State:
    """What the server remembers between requests; every field is guarded by ``lock``."""

    def __init__(self, config: DemoApiConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.outage_until = self.started + config.outage_seconds
        self.rng = random.Random(config.seed)
        self.consecutive_faults: Counter[str] = Counter()
        #: ``busy_twice`` answers given per request (path and parameters).
        self.busy: Counter[str] = Counter()
        #: Broken answers a path still gives before it heals (``misbehave(..., times=N)``).
        self.misbehave_left: Counter[str] = Counter()
        self.log: deque[SeenRequest] = deque(maxlen=200_000)
        self.status_counts: Counter[int] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.tokens = TokenIssuer(
            config.oauth_client_id,
            config.oauth_client_secret,
            config.oauth_refresh_token,
            config.oauth_expires_in,
            config.oauth_rotate,
        )
        self.reports = ReportJobs(config.report_seconds)
        self.budget = (
            WindowBudget(config.rate_limit, config.rate_window_seconds, config.rate_headers)
            if config.rate_limit
            else None
        )
        self.collections = {
            (vertical, name): Collection(shape, config.seed, config.count(vertical, name))
            for vertical, shapes in VERTICALS.items()
            for name, shape in shapes.items()
        }

    def collection(self, qualified: str) -> Collection:
        """``vertical.collection`` -> its state.

        Raises:
            KeyError: no such collection.
        """
        vertical, _, name = qualified.partition(".")
        return self.collections[(vertical, name)]

    def record(self, seen: SeenRequest) -> None:
        with self.lock:
            self.log.append(seen)
            self.status_counts[seen.status] += 1

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def fault_for(self, request_key: str) -> tuple[int, int | None] | None:
        """The fault to answer ``request_key`` with, if any: ``(status, retry_after)``."""
        cfg = self.config
        with self.lock:
            if time.monotonic() < self.outage_until:
                return 503, cfg.outage_retry_after
            if cfg.fault_rate <= 0:
                return None
            faulty = self.rng.random() < cfg.fault_rate
            if faulty and self.consecutive_faults[request_key] < cfg.fault_max_consecutive:
                self.consecutive_faults[request_key] += 1
                status = cfg.fault_statuses[self.rng.randrange(len(cfg.fault_statuses))]
                return status, cfg.fault_retry_after
            self.consecutive_faults.pop(request_key, None)
            return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _DemoHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.state.config.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        state = self.server.state
        state.enter()
        self.graphql_body: Any = None
        try:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            if parts.path.startswith("/_demo/"):
                self._admin(method, parts.path, params)
                return
            if method == "GET" and parts.path.endswith("/openapi.json"):  # no key: public docs
                host = self.headers.get("Host") or f"{state.config.host}:{self.server.server_port}"
                cfg = state.config
                self._send(*openapi_response(parts.path, host, cfg.seed, cfg.max_page_size))
                return
            if parts.path == "/oauth/token" and method == "POST":
                form = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = state.tokens.issue(form)
                state.record(SeenRequest(method, parts.path, {}, status, time.time(), False))
                self._send(status, answer, {})
                return
            allowed, budget_headers = state.budget.take() if state.budget else (True, {})
            if allowed:
                status, body, headers = self._api(method, parts.path, params)
            else:
                status, body, headers = 429, {"error": "rate_limited"}, {}
            headers = {**budget_headers, **headers}
            key_present = "api_key" in params
            params.pop("api_key", None)
            seen = SeenRequest(
                method, parts.path, params, status, time.time(), key_present, self.graphql_body
            )
            state.record(seen)
            self._send(status, body, headers)
        finally:
            state.leave()

    def _api(
        self, method: str, path: str, params: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        cfg = state.config
        if cfg.latency_ms > 0:
            time.sleep(cfg.latency_ms / 1000)
        segments = [s for s in path.split("/") if s]
        if len(segments) == 3 and segments[0] in VERTICALS and segments[1] == "graphql":
            return self._graphql(method, segments[0], segments[2], path, params)
        if len(segments) >= 3 and segments[0] in VERTICALS and segments[1] == "reports":
            return self._report(method, segments, path, params)
        if len(segments) < 3 or segments[0] not in VERTICALS or segments[1] not in SHAPES:
            return 404, {"error": "not_found", "message": f"no such endpoint: {path}"}, {}
        vertical = segments[0]
        if method != "GET":
            return 405, {"error": "method_not_allowed"}, {}
        if not self._authorized(vertical, params):
            return 401, {"error": "unauthorized", "message": "invalid or missing api_key"}, {}
        request_key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        fault = state.fault_for(request_key)
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, {"error": "transient", "message": f"injected {status}"}, headers
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return 400, {"error": "bad_request", "message": "offset and limit are integers"}, {}
        if offset < 0 or limit < 1 or limit > cfg.max_page_size:
            return (
                400,
                {
                    "error": "bad_request",
                    "message": f"need offset >= 0 and 1 <= limit <= {cfg.max_page_size}",
                },
                {},
            )
        collection = segments[2:]
        if vertical == "database" and len(collection) == 3 and collection[0] == "databases":
            return self._database(collection[1], collection[2], offset, limit)
        if vertical == "ecommerce" and len(collection) == 3 and collection[0] == "orders":
            return self._order_lines(collection[1], collection[2])
        if len(collection) != 1 or collection[0] not in VERTICALS[vertical]:
            return 404, {"error": "not_found", "message": f"no such endpoint: {path}"}, {}
        try:
            since = parse_instant(params["updated_since"]) if params.get("updated_since") else None
            until = parse_instant(params["updated_until"]) if params.get("updated_until") else None
        except ValueError:
            return 400, {"error": "bad_request", "message": "updated_since/until: ISO-8601"}, {}
        widest = cfg.max_range_seconds
        if widest is not None and (
            since is None or until is None or (until - since).total_seconds() > widest
        ):
            message = f"give updated_since and updated_until at most {widest:g} s apart"
            return 400, {"error": "range_too_wide", "message": message}, {}
        with state.lock:
            current = state.collections[(vertical, collection[0])]
            ids = current.ids(since, until)
            total = len(ids)
            rows = [current.record(i) for i in ids[offset : offset + limit]]
            broken = self._broken(path, request_key, offset)
            if broken in CSV_MISBEHAVIOURS:
                return shaped(segments[1], rows, total, offset, broken)
            if broken is not None:
                first_page = [current.record(i) for i in ids[0:limit]]
                return misbehaving(broken, rows, total, first_page, request_key)
        return shaped(segments[1], rows, total, offset)

    def _broken(self, path: str, request_key: str, offset: int) -> str | None:
        """The misbehaviour this page gets, if any (under the state's lock)."""
        state = self.server.state
        broken = state.config.misbehave.get(path)
        if broken is None or offset < broken[1]:
            return None
        if broken[0] == "busy_twice":
            state.busy[request_key] += 1
            if state.busy[request_key] > BUSY_TIMES:
                return None  # asked often enough: the real page
        if path in state.misbehave_left:
            state.misbehave_left[path] -= 1
            if state.misbehave_left[path] <= 0:  # the last broken answer: healed from now on
                del state.misbehave_left[path]
                state.config.misbehave.pop(path, None)
        return broken[0]

    def _report(
        self, method: str, segments: list[str], path: str, params: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        vertical, name, rest = segments[0], segments[2], segments[3:]
        if not self._authorized(vertical, params):
            return 401, {"error": "unauthorized", "message": "invalid or missing api_key"}, {}
        if name not in VERTICALS[vertical]:
            return 404, {"error": "not_found", "message": f"no collection {name!r}"}, {}
        base = f"/{vertical}/reports/{name}"
        if not rest and method == "POST":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            broken = state.config.misbehave.get(base)
            job = state.reports.create(name, broken[0] if broken else None)
            return 201, {"id": job.id, "status": "running"}, {}
        if len(rest) == 1 and method == "GET":
            status, answer = state.reports.status(name, rest[0], f"{base}/{rest[0]}")
            return status, answer, {}
        if len(rest) == 2 and rest[1] == "result" and method == "GET":
            if not state.reports.ready(name, rest[0]):
                return 404, {"error": "not_found", "message": "the report is not ready"}, {}
            with state.lock:
                current = state.collections[(vertical, name)]
                rows = [current.record(i) for i in current.ids(None, None)]
            return shaped("jsonl", rows, len(rows), 0)
        return 404, {"error": "not_found", "message": f"no such endpoint: {path}"}, {}

    def _authorized(self, vertical: str, params: dict[str, str]) -> bool:
        state = self.server.state
        if params.get("api_key") == state.config.api_key(vertical):
            return True
        return state.tokens.valid(self.headers.get("Authorization"))

    def _graphql(
        self, method: str, vertical: str, name: str, path: str, params: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with contextlib.suppress(ValueError):
            self.graphql_body = json.loads(body or b"null")
        if method != "POST":
            return 405, {"errors": [{"message": "GraphQL takes POST"}]}, {}
        if not self._authorized(vertical, params):
            return 401, {"errors": [{"message": "invalid or missing api_key"}]}, {}
        if name not in VERTICALS[vertical]:
            return 404, {"errors": [{"message": f"no collection {name!r}"}]}, {}

        def page(offset: int, limit: int | None) -> tuple[list[dict[str, Any]], int]:
            ids = state.collections[(vertical, name)].ids(None, None)
            current = state.collections[(vertical, name)]
            end = len(ids) if limit is None else offset + limit
            return [current.record(i) for i in ids[offset:end]], len(ids)

        with state.lock:
            return connection(name, body, page, state.config.misbehave.get(path))

    def _order_lines(self, raw_id: str, what: str) -> tuple[int, Any, dict[str, str]]:
        """``/ecommerce/v1/orders/{id}/lines``: an order's lines as served now (one page)."""
        state = self.server.state
        if what != "lines":
            return 404, {"error": "not_found", "message": f"no such endpoint: {what}"}, {}
        with state.lock:
            orders = state.collections[("ecommerce", "orders")]
            index = int(raw_id) - 1 if raw_id.isdigit() else -1
            if not 0 <= index < orders.total:
                return 404, {"error": "not_found", "message": f"no order {raw_id}"}, {}
            order = orders.record(index)
        lines = [{"order_id": order["id"], **line} for line in order["line_items"]]
        return 200, {"data": lines, "total": len(lines)}, {}

    def _database(
        self, raw_id: str, what: str, offset: int, limit: int
    ) -> tuple[int, Any, dict[str, str]]:
        cfg = self.server.state.config
        database_id = int(raw_id) if raw_id.isdigit() else 0
        if not 1 <= database_id <= cfg.count("database", "databases"):
            return 404, {"error": "not_found", "message": f"no database {raw_id}"}, {}
        if what == "schema":
            return (
                200,
                {"database_id": database_id, "fields": database_records_schema(database_id)},
                {},
            )
        if what != "records":
            return 404, {"error": "not_found", "message": f"no such endpoint: {what}"}, {}
        total = cfg.records_per_database
        rows = [
            database_records(cfg.seed, database_id, i)
            for i in range(offset, min(offset + limit, total))
        ]
        return 200, {"data": rows, "total": total}, {}

    def _admin(self, method: str, path: str, params: dict[str, str]) -> None:
        if path == "/_demo/health":
            self._send(200, {"ok": True}, {})
        elif path == "/_demo/stats":
            self._send(200, self.server.stats(), {})
        elif path == "/_demo/requests":
            self._send(200, [asdict(r) for r in self.server.seen()], {})
        elif path == "/_demo/outage" and method == "POST":
            seconds = float(params.get("seconds", "0"))
            self.server.start_outage(seconds)
            self._send(200, {"outage_seconds": seconds}, {})
        elif path == "/_demo/misbehave" and method == "POST":
            mode = params.get("mode", "none")
            if mode != "none" and mode not in (
                *MISBEHAVIOURS,
                *CSV_MISBEHAVIOURS,
                *GRAPHQL_MISBEHAVIOURS,
            ):
                self._send(400, {"error": f"mode must be one of {MISBEHAVIOURS} or none"}, {})
                return
            times = int(params["times"]) if params.get("times") else None
            self.server.misbehave(
                params.get("path", ""), mode, int(params.get("from_offset", "0")), times
            )
            self._send(200, {"ok": True}, {})
        elif path == "/_demo/advance" and method == "POST":
            try:
                changed = self.server.advance(
                    params.get("collection", ""),
                    int(params.get("insert", "0")),
                    int(params.get("update", "0")),
                    float(params.get("hours", "1")),
                    int(params.get("delete", "0")),
                )
            except (KeyError, ValueError) as exc:
                self._send(400, {"error": f"bad advance request: {exc}"}, {})
                return
            self._send(200, changed, {})
        elif path == "/_demo/schema" and method == "POST":
            try:
                self.server.change_schema(
                    params.get("collection", ""),
                    *(
                        {f for f in params.get(k, "").split(",") if f}
                        for k in ("drop", "retype", "add")
                    ),
                )
            except KeyError as exc:
                self._send(400, {"error": f"unknown collection {exc}"}, {})
                return
            self._send(200, {"ok": True}, {})
        elif path == "/_demo/oauth" and method == "POST":
            if params.get("expires_in"):
                self.server.state.tokens.set_lifetime(float(params["expires_in"]))
            if params.get("revoke") == "true":
                self.server.state.tokens.revoke()
            self._send(200, {"ok": True}, {})
        elif path == "/_demo/ratelimit" and method == "POST":
            self._set_rate_limit(params)
        elif path == "/_demo/reset" and method == "POST":
            self.server.reset_log()
            self._send(200, {"ok": True}, {})
        else:
            self._send(404, {"error": "not_found"}, {})

    def _set_rate_limit(self, params: dict[str, str]) -> None:
        limit, style = int(params.get("limit", "0")), params.get("headers", "x")
        window = float(params.get("window", "1"))
        try:
            self.server.set_rate_limit(limit, window, style)
        except ValueError as exc:
            self._send(400, {"error": str(exc)}, {})
            return
        self._send(200, {"limit": limit, "window": window, "headers": style}, {})

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        raw = body if isinstance(body, RawBody) else None
        if raw is not None:
            payload, content_type = bytes(raw), raw.content_type
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if raw is not None and (raw.truncate or raw.stall_seconds):
            half = len(payload) // 2
            self.wfile.write(payload[:half])
            self.wfile.flush()
            if raw.stall_seconds:
                time.sleep(raw.stall_seconds)
            self.close_connection = True
            if raw.truncate:
                return
            payload = payload[half:]
        self.wfile.write(payload)


class _DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, config: DemoApiConfig) -> None:
        self.state = _State(config)
        #: Open client connections: a stopped server closes them, as a process that ends does.
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        super().__init__((config.host, config.port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open client connection (keep-alive ones too)."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for client in connections:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients closing keep-alive connections are normal; stay quiet unless verbose.
        if self.state.config.verbose:
            super().handle_error(request, client_address)

    def stats(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "requests": len(self.state.log),
                "status_counts": {str(k): v for k, v in self.state.status_counts.items()},
                "max_in_flight": self.state.max_in_flight,
                "tokens_issued": self.state.tokens.issued,
            }

    def seen(self) -> list[SeenRequest]:
        with self.state.lock:
            return list(self.state.log)

    def start_outage(self, seconds: float) -> None:
        with self.state.lock:
            self.state.outage_until = time.monotonic() + seconds

    def set_rate_limit(self, limit: int | None, window: float, style: str) -> None:
        budget = WindowBudget(limit, window, style) if limit else None
        with self.state.lock:
            self.state.budget = budget

    def advance(
        self, collection: str, insert: int, update: int, hours: float, delete: int = 0
    ) -> dict[str, Any]:
        with self.state.lock:
            return self.state.collection(collection).advance(insert, update, hours, delete)

    def change_schema(
        self, collection: str, drop: set[str], retype: set[str], add: set[str]
    ) -> None:
        with self.state.lock:
            self.state.collection(collection).change_schema(drop, retype, add)

    def expected(
        self, collection: str, since: Any = None, until: Any = None
    ) -> list[dict[str, Any]]:
        with self.state.lock:
            current = self.state.collection(collection)
            return [current.record(i) for i in current.ids(since, until)]

    def misbehave(self, path: str, mode: str, from_offset: int, times: int | None = None) -> None:
        with self.state.lock:
            self.state.misbehave_left.pop(path, None)
            if mode == "none":
                self.state.config.misbehave.pop(path, None)
            else:
                self.state.config.misbehave[path] = (mode, from_offset)
                if times is not None:
                    self.state.misbehave_left[path] = times

    def reset_log(self) -> None:
        with self.state.lock:
            self.state.log.clear()
            self.state.status_counts.clear()
            self.state.max_in_flight = self.state.in_flight


class DemoApi:
    """The demo API server, runnable in a background thread (tests) or in the foreground (CLI).

    Example:
        >>> with DemoApi(DemoApiConfig(port=0)) as api:
        ...     url = api.url("analytics")
    """

    def __init__(self, config: DemoApiConfig | None = None) -> None:
        self.config = config or DemoApiConfig()
        self._server: _DemoHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        return self._require_server().server_address[1]

    def url(self, vertical: str = "") -> str:
        """Base URL of ``vertical`` (or of the server when empty)."""
        base = f"http://{self.config.host}:{self.port}"
        return f"{base}/{vertical}" if vertical else base

    def start(self) -> DemoApi:
        """Bind and serve in a daemon thread."""
        self._server = _DemoHTTPServer(self.config)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="restsync-demo-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the open connections and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> DemoApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, path_prefix: str = "") -> list[SeenRequest]:
        """Requests seen so far whose path starts with ``path_prefix``."""
        return [r for r in self._require_server().seen() if r.path.startswith(path_prefix)]

    def stats(self) -> dict[str, Any]:
        """Counters: requests, status counts, the most requests in flight at once."""
        return self._require_server().stats()

    def start_outage(self, seconds: float) -> None:
        """Answer 503 to every API request for the next ``seconds``."""
        self._require_server().start_outage(seconds)

    def set_rate_limit(self, limit: int | None, window: float = 1.0, headers: str = "x") -> None:
        """Allow ``limit`` requests per ``window`` seconds (429 beyond), telling the budget in the
        ``headers`` style (see :mod:`restsync_dagster.demo_api.ratelimit`); None: no limit."""
        self._require_server().set_rate_limit(limit, window, headers)

    def misbehave(
        self, path: str, mode: str, from_offset: int = 0, times: int | None = None
    ) -> None:
        """Answer requests of ``path`` at ``offset >= from_offset`` in a broken way (``mode`` is one
        of :data:`MISBEHAVIOURS`, or ``none`` to heal); with ``times``, only that many answers
        are broken (JSON collections), then the path heals itself."""
        if mode != "none" and mode not in ALL_MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {mode!r}; choose from {ALL_MISBEHAVIOURS}")
        self._require_server().misbehave(path, mode, from_offset, times)

    def set_faults(
        self, rate: float, statuses: tuple[int, ...] = (429, 503), retry_after: int | None = None
    ) -> None:
        """Answer a fraction ``rate`` of API requests with one of ``statuses`` (0: no faults)."""
        state = self._require_server().state
        with state.lock:
            cfg = state.config
            cfg.fault_rate, cfg.fault_statuses, cfg.fault_retry_after = rate, statuses, retry_after

    def set_token_lifetime(self, seconds: float) -> None:
        """OAuth access tokens issued from now on expire after ``seconds``."""
        self._require_server().state.tokens.set_lifetime(seconds)

    def revoke_tokens(self) -> None:
        """Every OAuth access token issued so far answers 401 from now on."""
        self._require_server().state.tokens.revoke()

    def reset_log(self) -> None:
        """Forget the requests seen so far."""
        self._require_server().reset_log()

    def expected_rows(
        self,
        vertical: str,
        collection: str,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every record ``vertical``'s ``collection`` serves now (``updated_at`` in
        ``[since, until)`` when given), as the API serves it."""
        cfg = self.config
        if vertical == "database" and collection == "records":
            return [
                database_records(cfg.seed, db, i)
                for db in range(1, cfg.count("database", "databases") + 1)
                for i in range(cfg.records_per_database)
            ]
        return self._require_server().expected(
            f"{vertical}.{collection}",
            parse_instant(since) if since else None,
            parse_instant(until) if until else None,
        )

    def advance(
        self,
        collection: str,
        insert: int = 0,
        update: int = 0,
        hours: float = 1.0,
        delete: int = 0,
    ) -> dict[str, list[int]]:
        """Move ``vertical.collection``'s simulated clock ``hours`` on, inserting, updating and
        soft-deleting (``deleted_at`` set) records within that time. Returns the ids of each."""
        return self._require_server().advance(collection, insert, update, hours, delete)

    def change_schema(
        self,
        collection: str,
        drop: Iterable[str] = (),
        retype: Iterable[str] = (),
        add: Iterable[str] = (),
    ) -> None:
        """Serve ``vertical.collection``'s records without ``drop`` fields, with ``retype`` fields
        as strings and with extra ``add`` fields (all empty: as designed)."""
        self._require_server().change_schema(collection, set(drop), set(retype), set(add))

    def _require_server(self) -> _DemoHTTPServer:
        if self._server is None:
            raise RuntimeError("the demo API is not running; call start() first")
        return self._server
