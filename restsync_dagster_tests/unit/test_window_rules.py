"""``incremental.window`` and ``incremental.children`` in a connector file: bad values are refused
with one line naming the file and key path; a window needs start and end params; dlt never sees
restsync's keys."""

import dataclasses

import pytest

from restsync_dagster.connector import ConnectorFileError, parse_connector
from restsync_dagster.connector.extensions import without_extensions

FILE = """
name: shop
source:
  client: {base_url: "https://api.example.com"}
  resources:
    - name: orders
      primary_key: id
      endpoint:
        path: /v1/orders
        incremental:
          cursor_path: updated_at
          start_param: updated_since
          end_param: updated_until
          initial_value: "2026-01-01T00:00:00Z"
          window: 1d
"""
WHERE = "shop.yaml: source.resources[0].endpoint.incremental"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConnectorFileError) as info:
        parse_connector(text, "shop.yaml")
    return [str(dataclasses.replace(p, line=None)) for p in info.value.problems]


def test_a_window_with_start_and_end_params_is_valid_and_hidden_from_dlt():
    connector = parse_connector(FILE, "shop.yaml")
    assert connector.resource("orders").window == "1d"
    endpoint = without_extensions(connector.config.source)["resources"][0]["endpoint"]
    assert "window" not in endpoint["incremental"]
    assert endpoint["incremental"]["start_param"] == "updated_since"


@pytest.mark.parametrize("value", ["1 day", "0d", "-3", "true", "soon"])
def test_a_window_that_is_not_a_positive_duration_is_one_line_at_its_key_path(value):
    (problem,) = problems_of(FILE.replace("window: 1d", f"window: {value}"))
    assert problem.startswith(f"{WHERE}.window: ") and "is not a window" in problem
    assert "\n" not in problem


def test_a_window_needs_an_end_param():
    (problem,) = problems_of(FILE.replace("          end_param: updated_until\n", ""))
    assert problem == (
        f"{WHERE}.end_param: a window needs it: each window's end is sent in it, so the API "
        "returns one window"
    )


def test_children_is_changed_or_all():
    (problem,) = problems_of(FILE.replace("window: 1d", "children: alll"))
    assert problem == f"{WHERE}.children: 'alll' is not one of changed, all (did you mean 'all'?)"
