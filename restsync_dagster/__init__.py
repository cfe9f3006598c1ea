"""restsync_dagster: third-party REST APIs as Dagster assets, one YAML connector file per API.

Importing this package does nothing that can fail: connector files are read when Dagster loads the
definitions (see :mod:`restsync_dagster.definitions`), secrets when a run starts.
"""

__version__ = "0.1.0"
