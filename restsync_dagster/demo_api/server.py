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
* ``updated_on`` filters with the operator in the value (``updated_on=>=2025-01-01T00:00:00Z``),
  a page size capped whatever ``limit`` asks (``page_size_cap``, echoed in the body under
  ``page_size_echo``), and the same collections paged by next links in the body
  (``/<vertical>/links/<collection>``): :mod:`restsync_dagster.demo_api.paging`;
* the same collections in other response shapes: :mod:`restsync_dagster.demo_api.shapes`, and
  as GraphQL connections: :mod:`restsync_dagster.demo_api.graphql`, and as asynchronous
  report jobs: :mod:`restsync_dagster.demo_api.reports`.
* every route again under ``/t/<tenant>`` for each tenant, with the tenant's own key, data,
  outage and revocation, and a record of what reached it (``GET /_demo/tenants``):
  :mod:`restsync_dagster.demo_api.tenants`.

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
from restsync_dagster.demo_api.paging import capped, linked_page, narrowed, query
from restsync_dagster.demo_api.ratelimit import KeyBudgets
from restsync_dagster.demo_api.reports import REPORT_MISBEHAVIOURS, ReportJobs
from restsync_dagster.demo_api.shapes import CSV_MISBEHAVIOURS, SHAPES, shaped
from restsync_dagster.demo_api.tenants import (
    ID_STRIDE,
    TENANT_ID_MODES,
    Tenant,
    TenantRecord,
    check_tenant_name,
    presented_key,
    split_tenant_path,
    tenant_api_key,
    tenant_path,
    tenant_seed,
)

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
    #: Serve at most this many records a page whatever ``limit`` asks (None: what is asked).
    page_size_cap: int | None = None
    #: The body key that tells the page size served (``"limit": 100``); None: not told.
    page_size_echo: str | None = "limit"
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
    #: Tenants served from the start under ``/t/<tenant>`` (demo_api/tenants.py); more can be
    #: added while it runs.
    tenants: tuple[str, ...] = ()
    #: ``overlap``: every tenant's ids are 1..N; ``distinct``: each tenant has its own id range.
    tenant_ids: str = "overlap"
    verbose: bool = False

    def count(self, vertical: str, collection: str, tenant: str | None = None) -> int:
        """How many records ``vertical``'s ``collection`` holds (``tenant``'s, when given:
        ``counts`` keys ``"<tenant>:<vertical>.<collection>"`` and ``"<tenant>:*"`` come first)."""
        if tenant is not None:
            for key in (f"{tenant}:{vertical}.{collection}", f"{tenant}:*"):
                if key in self.counts and not (
                    key.endswith("*") and (vertical, collection) == ("database", "databases")
                ):
                    return self.counts[key]
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


def database_record(databases: Collection, database_id: int, i: int) -> dict[str, Any]:
    """Record ``i`` of database ``database_id`` (1-based, before any tenant's id shift) of the
    database vertical whose ``databases`` collection is given: its seed and id shift."""
    record = database_records(databases.seed, database_id, i)
    if databases.id_offset:
        record["id"] += databases.id_offset
        record["database_id"] += databases.id_offset
    return record


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
            KeyBudgets(config.rate_limit, config.rate_window_seconds, config.rate_headers)
            if config.rate_limit
            else None
        )
        self.collections = self._collections(config.seed, None, 0)
        if config.tenant_ids not in TENANT_ID_MODES:
            raise ValueError(
                f"tenant_ids must be one of {TENANT_ID_MODES}, not {config.tenant_ids!r}"
            )
        self.tenants: dict[str, Tenant] = {}
        #: Each tenant's key -> the tenant's name.
        self.tenant_by_key: dict[str, str] = {}
        for name in config.tenants:
            self.add_tenant(name)

    def _collections(
        self, seed: int, tenant: str | None, id_offset: int
    ) -> dict[tuple[str, str], Collection]:
        return {
            (vertical, name): Collection(
                shape, seed, self.config.count(vertical, name, tenant), id_offset
            )
            for vertical, shapes in VERTICALS.items()
            for name, shape in shapes.items()
        }

    def add_tenant(self, name: str) -> tuple[Tenant, bool]:
        """Serve ``name`` under ``/t/<name>`` (the caller holds the lock, or it is __init__):
        ``(the tenant, whether it is new)``.

        Raises:
            ValueError: not a valid tenant name.
        """
        check_tenant_name(name)
        if name in self.tenants:
            return self.tenants[name], False
        number = len(self.tenants) + 1
        seed = tenant_seed(self.config.seed, name)
        offset = number * ID_STRIDE if self.config.tenant_ids == "distinct" else 0
        tenant = Tenant(name, number, tenant_api_key(self.config.seed, name), seed, offset)
        tenant.collections = self._collections(seed, name, offset)
        self.tenants[name] = tenant
        self.tenant_by_key[tenant.key] = name
        return tenant, True

    def tenant(self, name: str) -> Tenant:
        """The tenant called ``name``.

        Raises:
            KeyError: no such tenant.
        """
        if name not in self.tenants:
            raise KeyError(f"no tenant {name!r}")
        return self.tenants[name]

    def collection(self, qualified: str, tenant: str | None = None) -> Collection:
        """``vertical.collection`` -> its state (``tenant``'s, when given).

        Raises:
            KeyError: no such collection or tenant.
        """
        vertical, _, name = qualified.partition(".")
        collections = self.tenant(tenant).collections if tenant else self.collections
        return collections[(vertical, name)]

    def note_key(
        self, tenant: Tenant | None, route: str | None, key: str | None, status: int, at: float
    ) -> None:
        """Count a request that presented ``key``: on ``tenant``'s record when it went to a
        tenant's routes; on the key owner's ``key_used_on`` when it went anywhere else than the
        owner's routes (``route``: the tenant named in the path, or ``"plain"`` for the routes
        outside ``/t/``)."""
        with self.lock:
            owner = "none" if key is None else self.tenant_by_key.get(key, "unknown")
            if tenant is not None:
                tenant.record.note(status, owner, at)
                if owner in self.tenants and owner != tenant.name:
                    tenant.record.cross_tenant[owner] += 1
            if owner in self.tenants and owner != route:
                self.tenants[owner].record.key_used_on[route or "plain"] += 1

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

    def fault_for(
        self, request_key: str, tenant: Tenant | None = None
    ) -> tuple[int, int | None] | None:
        """The fault to answer ``request_key`` with, if any: ``(status, retry_after)``."""
        cfg = self.config
        with self.lock:
            if time.monotonic() < self.outage_until:
                return 503, cfg.outage_retry_after
            if tenant is not None and time.monotonic() < tenant.outage_until:
                return 503, tenant.outage_retry_after
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
            # A tenant's routes: the same routes under /t/<tenant> (demo_api/tenants.py).
            self.tenant_name, self.inner_path = split_tenant_path(parts.path)
            with state.lock:
                self.tenant = state.tenants.get(self.tenant_name or "")
            if method == "GET" and parts.path.endswith("/openapi.json"):  # no key: public docs
                host = self.headers.get("Host") or f"{state.config.host}:{self.server.server_port}"
                cfg = state.config
                if self.tenant_name is not None and self.tenant is None:
                    self._send(*self._no_tenant())
                    return
                self._send(
                    *openapi_response(
                        self.inner_path, host, cfg.seed, cfg.max_page_size, self.tenant_name
                    )
                )
                return
            if parts.path == "/oauth/token" and method == "POST":
                form = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = state.tokens.issue(form)
                state.record(SeenRequest(method, parts.path, {}, status, time.time(), False))
                self._send(status, answer, {})
                return
            # One budget per key presented, whichever way it is presented.
            budget, key = state.budget, presented_key(params, self.headers)
            allowed, budget_headers = budget.take(key or "") if budget else (True, {})
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
            state.note_key(self.tenant, self.tenant_name, key, status, seen.at)
            self._send(status, body, headers)
        finally:
            state.leave()

    def _no_tenant(self) -> tuple[int, Any, dict[str, str]]:
        return 404, {"error": "not_found", "message": f"no tenant {self.tenant_name!r}"}, {}

    def _collections(self) -> dict[tuple[str, str], Collection]:
        """The collections this request reads: its tenant's, or the server's own."""
        state = self.server.state
        return self.tenant.collections if self.tenant is not None else state.collections

    def _api(
        self, method: str, path: str, params: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        cfg = state.config
        if cfg.latency_ms > 0:
            time.sleep(cfg.latency_ms / 1000)
        if self.tenant_name is not None and self.tenant is None:
            return self._no_tenant()
        segments = [s for s in self.inner_path.split("/") if s]
        if len(segments) == 3 and segments[0] in VERTICALS and segments[1] == "graphql":
            return self._graphql(method, segments[0], segments[2], path, params)
        if len(segments) >= 3 and segments[0] in VERTICALS and segments[1] == "reports":
            return self._report(method, segments, path, params)
        if (
            len(segments) < 3
            or segments[0] not in VERTICALS
            or segments[1] not in (*SHAPES, "links")
        ):
            return 404, {"error": "not_found", "message": f"no such endpoint: {path}"}, {}
        vertical = segments[0]
        if method != "GET":
            return 405, {"error": "method_not_allowed"}, {}
        if not self._authorized(vertical, params):
            return 401, {"error": "unauthorized", "message": "invalid or missing api_key"}, {}
        request_key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        fault = state.fault_for(request_key, self.tenant)
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, {"error": "transient", "message": f"injected {status}"}, headers
        if segments[1] == "links":
            return self._links(vertical, segments[2:], params)
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
            since, until = narrowed(since, until, params)
        except ValueError:
            message = "updated_since/until: ISO-8601; updated_on: an operator and ISO-8601"
            return 400, {"error": "bad_request", "message": message}, {}
        widest = cfg.max_range_seconds
        if widest is not None and (
            since is None or until is None or (until - since).total_seconds() > widest
        ):
            message = f"give updated_since and updated_until at most {widest:g} s apart"
            return 400, {"error": "range_too_wide", "message": message}, {}
        with state.lock:
            current = self._collections()[(vertical, collection[0])]
            ids = current.ids(since, until)
            total = len(ids)
            served = capped(limit, cfg.page_size_cap)
            rows = [current.record(i) for i in ids[offset : offset + served]]
            broken = self._broken(path, request_key, offset)
            if broken in CSV_MISBEHAVIOURS:
                return shaped(segments[1], rows, total, offset, broken)
            if broken is not None:
                first_page = [current.record(i) for i in ids[0:limit]]
                return misbehaving(broken, rows, total, first_page, request_key)
        status, body, headers = shaped(segments[1], rows, total, offset)
        if cfg.page_size_cap is not None and cfg.page_size_echo and isinstance(body, dict):
            body[cfg.page_size_echo] = served
        return status, body, headers

    def _links(
        self, vertical: str, collection: list[str], params: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """``/<vertical>/links/<collection>``: pages told by next links (demo_api/paging.py)."""
        state = self.server.state
        if len(collection) != 1 or collection[0] not in VERTICALS[vertical]:
            return 404, {"ok": False, "error": f"no such table: {'/'.join(collection)}"}, {}
        try:
            since = parse_instant(params["updated_since"]) if params.get("updated_since") else None
            since, until = narrowed(since, None, params)
        except ValueError:
            return 400, {"ok": False, "error": "updated_since/updated_on: ISO-8601"}, {}
        host = self.headers.get("Host") or f"{state.config.host}:{self.server.server_port}"
        prefix = tenant_path(self.tenant_name) if self.tenant_name else ""
        base = f"http://{host}{prefix}/{vertical}/links/{collection[0]}"
        with state.lock:
            current = self._collections()[(vertical, collection[0])]
            return linked_page(
                current,
                current.ids(since, until),
                params,
                lambda following: f"{base}?{query(following)}",
                state.config.page_size_cap,
            )

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
        prefix = tenant_path(self.tenant_name) if self.tenant_name else ""
        base = f"{prefix}/{vertical}/reports/{name}"
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
                current = self._collections()[(vertical, name)]
                rows = [current.record(i) for i in current.ids(None, None)]
            return shaped("jsonl", rows, len(rows), 0)
        return 404, {"error": "not_found", "message": f"no such endpoint: {path}"}, {}

    def _authorized(self, vertical: str, params: dict[str, str]) -> bool:
        state = self.server.state
        if self.tenant is not None:  # its own key only, and not once revoked
            with state.lock:
                revoked, key = self.tenant.revoked, self.tenant.key
            return not revoked and presented_key(params, self.headers) == key
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

        collections = self._collections()

        def page(offset: int, limit: int | None) -> tuple[list[dict[str, Any]], int]:
            current = collections[(vertical, name)]
            ids = current.ids(None, None)
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
            orders = self._collections()[("ecommerce", "orders")]
            index = int(raw_id) - 1 - orders.id_offset if raw_id.isdigit() else -1
            if not 0 <= index < orders.total:
                return 404, {"error": "not_found", "message": f"no order {raw_id}"}, {}
            order = orders.record(index)
        lines = [{"order_id": order["id"], **line} for line in order["line_items"]]
        return 200, {"data": lines, "total": len(lines)}, {}

    def _database(
        self, raw_id: str, what: str, offset: int, limit: int
    ) -> tuple[int, Any, dict[str, str]]:
        cfg = self.server.state.config
        databases = self._collections()[("database", "databases")]
        shift = databases.id_offset
        database_id = int(raw_id) - shift if raw_id.isdigit() else 0
        if not 1 <= database_id <= databases.base_count:
            return 404, {"error": "not_found", "message": f"no database {raw_id}"}, {}
        if what == "schema":
            fields = database_records_schema(database_id)
            return 200, {"database_id": database_id + shift, "fields": fields}, {}
        if what != "records":
            return 404, {"error": "not_found", "message": f"no such endpoint: {what}"}, {}
        total = cfg.records_per_database
        rows = [
            database_record(databases, database_id, i)
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
                    params.get("tenant") or None,
                )
            except (KeyError, ValueError) as exc:
                self._send(400, {"error": f"bad advance request: {exc}"}, {})
                return
            self._send(200, changed, {})
        elif path == "/_demo/schema" and method == "POST":
            try:
                drop, retype, add = (
                    {f for f in params.get(k, "").split(",") if f}
                    for k in ("drop", "retype", "add")
                )
                self.server.change_schema(
                    params.get("collection", ""), drop, retype, add, params.get("tenant") or None
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
        elif path == "/_demo/tenants" or path.startswith("/_demo/tenants/"):
            self._tenants_admin(method, path, params)
        else:
            self._send(404, {"error": "not_found"}, {})

    def _tenants_admin(self, method: str, path: str, params: dict[str, str]) -> None:
        """``GET /_demo/tenants`` (every tenant's record) and ``POST /_demo/tenants/<action>
        ?tenant=NAME`` with action ``add``, ``revoke``, ``restore`` or ``outage`` (``&seconds=N``,
        optional ``&retry_after=S``)."""
        server, action = self.server, path.removeprefix("/_demo/tenants").strip("/")
        if method == "GET" and action == "":
            self._send(200, {"tenants": server.tenant_records()}, {})
            return
        if method != "POST" or action not in ("add", "revoke", "restore", "outage"):
            self._send(404, {"error": "not_found"}, {})
            return
        name = params.get("tenant", "")
        try:
            if action == "add":
                key, added = server.add_tenant(name)
                answer = {"tenant": name, "added": added, "api_key": key, "path": tenant_path(name)}
            elif action == "outage":
                seconds = float(params.get("seconds", "0"))
                retry_after = int(params["retry_after"]) if params.get("retry_after") else None
                server.tenant_outage(name, seconds, retry_after)
                answer = {"tenant": name, "outage_seconds": seconds}
            else:
                server.set_revoked(name, action == "revoke")
                answer = {"tenant": name, "revoked": action == "revoke"}
        except (KeyError, ValueError) as exc:
            self._send(400, {"error": str(exc.args[0]) if exc.args else repr(exc)}, {})
            return
        self._send(200, answer, {})

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
                # Requests asked in each window of the rate budget, one list per API key.
                "rate_windows": self.state.budget.windows() if self.state.budget else [],
            }

    def seen(self) -> list[SeenRequest]:
        with self.state.lock:
            return list(self.state.log)

    def start_outage(self, seconds: float) -> None:
        with self.state.lock:
            self.state.outage_until = time.monotonic() + seconds

    def set_rate_limit(self, limit: int | None, window: float, style: str) -> None:
        budget = KeyBudgets(limit, window, style) if limit else None
        with self.state.lock:
            self.state.budget = budget

    def advance(
        self,
        collection: str,
        insert: int,
        update: int,
        hours: float,
        delete: int = 0,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        with self.state.lock:
            current = self.state.collection(collection, tenant)
            return current.advance(insert, update, hours, delete)

    def change_schema(
        self,
        collection: str,
        drop: set[str],
        retype: set[str],
        add: set[str],
        tenant: str | None = None,
    ) -> None:
        with self.state.lock:
            self.state.collection(collection, tenant).change_schema(drop, retype, add)

    def expected(
        self, collection: str, since: Any = None, until: Any = None, tenant: str | None = None
    ) -> list[dict[str, Any]]:
        with self.state.lock:
            if collection == "database.records":  # every database's, served below each one
                databases = self.state.collection("database.databases", tenant)
                return [
                    database_record(databases, db, i)
                    for db in range(1, databases.base_count + 1)
                    for i in range(self.state.config.records_per_database)
                ]
            current = self.state.collection(collection, tenant)
            return [current.record(i) for i in current.ids(since, until)]

    def add_tenant(self, name: str) -> tuple[str, bool]:
        with self.state.lock:
            tenant, added = self.state.add_tenant(name)
            return tenant.key, added

    def set_revoked(self, name: str, revoked: bool) -> None:
        with self.state.lock:
            self.state.tenant(name).revoked = revoked

    def tenant_outage(self, name: str, seconds: float, retry_after: int | None) -> None:
        with self.state.lock:
            tenant = self.state.tenant(name)
            tenant.outage_until = time.monotonic() + seconds
            tenant.outage_retry_after = retry_after

    def tenant_records(self) -> dict[str, dict[str, Any]]:
        with self.state.lock:
            tenants = list(self.state.tenants.values())
            budget = self.state.budget
            records = {
                t.name: {**t.record.as_dict(), "number": t.number, "revoked": t.revoked}
                for t in tenants
            }
        for tenant in tenants:
            windows = budget.windows_of(tenant.key) if budget else []
            records[tenant.name]["rate_windows"] = windows
        return records

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
            for tenant in self.state.tenants.values():
                tenant.record = TenantRecord()


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
        tenant: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every record ``vertical``'s ``collection`` serves now (``updated_at`` in
        ``[since, until)`` when given), as the API serves it (to ``tenant``, when given)."""
        return self._require_server().expected(
            f"{vertical}.{collection}",
            parse_instant(since) if since else None,
            parse_instant(until) if until else None,
            tenant,
        )

    def advance(
        self,
        collection: str,
        insert: int = 0,
        update: int = 0,
        hours: float = 1.0,
        delete: int = 0,
        tenant: str | None = None,
    ) -> dict[str, list[int]]:
        """Move ``vertical.collection``'s simulated clock ``hours`` on, inserting, updating and
        soft-deleting (``deleted_at`` set) records within that time (``tenant``'s collection,
        when given). Returns the ids of each."""
        return self._require_server().advance(collection, insert, update, hours, delete, tenant)

    def change_schema(
        self,
        collection: str,
        drop: Iterable[str] = (),
        retype: Iterable[str] = (),
        add: Iterable[str] = (),
        tenant: str | None = None,
    ) -> None:
        """Serve ``vertical.collection``'s records without ``drop`` fields, with ``retype`` fields
        as strings and with extra ``add`` fields (all empty: as designed); ``tenant``'s only,
        when given."""
        self._require_server().change_schema(collection, set(drop), set(retype), set(add), tenant)

    # Tenants (demo_api/tenants.py): the same routes under /t/<tenant>, one key each.

    @property
    def tenants(self) -> list[str]:
        """The tenants served now, in the order they were added."""
        return list(self._require_server().tenant_records())

    def tenant_key(self, tenant: str) -> str:
        """The one key ``tenant``'s routes accept (known without the server: deterministic)."""
        return tenant_api_key(self.config.seed, check_tenant_name(tenant))

    def tenant_url(self, tenant: str, vertical: str = "") -> str:
        """Base URL of ``tenant``'s ``vertical`` (or of all its routes when empty)."""
        return self.url() + tenant_path(check_tenant_name(tenant), vertical)

    def add_tenant(self, tenant: str) -> str:
        """Serve ``tenant`` from now on (nothing changes if it is served already); its key.

        Raises:
            ValueError: not a valid tenant name.
        """
        key, _ = self._require_server().add_tenant(tenant)
        return key

    def revoke_tenant(self, tenant: str, revoked: bool = True) -> None:
        """``tenant``'s key answers 401 from now on (``revoked=False``: valid again)."""
        self._require_server().set_revoked(tenant, revoked)

    def tenant_outage(self, tenant: str, seconds: float, retry_after: int | None = None) -> None:
        """Answer 503 to ``tenant``'s requests for the next ``seconds`` (the others answer)."""
        self._require_server().tenant_outage(tenant, seconds, retry_after)

    def tenant_records(self) -> dict[str, dict[str, Any]]:
        """What reached each tenant's routes since the start (or :meth:`reset_log`): requests,
        statuses, ``keys_seen`` (by owner), ``cross_tenant`` (other tenants' keys presented),
        ``key_used_on`` (tenants whose routes got this one's key), ``rate_limited`` (429s sent),
        ``rate_windows`` (requests its key asked per window of the budget), ``first_at`` and
        ``last_at`` (epoch seconds), ``revoked``, ``number``. Also ``GET /_demo/tenants``."""
        return self._require_server().tenant_records()

    def _require_server(self) -> _DemoHTTPServer:
        if self._server is None:
            raise RuntimeError("the demo API is not running; call start() first")
        return self._server
