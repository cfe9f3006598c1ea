"""A tenant's rows in tables every tenant shares (``tenants.tables: shared``).

Built from dlt's own pieces: ``DltResource.add_map`` puts the tenant column on every record of
every resource, first in the pipe (before the incremental step, the processing steps and the
Arrow step: each sees the column as if the API had sent it), and ``DltResource.apply_hints``
extends the primary key and the merge key with it. What restsync adds: the key of a row is its
key *within its tenant*, so a tenant's merge (delete-insert or upsert) matches, replaces and
deletes only that tenant's rows, and the nested tables' rows that hang off them
(``_dlt_root_id``); two tenants whose APIs use the same ids keep both rows. A record that
already carries the column with another value fails the run (the rows would land under the
wrong tenant): rename ``tenants.column``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restsync_dagster.connector import Connector
from restsync_dagster.connector.resources import primary_key_tuple
from restsync_dagster.failures.errors import ConfigurationError

if TYPE_CHECKING:
    from dlt.extract.source import DltSource


class TenantColumn:
    """The map that sets ``column`` to ``tenant`` on each record."""

    def __init__(self, connector: str, resource: str, column: str, tenant: str) -> None:
        self.connector, self.resource, self.column, self.tenant = (
            connector,
            resource,
            column,
            tenant,
        )

    def __call__(self, record: Any) -> Any:
        if not isinstance(record, dict):
            raise ConfigurationError(
                f"connector {self.connector!r}, resource {self.resource!r}: a record is a "
                f"{type(record).__name__}, not an object, so it cannot carry the tenant column "
                f"{self.column!r}; use 'tenants.tables: datasets' for this API"
            )
        found = record.get(self.column, self.tenant)
        if found != self.tenant:
            raise ConfigurationError(
                f"connector {self.connector!r}, resource {self.resource!r}: the API's records "
                f"have a field {self.column!r} ({found!r}), the column restsync fills with the "
                f"tenant ({self.tenant!r}); set 'tenants.column' to another name"
            )
        record[self.column] = self.tenant
        return record


def tag_tenant_rows(connector: Connector, source: DltSource) -> None:
    """With ``tables: shared``, tag every record of ``source``'s resources with the tenant
    ``connector`` is bound to, and make the tenant column part of each key; otherwise do
    nothing."""
    tenants = connector.config.tenants
    if connector.tenant is None or tenants is None or tenants.tables != "shared":
        return
    column = tenants.column
    for name, resource in source.resources.items():
        info = connector.resource(name)
        resource.add_map(TenantColumn(connector.name, name, column, connector.tenant), insert_at=1)
        hints: dict[str, Any] = {
            "columns": {column: {"name": column, "data_type": "text", "nullable": False}}
        }
        if info.primary_key:
            hints["primary_key"] = [*info.primary_key, column]
        merge_key = primary_key_tuple(info.merged.get("merge_key"))
        if merge_key:
            hints["merge_key"] = [*merge_key, column]
        resource.apply_hints(**hints)
