"""restsync_dagster: third-party REST APIs as Dagster assets, one YAML connector file per API.

Importing this package does nothing that can fail: connector files are read when Dagster loads the
definitions (see :mod:`restsync_dagster.definitions`), secrets when a run starts.

It also exports restsync's Dagster components, ``RestApiComponent`` and
``ConnectorDirectoryComponent`` (:mod:`restsync_dagster.component`). They are imported on first
use, not here, so that ``import restsync_dagster`` (the CLI does) stays free of Dagster; ``dg``
finds them through the ``dagster_dg_cli.registry_modules`` entry point and ``dir()``.
"""

from typing import Any

__version__ = "0.1.0"

_COMPONENTS = ("ConnectorDirectoryComponent", "RestApiComponent")


def __getattr__(name: str) -> Any:
    if name in _COMPONENTS:
        from restsync_dagster import component

        return getattr(component, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_COMPONENTS])
