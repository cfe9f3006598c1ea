"""The Dagster instance ``restsync sync`` and ``restsync demo`` use: ``DAGSTER_HOME`` when set,
else ``$RESTSYNC_HOME/dagster_home`` with restsync's local ``dagster.yaml`` (pools on)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from restsync_dagster import names
from restsync_dagster.connector import Connector
from restsync_dagster.load.locks import LockStore, exclusive
from restsync_dagster.orchestration.held import run_lock_store, without_log_lines
from restsync_dagster.orchestration.pool_queue import install_hand_over
from restsync_dagster.settings import Settings


class open_instance:
    """The Dagster instance of ``DAGSTER_HOME``, or of ``$RESTSYNC_HOME/dagster_home``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Any:
        from dagster import DagsterInstance

        home = dagster_home(self.settings)
        # A fresh home's SQLite storages are created and stamped on first open; two syncs
        # starting at once would both stamp them (UNIQUE constraint failed: alembic_version).
        with exclusive(instance_lock_path(home)), _quiet_about_the_instance():
            self._instance = DagsterInstance.from_config(str(home))
            self._instance.get_runs_count()
            # Dagster's slot queue can hand a freed slot to nobody (see pool_queue.py).
            install_hand_over()
            if self._instance.telemetry_enabled:
                # Dagster prints its telemetry notice when it first names this instance, in the
                # middle of the first run. The user's choice stands (it is on); only the notice
                # goes, as it does for any instance restsync did not create.
                from dagster_shared.telemetry import get_or_set_instance_id

                with contextlib.redirect_stderr(io.StringIO()):
                    get_or_set_instance_id()
        return self._instance

    def __exit__(self, *exc: object) -> None:
        self._instance.dispose()


def instance_lock_path(home: Path) -> Path:
    """The lock file of ``home``'s first open: inside it, or, when the home is read-only (a
    ConfigMap, ``readOnlyRootFilesystem``), in the temporary directory under a name made from the
    home's path. A read-only home's storages live elsewhere (PostgreSQL, a writable volume)."""
    inside = home / ".restsync-instance.lock"
    if _writable(home):
        return inside
    import hashlib
    import tempfile

    digest = hashlib.blake2b(str(home.resolve()).encode(), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"restsync-instance-{digest}.lock"


def _writable(directory: Path) -> bool:
    """Whether a file can be created in ``directory`` (``os.access`` says yes to root on a
    read-only filesystem)."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".restsync-probe-"):
            return True
    except OSError:
        return False


def _quiet_about_the_instance() -> contextlib.AbstractContextManager[None]:
    """Dagster warns, on every open, that a ``DAGSTER_HOME`` has no ``dagster.yaml``: a home the
    user chose that way is theirs, and restsync has nothing to add."""
    return without_log_lines("dagster", "No dagster instance configuration file")


def dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME`` when set, else ``$RESTSYNC_HOME/dagster_home`` (prepared)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else prepare_dagster_home(settings)


def prepare_dagster_home(settings: Settings) -> Path:
    """Create ``$RESTSYNC_HOME/dagster_home`` with a local ``dagster.yaml`` if it is missing."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        template = Path(__file__).parent.parent / "dagster_local.yaml"
        # Written whole, then renamed: a sync starting at the same moment never reads half.
        partial = config.with_name(f"dagster.yaml.{os.getpid()}")
        partial.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
        os.replace(partial, config)
    return home


#: The lock restsync's processes take while they create pools (a name in the lock store).
POOLS_LOCK = f"{names.PREFIX}_pools"


def apply_pool_limits(
    instance: Any, connectors: Iterable[Connector], store: LockStore | None = None
) -> dict[str, int]:
    """Create each connector's pool before any run claims it, with the limit its file asks for
    (``partitions.max_concurrent`` times ``tenants.max_concurrent``, as ``dagster instance
    concurrency set`` would), else the
    instance's ``default_limit``.

    Dagster keeps pool limits in the instance, not in the code location, and creates a pool on
    its first claim: two runs making the first claims of a new pool at once race in that
    creation on PostgreSQL (``concurrency_limits_concurrency_key_key``; one run fails). So every
    process that runs restsync against an instance calls this first: ``restsync sync``,
    ``restsync demo`` and each tick of the retry sensor (in the daemon). Pools are created under
    the lock ``restsync_pools`` of the lock store, one process at a time. A pool that exists is
    left alone, unless its file's ``max_concurrent`` says otherwise.

    Returns:
        The ``max_concurrent`` limits, by pool.
    """
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return {}
    wanted: dict[str, int | None] = {
        names.pool_name(c.name): c.config.pool_limit if c.config.pool_limit > 1 else None
        for c in connectors
    }
    limits = {pool: limit for pool, limit in wanted.items() if limit is not None}
    if instance.global_op_concurrency_default_limit is None:
        # Pools without a default limit are unlimited: nothing to create but the set ones.
        wanted = dict(limits)
    existing = storage.get_concurrency_keys()
    todo = [
        pool
        for pool, limit in wanted.items()
        if pool not in existing
        or (limit is not None and storage.get_concurrency_info(pool).slot_count != limit)
    ]
    if not todo:
        return limits
    store = store or run_lock_store(instance, Settings.from_env())
    with store.hold(POOLS_LOCK):
        existing = storage.get_concurrency_keys()
        for pool in todo:
            limit = wanted[pool]
            if limit is not None:
                storage.set_concurrency_slots(pool, limit)
            elif pool not in existing:
                storage.initialize_concurrency_limit_to_default(pool)
    return limits
