"""Column hints from the file win over inference; schema contracts are dlt's, exposed."""

from __future__ import annotations

import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import warehouse

CONNECTOR = """
name: stock
{extra}
source:
  client:
    base_url: "{{{{ env.STOCK_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.STOCK_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint: {{path: /v1/items, data_selector: data, paginator: {{type: offset, limit: 100}}}}
      columns:
        amount: {{data_type: decimal, precision: 10, scale: 2}}
        quantity: {{data_type: double}}
        discontinued_at: {{data_type: timestamp, nullable: true}}
"""


@pytest.fixture
def stock(restsync_home, tmp_path, monkeypatch, demo_api):
    def write(extra: str = "") -> None:
        connectors = tmp_path / "connectors"
        connectors.mkdir(exist_ok=True)
        (connectors / "stock.yaml").write_text(CONNECTOR.format(extra=extra))
        monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))

    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("STOCK_BASE_URL", demo_api.url("generic"))
    monkeypatch.setenv("STOCK_API_KEY", "demo-generic-key")
    return write


def sync(instance):
    return (
        load_definitions()
        .resolve_job_def("stock_sync")
        .execute_in_process(instance=instance, raise_on_error=False)
    )


def column_types(home, table: str) -> dict[str, str]:
    with warehouse(home) as con:
        return dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = 'stock' and table_name = '{table}'"
            ).fetchall()
        )


def test_declared_columns_win_over_inference_and_exist_even_when_never_sent(
    stock, demo_api, restsync_home, instance
):
    stock()
    assert sync(instance).success
    types = column_types(restsync_home, "items")
    assert types["amount"] == "DECIMAL(10,2)", "inference would say DOUBLE"
    assert types["quantity"] == "DOUBLE", "inference would say BIGINT"
    assert types["discontinued_at"] == "TIMESTAMP WITH TIME ZONE", "never sent, declared"


def test_a_frozen_schema_contract_refuses_a_new_column_and_keeps_the_table(
    stock, demo_api, restsync_home, instance
):
    stock("schema_contract: {columns: freeze, data_type: freeze}")
    assert sync(instance).success
    demo_api.change_schema("generic.items", add=["coupon"])
    result = sync(instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "broke the connector's schema contract" in message and "freeze" in message
    metadata = failure.step_failure_data.user_failure_data.metadata
    assert metadata["restsync/transient"].value is False
    assert "coupon" not in column_types(restsync_home, "items")


def test_discard_value_drops_the_new_column_but_keeps_the_rows(
    stock, demo_api, restsync_home, instance
):
    stock("schema_contract: {columns: discard_value}")
    assert sync(instance).success
    demo_api.change_schema("generic.items", add=["coupon"])
    assert sync(instance).success
    assert "coupon" not in column_types(restsync_home, "items")
