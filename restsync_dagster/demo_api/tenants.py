"""The demo API's tenants: one API serving many accounts, each with its own key, data and faults.

A tenant's routes are every demo route under ``/t/<tenant>``: ``/t/acme/generic/v1/items``,
``/t/acme/ecommerce/openapi.json``..., so a base URL (``http://127.0.0.1:8765/t/acme/generic``)
carries the tenant, as multi-tenant APIs do with a path or a host name. On its routes:

* only the tenant's own key works (``api_key`` in the query, ``Authorization: Bearer <key>`` or
  ``X-API-Key``); another tenant's key answers 401 and is recorded as a cross-tenant use on both
  tenants' records; an unknown tenant answers 404;
* its data is its own: records come from a seed made of the server's seed and the tenant's name
  (:func:`tenant_seed`), so every tenant's records differ in content; ids are ``1..N`` for every
  tenant (``tenant_ids="overlap"``: two accounts both have an order 1, which a shared table
  keyed without the tenant would mix up) or a range of its own (``"distinct"``: tenant number
  ``k`` from 1 in the order tenants were added, ids ``k * ID_STRIDE + 1...``);
* its key can be revoked (401 from then on, until restored) and it can have an outage of its own
  (503 for N seconds) while the other tenants answer;
* :class:`TenantRecord` counts what reached it: requests, statuses, whose keys were presented,
  cross-tenant attempts, the 429s it was sent; and where else its own key was presented.

Keys look like ``tk_<tenant>_<16 hex digits>``: distinctive (a secret of one tenant can be looked
for in another's requests) and deterministic from the seed and the name (:func:`tenant_api_key`),
so a test, or a second process, knows them without asking the server.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from restsync_dagster.demo_api.collections import Collection

#: A tenant's name: what a connector file's ``tenants.keys`` allows.
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: Every tenant route starts with this, then the tenant's name.
TENANT_PREFIX = "/t/"
#: With ``tenant_ids="distinct"``, tenant ``k``'s ids start at ``k * ID_STRIDE + 1``.
ID_STRIDE = 1_000_000_000
TENANT_ID_MODES = ("overlap", "distinct")


def check_tenant_name(name: str) -> str:
    """``name`` if it is a valid tenant name.

    Raises:
        ValueError: it is not (lowercase letters, digits, ``_`` and ``-``, at most 63).
    """
    if not TENANT_NAME.match(name):
        raise ValueError(
            f"tenant {name!r}: use lowercase letters, digits, '_' and '-' (at most 63, "
            "starting with a letter or digit)"
        )
    return name


def tenant_seed(seed: int, tenant: str) -> int:
    """The seed of ``tenant``'s records: different for every tenant, the same on every run."""
    return zlib.crc32(f"{seed}:{tenant}".encode())


def tenant_api_key(seed: int, tenant: str) -> str:
    """The one key ``tenant``'s routes accept (``tk_<tenant>_<16 hex>``)."""
    digest = hashlib.sha256(f"restsync-demo:{seed}:{tenant}".encode()).hexdigest()
    return f"tk_{tenant}_{digest[:16]}"


def tenant_names(count: int) -> list[str]:
    """``count`` tenant names, ``t01``, ``t02``... (zero-padded to sort in order)."""
    width = max(2, len(str(count)))
    return [f"t{n:0{width}d}" for n in range(1, count + 1)]


def tenant_path(tenant: str, vertical: str = "") -> str:
    """The path prefix of ``tenant``'s routes (of its ``vertical`` when given)."""
    base = f"{TENANT_PREFIX}{tenant}"
    return f"{base}/{vertical}" if vertical else base


def split_tenant_path(path: str) -> tuple[str | None, str]:
    """``/t/acme/generic/v1/items`` -> ``("acme", "/generic/v1/items")``; other paths -> ``(None,
    path)``."""
    if not path.startswith(TENANT_PREFIX):
        return None, path
    name, slash, rest = path[len(TENANT_PREFIX) :].partition("/")
    return name, slash + rest


def presented_key(params: dict[str, str], headers: Any) -> str | None:
    """The key a request presents: ``api_key`` in the query, else ``Authorization: Bearer``,
    else ``X-API-Key``."""
    if params.get("api_key"):
        return params["api_key"]
    authorization = headers.get("Authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("X-API-Key") or None


@dataclass
class TenantRecord:
    """What reached one tenant's routes (secrets left out: keys are told by their owner)."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    #: Whose keys the requests presented: a tenant's name, ``"unknown"`` or ``"none"``.
    keys_seen: Counter[str] = field(default_factory=Counter)
    #: Other tenants whose keys were presented here (each answered 401).
    cross_tenant: Counter[str] = field(default_factory=Counter)
    #: Where else this tenant's key was presented: other tenants (their names, unknown ones
    #: too) and ``"plain"`` (the routes outside ``/t/``).
    key_used_on: Counter[str] = field(default_factory=Counter)
    first_at: float | None = None
    last_at: float | None = None

    def note(self, status: int, key_owner: str, at: float) -> None:
        """Count one request to these routes, answered ``status``."""
        self.requests += 1
        self.statuses[status] += 1
        self.keys_seen[key_owner] += 1
        self.first_at = at if self.first_at is None else self.first_at
        self.last_at = at

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON values (what ``GET /_demo/tenants`` answers per tenant)."""
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "keys_seen": dict(sorted(self.keys_seen.items())),
            "cross_tenant": dict(sorted(self.cross_tenant.items())),
            "cross_tenant_attempts": sum(self.cross_tenant.values()),
            "key_used_on": dict(sorted(self.key_used_on.items())),
            "rate_limited": self.statuses.get(429, 0),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


@dataclass
class Tenant:
    """One tenant of the demo API; the server's lock guards every field."""

    name: str
    #: 1 for the first tenant added, 2 for the next...: its id range with ``"distinct"`` ids.
    number: int
    key: str
    seed: int
    #: Added to its records' ids: 0, or ``number * ID_STRIDE`` with ``"distinct"`` ids.
    id_offset: int = 0
    revoked: bool = False
    outage_until: float = 0.0
    outage_retry_after: int | None = None
    #: Its own collections, ``(vertical, name)`` -> state, as the server's own.
    collections: dict[tuple[str, str], Collection] = field(default_factory=dict)
    record: TenantRecord = field(default_factory=TenantRecord)
