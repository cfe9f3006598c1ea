"""A request-free stand-in source whose resources mirror a connector's, for ``@dlt_assets``.

dagster-dlt derives asset specs from a ``DltSource``. Building the real ``rest_api_source`` costs
~20 ms per connector and needs every variable; this one costs ~1 ms, reads nothing and sends
nothing. Runs always build the real source (:mod:`restsync_dagster.extract.source`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restsync_dagster.connector import Connector

if TYPE_CHECKING:
    from dlt.extract.source import DltSource


def stand_in_source(connector: Connector, schema: Any | None = None) -> DltSource:
    """Empty resources named, keyed and disposed like ``connector``'s.

    Args:
        connector: The connector.
        schema: A dlt ``Schema`` to hold the stand-in resources; one can serve every connector
            of a code location (a new one costs ~3 ms).
    """
    import dlt
    from dlt.common.schema import Schema
    from dlt.extract.source import DltSource

    resources = [
        dlt.resource(  # type: ignore[call-overload]
            [],
            name=resource.name,
            table_name=resource.table_name,
            write_disposition=resource.write_disposition,  # type: ignore[arg-type]
            primary_key=list(resource.primary_key) or None,
        )
        for resource in connector.resources
    ]
    return DltSource(
        schema if schema is not None else Schema(connector.name), "restsync", resources
    )
