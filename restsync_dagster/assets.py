"""Connector -> one ``@dlt_assets`` multi-asset: asset keys ``[connector, resource]``.

The asset body is thin: resolve the connector's variables, build the HTTP session and the real
dlt source, let ``DagsterDltResource.run`` load it, then add what dagster-dlt leaves out (the real
table name, rows loaded even when zero, the load id, the HTTP counters). Any failure becomes a
``dagster.Failure`` whose message and metadata name the connector, resource, status and redacted
URL, with the original exception chain dropped so no secret travels with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from restsync_dagster.destination import (
    build_pipeline,
    check_destination,
    destination_kind,
    forget_trace,
    qualified_table_name,
)
from restsync_dagster.failures import classify
from restsync_dagster.http import HttpStats, RetryPolicy, build_session, path_router
from restsync_dagster.redaction import Redactor
from restsync_dagster.resources import ConnectorEnv, env_resource_key, runtime_env
from restsync_dagster.settings import Settings
from restsync_dagster.sources import build_source, spec_source
from restsync_dagster.spec import Connector, ResourceInfo

#: Dagster's standard metadata key for the table an asset is stored in.
TABLE_NAME_KEY = "dagster/table_name"


def asset_key(connector: Connector, resource: str) -> dg.AssetKey:
    """``[connector, resource]``: the one place asset keys are decided."""
    return dg.AssetKey([connector.name, resource])


def pool_name(connector: Connector) -> str:
    """The concurrency pool that keeps one writer per connector pipeline."""
    return f"restsync_{connector.name}"


@dataclass
class RestsyncTranslator(DagsterDltTranslator):
    """Maps a dlt resource of a connector to its ``AssetSpec``, from the connector file alone."""

    connector: Connector
    settings: Settings
    _infos: dict[str, ResourceInfo] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._infos = {info.name: info for info in self.connector.resources}

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        connector, spec = self.connector, self.connector.spec
        info = self._infos[data.resource.name]
        pk = info.primary_key
        pk_text = ", ".join(pk) if isinstance(pk, tuple) else (pk or "none")
        table = qualified_table_name(connector, self.settings, info.table_name)
        description = (
            (f"{spec.description}\n\n" if spec.description else "")
            + f"`GET {info.path}` loaded by dlt into `{table}` ({info.write_disposition}, primary key: {pk_text})."
        )
        return dg.AssetSpec(
            key=asset_key(connector, info.name),
            deps=[asset_key(connector, info.parent)] if info.parent else [],
            description=description,
            group_name=connector.name,
            owners=list(spec.owners),
            tags=dict(spec.tags),
            kinds={"dlt", destination_kind(self.settings)},
            metadata={
                TABLE_NAME_KEY: table,
                "restsync/connector_file": connector.file.name,
                "restsync/endpoint": info.path,
            },
        )


def build_connector_assets(connector: Connector, settings: Settings) -> dg.AssetsDefinition:
    """One multi-asset for all resources of ``connector``; nothing here reads a secret."""
    key = env_resource_key(connector)

    def sync(
        context: dg.AssetExecutionContext, dlt: DagsterDltResource, **resources: Any
    ) -> Iterator[Any]:
        yield from run_sync(context, dlt, connector, resources[key])

    # The resource key differs per connector, so the parameter list is built, not written.
    # Dagster reads resource parameters from the signature and (before 1.13.2) their types from
    # ``__annotations__``: set both.
    annotations = {
        "context": dg.AssetExecutionContext,
        "dlt": DagsterDltResource,
        key: ConnectorEnv,
    }
    sync.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation)
            for name, annotation in annotations.items()
        ]
    )
    sync.__annotations__ = dict(annotations)
    sync.__name__ = f"{connector.name}_assets"
    sync.__doc__ = connector.spec.description or f"Sync of connector {connector.name}."
    return dlt_assets(
        dlt_source=spec_source(connector),
        dlt_pipeline=build_pipeline(connector, settings),
        name=f"{connector.name}_assets",
        dagster_dlt_translator=RestsyncTranslator(connector=connector, settings=settings),
        pool=pool_name(connector),
        op_tags={"restsync/connector": connector.name},
    )(sync)


def retry_policy(connector: Connector) -> RetryPolicy:
    """The connector's HTTP retry settings."""
    retry = connector.spec.retry
    return RetryPolicy(
        statuses=retry.statuses,
        max_retries=retry.max_retries,
        backoff_factor=retry.backoff_factor,
        max_delay_seconds=retry.max_delay_seconds,
        timeout_seconds=connector.spec.timeout_seconds,
    )


def run_sync(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    connector: Connector,
    env_resource: ConnectorEnv,
) -> Iterator[dg.MaterializeResult]:
    """Extract, normalize and load the selected resources of ``connector``; yield one
    materialization per resource once the load is committed."""
    settings = Settings.from_env()
    env = runtime_env(connector, env_resource.values())
    redactor = Redactor(env[name] for name in connector.secret_env if name in env)
    stats = HttpStats(path_router({info.name: info.path for info in connector.resources}))
    policy = retry_policy(connector)
    try:
        check_destination(connector, settings)
        source = build_source(connector, env, build_session(policy, stats))
        if settings.destination == "duckdb":
            settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        pipeline = build_pipeline(connector, settings)
        try:
            results = list(dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline))
        finally:
            forget_trace(pipeline)
    except Exception as exc:
        failure = classify(
            exc,
            connector=connector.name,
            retry_statuses=policy.statuses,
            redactor=redactor,
            last_url=stats.last_url,
        )
        metadata = {**failure.as_metadata(), **stats.as_metadata()}
        context.log.error(failure.message())
        raise dg.Failure(
            description=failure.message(), metadata=metadata, allow_retries=failure.transient
        ) from None

    trace = pipeline.last_trace
    load_ids = list(getattr(trace.last_load_info if trace else None, "loads_ids", None) or [])
    for result in results:
        assert result.asset_key is not None  # dagster-dlt names every materialization
        resource = result.asset_key.path[-1]
        yield _with_restsync_metadata(
            result, connector, settings, load_ids, stats.as_metadata(resource), redactor
        )


def _with_restsync_metadata(
    result: Any,
    connector: Connector,
    settings: Settings,
    load_ids: list[str],
    http: dict[str, Any],
    redactor: Redactor,
) -> dg.MaterializeResult:
    metadata = dict(result.metadata or {})
    resource = result.asset_key.path[-1]
    info = next(i for i in connector.resources if i.name == resource)
    rows = metadata.get("rows_loaded")
    rows_value = getattr(rows, "value", rows) or 0
    metadata.update(
        {
            TABLE_NAME_KEY: qualified_table_name(connector, settings, info.table_name),
            "rows_loaded": dg.MetadataValue.int(int(rows_value)),
            "load_id": load_ids[-1] if load_ids else "",
            **http,
        }
    )
    return dg.MaterializeResult(
        asset_key=result.asset_key, metadata=redactor.redact_value(metadata)
    )
