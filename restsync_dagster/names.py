"""Every name restsync gives to something, in one place: the ground floor, imported by all.

A connector called ``shop`` becomes the dlt pipeline ``restsync_shop``, the pool ``restsync_shop``,
the job ``shop_sync``, the schedule ``shop_schedule``, the resource ``shop_env`` and the asset keys
``shop/<resource>``. Run tags and metadata keys written by one floor and read by another (the run
body writes a failure, the retry sensor reads it) are spelled here once. Pure strings: no Dagster.
"""

from __future__ import annotations

PREFIX = "restsync"

# --------------------------------------------------------------------------------------------
# Per connector


def pipeline_name(connector: str) -> str:
    """One dlt pipeline (state, schema, working dir) per connector, never shared."""
    return f"{PREFIX}_{connector}"


def pool_name(connector: str) -> str:
    """The Dagster concurrency pool that keeps one writer per connector pipeline."""
    return f"{PREFIX}_{connector}"


def pipeline_lock_name(connector: str) -> str:
    """The lock held by a run of ``connector`` (a file ``<name>.lock`` in dlt's pipelines
    directory, or a PostgreSQL advisory lock: load/lock_store.py)."""
    return pipeline_name(connector)


def _safe(text: str) -> str:
    """``2026-01-01T00:00`` -> ``2026_01_01t00_00``: a partition key as part of a name."""
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def partition_pipeline_name(connector: str, first: str, last: str | None = None) -> str:
    """The dlt pipeline of one partition run (``restsync_shop__2026_01_01``; a range run adds its
    last key) when partitions of ``connector`` sync side by side: its own working directory and
    its own state row in the destination, so concurrent runs share no state."""
    name = f"{pipeline_name(connector)}__{_safe(first)}"
    return f"{name}__{_safe(last)}" if last and last != first else name


def partition_staging_layout(pipeline: str) -> str:
    """dlt's ``staging_dataset_name_layout`` for a partition run's pipeline: runs that merge
    into one table side by side each stage their rows in their own dataset. Single
    underscores: dlt would normalize ``__`` in a dataset name, with a warning on every run."""
    suffix = pipeline.removeprefix(PREFIX + "_").replace("__", "_")
    return f"%s_staging_{suffix}"


def load_lock_name(destination: str, dataset: str) -> str:
    """The lock held while a run loads into ``dataset`` of ``destination`` (dlt's load step):
    every connector and partition loading into one dataset takes turns. ``destination`` names
    the database without secrets (a DuckDB file, ``host:port/db``)."""
    return f"{PREFIX}_dataset.{_safe(dataset)}.{_digest(destination)}.load"


def rate_slot_lock_name(key: str, index: int) -> str:
    """The lock held by a run that spends slot ``index`` of rate key ``key`` (``rate_limit.key``)."""
    return f"{PREFIX}_rate.{key}.slot{index}"


def partition_lock_name(connector: str, partition: str) -> str:
    """The lock held by a run of one partition of ``connector``."""
    return f"{pipeline_name(connector)}.partition.{_safe(partition)}"


def run_lock_name(run_id: str) -> str:
    """The lock a run holds for as long as its process lives: free means the run is dead."""
    return f"{PREFIX}_run.{run_id}"


# --------------------------------------------------------------------------------------------
# Per tenant (a connector file with ``tenants:``)

#: The name of the tenant dimension of a connector's multi-partitions (tenant x time window).
TENANT_DIMENSION = "tenant"


def tenant_scope(connector: str, tenant: str) -> str:
    """What a tenant's dlt pipeline and pipeline locks are named after, in place of the
    connector's name: ``shop`` and ``acme`` -> ``shop__tenant_acme`` (pipeline
    ``restsync_shop__tenant_acme``; its partition runs side by side add their keys)."""
    return f"{connector}__tenant_{_safe(tenant)}"


def tenant_pipeline_lock_name(connector: str, tenant: str) -> str:
    """The lock held by a run of one tenant of ``connector`` (tenants' runs overlap)."""
    return pipeline_lock_name(tenant_scope(connector, tenant))


def tenant_pipeline_name(connector: str, tenant: str) -> str:
    """The dlt pipeline (state, cursor, schema, working dir) of one tenant of ``connector``."""
    return pipeline_name(tenant_scope(connector, tenant))


def tenant_rate_key(rate_key: str, tenant: str) -> str:
    """The rate key a tenant's requests spend: ``<rate key>.<tenant>`` (each tenant's API key has
    its own budget), unless the tenant's ``RATE_KEY`` variable names another."""
    return f"{rate_key}.{tenant}"


def tenants_partitions_name(connector: str) -> str:
    """The Dagster dynamic partitions definition of ``connector``'s tenants (``dynamic: true``):
    ``instance.add_dynamic_partitions(tenants_partitions_name("shop"), ["acme"])`` adds one."""
    return f"{connector}_tenants"


def tenant_dataset_name(dataset: str, tenant: str) -> str:
    """The dataset of one tenant with ``tables: datasets`` (``shop_acme``)."""
    return f"{dataset}_{_safe(tenant)}"


#: On a tenant's run: its key. The run body reads its tenant from the partition tags (which
#: Dagster sets); launchers add this one for people and for filtering runs in the UI.
TAG_TENANT = f"{PREFIX}/tenant"
#: The sensor that syncs tenants added at run time (``dynamic: true``).
NEW_TENANTS_SENSOR = "sync_new_tenants"


def _digest(text: str) -> str:
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def job_name(connector: str) -> str:
    """The job that syncs every resource of ``connector``."""
    return f"{connector}_sync"


def schedule_name(connector: str) -> str:
    """The schedule of ``connector``'s job."""
    return f"{connector}_schedule"


def env_resource_key(connector: str) -> str:
    """The Dagster resource holding ``connector``'s environment variables."""
    return f"{connector}_env"


def assets_op_name(connector: str) -> str:
    """The op (and multi-asset) that syncs ``connector``."""
    return f"{connector}_assets"


def checks_op_name(connector: str) -> str:
    """The op of ``connector``'s asset checks."""
    return f"{connector}_checks"


def asset_key_path(connector: str, resource: str) -> list[str]:
    """``[connector, resource]``: the path of a resource's asset key."""
    return [connector, resource]


#: The one ``DagsterDltResource`` of a code location.
DLT_RESOURCE_KEY = "dlt"
#: The dlt pipeline object ``@dlt_assets`` keeps beside the specs (never run).
DEFINITIONS_PIPELINE = f"{PREFIX}_definitions"
#: The sensor that re-runs syncs that failed on a transient cause.
RETRY_SENSOR = "retry_transient_failures"


def retry_sensor_name(scope: str) -> str:
    """The retry sensor of one Dagster component (``<scope>_retry_transient_failures``): each
    component brings its own, since a code location cannot hold two sensors of one name."""
    return f"{scope}_{RETRY_SENSOR}"


# --------------------------------------------------------------------------------------------
# Asset checks

PRIMARY_KEY_CHECK = "primary_key_unique_not_null"
SCHEMA_DRIFT_CHECK = "schema_drift"

# --------------------------------------------------------------------------------------------
# Run tags

TAG_CONNECTOR = f"{PREFIX}/connector"
#: On a retry run: the run that failed first (the root of its chain).
TAG_RETRY_OF = f"{PREFIX}/retry_of"
#: On a retry run: 1 for the first retry, 2 for the second...
TAG_ATTEMPT = f"{PREFIX}/attempt"
#: On a failed run, per connector: what the sensor decided (``restsync/retry/<connector>``).
TAG_RETRY = f"{PREFIX}/retry"
TAG_RETRY_REASON = f"{PREFIX}/retry_reason"
#: Turns a run into a full refresh (usable from the launchpad, schedules, the CLI).
TAG_FULL_REFRESH = f"{PREFIX}/full_refresh"
TAG_LAUNCHED_BY = f"{PREFIX}/launched_by"
#: Dagster's run monitoring fails a run still going after this many seconds.
DAGSTER_MAX_RUNTIME_TAG = "dagster/max_runtime"
#: Dagster's own tags on a partition run (one key) and a partition-range run.
DAGSTER_PARTITION_TAG = "dagster/partition"
DAGSTER_RANGE_START_TAG = "dagster/asset_partition_range_start"
DAGSTER_RANGE_END_TAG = "dagster/asset_partition_range_end"
#: The process a run's sync step runs in, ``<host>:<pid>``: a run whose process is gone is dead.
TAG_WORKER = f"{PREFIX}/worker"
#: The lock database in which a run holds :func:`run_lock_name` while it lives (no secrets).
TAG_ALIVE_LOCK = f"{PREFIX}/alive_lock"


def decided_tag(connector: str) -> str:
    """The tag on a failed run that records what the sensor decided for ``connector``."""
    return f"{TAG_RETRY}/{connector}"


def retry_reason_tag(connector: str) -> str:
    """The tag on a failed run that says why the sensor decided so for ``connector``."""
    return f"{TAG_RETRY_REASON}/{connector}"


# --------------------------------------------------------------------------------------------
# Metadata keys

#: Dagster's standard key for the table an asset is stored in.
TABLE_NAME_KEY = "dagster/table_name"
#: The schema snapshot on each materialization, compared by the drift check.
SCHEMA_KEY = f"{PREFIX}/schema"
CONNECTOR_FILE_KEY = f"{PREFIX}/connector_file"
ENDPOINT_KEY = f"{PREFIX}/endpoint"


def failure_key(field: str) -> str:
    """The metadata key of one field of a failure (``restsync/kind``, ``restsync/status``...)."""
    return f"{PREFIX}/{field}"
