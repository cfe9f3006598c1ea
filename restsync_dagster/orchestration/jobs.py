"""One job per connector: ``<connector>_sync`` materializes all of its assets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from restsync_dagster import names
from restsync_dagster.connector import Connector


def build_sync_job(
    connector: Connector,
    assets: dg.AssetsDefinition,
    checks: dg.AssetChecksDefinition,
    resources: Mapping[str, Any],
    max_runtime_seconds: int = 0,
) -> dg.JobDefinition:
    """The job that syncs every resource of ``connector``.

    Its steps (the sync, then the asset checks) run one after the other inside the run's own
    process: the multiprocess executor would start a fresh Python per step, each importing
    Dagster and dlt and loading the code location again, for no parallelism to gain.

    With ``max_runtime_seconds``, the job carries ``dagster/max_runtime``: wherever Dagster's run
    monitoring is on (``deploy/dagster.yaml``, the Helm chart's ``runMonitoring``), a run still
    going after that long is failed, whatever the instance's own ``max_runtime_seconds``.
    """
    tags = {names.TAG_CONNECTOR: connector.name}
    if max_runtime_seconds:
        tags[names.DAGSTER_MAX_RUNTIME_TAG] = str(max_runtime_seconds)
    job = dg.define_asset_job(
        name=names.job_name(connector.name),
        selection=dg.AssetSelection.assets(assets),
        executor_def=dg.in_process_executor,
        description=f"Sync every resource of connector {connector.name!r} ({connector.file.name}).",
        tags=tags,
    )
    # Resolved here, against the connector's own assets and resources. Dagster binds every
    # top-level resource to an unresolved job; with one resource per connector, each job's
    # run-config schema would name every connector's variables, and loading the code location
    # would grow with the square of the number of connectors.
    return dg.Definitions(
        assets=[assets], asset_checks=[checks], jobs=[job], resources=resources
    ).resolve_job_def(job.name)
