"""Deterministic records for the bundled demo API.

Record ``i`` of a resource is a pure function of ``(seed, vertical, resource, i)``: no state, no
random generator, so a page can be produced in O(page size) for any offset and two servers with the
same seed serve the same bytes. Integer hashing keeps generation cheap enough that the demo API is
never the bottleneck of a benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Record = dict[str, Any]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_COUNTRIES = ("US", "DE", "FR", "GB", "BR", "IN", "JP", "CA", "NL", "ES")
_CURRENCIES = ("USD", "EUR", "GBP")


def _mix(seed: int, salt: int, i: int) -> int:
    """A 32-bit integer hash of ``(seed, salt, i)`` (splitmix-style avalanche)."""
    x = (i * 0x9E3779B1 + salt * 0x85EBCA77 + seed * 0xC2B2AE3D) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def _ts(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pick(options: tuple[str, ...], h: int) -> str:
    return options[h % len(options)]


def _money(h: int, scale: int = 100_000) -> float:
    return round((h % scale) / 100, 2)


def generic_customers(seed: int, i: int) -> Record:
    h = _mix(seed, 101, i)
    return {
        "id": i + 1,
        "customer_id": f"cus_{h % 1_000_000:06d}",
        "name": f"Customer {i + 1}",
        "email": f"customer{i + 1}@example.com",
        "country": _pick(_COUNTRIES, h >> 3),
        "status": _pick(("active", "churned", "trial"), h >> 7),
        "lifetime_value": None if h % 7 == 0 else _money(h >> 2, 10_000_000),
        "is_active": h % 3 != 0,
        "created_at": _ts(i * 3600),
        "updated_at": _ts(i * 3600 + h % 86_400),
    }


def generic_items(seed: int, i: int) -> Record:
    h = _mix(seed, 102, i)
    return {
        "id": i + 1,
        "resource_id": f"res_{i + 1:08d}",
        "customer_id": f"cus_{(h >> 4) % 1_000_000:06d}",
        "kind": _pick(("document", "file", "note", "task"), h),
        "quantity": h % 50,
        "amount": _money(h >> 5),
        "currency": _pick(_CURRENCIES, h >> 9),
        "note": None if h % 4 else f"note {h % 997}",
        "created_at": _ts(i * 600),
        "updated_at": _ts(i * 600 + h % 7200),
    }


def analytics_events(seed: int, i: int) -> Record:
    h = _mix(seed, 201, i)
    return {
        "id": i + 1,
        "session_id": i // 8 + 1,
        "customer_id": f"cus_{(h >> 3) % 1_000_000:06d}",
        "event_type": _pick(("page_view", "click", "signup", "purchase", "search"), h),
        "page": f"/page/{h % 40}",
        "referrer": None if h % 3 else f"https://referrer{h % 9}.example.org/",
        "duration_ms": h % 30_000,
        "occurred_at": _ts(i * 15),
        "updated_at": _ts(i * 15 + h % 60),
        "is_bot": h % 97 == 0,
    }


def analytics_sessions(seed: int, i: int) -> Record:
    h = _mix(seed, 202, i)
    start = i * 120
    return {
        "id": i + 1,
        "customer_id": f"cus_{(h >> 3) % 1_000_000:06d}",
        "device": _pick(("desktop", "mobile", "tablet"), h),
        "country": _pick(_COUNTRIES, h >> 5),
        "pageviews": 1 + h % 25,
        "started_at": _ts(start),
        "ended_at": None if h % 10 == 0 else _ts(start + h % 3600),
        "utm_campaign": None if h % 2 else f"campaign_{h % 12}",
        "updated_at": _ts(start + 3600),
    }


def ecommerce_customers(seed: int, i: int) -> Record:
    h = _mix(seed, 301, i)
    return {
        "id": i + 1,
        "customer_id": f"cus_{i + 1:06d}",
        "email": f"shopper{i + 1}@example.com",
        "name": f"Shopper {i + 1}",
        "country": _pick(_COUNTRIES, h),
        "marketing_opt_in": h % 2 == 0,
        "phone": None if h % 5 == 0 else f"+1555{h % 10_000_000:07d}",
        "created_at": _ts(i * 1800),
        "updated_at": _ts(i * 1800 + h % 86_400),
    }


def ecommerce_products(seed: int, i: int) -> Record:
    h = _mix(seed, 302, i)
    return {
        "id": i + 1,
        "sku": f"SKU-{i + 1:06d}",
        "name": f"Product {i + 1}",
        "category": _pick(("apparel", "books", "electronics", "garden", "toys"), h),
        "price": _money(h >> 2, 50_000),
        "currency": _pick(_CURRENCIES, h >> 6),
        "in_stock": h % 6 != 0,
        "discontinued_at": _ts(i * 86_400) if h % 11 == 0 else None,
        "updated_at": _ts(i * 7200 + h % 3600),
    }


def ecommerce_orders(seed: int, i: int) -> Record:
    h = _mix(seed, 303, i)
    n_lines = 1 + h % 3
    line_items = []
    for line in range(n_lines):
        lh = _mix(seed, 304, i * 8 + line)
        line_items.append(
            {
                "line_number": line + 1,
                "product_id": 1 + lh % 500,
                "quantity": 1 + lh % 4,
                "unit_price": _money(lh >> 3, 50_000),
            }
        )
    created = i * 900
    return {
        "id": i + 1,
        "customer_id": f"cus_{1 + (h >> 4) % 5_000:06d}",
        "status": _pick(("pending", "paid", "shipped", "refunded"), h),
        "amount": round(sum(li["quantity"] * li["unit_price"] for li in line_items), 2),
        "currency": _pick(_CURRENCIES, h >> 8),
        "discount_code": None if h % 4 else f"SAVE{h % 30}",
        "created_at": _ts(created),
        "shipped_at": None if h % 3 == 0 else _ts(created + 86_400),
        "updated_at": _ts(created + h % 172_800),
        "line_items": line_items,
    }


def database_databases(seed: int, i: int) -> Record:
    h = _mix(seed, 401, i)
    return {
        "id": i + 1,
        "name": f"db_{i + 1}",
        "engine": _pick(("postgres", "mysql", "sqlserver"), h),
        "region": _pick(("us-east", "eu-west", "ap-south"), h >> 4),
        "created_at": _ts(i * 86_400),
        "updated_at": _ts(i * 86_400 + 3600),
    }


def database_records(seed: int, database_id: int, i: int) -> Record:
    h = _mix(seed, 402 + database_id * 7919, i)
    return {
        "id": database_id * 10_000_000 + i + 1,
        "database_id": database_id,
        "user_key": f"usr_{(h >> 2) % 100_000:05d}",
        "customer_id": f"cus_{(h >> 5) % 1_000_000:06d}",
        "value": f"value {h % 10_000}",
        "amount": _money(h >> 7),
        "deleted": None if h % 9 else True,
        "recorded_at": _ts(i * 300),
        "updated_at": _ts(i * 300 + h % 600),
    }


def communications_contacts(seed: int, i: int) -> Record:
    h = _mix(seed, 501, i)
    return {
        "id": i + 1,
        "customer_id": f"cus_{(h >> 2) % 1_000_000:06d}",
        "email": f"contact{i + 1}@example.com",
        "phone": None if h % 4 == 0 else f"+4930{h % 10_000_000:07d}",
        "channel_preference": _pick(("email", "sms", "voice"), h),
        "opted_out": h % 13 == 0,
        "created_at": _ts(i * 2400),
        "updated_at": _ts(i * 2400 + h % 43_200),
    }


def communications_messages(seed: int, i: int) -> Record:
    h = _mix(seed, 502, i)
    failed = h % 17 == 0
    return {
        "id": i + 1,
        "contact_id": 1 + (h >> 3) % 1_000,
        "customer_id": f"cus_{(h >> 5) % 1_000_000:06d}",
        "channel": _pick(("email", "sms", "voice"), h),
        "direction": _pick(("inbound", "outbound"), h >> 9),
        "status": "failed" if failed else _pick(("delivered", "sent", "read"), h >> 11),
        "error_code": (30000 + h % 10) if failed else None,
        "amount": round((h % 900) / 10_000, 4),
        "transaction_date": _ts(i * 60),
        "updated_at": _ts(i * 60 + h % 300),
    }


@dataclass(frozen=True)
class ResourceShape:
    """How the demo API serves one collection.

    Record ``i`` is created ``i * step_seconds`` after :data:`EPOCH` and last updated at most
    ``max_lag_seconds`` after that, which lets ``updated_since``/``updated_until`` filters find
    their candidates arithmetically instead of scanning every record.
    """

    path: str
    make: Callable[[int, int], Record]
    default_count: int
    step_seconds: int
    max_lag_seconds: int
    #: The field a simulated update changes (besides ``updated_at``).
    mutable_field: str


def mutate(record: Record, field_name: str, version: int) -> Record:
    """Record as changed by its ``version``-th simulated update."""
    value = record.get(field_name)
    if isinstance(value, bool):
        changed: Any = value if version % 2 == 0 else not value
    elif isinstance(value, int | float):
        changed = round(value + version, 2)
    elif value is None:
        changed = f"v{version}"
    else:
        changed = f"{value}-v{version}"
    return {**record, field_name: changed}


from restsync_dagster.demo_api.nested import generic_tickets  # noqa: E402 (uses the helpers above)

#: Top-level collections per vertical. The database vertical's per-database records are served
#: separately (see :func:`database_records`), below ``/v1/databases/{id}/records``.
VERTICALS: dict[str, dict[str, ResourceShape]] = {
    "generic": {
        "customers": ResourceShape("/v1/customers", generic_customers, 250, 3600, 86_400, "status"),
        "items": ResourceShape("/v1/items", generic_items, 420, 600, 7200, "quantity"),
        "tickets": ResourceShape("/v1/tickets", generic_tickets, 240, 300, 3600, "priority"),
    },
    "analytics": {
        "events": ResourceShape("/v1/events", analytics_events, 640, 15, 60, "duration_ms"),
        "sessions": ResourceShape("/v1/sessions", analytics_sessions, 180, 120, 3600, "pageviews"),
    },
    "ecommerce": {
        "customers": ResourceShape(
            "/v1/customers", ecommerce_customers, 230, 1800, 86_400, "marketing_opt_in"
        ),
        "products": ResourceShape("/v1/products", ecommerce_products, 120, 7200, 3600, "price"),
        "orders": ResourceShape("/v1/orders", ecommerce_orders, 510, 900, 172_800, "status"),
    },
    "database": {
        "databases": ResourceShape("/v1/databases", database_databases, 3, 86_400, 3600, "region"),
    },
    "communications": {
        "contacts": ResourceShape(
            "/v1/contacts", communications_contacts, 150, 2400, 43_200, "opted_out"
        ),
        "messages": ResourceShape("/v1/messages", communications_messages, 730, 60, 300, "status"),
    },
}

#: Records per database below ``/v1/databases/{id}/records`` unless overridden.
DEFAULT_RECORDS_PER_DATABASE = 210


def database_records_schema(database_id: int) -> list[dict[str, Any]]:
    """What ``/v1/databases/{id}/schema`` answers: the fields of that database's records.

    ``archived_at`` is declared but never sent: schema discovery must still create the column.
    """
    del database_id  # every demo database shares one layout
    return [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "database_id", "type": "bigint", "nullable": False},
        {"name": "user_key", "type": "text", "nullable": False},
        {"name": "customer_id", "type": "text", "nullable": False},
        {"name": "value", "type": "text", "nullable": True},
        {"name": "amount", "type": "decimal(12,2)", "nullable": False},
        {"name": "deleted", "type": "boolean", "nullable": True},
        {"name": "recorded_at", "type": "timestamp", "nullable": False},
        {"name": "updated_at", "type": "timestamp", "nullable": False},
        {"name": "archived_at", "type": "timestamp", "nullable": True},
    ]
