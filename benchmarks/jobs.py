"""One home for timing a connector's ``<connector>_sync`` job through Dagster, as ``restsync
sync`` runs it, shared by the benchmark's cases (run.py, nested.py)."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any


def timed_sync_job(job_name: str, table: str, fresh: bool = True) -> tuple[float, Any]:
    """Run ``job_name`` in process on a test instance (from an empty ``RESTSYNC_HOME`` if
    ``fresh``). Returns (job wall time, the materialization metadata of ``table``)."""
    import dagster as dg

    from restsync_dagster.definitions import load_definitions

    if fresh:
        shutil.rmtree(os.environ["RESTSYNC_HOME"], ignore_errors=True)
    job = load_definitions().resolve_job_def(job_name)
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        elapsed = time.perf_counter() - started
    assert result.success
    (event,) = [
        e for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path[-1] == table
    ]  # fmt: skip
    return elapsed, event.materialization.metadata
