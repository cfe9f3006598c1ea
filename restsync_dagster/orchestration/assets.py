"""Connector -> one ``@dlt_assets`` multi-asset: asset keys ``[connector, resource]``.

Declarative wiring only: the translator turns each resource of the connector file into an
``AssetSpec`` (key, group, owners, tags, kinds, freshness), and the asset body hands over to
:func:`restsync_dagster.sync.run_sync`. Nothing here reads a secret or makes a request.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from restsync_dagster import names
from restsync_dagster.connector import Connector, ResolvedResource, parse_duration
from restsync_dagster.extract.stand_in import stand_in_source
from restsync_dagster.load.destination import build_pipeline, destination_kind, qualified_table_name
from restsync_dagster.orchestration.partitions import (
    build_asset_partitions_def,
    build_backfill_policy,
)
from restsync_dagster.orchestration.resources import ConnectorEnv
from restsync_dagster.orchestration.run import SyncConfig, run_sync
from restsync_dagster.settings import Settings


def asset_key(connector: Connector, resource: str) -> dg.AssetKey:
    """``[connector, resource]`` (see :func:`restsync_dagster.names.asset_key_path`)."""
    return dg.AssetKey(names.asset_key_path(connector.name, resource))


@dataclass
class RestsyncTranslator(DagsterDltTranslator):
    """Maps a dlt resource of a connector to its ``AssetSpec``, from the connector file alone."""

    connector: Connector
    settings: Settings
    _infos: dict[str, ResolvedResource] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._infos = {info.name: info for info in self.connector.resources}

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        connector, config = self.connector, self.connector.config
        info = self._infos[data.resource.name]
        table = qualified_table_name(connector, self.settings, info.table_name)
        description = (
            (f"{config.description}\n\n" if config.description else "")
            + f"`GET {info.path}` loaded by dlt into `{table}` ({info.write_disposition}, primary key: {info.primary_key_text})."
            + _tenants_text(connector)
        )
        return dg.AssetSpec(
            key=asset_key(connector, info.name),
            deps=[asset_key(connector, info.parent)] if info.parent else [],
            description=description,
            group_name=connector.name,
            owners=list(config.owners),
            tags=dict(config.tags),
            kinds={"dlt", destination_kind(self.settings)},
            metadata={
                names.TABLE_NAME_KEY: table,
                names.CONNECTOR_FILE_KEY: connector.file.name,
                names.ENDPOINT_KEY: info.path,
            },
            freshness_policy=freshness_policy(connector),
        )


def _tenants_text(connector: Connector) -> str:
    """What the description says of a connector's tenants (one partition each)."""
    tenants = connector.config.tenants
    if tenants is None:
        return ""
    if tenants.tables == "shared":
        where = f"shared tables, each row tagged in column `{tenants.column}`, part of the key"
    else:
        where = f"a dataset per tenant, `{connector.config.dataset_name}_<tenant>`"
    return f" One partition per tenant ({'added at run time' if tenants.dynamic else 'listed in the file'}): {where}."


def freshness_policy(connector: Connector) -> dg.FreshnessPolicy | None:
    """Dagster's freshness policy from the file's ``freshness:`` (fail after ``max_lag``)."""
    freshness = connector.config.freshness
    if freshness is None:
        return None
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(seconds=parse_duration(freshness.max_lag)),
        warn_window=timedelta(seconds=parse_duration(freshness.warn_lag))
        if freshness.warn_lag
        else None,
    )


def build_connector_assets(
    connector: Connector,
    settings: Settings,
    stand_in_pipeline: Any | None = None,
    stand_in_schema: Any | None = None,
) -> dg.AssetsDefinition:
    """One multi-asset for all resources of ``connector``; nothing here reads a secret.

    Args:
        connector: The connector.
        settings: Deployment settings.
        stand_in_pipeline: The dlt pipeline ``@dlt_assets`` keeps beside the specs. Runs always pass
            the connector's own pipeline, so one pipeline object can serve every connector of a
            code location (building ~200 pipelines would cost seconds at every load).
        stand_in_schema: Likewise, one dlt schema for every connector's stand-in source.
    """
    key = names.env_resource_key(connector.name)

    def sync(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        config: SyncConfig,
        **resources: Any,
    ) -> Iterator[Any]:
        yield from run_sync(context, dlt, connector, resources[key], config)

    # The resource key differs per connector, so the parameter list is built, not written.
    # Dagster reads resource parameters from the signature and (before 1.13.2) their types from
    # ``__annotations__``: set both.
    annotations = {
        "context": dg.AssetExecutionContext,
        "dlt": DagsterDltResource,
        "config": SyncConfig,
        key: ConnectorEnv,
    }
    sync.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation)
            for name, annotation in annotations.items()
        ]
    )
    sync.__annotations__ = dict(annotations)
    sync.__name__ = names.assets_op_name(connector.name)
    sync.__doc__ = connector.config.description or f"Sync of connector {connector.name}."
    return dlt_assets(
        dlt_source=stand_in_source(connector, stand_in_schema),
        dlt_pipeline=stand_in_pipeline
        if stand_in_pipeline is not None
        else build_pipeline(connector, settings),
        name=names.assets_op_name(connector.name),
        dagster_dlt_translator=RestsyncTranslator(connector=connector, settings=settings),
        partitions_def=build_asset_partitions_def(connector),
        backfill_policy=build_backfill_policy(connector),
        pool=names.pool_name(connector.name),
        op_tags={names.TAG_CONNECTOR: connector.name},
    )(sync)
