"""The connector files the soak syncs: written for it, quick to retry, covering what can go wrong.

``soakshop`` (the demo API's e-commerce vertical): ``customers`` re-read whole and merged,
``orders`` incremental on ``updated_at`` with a child table (``orders__line_items``) and soft
deletes turned into hard ones (dlt's ``hard_delete`` hint on ``deleted_at``). ``soakauth`` (the
generic vertical): ``items`` through an OAuth refresh-token grant whose access tokens the soak
makes expire. HTTP retries are few and short, so outages outlast them; retry runs come after a
second, so the retry sensor's layer is seen within a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_RETRIES = 2
HTTP_RETRIES = 2
HTTP_BACKOFF = 0.2
TIMEOUT_SECONDS = 2

_COMMON = f"""schedule: "*/5 * * * *"
retry:
  statuses: [429, 500, 502, 503, 504]
  max_retries: {HTTP_RETRIES}
  backoff_factor: {HTTP_BACKOFF}
  run_retries: {RUN_RETRIES}
  run_base_delay_seconds: 0.5
timeout_seconds: {TIMEOUT_SECONDS}
"""

SHOP = (
    """name: soakshop
"""
    + _COMMON
    + """source:
  client:
    base_url: "{{ env.SOAKSHOP_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.SOAKSHOP_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: customers
      endpoint: {path: /v1/customers, data_selector: data, paginator: {type: offset, limit: 50}}
    - name: orders
      columns:
        deleted_at: {data_type: timestamp, nullable: true, hard_delete: true}
      endpoint:
        path: /v1/orders
        data_selector: data
        paginator: {type: offset, limit: 50}
        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""
)

AUTH = (
    """name: soakauth
"""
    + _COMMON
    + """source:
  client:
    base_url: "{{ env.SOAKAUTH_BASE_URL }}"
    auth:
      type: oauth2_refresh_token
      access_token_url: "{{ env.SOAKAUTH_TOKEN_URL }}"
      client_id: demo-client
      client_secret: "{{ env.SOAKAUTH_CLIENT_SECRET }}"
      refresh_token: "{{ env.SOAKAUTH_REFRESH_TOKEN }}"
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint: {path: /v1/items, data_selector: data, paginator: {type: offset, limit: 50}}
"""
)


@dataclass(frozen=True)
class Table:
    """A table the soak compares with the API: which collection feeds it, how it is synced."""

    connector: str
    resource: str
    collection: str  # vertical.collection on the demo API
    incremental: bool = False
    #: Soft-deleted records (``deleted_at`` set) are removed from the table (``hard_delete``).
    deletes: bool = False
    child: str | None = None  # the nested list that lands as <resource>__<child>

    @property
    def path(self) -> str:
        """The request path on the demo API."""
        vertical, _, name = self.collection.partition(".")
        return f"/{vertical}/v1/{name}"


TABLES = (
    Table("soakshop", "customers", "ecommerce.customers"),
    Table("soakshop", "orders", "ecommerce.orders", True, True, "line_items"),
    Table("soakauth", "items", "generic.items"),
)
CONNECTORS = ("soakshop", "soakauth")


def write_connectors(directory: Path) -> None:
    """The two connector files, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "soakshop.yaml").write_text(SHOP, encoding="utf-8")
    (directory / "soakauth.yaml").write_text(AUTH, encoding="utf-8")


def connector_env(api_url: str) -> dict[str, str]:
    """The variables the two connectors read (the demo API's default keys and OAuth client)."""
    return {
        "SOAKSHOP_BASE_URL": f"{api_url}/ecommerce",
        "SOAKSHOP_API_KEY": "demo-ecommerce-key",
        "SOAKAUTH_BASE_URL": f"{api_url}/generic",
        "SOAKAUTH_TOKEN_URL": f"{api_url}/oauth/token",
        "SOAKAUTH_CLIENT_SECRET": "demo-client-secret",
        "SOAKAUTH_REFRESH_TOKEN": "demo-refresh-token",
    }
