"""Children of an incremental parent (``/orders/{id}/lines``) against the demo API: a sync reads
only the children of the parents in its window, ``children: all`` reads every parent's, and a
windowed parent's children are read window by window."""

from __future__ import annotations

import re

import pytest

from restsync_dagster_tests.helpers import SHAPE_SECRET, sync_job, use_connector, warehouse

LINES = re.compile(r"^/ecommerce/v1/orders/(\d+)/lines$")


def connector(children: str | None = None, window: str | None = None) -> str:
    extra = "".join(
        f"\n          {key}: {value}"
        for key, value in (("children", children), ("window", window))
        if value
    )
    return f"""
name: shop
source:
  client:
    base_url: "{{{{ env.SHOP_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.SHOP_API_KEY }}}}"}}
  resource_defaults: {{write_disposition: merge}}
  resources:
    - name: orders
      primary_key: id
      endpoint:
        path: /ecommerce/v1/orders
        data_selector: data
        paginator: {{type: offset, limit: 10}}
        incremental:
          cursor_path: updated_at
          start_param: updated_since
          end_param: updated_until
          initial_value: "2026-01-01T00:00:00Z"{extra}
    - name: lines
      primary_key: [order_id, line_number]
      endpoint:
        path: "/ecommerce/v1/orders/{{resources.orders.id}}/lines"
        data_selector: data
        paginator: single_page
"""


def children_requested(api) -> list[int]:
    """The order ids whose lines were requested, in order."""
    found = (LINES.match(r.path) for r in api.requests("/ecommerce/v1/orders/"))
    return [int(m.group(1)) for m in found if m]


def stored_lines(home) -> list[tuple[int, int, int]]:
    with warehouse(home) as con:
        return con.execute(
            "select order_id, line_number, quantity from shop.lines order by 1, 2"
        ).fetchall()


def served_lines(api) -> list[tuple[int, int, int]]:
    return sorted(
        (o["id"], line["line_number"], line["quantity"])
        for o in api.expected_rows("ecommerce", "orders")
        for line in o["line_items"]
    )


@pytest.fixture
def shop(restsync_home, tmp_path, monkeypatch, start_demo_api):
    api = start_demo_api(api_keys={"*": SHAPE_SECRET}, counts={"ecommerce.orders": 40})

    def write(text: str):
        use_connector(tmp_path / "connectors", monkeypatch, api, "shop", text)
        return api

    return write


def test_a_second_sync_after_updating_3_parents_requests_exactly_their_children(
    shop, instance, restsync_home
):
    api = shop(connector())
    assert sync_job("shop", instance).success
    assert sorted(children_requested(api)) == list(range(1, 41)), "first sync: every order"
    changed = api.advance("ecommerce.orders", insert=0, update=3, hours=2)["updated"]
    api.reset_log()

    assert sync_job("shop", instance).success

    assert len(changed) == 3
    assert sorted(children_requested(api)) == sorted(changed)
    assert stored_lines(restsync_home) == served_lines(api)


def test_children_all_requests_every_parents_children_on_every_sync(shop, instance, restsync_home):
    api = shop(connector(children="all"))
    assert sync_job("shop", instance).success
    api.advance("ecommerce.orders", insert=2, update=3, hours=2)
    api.reset_log()

    assert sync_job("shop", instance).success

    assert sorted(children_requested(api)) == list(range(1, 43)), "every order, once"
    orders = [r.params for r in api.requests("/ecommerce/v1/orders") if "updated_since" in r.params]
    assert orders, "the parent itself is still read incrementally"
    assert stored_lines(restsync_home) == served_lines(api)
    with warehouse(restsync_home) as con:
        tables = {
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        }
    assert not any("every_parent" in t for t in tables), "the full read of orders loads nothing"


def test_a_windowed_parents_children_are_read_with_each_window(shop, instance, restsync_home):
    api = shop(connector(window="30d"))
    assert sync_job("shop", instance).success
    ids = children_requested(api)
    assert sorted(ids) == list(range(1, 41)) and len(ids) == len(set(ids))
    assert stored_lines(restsync_home) == served_lines(api)
