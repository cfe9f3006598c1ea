"""Fast fetching: Arrow batches typed like dlt's normalizer, concurrent offsets within the
connector's limits (checked with the demo API's own counters), and tables equal to plain dlt's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import dlt
import duckdb
import pyarrow as pa
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.extract.arrow import ArrowPages
from restsync_dagster.extract.relational import NotModelled, RelationalArrow
from restsync_dagster.extract.source import arrow_steps
from restsync_dagster_tests.helpers import land_pages, landed_tables, warehouse

KEY = "fetch-key"
BUNDLED = Path(__file__).resolve().parents[2] / "restsync_dagster" / "connectors"


def test_records_become_arrow_typed_as_dlt_would_type_them():
    tables = normalize_alone(
        [
            {"id": 1, "at": "2026-01-01T00:00:00Z", "n": 1.5, "ok": True, "gone": None, "s": "x"},
            {"id": 2, "at": "2026-01-02T03:04:05+02:00", "n": 2, "ok": False, "gone": None},
        ]
    )
    table = tables["items"]
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("n").type == pa.float64()
    assert table.schema.field("ok").type == pa.bool_()
    assert "gone" not in table.schema.names, "an all-null field makes no column"
    assert table.schema.field("s").type == pa.string()
    assert table.column("at").to_pylist()[1].isoformat() == "2026-01-02T01:04:05+00:00"
    assert table.column_names[-2:] == ["_dlt_load_id", "_dlt_id"]


def test_a_batch_takes_the_types_dlt_already_holds():
    known = {"id": "bigint", "amount": "double", "note": "text", "n": "bigint"}
    tables = normalize_alone(
        [{"id": 1, "amount": 5, "note": "2026-01-01T00:00:00Z", "n": 3.0}, {"id": 2, "n": 3.5}],
        known,
    )
    table = tables["items"]
    assert table.schema.field("amount").type == pa.float64(), "whole numbers in a double column"
    assert table.schema.field("note").type == pa.string(), "a text column stays text"
    assert table.column("n").to_pylist() == [3, None], "whole floats in a bigint column"
    assert table.column("n__v_double").to_pylist() == [None, 3.5], "dlt's variant column"


def normalize_alone(records: list[dict[str, Any]], known: dict[str, str] | None = None) -> Any:
    """The vectorized normalizer outside an extraction: a schema with the table ``items``."""
    from dlt.common.schema import Schema
    from dlt.common.schema.utils import new_column, new_table

    schema = Schema("s")
    columns = [new_column(name, kind) for name, kind in (known or {}).items()]
    schema.update_table(new_table("items", write_disposition="append", columns=columns))
    return RelationalArrow(schema, "items", "load").normalize(records)


def test_what_the_normalizer_does_not_model_sends_the_rest_to_dlts_normalizer(monkeypatch):
    told = []
    step = ArrowPages("items", on_fallback=lambda resource, why: told.append((resource, why)))
    monkeypatch.setattr(ArrowPages, "_tables", lambda self, rows: [len(rows)])
    assert step([{"id": 1, "v": 1}]) == 1
    monkeypatch.setattr(ArrowPages, "_tables", lambda self, rows: _not_modelled())
    pages = [[{"id": 2, "m": [[1]]}], [{"id": 3, "v": 3}]]
    assert [step(page) for page in pages] == pages, "records from then on: one table, one path"
    assert told == [("items", "a list of lists (items__m)")]


def _not_modelled() -> Any:
    raise NotModelled("a list of lists (items__m)")


#: Flat pages where pyarrow's type for the whole batch and dlt's (the first value's, the rest
#: coerced or put in a variant column) can differ.
TRICKY_PAGES = {
    "a whole number, then a fraction": [{"id": 1, "x": 2}, {"id": 2, "x": 1.5}],
    "a whole number, then a whole float": [{"id": 1, "x": 2}, {"id": 2, "x": 3.0}],
    "null, a whole number, then a fraction": [
        {"id": 1, "x": None},
        {"id": 2, "x": 3},
        {"id": 3, "x": 1.5},
    ],
    "a fraction, then a whole number": [{"id": 1, "x": 1.5}, {"id": 2, "x": 2}],
    "a timestamp, then text": [{"id": 1, "x": "2026-01-01T00:00:00Z"}, {"id": 2, "x": "n/a"}],
    "text, then a timestamp": [{"id": 1, "x": "n/a"}, {"id": 2, "x": "2026-01-01T00:00:00Z"}],
    "an empty string, then a timestamp": [
        {"id": 1, "x": ""},
        {"id": 2, "x": "2026-01-01T00:00:00Z"},
    ],
    "timestamps with offsets": [
        {"id": 1, "x": "2026-01-01T00:00:00+02:00"},
        {"id": 2, "x": "2026-01-01T05:00:00-0130"},
    ],
    "a zoned and a naive timestamp": [
        {"id": 1, "x": "2026-01-01T00:00:00+02:00"},
        {"id": 2, "x": "2026-01-01 00:00"},
    ],
    "a timestamp, then a date": [
        {"id": 1, "x": "2026-01-01T00:00:00Z"},
        {"id": 2, "x": "2026-01-02"},
    ],
    "nanoseconds": [{"id": 1, "x": "2026-01-01T00:00:00.123456789Z"}],
    "a slashed timestamp": [{"id": 1, "x": "2024/01/15 10:00"}],
    "a date, a year, a time of day": [{"id": 1, "d": "2026-01-01", "y": "2024", "t": "10:00:00"}],
    "a flag, then a number": [{"id": 1, "x": True}, {"id": 2, "x": 1}],
}


@pytest.mark.parametrize("page", list(TRICKY_PAGES.values()), ids=list(TRICKY_PAGES))
def test_a_page_lands_as_dlts_normalizer_lands_its_records(page, tmp_path):
    """dlt's own pipeline and DuckDB load the page twice: as records, and through
    :class:`ArrowPages`. Columns in order, types, variant columns and values are the same."""
    hints = {"primary_key": "id", "write_disposition": "merge"}
    plain = landed_tables(land_pages(tmp_path, "plain", [[page]], arrow=False, **hints))
    assert landed_tables(land_pages(tmp_path, "ours", [[page]], arrow=True, **hints)) == plain


class Pages:
    """Stands in for a resource's page checks: counts pages, knows whether one follows."""

    def __init__(self, total: int) -> None:
        self.total, self.pages = total, 0

    @property
    def has_next_page(self) -> bool:
        return self.pages < self.total

    def read(self) -> None:
        self.pages += 1


@pytest.fixture
def batches(monkeypatch):
    """:class:`ArrowPages` handing on ``("batch", rows)`` instead of a batch's tables."""
    monkeypatch.setattr(ArrowPages, "_tables", lambda self, rows: [("batch", len(rows))])


def test_pages_are_gathered_into_batches_until_the_paginator_has_no_next_page(batches):
    paginator = Pages(total=4)
    step = ArrowPages("items", paginator=paginator, batch_rows=5)
    out = []
    for j in range(0, 12, 3):
        paginator.read()
        out.append(step([{"id": i, "v": i} for i in range(j, j + 3)]))
    assert out == [None, ("batch", 6), None, ("batch", 6)]


def test_a_paginator_that_does_not_count_the_pages_makes_each_page_its_own_batch(batches):
    step = ArrowPages("items", paginator=Pages(total=9), batch_rows=5)
    assert step([{"id": 1, "v": 1}]) == ("batch", 1), "a stale paginator never holds rows back"


def test_pages_that_are_not_lists_of_objects_send_the_rest_to_dlts_normalizer(batches):
    told = []
    step = ArrowPages("items", on_fallback=lambda resource, why: told.append(why))
    assert step([{"id": 1}]) == ("batch", 1)
    assert step([1, 2]) == [1, 2], "dlt wraps values in objects of its own"
    assert step([{"id": 3}]) == [{"id": 3}], "records from then on"
    assert step([]) == []
    assert told == ["pages whose items are not all objects"]


def test_a_batchs_tables_leave_in_order_while_the_last_batch_is_still_handed_on():
    """A batch makes several tables; dlt takes a returned generator as a source of items, and
    round-robins between sources. The next batch's tables queue behind the last's."""
    step = ArrowPages("items")
    first = step._send(["a1", "a2"])
    assert next(first) == "a1"
    assert step._send(["b1", "b2"]) is None, "queued behind a2"
    assert list(first) == ["a2", "b1", "b2"]
    assert step._send(["c"]) == "c", "nothing queued: handed on as it is"


CONNECTOR = """
name: fast
rate_limit: {rate_limit}
source:
  client:
    base_url: "{{{{ env.FAST_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.FAST_API_KEY }}}}"}}
  resource_defaults:
    primary_key: id
    write_disposition: merge
    endpoint: {{data_selector: data, paginator: {{type: offset, limit: 100}}}}
  resources:
    - {{name: items, endpoint: {{path: /generic/v1/items}}}}
    - {{name: events, endpoint: {{path: /analytics/v1/events}}}}
    - {{name: orders, endpoint: {{path: /ecommerce/v1/orders}}}}
"""


@pytest.fixture
def fast(restsync_home, tmp_path, monkeypatch, start_demo_api):
    def setup(rate_limit: str, **api: Any):
        api_server = start_demo_api(api_keys={"*": KEY}, **api)
        connectors = tmp_path / "connectors"
        connectors.mkdir(exist_ok=True)
        (connectors / "fast.yaml").write_text(CONNECTOR.format(rate_limit=rate_limit))
        monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
        monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
        monkeypatch.setenv("FAST_BASE_URL", api_server.url())
        monkeypatch.setenv("FAST_API_KEY", KEY)
        return api_server

    return setup


def sync(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = load_definitions().resolve_job_def("fast_sync").execute_in_process(instance=instance)
    assert result.success
    return result


def test_concurrent_pages_never_exceed_max_concurrency(fast, instance, restsync_home):
    api = fast("{max_concurrency: 3}", latency_ms=30, counts={"generic.items": 3000})
    sync(instance)
    assert api.stats()["max_in_flight"] == 3, "three at once, and never more"
    with warehouse(restsync_home) as con:
        assert con.execute("select count(*), count(distinct id) from fast.items").fetchall() == [
            (3000, 3000)
        ]


def test_requests_per_second_is_never_exceeded(fast, instance):
    api = fast("{requests_per_second: 8, max_concurrency: 4}", counts={"generic.items": 1500})
    sync(instance)
    times = sorted(r.at for r in api.requests())
    assert len(times) >= 20
    busiest = max(sum(1 for t in times if start <= t < start + 0.95) for start in times)
    assert busiest <= 8, busiest
    assert times[-1] - times[0] >= (len(times) - 8) / 8 - 0.2


def plain_dlt_tables(api_url: str, home: Path) -> duckdb.DuckDBPyConnection:
    """The same three resources loaded by dlt's rest_api_source with its default settings."""
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": api_url,
                "auth": {"type": "api_key", "name": "api_key", "location": "query", "api_key": KEY},
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "merge",
                "endpoint": {
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": 100},
                },
            },
            "resources": [
                {"name": "items", "endpoint": {"path": "/generic/v1/items"}},
                {"name": "events", "endpoint": {"path": "/analytics/v1/events"}},
                {"name": "orders", "endpoint": {"path": "/ecommerce/v1/orders"}},
            ],
        },
        name="fast",
    )
    pipeline = dlt.pipeline(
        pipeline_name="plain",
        pipelines_dir=str(home / "plain"),
        destination=dlt.destinations.duckdb(credentials=str(home / "plain.duckdb")),
        dataset_name="fast",
    )
    pipeline.run(source)
    return duckdb.connect(str(home / "plain.duckdb"), read_only=True)


def table_shape(
    con: duckdb.DuckDBPyConnection, table: str
) -> tuple[list[tuple[str, str]], list[tuple]]:
    columns = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = 'fast' "
        f"and table_name = '{table}' and column_name not like '\\_dlt%' escape '\\' order by column_name"
    ).fetchall()
    names = ", ".join(f'"{c}"' for c, _ in columns)
    order = "id" if any(c == "id" for c, _ in columns) else names
    rows = con.execute(f"select {names} from fast.{table} order by {order}").fetchall()
    return columns, rows


def test_restsync_writes_the_same_tables_as_plain_dlt(fast, instance, restsync_home, tmp_path):
    api = fast("{max_concurrency: 4}")
    sync(instance)
    with (
        plain_dlt_tables(api.url(), tmp_path) as plain,
        warehouse(restsync_home) as ours,
    ):
        for table in ("items", "events", "orders", "orders__line_items"):
            assert table_shape(ours, table) == table_shape(plain, table), table


def test_a_parent_resource_stays_records_so_its_children_can_resolve_their_paths():
    from restsync_dagster.connector import load_connector_file

    connector = load_connector_file(BUNDLED / "database.yaml")
    steps = arrow_steps(connector, connector.resources)
    assert "databases" not in steps, "dlt reads a child's path from dict records"
    assert "records" not in steps, "child pages come through dlt's own client"
    generic = load_connector_file(BUNDLED / "generic.yaml")
    assert set(arrow_steps(generic, generic.resources)) == {
        info.name for info in generic.resources
    }, "flat top-level resources without children do travel as Arrow"


def test_steps_and_column_hints_in_resource_defaults_keep_every_resource_as_records():
    # dlt applies resource_defaults to each resource: a map step there must see dicts.
    from restsync_dagster.connector import parse_connector

    text = (BUNDLED / "generic.yaml").read_text()
    for hint in ("processing_steps: [{map: 'json:loads'}]", "columns: {name: {data_type: text}}"):
        connector = parse_connector(
            text.replace("    primary_key: id\n", f"    primary_key: id\n    {hint}\n"),
            "generic.yaml",
        )
        assert arrow_steps(connector, connector.resources) == {}, hint


def test_batches_follow_the_stored_types_of_the_table_a_resource_loads_into(tmp_path):
    """A resource loading into a table of another name: the second load's batches follow the
    types the first stored in ``stock`` (a whole number, then a fraction: a variant column)."""
    runs = [
        [[{"id": 1, "n": 1, "l": [{"x": 1}]}]],
        [[{"id": 2, "n": 2.5, "l": [{"x": "two"}]}]],
    ]
    hints = {"primary_key": "id", "write_disposition": "merge", "table_name": "stock"}
    plain = landed_tables(land_pages(tmp_path, "plain", runs, arrow=False, **hints))
    assert set(plain) == {"stock", "stock__l"}
    assert ("n__v_double", "DOUBLE") in plain["stock"][0]
    assert landed_tables(land_pages(tmp_path, "ours", runs, arrow=True, **hints)) == plain
