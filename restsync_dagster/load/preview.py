"""``restsync preview``: the first pages of a connector, inferred like a sync would, written nowhere.

The connector's real source is built (variables, retries, schema discovery, column hints), its
resources are read for at most N pages each, and the rows go through dlt's normalizer in a
temporary pipeline that is never loaded and is deleted afterwards: the columns shown are the ones
a sync would create. No table, no cursor and no pipeline state of the connector is touched.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restsync_dagster.connector import Connector
from restsync_dagster.extract.counters import HttpStats
from restsync_dagster.extract.http import session_for
from restsync_dagster.extract.source import build_source
from restsync_dagster.failures.errors import PreviewError
from restsync_dagster.failures.redaction import Redactor

__all__ = ["Preview", "PreviewError", "TablePreview", "preview"]


@dataclass
class TablePreview:
    """What a sync would create for one table."""

    name: str
    columns: list[tuple[str, str, bool]]
    rows: int
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Preview:
    """The outcome of a preview."""

    connector: str
    tables: list[TablePreview]
    #: ``(method, redacted url, status or None)`` per attempt, token requests included.
    requests: list[tuple[str, str, int | None]]
    #: Per resource, why its pages ended ("offset reached total 500", "no Link rel='next'...").
    stopped: dict[str, str] = field(default_factory=dict)
    #: Resources that ended after one full page with no next page found (see the warning).
    suspicious: list[str] = field(default_factory=list)


def preview(
    connector: Connector,
    env: Mapping[str, str],
    *,
    resource: str | None = None,
    pages: int = 1,
    samples: int = 3,
) -> Preview:
    """Read at most ``pages`` pages of each (or one) resource and infer their tables.

    Raises:
        PreviewError: ``resource`` is not one of the connector's.
        Exception: the HTTP or extraction error, with secrets masked by the caller's redactor.
    """
    import dlt

    names = [info.name for info in connector.resources]
    if resource is not None and resource not in names:
        raise PreviewError(
            f"connector {connector.name!r} has no resource {resource!r}; resources: {', '.join(names)}"
        )
    stats = HttpStats(keep_log=True)
    stopped: dict[str, str] = {}
    suspicious: list[str] = []

    def on_stop(name: str, why: str, one_full_page: bool) -> None:
        stopped[name] = why
        if one_full_page:
            suspicious.append(name)

    source = build_source(
        connector, env, session_for(connector, stats), max_pages=pages, on_stop=on_stop
    )
    if resource is not None:
        source = source.with_resources(resource)
    redactor = Redactor(env[n] for n in connector.secret_env if n in env)
    tables: list[TablePreview] = []
    # A throwaway pipeline and DuckDB file in a temporary directory: dlt infers exactly as in a
    # sync, and nothing of the connector's own pipeline, state or tables is touched.
    with tempfile.TemporaryDirectory(prefix="restsync-preview-") as tmp:
        pipeline = dlt.pipeline(
            pipeline_name=f"restsync_preview_{connector.name}",
            pipelines_dir=tmp,
            destination=dlt.destinations.duckdb(credentials=str(Path(tmp) / "scratch.duckdb")),
            dataset_name="preview",
        )
        pipeline.run(source)
        schema = pipeline.default_schema
        with pipeline.sql_client() as client:
            for table in schema.data_table_names():
                columns = [
                    (name, str(c.get("data_type")), bool(c.get("nullable", True)))
                    for name, c in schema.get_table_columns(table).items()
                    if not name.startswith("_dlt_")
                ]
                names = [c[0] for c in columns]
                qualified = client.make_qualified_table_name(table)
                count = client.execute_sql(f"select count(*) from {qualified}")
                picked = ", ".join(client.escape_column_name(n) for n in names)
                rows = client.execute_sql(f"select {picked} from {qualified} limit {samples}") or []
                tables.append(
                    TablePreview(
                        table,
                        columns,
                        int(count[0][0]) if count else 0,
                        [redactor.redact_value(dict(zip(names, row, strict=True))) for row in rows],
                    )
                )
        pipeline.drop()
    requests = [(m, redactor.redact(u), s) for m, u, s in stats.log or []]
    return Preview(connector.name, tables, requests, stopped, suspicious)
