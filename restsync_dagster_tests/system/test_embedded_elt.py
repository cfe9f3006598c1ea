"""Checks for the optional ``embedded-elt`` extra, run in its own environment by
``python3 scripts/dev.py embedded-elt`` (CI does). The shim pins dagster 1.13.1."""

from __future__ import annotations

import pytest

from restsync_dagster.definitions import load_definitions

embedded_elt = pytest.importorskip(
    "dagster_embedded_elt.dlt",
    reason="dagster-embedded-elt is not installed here; 'python3 scripts/dev.py embedded-elt' runs this",
)


def test_the_deprecated_shim_re_exports_the_dagster_dlt_api_restsync_uses():
    import dagster_dlt

    assert embedded_elt.dlt_assets is dagster_dlt.dlt_assets
    assert embedded_elt.DagsterDltResource is dagster_dlt.DagsterDltResource


def test_definitions_load_and_a_connector_syncs_with_the_shims_dagster(
    demo_env, restsync_home, instance
):
    import dagster

    definitions = load_definitions()
    assert len(list(definitions.resolve_all_asset_keys())) == 11
    result = definitions.resolve_job_def("ecommerce_sync").execute_in_process(instance=instance)
    assert result.success
    rows = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata[
            "rows_loaded"
        ].value
        for e in result.get_asset_materialization_events()
    }
    assert rows == {"ecommerce/customers": 230, "ecommerce/products": 120, "ecommerce/orders": 510}
    print(f"synced with dagster {dagster.__version__}")
