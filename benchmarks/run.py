"""The restsync benchmark: every case in one invocation, against the bundled demo API.

    python3 scripts/dev.py bench            # the full run (about 10 minutes on 2 cores)
    python3 scripts/dev.py bench --quick    # smaller data, one repetition (a smoke test)
    python3 scripts/dev.py bench --only-nested   # one case (benchmarks/nested.py) alone
    python3 scripts/dev.py bench --packages --quick   # one load package against several
    python3 scripts/dev.py bench --cases tiny_sync,noop    # only these cases (see CASES)

Writes ``bench-results/results.json`` and prints a table. Every figure is the median of
``--repeat`` runs, and every ratio comes from figures of this same invocation. The demo API
runs in its own process, so client and server do not share an interpreter lock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import fixed_cost  # benchmarks/fixed_cost.py, beside this script
import jobs  # benchmarks/jobs.py, beside this script
import nested  # benchmarks/nested.py, beside this script
import partitions  # benchmarks/partitions.py, beside this script
import tenants  # benchmarks/tenants.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results" / "results.json"
API_KEY = "bench-key"

CONNECTOR = """
name: bench
retry: {{max_retries: 3, backoff_factor: 0.1}}
{extra}
source:
  client:
    base_url: "{{{{ env.BENCH_BASE_URL }}}}"
    auth: {{type: api_key, name: api_key, location: query, api_key: "{{{{ env.BENCH_API_KEY }}}}"}}
  resource_defaults: {{primary_key: id, write_disposition: merge}}
  resources:
    - name: items
      endpoint:
        path: /v1/items
        data_selector: data
        paginator: {{type: offset, limit: 100}}
{incremental}
"""
INCREMENTAL = """        incremental:
          start_param: updated_since
          cursor_path: updated_at
          initial_value: "2026-01-01T00:00:00Z"
"""


# ------------------------------------------------------------------------------------------------
# Parts


@contextmanager
def demo_api(records: int, latency_ms: float = 0) -> Iterator[str]:
    """The demo API in its own process with ``records`` generic items; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "restsync_dagster.cli", "demo-api", "--port", "0",
            "--records", f"generic.items={records}", "--api-key", API_KEY,
            "--latency-ms", str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not match:
        process.kill()
        raise RuntimeError(f"the demo API did not start: {line!r}")
    try:
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)


def median_seconds(runs: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(runs))


def ceiling(url: str, records: int) -> float:
    """A plain requests loop that fetches and parses every page."""
    import requests

    session = requests.Session()
    started = time.perf_counter()
    rows = 0
    for offset in range(0, records, 100):
        page = session.get(
            f"{url}/generic/v1/items",
            params={"api_key": API_KEY, "offset": offset, "limit": 100},
            timeout=30,
        ).json()
        rows += len(page["data"])
    assert rows == records, rows
    return time.perf_counter() - started


def plain_dlt(url: str, records: int) -> float:
    """dlt's rest_api_source into DuckDB with default settings, the same config as the connector."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    with tempfile.TemporaryDirectory() as tmp:
        source = rest_api_source(
            {
                "client": {
                    "base_url": f"{url}/generic",
                    "auth": {
                        "type": "api_key",
                        "name": "api_key",
                        "location": "query",
                        "api_key": API_KEY,
                    },
                },
                "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
                "resources": [
                    {
                        "name": "items",
                        "endpoint": {
                            "path": "/v1/items",
                            "data_selector": "data",
                            "paginator": {"type": "offset", "limit": 100},
                        },
                    }
                ],
            },
            name="bench",
        )
        pipeline = dlt.pipeline(
            pipeline_name="plain_dlt",
            pipelines_dir=tmp,
            destination=dlt.destinations.duckdb(credentials=f"{tmp}/plain.duckdb"),
            dataset_name="bench",
        )
        started = time.perf_counter()
        info = pipeline.run(source)
        elapsed = time.perf_counter() - started
        rows = pipeline.last_trace.last_normalize_info.row_counts.get("items")
        assert rows == records and not info.has_failed_jobs, rows
        return elapsed


@contextmanager
def connector_env(url: str, extra: str = "", incremental: bool = False) -> Iterator[Path]:
    """A RESTSYNC_HOME with the ``bench`` connector pointed at ``url``."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "connectors").mkdir()
        (home / "connectors" / "bench.yaml").write_text(
            CONNECTOR.format(extra=extra, incremental=INCREMENTAL if incremental else "")
        )
        saved = dict(os.environ)
        os.environ.update(
            {
                "RESTSYNC_HOME": str(home / "state"),
                "RESTSYNC_CONNECTORS_DIR": str(home / "connectors"),
                "RESTSYNC_INCLUDE_EXAMPLES": "false",
                "BENCH_BASE_URL": f"{url}/generic",
                "BENCH_API_KEY": API_KEY,
            }
        )
        try:
            yield home
        finally:
            os.environ.clear()
            os.environ.update(saved)


def restsync_sync(records: int, fresh: bool = True) -> tuple[float, float]:
    """``bench_sync`` through Dagster, as ``restsync sync`` runs it. Returns (job wall time,
    seconds of dlt's extract, normalize and load); the environment is set by :func:`connector_env`."""
    elapsed, metadata = jobs.timed_sync_job("bench_sync", "items", fresh)
    if fresh:
        assert metadata["rows_loaded"].value == records, metadata["rows_loaded"]
    return elapsed, float(metadata["sync_seconds"].value)


def peak_rss_of_a_sync(url: str, records: int) -> float:
    """Peak resident memory (MiB) of a fresh process that runs one sync of ``records`` records."""
    with connector_env(url):
        output = subprocess.run(
            [sys.executable, str(Path(__file__)), "--one-sync", str(records)],
            env=dict(os.environ), check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    return float(output.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's ``VmHWM`` is the high-water mark of this
    process's own memory; ``ru_maxrss`` would also count the parent's memory at the fork."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def definitions_load(connectors: int) -> float:
    """Wall time of ``dagster definitions validate`` with ``connectors`` connector files."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RESTSYNC_HOME": f"{tmp}/state"}
        if connectors == 5:
            env["RESTSYNC_INCLUDE_EXAMPLES"] = "true"
            env.pop("RESTSYNC_CONNECTORS_DIR", None)
        else:
            for n in range(connectors):
                Path(tmp, f"c{n:03d}.yaml").write_text(
                    CONNECTOR.format(extra="", incremental="")
                    .replace("name: bench", f"name: c{n:03d}")
                    .replace(
                        "- name: items",
                        "- name: items\n    - name: more\n      endpoint: /v1/more\n    - name: other",
                    )
                )
            env.update(RESTSYNC_INCLUDE_EXAMPLES="false", RESTSYNC_CONNECTORS_DIR=tmp)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "restsync_dagster.definitions"],
            env=env, check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        return time.perf_counter() - started


# ------------------------------------------------------------------------------------------------
# Cases


CASES = (
    "cpu_bound", "latency_bound", "code_location_load", "memory", "partitions", "nested",
    "tiny_sync", "noop", "tenants_load",
)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    repeat = 1 if quick else args.repeat
    cases = set(args.cases.split(",")) if args.cases else set(CASES)
    unknown = cases - set(CASES)
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(sorted(unknown))}; cases: {', '.join(CASES)}")
    results: dict[str, Any] = {"machine": machine(), "repeat": repeat}
    if "cpu_bound" in cases:
        cpu_bound(results, quick, repeat)
    if "latency_bound" in cases:
        latency_bound(results, quick, repeat)
    if "code_location_load" in cases:
        code_location_load(results, quick, repeat)
    if "memory" in cases:
        memory(results, quick, repeat)
    if "partitions" in cases:
        results["partitions"] = partitions.run_case(demo_api, API_KEY)
    if "nested" in cases:
        results["nested"] = nested.run(quick, repeat)
    if "tiny_sync" in cases:
        results["tiny_sync"] = fixed_cost.tiny_sync(repeat)
    if "noop" in cases:
        sizes = (2_000, 100_000) if quick else (10_000, 1_000_000)
        results["noop_sizes"] = fixed_cost.noop(repeat, sizes)
    if "tenants_load" in cases:
        results["tenants_load"] = tenants.run_case(repeat)
    return results


def cpu_bound(results: dict[str, Any], quick: bool, repeat: int) -> None:
    cpu_records = 20_000 if quick else 100_000
    with demo_api(cpu_records) as url:
        a = median_seconds(repeat, lambda: ceiling(url, cpu_records))
        b = median_seconds(repeat, lambda: plain_dlt(url, cpu_records))
        with connector_env(url, extra="rate_limit: {max_concurrency: 4}"):
            c_runs = [restsync_sync(cpu_records) for _ in range(repeat)]
        c = statistics.median(wall for wall, _ in c_runs)
        # The seam off: every page through dlt's own normalizer, as on a dlt it does not fit.
        with connector_env(url, extra="rate_limit: {max_concurrency: 4}\narrow: false"):
            off = statistics.median(restsync_sync(cpu_records)[0] for _ in range(repeat))
        results["cpu_bound"] = {
            "records": cpu_records,
            "ceiling_rows_per_s": cpu_records / a,
            "plain_dlt_rows_per_s": cpu_records / b,
            "restsync_rows_per_s": cpu_records / c,
            "restsync_over_ceiling": a / c,
            "restsync_over_plain_dlt": b / c,
            "seam_off_rows_per_s": cpu_records / off,
            "seam_off_over_ceiling": a / off,
        }

        # Incremental no-op over the same records: a full incremental sync, then one with nothing new.
        with connector_env(url, extra="rate_limit: {max_concurrency: 4}", incremental=True):
            full, noop = [], []
            for _ in range(repeat):
                full.append(restsync_sync(cpu_records))
                noop.append(restsync_sync(cpu_records, fresh=False))
        full_wall = statistics.median(w for w, _ in full)
        noop_wall = statistics.median(w for w, _ in noop)
        results["incremental_noop"] = {
            "full_sync_s": full_wall,
            "noop_sync_s": noop_wall,
            "noop_over_full": noop_wall / full_wall,
            "noop_over_full_inside_dlt": statistics.median(i for _, i in noop)
            / statistics.median(i for _, i in full),
        }


def latency_bound(results: dict[str, Any], quick: bool, repeat: int) -> None:
    latency_records, latency_ms, concurrency = (4_000 if quick else 20_000), 50, 8
    pages = latency_records // 100
    ideal = pages * latency_ms / 1000 / concurrency
    with demo_api(latency_records, latency_ms=latency_ms) as url:
        sequential = median_seconds(repeat, lambda: plain_dlt(url, latency_records))
        with connector_env(url, extra=f"rate_limit: {{max_concurrency: {concurrency}}}"):
            concurrent = [restsync_sync(latency_records) for _ in range(repeat)]
    results["latency_bound"] = {
        "records": latency_records,
        "pages": pages,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "ideal_s": ideal,
        "plain_dlt_s": sequential,
        "plain_dlt_over_ideal": sequential / ideal,
        "restsync_s": statistics.median(w for w, _ in concurrent),
        "restsync_over_ideal": statistics.median(w for w, _ in concurrent) / ideal,
        "restsync_inside_dlt_over_ideal": statistics.median(i for _, i in concurrent) / ideal,
    }


def code_location_load(results: dict[str, Any], quick: bool, repeat: int) -> None:
    five = median_seconds(repeat, lambda: definitions_load(5))
    many = median_seconds(repeat, lambda: definitions_load(40 if quick else 200))
    results["code_location_load"] = {
        "connectors_5_s": five,
        f"connectors_{40 if quick else 200}_s": many,
        "ratio": many / five,
    }


def memory(results: dict[str, Any], quick: bool, repeat: int) -> None:
    small, large = (20_000, 100_000) if quick else (100_000, 1_000_000)
    with demo_api(small) as url:
        rss_small = statistics.median(peak_rss_of_a_sync(url, small) for _ in range(repeat))
    with demo_api(large) as url:
        rss_large = statistics.median(peak_rss_of_a_sync(url, large) for _ in range(repeat))
    results["memory"] = {
        f"rss_{small}_mib": rss_small,
        f"rss_{large}_mib": rss_large,
        "ratio": rss_large / rss_small,
    }


def machine() -> dict[str, Any]:
    import dagster
    import dlt
    import duckdb

    cpu = "unknown"
    with suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "dlt": dlt.__version__,
        "duckdb": duckdb.__version__,
    }


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    if "cpu_bound" in results:
        cpu, inc = results["cpu_bound"], results["incremental_noop"]
        rows += [
            ("CPU-bound ceiling (requests loop)", f"{cpu['ceiling_rows_per_s']:,.0f} rows/s", ""),
            ("CPU-bound plain dlt, defaults", f"{cpu['plain_dlt_rows_per_s']:,.0f} rows/s", ""),
            ("CPU-bound restsync (through Dagster)", f"{cpu['restsync_rows_per_s']:,.0f} rows/s", ""),
            ("  restsync / ceiling", f"{cpu['restsync_over_ceiling']:.2f}", ">= 1.0"),
            ("  restsync / plain dlt", f"{cpu['restsync_over_plain_dlt']:.1f}x", ""),
            ("  plain dlt / ceiling", f"{cpu['plain_dlt_rows_per_s'] / cpu['ceiling_rows_per_s']:.2f}", ""),
            ("CPU-bound restsync, seam off (arrow: false)", f"{cpu['seam_off_rows_per_s']:,.0f} rows/s", ""),
            ("  seam off / ceiling", f"{cpu['seam_off_over_ceiling']:.2f}", ""),
            ("incremental no-op / full sync", f"{inc['noop_over_full']:.3f}", "<= 0.05"),
            ("  inside dlt only", f"{inc['noop_over_full_inside_dlt']:.3f}", ""),
        ]  # fmt: skip
    if "latency_bound" in results:
        lat = results["latency_bound"]
        rows += [
            (f"latency-bound ideal ({lat['pages']} pages x {lat['latency_ms']} ms / {lat['concurrency']})", f"{lat['ideal_s']:.2f} s", ""),
            ("  plain dlt sequential / ideal", f"{lat['plain_dlt_over_ideal']:.1f}", ""),
            ("  restsync wall / ideal", f"{lat['restsync_over_ideal']:.2f}", "<= 1.2"),
            ("  restsync inside dlt / ideal", f"{lat['restsync_inside_dlt_over_ideal']:.2f}", ""),
        ]  # fmt: skip
    if "code_location_load" in results:
        load = results["code_location_load"]
        many = next(k for k in load if k.startswith("connectors_") and k != "connectors_5_s")
        count = int(many.split("_")[1])
        rows += [
            (f"code location load: 5 / {count} connectors", f"{load['connectors_5_s']:.1f} s / {load[many]:.1f} s", ""),
            ("  ratio", f"{load['ratio']:.2f}", "<= 2"),
            ("  per extra connector", f"{(load[many] - load['connectors_5_s']) / (count - 5) * 1000:.1f} ms", "<= 10 ms"),
        ]  # fmt: skip
    if "memory" in results:
        mem = results["memory"]
        sizes = [k for k in mem if k.startswith("rss_")]
        rows += [
            (f"peak RSS {sizes[0].split('_')[1]} / {sizes[1].split('_')[1]} records", f"{mem[sizes[0]]:.0f} / {mem[sizes[1]]:.0f} MiB", ""),
            ("  ratio", f"{mem['ratio']:.2f}", "<= 1.3"),
        ]  # fmt: skip
    rows += fixed_cost.rows(results)
    rows += partitions.table_rows(results["partitions"]) if "partitions" in results else []
    rows += nested.rows(results) if "nested" in results else []
    rows += tenants.table_rows(results["tenants_load"]) if "tenants_load" in results else []
    width = max(len(r[0]) for r in rows)
    lines = [f"{'case':<{width}}  {'measured':>22}  target", "-" * (width + 34)]
    lines += [f"{name:<{width}}  {value:>22}  {target}" for name, value, target in rows]
    m = results["machine"]
    lines.append(f"\nmachine: {m['cpus']} x {m['cpu']}; Python {m['python']}, dagster {m['dagster']}, "
                 f"dlt {m['dlt']}, duckdb {m['duckdb']}; median of {results['repeat']} run(s)")  # fmt: skip
    return "\n".join(lines)


#: The load-package alternatives ``--packages`` compares (extract/packages.py), by the settings
#: each runs with; ``{rows}`` is a quarter of the records.
PACKAGE_MODES = {
    "one package": {"RESTSYNC_PACKAGE_ROWS": "0"},
    "4 packages": {
        "RESTSYNC_PACKAGE_ROWS": "{rows}",
        "RESTSYNC_PACKAGE_SECONDS": "0",
        "RESTSYNC_PACKAGE_READ_AHEAD": "false",
    },
    "4 packages, read ahead": {
        "RESTSYNC_PACKAGE_ROWS": "{rows}",
        "RESTSYNC_PACKAGE_SECONDS": "0",
        "RESTSYNC_PACKAGE_READ_AHEAD": "true",
    },
}


def package_alternatives(quick: bool, repeat: int) -> list[tuple[str, str, str]]:
    """The nested and the flat case synced by restsync in one load package, in four, and in four
    read ahead by a thread: wall seconds, CPU seconds of the client process (every thread), and
    each wall over the ``requests`` loop's. Modes take turns within each repetition, and the load
    average is printed before and after, since the machine may be shared."""
    records = 20_000 if quick else 200_000
    lines = [("load average before", " ".join(f"{x:.1f}" for x in os.getloadavg()), "")]
    cases: list[tuple[str, Any, Any, Any, Callable[[], float]]] = []
    nested_api, flat_api = nested.tickets_api(records), demo_api(records)
    with nested_api as nested_url, flat_api as flat_url:
        cases = [
            ("nested", nested_url, nested.connector_env(nested_url), nested.ceiling,
             lambda: nested.restsync_sync(records)),
            ("flat", flat_url, connector_env(flat_url, extra="rate_limit: {max_concurrency: 4}"),
             ceiling, lambda: restsync_sync(records)[0]),
        ]  # fmt: skip
        for name, url, env, loop, sync in cases:
            floor = median_seconds(repeat, lambda: loop(url, records))  # noqa: B023
            walls: dict[str, list[float]] = {mode: [] for mode in PACKAGE_MODES}
            cpus: dict[str, list[float]] = {mode: [] for mode in PACKAGE_MODES}
            with env:
                for _ in range(repeat):
                    for mode, settings in PACKAGE_MODES.items():
                        saved = dict(os.environ)
                        os.environ.update(
                            {k: v.format(rows=records // 4) for k, v in settings.items()}
                        )
                        try:
                            cpu = time.process_time()
                            walls[mode].append(sync())
                            cpus[mode].append(time.process_time() - cpu)
                        finally:
                            os.environ.clear()
                            os.environ.update(saved)
            lines.append((f"{name}: requests loop ({records:,} records)", f"{floor:.2f} s", ""))
            for mode in PACKAGE_MODES:
                wall, cpu = statistics.median(walls[mode]), statistics.median(cpus[mode])
                lines.append(
                    (
                        f"{name}: {mode}",
                        f"{wall:.2f} s wall, {cpu:.2f} s CPU",
                        f"{floor / wall:.2f}",
                    )
                )
    lines.append(("load average after", " ".join(f"{x:.1f}" for x in os.getloadavg()), ""))
    return lines


def main() -> int:
    from restsync_dagster.load.destination import no_dlt_telemetry

    no_dlt_telemetry()  # 127.0.0.1 only, plain dlt too
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small data, one repetition")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--cases", help=f"comma-separated, among: {', '.join(CASES)}")
    parser.add_argument("--one-sync", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--only-partitions", action="store_true", help="just the partitions case")
    parser.add_argument("--only-nested", action="store_true", help="just the nested-records case")
    parser.add_argument(
        "--packages",
        action="store_true",
        help="just the load-package alternatives, nested and flat (extract/packages.py)",
    )
    parser.add_argument("--noop", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--noop-url", help=argparse.SUPPRESS)
    parser.add_argument("--noop-home", help=argparse.SUPPRESS)
    parser.add_argument("--noop-step", choices=("full", "noop"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop:
        print(
            fixed_cost.noop_in_this_process(
                args.noop_url, args.noop_home, args.noop, args.noop_step, args.repeat
            )
        )
        return 0
    if args.packages:
        found = package_alternatives(args.quick, args.repeat)  # --quick: smaller data only
        print("\n".join(f"{a:<44} {b:>30}  {c}" for a, b, c in found))
        return 0
    if args.only_nested:
        figures = {"nested": nested.run(args.quick, 1 if args.quick else args.repeat)}
        print("\n".join(f"{a:<44} {b:>20}  {c}" for a, b, c in nested.rows(figures)))
        return 0
    if args.one_sync:
        restsync_sync(args.one_sync)
        print(peak_rss_mib())
        return 0
    if args.only_partitions:
        found = partitions.run_case(demo_api, API_KEY)
        print("\n".join(f"{a:<52} {b:>22}  {c}" for a, b, c in partitions.table_rows(found)))
        return 0
    results = run(args)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\n(written to {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
