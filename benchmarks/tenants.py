"""The tenants case: the code-location load of one connector file serving 50 tenants against the
same file serving 1 (issue 25: one asset per resource whatever the tenants, so the load must not
grow with them; target <= 1.2x).

Two figures per file, each the median of ``repeat`` runs in fresh processes:

* ``dagster definitions validate`` of the code location, as Dagster loads it (imports included,
  as :func:`run.definitions_load` measures the connectors case);
* the build alone: the same process first builds the 1-tenant file from another folder (which
  imports everything the build imports lazily: Dagster's SQL storage, dlt's destinations), then
  times reading the file, building the definitions and resolving their asset graph and jobs. It
  also checks the file loaded (no stand-in for a broken file), counts the assets and the tenant
  partitions, so a ratio near 1 cannot come from a file that was left out.

Both files are measured twice: tenants as the only partitions, and tenants x days
(``partitions: daily``, Dagster's multi-partitions).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TENANTS = (1, 50)
VARIANTS = ("tenants", "tenants_x_daily")

CONNECTOR = """
name: shop
tenants:
  keys: [{keys}]
{partitions}
source:
  client:
    base_url: "{{{{ tenant.BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ tenant.API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint:
        path: /v1/items
        data_selector: data
        paginator: {{type: offset, limit: 100}}
{incremental}
    - name: customers
      endpoint: /v1/customers
    - name: tickets
      endpoint: /v1/tickets
"""
DAILY = "partitions: {daily: {start: 2026-01-01}}"
INCREMENTAL = """        incremental:
          start_param: updated_since
          end_param: updated_until
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


def connector_file(tenants: int, variant: str) -> str:
    """The ``shop`` connector file with ``tenants`` static tenants (t01, t02...)."""
    keys = ", ".join(f"t{n:02d}" for n in range(1, tenants + 1))
    daily = variant == "tenants_x_daily"
    return CONNECTOR.format(
        keys=keys, partitions=DAILY if daily else "", incremental=INCREMENTAL if daily else ""
    )


def _environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESTSYNC_HOME": str(folder / "state"),
        "RESTSYNC_CONNECTORS_DIR": str(folder / "connectors"),
        "RESTSYNC_INCLUDE_EXAMPLES": "false",
    }


def _with_file(tenants: int, variant: str) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    holder = tempfile.TemporaryDirectory()
    folder = Path(holder.name)
    (folder / "connectors").mkdir()
    (folder / "connectors" / "shop.yaml").write_text(connector_file(tenants, variant))
    return holder, folder


def validate_seconds(tenants: int, variant: str) -> float:
    """Wall time of ``dagster definitions validate`` with the one ``shop`` file."""
    holder, folder = _with_file(tenants, variant)
    with holder:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "restsync_dagster.definitions"],
            env=_environment(folder), check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        return time.perf_counter() - started


def build(tenants: int, variant: str) -> dict[str, Any]:
    """The build alone, in a fresh process (see :func:`build_in_this_process`)."""
    holder, folder = _with_file(tenants, variant)
    with holder:
        output = subprocess.run(
            [sys.executable, str(Path(__file__)), "--build", variant],
            env=_environment(folder), check=True, capture_output=True, text=True, cwd=ROOT,
        ).stdout  # fmt: skip
    return dict(json.loads(output.strip().splitlines()[-1]))


def build_in_this_process(variant: str) -> dict[str, Any]:
    """Time reading the connector files and building and resolving the definitions, after a
    warm-up build of the 1-tenant file; count what was built."""
    import dagster as dg

    from restsync_dagster.definitions import load_definitions

    holder, warm_up = _with_file(1, variant)
    with holder:
        measured = os.environ["RESTSYNC_CONNECTORS_DIR"]
        os.environ["RESTSYNC_CONNECTORS_DIR"] = str(warm_up / "connectors")
        load_definitions().resolve_asset_graph()
        os.environ["RESTSYNC_CONNECTORS_DIR"] = measured
    started = time.perf_counter()
    defs = load_definitions()
    assets = defs.resolve_all_asset_keys()
    jobs = defs.resolve_all_job_defs()
    graph = defs.resolve_asset_graph()
    elapsed = time.perf_counter() - started
    shop = [key for key in assets if key.path[0] == "shop"]
    partitions = graph.get(shop[0]).partitions_def if shop else None
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        partitions = partitions.get_partitions_def_for_dimension("tenant")
    tenant_keys = partitions.get_partition_keys() if partitions is not None else []
    return {
        "build_s": elapsed,
        "assets": len(shop),
        "all_assets": len(assets),
        "jobs": len(jobs),
        "tenant_partitions": len(tenant_keys),
    }


def run_case(repeat: int) -> dict[str, Any]:
    """Every figure of the case: per variant and tenant count, medians and the counts."""
    results: dict[str, Any] = {}
    for variant in VARIANTS:
        figures: dict[str, Any] = {}
        for tenants in TENANTS:
            builds = [build(tenants, variant) for _ in range(repeat)]
            counts = {k: v for k, v in builds[0].items() if k != "build_s"}
            if counts["assets"] != 3 or counts["tenant_partitions"] != tenants:
                raise RuntimeError(f"the {tenants}-tenant file did not load as written: {counts}")
            figures[str(tenants)] = {
                "validate_s": statistics.median(
                    validate_seconds(tenants, variant) for _ in range(repeat)
                ),
                "build_s": statistics.median(b["build_s"] for b in builds),
                **counts,
            }
        one, many = figures[str(TENANTS[0])], figures[str(TENANTS[-1])]
        if (one["assets"], one["jobs"]) != (many["assets"], many["jobs"]):
            raise RuntimeError(f"the code location grew with the tenants: {one} / {many}")
        figures["validate_ratio"] = many["validate_s"] / one["validate_s"]
        figures["build_ratio"] = many["build_s"] / one["build_s"]
        results[variant] = figures
    return results


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows for the benchmark's table."""
    rows: list[tuple[str, str, str]] = []
    one, many = TENANTS[0], TENANTS[-1]
    for variant, figures in results.items():
        a, b = figures[str(one)], figures[str(many)]
        label = "tenants" if variant == "tenants" else "tenants x daily"
        rows += [
            (f"code location load, one file, {label}: {one} / {many}", f"{a['validate_s']:.2f} s / {b['validate_s']:.2f} s", ""),
            ("  ratio", f"{figures['validate_ratio']:.2f}", "<= 1.2"),
            ("  build alone (after imports)", f"{a['build_s'] * 1000:.0f} / {b['build_s'] * 1000:.0f} ms = {figures['build_ratio']:.2f}", ""),
            ("  assets / jobs (both files)", f"{b['assets']} / {b['jobs']}", "same"),
        ]  # fmt: skip
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build"]:
        print(json.dumps(build_in_this_process(sys.argv[2])))
    else:
        found = run_case(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
        print(json.dumps(found, indent=2))
        print("\n".join(f"{a:<60} {b:>28}  {c}" for a, b, c in table_rows(found)))
