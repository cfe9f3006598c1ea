"""Nested records land as plain dlt lands them (the nested half of ``test_fetch``'s comparison).

The demo API's ``generic.tickets`` nest an object two levels deep, a list of scalars (sometimes
empty), a list of objects holding a list of their own, nulls at every level, and values whose
type changes (variant columns in the root and in a child table). restsync and dlt's own
``rest_api_source`` load the same pages with merge, incremental merge, replace, and merge with
``max_table_nesting: 1``, then again after the API inserted and updated tickets: every table,
its columns in order with their types (dlt's ``_dlt_*`` ones and the variants included) and every
row with its place under its root record are the same, and every child row's ids follow dlt's
formulas. restsync's pages travel as Arrow through the vectorized normalizer
(``extract/relational.py``), and no page falls back to dlt's normalizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster.load.normalize import usable_cores
from restsync_dagster_tests.helpers import landed_tables

KEY = "nested-key"
TABLES = ("tickets", "tickets__meta__flags", "tickets__comments", "tickets__comments__tags")
INCREMENTAL = {
    "cursor_path": "updated_at",
    "start_param": "updated_since",
    "initial_value": "2026-01-01T00:00:00Z",
}
#: Settings a test may give restsync to split extracted files; plain dlt runs with dlt's own.
SPLIT_FILES = ("SOURCES__DATA_WRITER__FILE_MAX_ITEMS", "SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS")
MODES: dict[str, dict[str, Any]] = {
    "merge": {"write_disposition": "merge"},
    "incremental": {"write_disposition": "merge", "incremental": INCREMENTAL},
    "replace": {"write_disposition": "replace"},
    # One level of child tables: ``comments`` keeps its ``tags``, and ``meta`` its ``flags``, as
    # json columns.
    "max_table_nesting": {"write_disposition": "merge", "max_table_nesting": 1},
}


def resource(mode: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "path": "/generic/v1/tickets",
        "data_selector": "data",
        "paginator": {"type": "offset", "limit": 100},
    }
    if "incremental" in MODES[mode]:
        endpoint["incremental"] = MODES[mode]["incremental"]
    extra = {k: v for k, v in MODES[mode].items() if k not in ("write_disposition", "incremental")}
    return {
        "name": "tickets",
        "primary_key": "id",
        "write_disposition": MODES[mode]["write_disposition"],
        "endpoint": endpoint,
        **extra,
    }


def source_config(url: str, mode: str) -> dict[str, Any]:
    return {
        "client": {
            "base_url": url,
            "auth": {"type": "api_key", "name": "api_key", "location": "query", "api_key": KEY},
        },
        "resources": [resource(mode)],
    }


def connector_yaml(mode: str, arrow: bool = True) -> str:
    import yaml

    config = source_config("{{ env.NEST_BASE_URL }}", mode)
    config["client"]["auth"]["api_key"] = "{{ env.NEST_API_KEY }}"
    connector = {"name": "nest", "rate_limit": {"max_concurrency": 4}, "source": config}
    if not arrow:
        connector["arrow"] = False
    return yaml.safe_dump(connector)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_nested_records_land_as_plain_dlt_lands_them(
    mode, start_demo_api, restsync_home, instance, tmp_path, monkeypatch
):
    compare_with_plain_dlt(mode, start_demo_api, restsync_home, instance, tmp_path, monkeypatch)


@pytest.mark.parametrize("mode", ["merge", "max_table_nesting"])
@pytest.mark.parametrize("read_ahead", ["true", "false"])
def test_nested_records_loaded_in_several_packages_land_as_plain_dlt_lands_them(
    mode, read_ahead, start_demo_api, restsync_home, instance, tmp_path, monkeypatch
):
    """1,250 tickets in packages of 300 records (extract/packages.py), each committed on its own
    and normalized with the schema the one before saved: the same tables as plain dlt's one
    package."""
    monkeypatch.setenv("RESTSYNC_PACKAGE_ROWS", "300")
    monkeypatch.setenv("RESTSYNC_PACKAGE_READ_AHEAD", read_ahead)
    logs = compare_with_plain_dlt(
        mode, start_demo_api, restsync_home, instance, tmp_path, monkeypatch
    )
    assert "load package 5 of this run committed" in logs


def test_with_normalize_workers_auto_every_nested_row_lands_where_plain_dlt_puts_it(
    start_demo_api, restsync_home, instance, tmp_path, monkeypatch
):
    """Several processes (records for dlt's normalizer: ``arrow: false``): every row in its place,
    but a column whose values change type may be typed by whichever file comes first
    (load/normalize.py), so columns are not compared."""
    if usable_cores() < 2:
        pytest.skip("one core: restsync normalizes in one process")
    monkeypatch.setenv("RESTSYNC_NORMALIZE_WORKERS", "auto")
    # 1,250 tickets in extracted files of 300 (dlt starts a file when it flushes its buffer):
    # five files, more than one worker's worth. Plain dlt runs without these.
    monkeypatch.setenv("SOURCES__DATA_WRITER__FILE_MAX_ITEMS", "300")
    monkeypatch.setenv("SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS", "100")
    logs = compare_with_plain_dlt(
        "merge",
        start_demo_api,
        restsync_home,
        instance,
        tmp_path,
        monkeypatch,
        places_only=True,
        arrow=False,
    )
    assert f"normalizing 5 files of records in {min(5, usable_cores())} processes" in logs


def compare_with_plain_dlt(
    mode: str,
    start_demo_api: Any,
    restsync_home: Path,
    instance: Any,
    tmp_path: Path,
    monkeypatch: Any,
    places_only: bool = False,
    arrow: bool = True,
) -> str:
    """Two syncs by restsync and by plain dlt, then the tables compared (``places_only``: which
    rows each table holds, where, not their columns); returns restsync's logs."""
    logs = []
    api = start_demo_api(api_keys={"*": KEY}, counts={"generic.tickets": 1_250})
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "nest.yaml").write_text(connector_yaml(mode, arrow))
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("NEST_BASE_URL", api.url())
    monkeypatch.setenv("NEST_API_KEY", KEY)
    plain = plain_pipeline(tmp_path)
    for _ in range(2):
        job = load_definitions().resolve_job_def("nest_sync")
        result = job.execute_in_process(instance=instance)
        assert result.success
        logs += [str(e.message) for e in instance.all_logs(result.run_id)]
        fallbacks = [line for line in logs if "instead of Arrow" in line]
        assert not fallbacks or not arrow, fallbacks
        with monkeypatch.context() as plain_env:
            for name in SPLIT_FILES:
                plain_env.delenv(name, raising=False)
            plain.run(rest_api_source(api.url(), mode))
        api.advance("generic.tickets", insert=60, update=90, hours=1)
    # Columns in order with their types, every row in its place under its root record, and
    # dlt's id formulas on every child row (restsync_dagster_tests/helpers.py).
    expected = landed_tables(tmp_path / "plain.duckdb", "nest")
    ours = landed_tables(restsync_home / "warehouse.duckdb", "nest")
    if "max_table_nesting" in MODES[mode]:
        assert set(expected) == {"tickets", "tickets__comments"}
    else:
        assert set(expected) == set(TABLES)
        assert expected["tickets__comments__tags"][1], "two levels deep: the shape is exercised"
        assert ("score__v_double", "DOUBLE") in expected["tickets__comments"][0], "a variant"
    assert ("sla_hours__v_text", "VARCHAR") in expected["tickets"][0], "a variant column"
    if places_only:
        assert places(ours) == places(expected)
    else:
        assert ours == expected
    assert [name for name, (_, _, broken) in ours.items() if broken] == [], "dlt's id formulas"
    return "\n".join(logs)


def places(shapes: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Where each table's rows sit (see :func:`landed_tables`), without their columns."""
    return {name: sorted(place for place, _ in rows) for name, (_, rows, _) in shapes.items()}


def plain_pipeline(home: Path) -> Any:
    return dlt.pipeline(
        pipeline_name="plain_nest",
        pipelines_dir=str(home / "plain"),
        destination=dlt.destinations.duckdb(credentials=str(home / "plain.duckdb")),
        dataset_name="nest",
    )


def rest_api_source(url: str, mode: str) -> Any:
    from dlt.sources.rest_api import rest_api_source as source

    return source(source_config(url, mode), name="nest")  # type: ignore[arg-type]
