"""Where things live, read from the environment when asked (never at import time).

| variable | default | meaning |
|---|---|---|
| ``RESTSYNC_HOME`` | ``.restsync`` | local state: DuckDB file, dlt working dirs, demo ``DAGSTER_HOME`` |
| ``RESTSYNC_DUCKDB_PATH`` | ``$RESTSYNC_HOME/warehouse.duckdb`` | the DuckDB database file |
| ``RESTSYNC_DESTINATION`` | ``duckdb`` | any dlt destination name (credentials via dlt's env vars) |
| ``RESTSYNC_CONNECTORS_DIR`` | (none) | extra connector directories, separated by ``os.pathsep`` |
| ``RESTSYNC_INCLUDE_EXAMPLES`` | ``true`` | load the five bundled example connectors |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BUNDLED_CONNECTORS_DIR = Path(__file__).parent / "connectors"
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Deployment settings of the code location."""

    home: Path
    duckdb_path: Path
    destination: str
    extra_connector_dirs: tuple[Path, ...]
    include_examples: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("RESTSYNC_HOME") or ".restsync").expanduser().absolute()
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
            include_examples=(env.get("RESTSYNC_INCLUDE_EXAMPLES") or "true").strip().lower()
            not in _FALSE,
        )

    @property
    def connector_dirs(self) -> list[Path]:
        """Bundled examples (unless turned off) first, then the user's directories."""
        bundled = [BUNDLED_CONNECTORS_DIR] if self.include_examples else []
        return [*bundled, *self.extra_connector_dirs]

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working directories (one per connector pipeline)."""
        return self.home / "dlt"

    @property
    def dagster_home(self) -> Path:
        """The ``DAGSTER_HOME`` used by ``restsync demo`` and ``restsync sync`` when none is set."""
        return self.home / "dagster_home"
