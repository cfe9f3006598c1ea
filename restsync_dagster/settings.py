"""Where things live, read from the environment when asked (never at import time).

| variable | default | meaning |
|---|---|---|
| ``RESTSYNC_HOME`` | ``.restsync`` in the project folder (:func:`default_home`) | local state: DuckDB file, dlt working dirs, demo ``DAGSTER_HOME``; absolute |
| ``DLT_DATA_DIR`` | (none) | dlt's own: when set, dlt's working dirs go to ``$DLT_DATA_DIR/pipelines``, as dlt puts them |
| ``RESTSYNC_DUCKDB_PATH`` | ``$RESTSYNC_HOME/warehouse.duckdb`` | the DuckDB database file |
| ``RESTSYNC_DESTINATION`` | ``duckdb`` | any dlt destination name (credentials via dlt's env vars) |
| ``RESTSYNC_LOADER_FILE_FORMAT`` | the destination's | dlt's load file format: ``parquet``, ``jsonl``... |
| ``RESTSYNC_DUCKDB_MEMORY_LIMIT`` | ``128MB``, falling back to DuckDB's own | DuckDB's memory during a load; beyond it DuckDB spills to disk; ``duckdb``: DuckDB's own (80% of RAM) |
| ``RESTSYNC_NORMALIZE_WORKERS`` | ``1`` | ``auto``: large nested loads normalize in a dlt worker process per core (faster; a column whose values change type may then be typed by whichever file comes first, load/normalize.py) |
| ``RESTSYNC_CONNECTORS_DIR`` | (none) | extra connector directories, separated by ``os.pathsep`` |
| ``RESTSYNC_INCLUDE_EXAMPLES`` | ``true`` without ``RESTSYNC_CONNECTORS_DIR``, else ``false`` | load the five bundled example connectors |
| ``RESTSYNC_RUN_RETRIES`` | ``3`` | retry runs per failed run (a connector's ``retry.run_retries`` wins) |
| ``RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS`` | ``60`` | wait before the first retry run, doubled after |
| ``RESTSYNC_RETRY_SENSOR_INTERVAL_SECONDS`` | ``30`` | how often the retry sensor looks at failed runs |
| ``RESTSYNC_PROGRESS_INTERVAL_SECONDS`` | ``5`` | seconds between two progress lines in a run's log |
| ``RESTSYNC_EXAMPLE_SCHEDULES`` | ``running`` (``stopped`` in ``restsync demo``) | how the examples' schedules start |
| ``RESTSYNC_CONFINE_ENV`` | ``false`` | each connector reads only its own variables (docs/security.md) |
| ``RESTSYNC_SHARED_ENV_VARS`` | (none) | with confinement: variables a connector may list in its ``env:`` |
| ``RESTSYNC_ALLOWED_CALLABLE_MODULES`` | (any) | modules processing-step callables may come from; ``none``: no callable |
| ``RESTSYNC_MAX_RUNTIME_SECONDS`` | ``43200`` | the ``dagster/max_runtime`` of every sync job: Dagster's run monitoring fails a run still going after it (``0``: none) |
| ``RESTSYNC_PACKAGE_SECONDS`` | ``60`` | a sync that may commit in parts (extract/packages.py says which may) commits a dlt load package every this many seconds of fetching, or every ``RESTSYNC_PACKAGE_ROWS`` records if sooner; ``0``: by records alone |
| ``RESTSYNC_PACKAGE_ROWS`` | ``1000000`` | records per load package at most (see above); ``0``: one package per run |
| ``RESTSYNC_PACKAGE_READ_AHEAD`` | ``false`` | ``true``: with several packages, a thread reads the next package's pages while one is normalized and loaded (measured: no gain on 2 shared cores; docs/throughput.md) |
| ``RESTSYNC_LOCK_DATABASE`` | the destination, else the instance's storage, when PostgreSQL | a ``postgresql://`` URL whose advisory locks keep runs apart across hosts (load/locks.py) |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from restsync_dagster.failures.errors import SettingsError

__all__ = ["BUNDLED_CONNECTORS_DIR", "Settings", "SettingsError", "TrustPolicy"]

BUNDLED_CONNECTORS_DIR = Path(__file__).parent / "connectors"
_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}


#: What marks the folder a relative default home belongs to (nearest first): an existing home,
#: then what makes a folder a Dagster or Python project.
_PROJECT_MARKERS = (".restsync", "pyproject.toml", "dg.toml", "workspace.yaml", "setup.py")


def default_home(cwd: Path | None = None) -> Path:
    """Where ``RESTSYNC_HOME`` is when it is unset: ``.restsync`` in the project folder, so a
    command run from a subfolder (or a code server started elsewhere in the project) finds the
    same warehouse, as git finds ``.git``. The project folder is the nearest one, from ``cwd`` up,
    that holds a ``.restsync`` folder; else the nearest with a ``pyproject.toml``, ``dg.toml``,
    ``workspace.yaml`` or ``setup.py``; else ``cwd`` itself."""
    here = (cwd or Path.cwd()).absolute()
    folders = [here, *here.parents]
    for markers in (_PROJECT_MARKERS[:1], _PROJECT_MARKERS[1:]):
        for folder in folders:
            if any((folder / marker).exists() for marker in markers):
                return folder / ".restsync"
    return here / ".restsync"


def _home(env: Mapping[str, str]) -> Path:
    raw = (env.get("RESTSYNC_HOME") or "").strip()
    if not raw:
        return default_home()
    home = Path(raw).expanduser()
    if not home.is_absolute():
        # As Dagster refuses a relative DAGSTER_HOME: the same command run from two folders would
        # otherwise read and write two warehouses without a word.
        raise SettingsError(
            f"RESTSYNC_HOME={raw!r} is relative; give an absolute path (for instance "
            f"{Path.cwd() / raw}), or unset it to use .restsync in the project folder"
        )
    return home


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


#: The variable that sets DuckDB's memory limit, and restsync's default for it.
MEMORY_LIMIT_VARIABLE = "RESTSYNC_DUCKDB_MEMORY_LIMIT"
DEFAULT_DUCKDB_MEMORY_LIMIT = "128MB"


def _memory(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return DEFAULT_DUCKDB_MEMORY_LIMIT
    if raw.lower() == "duckdb":
        return None
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", raw, re.IGNORECASE):
        raise SettingsError(
            f"{name}={raw!r} is not an amount of memory such as 128MB or 2GB (or 'duckdb' for "
            "DuckDB's own limit)"
        )
    return raw


#: The variable that lets large nested loads normalize in dlt's worker processes.
NORMALIZE_WORKERS_VARIABLE = "RESTSYNC_NORMALIZE_WORKERS"


def _normalize_workers(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "1").strip().lower()
    if raw not in ("1", "auto"):
        raise SettingsError(f"{name}={raw!r}: use '1' (one process) or 'auto' (one per core)")
    return raw == "auto"


#: The variable naming the PostgreSQL database of restsync's locks.
LOCK_DATABASE_VARIABLE = "RESTSYNC_LOCK_DATABASE"


def _lock_database(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    scheme = raw.partition("://")[0].split("+", 1)[0].lower()
    if "://" not in raw or scheme not in ("postgresql", "postgres"):
        # The value may hold a password: the message never repeats it.
        raise SettingsError(
            f"{name} is not a PostgreSQL URL: write postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    return raw


def _schedules(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "running").strip().lower()
    if raw not in ("running", "stopped"):
        raise SettingsError(f"{name}={raw!r}: use 'running' or 'stopped'")
    return raw == "running"


def _names(env: Mapping[str, str], name: str, pattern: str, what: str) -> tuple[str, ...] | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if raw.lower() == "none":
        return ()
    items = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    bad = [item for item in items if not re.fullmatch(pattern, item)]
    if bad:
        raise SettingsError(
            f"{name}: {', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not {what}"
        )
    return items


@dataclass(frozen=True)
class TrustPolicy:
    """What a connector file may reach beyond its own API: the deployment's answer to "who wrote
    this file?" (docs/security.md, "The trust boundary of a connector file").

    The defaults trust a file as much as code, as dlt and Dagster trust their configuration.
    """

    #: Each connector reads only the variables it owns: ``<NAME>_*`` (its name upper-cased, then
    #: ``_``) and those its ``env:`` lists that ``shared_env_vars`` allows.
    confine_env: bool = False
    #: Variables any connector may list in its ``env:`` (with ``confine_env``).
    shared_env_vars: tuple[str, ...] = ()
    #: Modules (and their submodules) processing-step callables may come from; ``None``: any.
    allowed_callable_modules: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrustPolicy:
        """Read ``RESTSYNC_CONFINE_ENV``, ``RESTSYNC_SHARED_ENV_VARS`` and
        ``RESTSYNC_ALLOWED_CALLABLE_MODULES`` from ``environ`` (default: the process's)."""
        env = os.environ if environ is None else environ
        confine = (env.get("RESTSYNC_CONFINE_ENV") or "false").strip().lower()
        if confine not in _FALSE | _TRUE:
            raise SettingsError(f"RESTSYNC_CONFINE_ENV={confine!r}: use 'true' or 'false'")
        shared = _names(
            env, "RESTSYNC_SHARED_ENV_VARS", r"[A-Za-z_][A-Za-z0-9_]*", "a variable name"
        )
        modules = _names(
            env,
            "RESTSYNC_ALLOWED_CALLABLE_MODULES",
            r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*",
            "a module name such as mycompany.steps",
        )
        return cls(
            confine_env=confine in _TRUE,
            shared_env_vars=shared or (),
            allowed_callable_modules=modules,
        )


@dataclass(frozen=True)
class Settings:
    """Deployment settings of the code location."""

    home: Path
    duckdb_path: Path
    destination: str
    extra_connector_dirs: tuple[Path, ...]
    include_examples: bool
    run_retries: int = 3
    run_retry_base_delay_seconds: float = 60.0
    retry_sensor_interval_seconds: int = 30
    progress_interval_seconds: float = 5.0
    loader_file_format: str | None = None
    #: DuckDB's memory limit during a load (None: DuckDB's own, 80% of RAM).
    duckdb_memory_limit: str | None = DEFAULT_DUCKDB_MEMORY_LIMIT
    #: Whether that limit is restsync's default, which a load that cannot fit falls back from.
    duckdb_memory_limit_is_default: bool = True
    #: Whether large nested loads normalize in dlt's worker processes (load/normalize.py).
    parallel_normalize: bool = False
    #: Whether the bundled examples' schedules start running (``restsync demo`` stops them).
    example_schedules_running: bool = True
    #: What connector files may reach beyond their API (variables, callables).
    trust: TrustPolicy = TrustPolicy()
    #: dlt's ``DLT_DATA_DIR``, when set: the working directories go where dlt puts them.
    dlt_data_dir: Path | None = None
    #: Seconds after which Dagster's run monitoring fails a sync run still going (0: never).
    max_runtime_seconds: int = 43200
    #: Records per load package of a sync that may commit in parts, at most (0: one package).
    package_rows: int = 1_000_000
    #: Seconds of fetching per load package, at most (0: by records alone).
    package_seconds: float = 60.0
    #: Whether a thread reads the next package's pages while one loads (extract/packages.py).
    package_read_ahead: bool = False
    #: The PostgreSQL database of restsync's locks, when the user names one (load/locks.py).
    lock_database: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        home = _home(env)
        data_dir = (env.get("DLT_DATA_DIR") or "").strip()
        duckdb_path = Path(env.get("RESTSYNC_DUCKDB_PATH") or home / "warehouse.duckdb")
        extra = tuple(
            Path(p).expanduser().absolute()
            for p in (env.get("RESTSYNC_CONNECTORS_DIR") or "").split(os.pathsep)
            if p.strip()
        )
        return cls(
            home=home,
            duckdb_path=duckdb_path.expanduser().absolute(),
            destination=(env.get("RESTSYNC_DESTINATION") or "duckdb").strip(),
            extra_connector_dirs=extra,
            # Examples by default only for a user who has not named connectors of their own.
            include_examples=(
                env.get("RESTSYNC_INCLUDE_EXAMPLES") or ("false" if extra else "true")
            )
            .strip()
            .lower()
            not in _FALSE,
            run_retries=int(_number(env, "RESTSYNC_RUN_RETRIES", 3, minimum=0)),
            run_retry_base_delay_seconds=_number(
                env, "RESTSYNC_RUN_RETRY_BASE_DELAY_SECONDS", 60.0, minimum=0
            ),
            retry_sensor_interval_seconds=int(
                _number(env, "RESTSYNC_RETRY_SENSOR_INTERVAL_SECONDS", 30, minimum=1)
            ),
            progress_interval_seconds=_number(
                env, "RESTSYNC_PROGRESS_INTERVAL_SECONDS", 5.0, minimum=0
            ),
            loader_file_format=(env.get("RESTSYNC_LOADER_FILE_FORMAT") or "").strip().lower()
            or None,
            duckdb_memory_limit=_memory(env, MEMORY_LIMIT_VARIABLE),
            duckdb_memory_limit_is_default=not (env.get(MEMORY_LIMIT_VARIABLE) or "").strip(),
            parallel_normalize=_normalize_workers(env, NORMALIZE_WORKERS_VARIABLE),
            example_schedules_running=_schedules(env, "RESTSYNC_EXAMPLE_SCHEDULES"),
            trust=TrustPolicy.from_env(env),
            dlt_data_dir=Path(data_dir).expanduser().absolute() if data_dir else None,
            max_runtime_seconds=int(_number(env, "RESTSYNC_MAX_RUNTIME_SECONDS", 43200, minimum=0)),
            package_rows=int(_number(env, "RESTSYNC_PACKAGE_ROWS", 1_000_000, minimum=0)),
            package_seconds=_number(env, "RESTSYNC_PACKAGE_SECONDS", 60.0, minimum=0),
            package_read_ahead=(env.get("RESTSYNC_PACKAGE_READ_AHEAD") or "false").strip().lower()
            in _TRUE,
            lock_database=_lock_database(env, LOCK_DATABASE_VARIABLE),
        )

    @staticmethod
    def is_example(connector_file: Path) -> bool:
        """Whether ``connector_file`` is one of the bundled examples."""
        return connector_file.parent.resolve() == BUNDLED_CONNECTORS_DIR.resolve()

    @property
    def connector_dirs(self) -> list[Path]:
        """Bundled examples (unless turned off) first, then the user's directories."""
        bundled = [BUNDLED_CONNECTORS_DIR] if self.include_examples else []
        return [*bundled, *self.extra_connector_dirs]

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working directories (one per connector pipeline): ``$DLT_DATA_DIR/pipelines``
        when ``DLT_DATA_DIR`` is set, as dlt's ``get_dlt_pipelines_dir`` says; else
        ``$RESTSYNC_HOME/dlt`` rather than dlt's ``~/.dlt/pipelines``, so that one home holds all
        of one deployment's state and two homes on a machine never share a pipeline."""
        if self.dlt_data_dir is not None:
            return self.dlt_data_dir / "pipelines"
        return self.home / "dlt"

    @property
    def dagster_home(self) -> Path:
        """The ``DAGSTER_HOME`` used by ``restsync demo`` and ``restsync sync`` when none is set."""
        return self.home / "dagster_home"
