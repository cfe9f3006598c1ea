"""A local REST API with the same contract as the five example connectors, so the demo runs offline."""

from restsync_dagster.demo_api.server import DEFAULT_PORT, DemoApi, DemoApiConfig, default_api_key

__all__ = ["DEFAULT_PORT", "DemoApi", "DemoApiConfig", "default_api_key"]
