"""Fixed costs: what a sync costs when there is little or nothing to do.

- **tiny sync**: the wall time of ``restsync sync`` (a fresh process, as a user or a cron job
  runs it) of a 100-record connector, beside the wall time of a bare
  ``python -c "import dagster, dlt, dagster_dlt"``. The two are timed in turn, so both see the
  same machine load; the home is warmed by one sync first (instance and tables exist), as for
  any scheduled sync after the first.
- **incremental no-op** at two sizes: a connector whose table holds 10k records, then one with
  1M; after a full sync, the job wall time of syncs that find nothing new. A cost that grows
  with the data shows as a ratio above 1.

The full sync runs in one process and the no-ops in a fresh one (``--noop N``): a 1M-record
load leaves nothing behind in the process that times the no-ops, as with a scheduled sync.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent


def _wall(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``command``. On a shared machine the
    CPU time moves less with the other tenants' load than the wall time does."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def tiny_sync(repeat: int) -> dict[str, Any]:
    """``restsync sync`` of 100 records against a bare import, both as fresh processes."""
    from run import connector_env, demo_api  # type: ignore[import-not-found]

    restsync = str(Path(sys.executable).with_name("restsync"))
    sync = [restsync, "sync", "bench", "-q"]
    bare = [sys.executable, "-c", "import dagster, dlt, dagster_dlt"]
    records = 100
    with demo_api(records) as url, connector_env(url):
        env = dict(os.environ)
        _wall(sync, env)  # the first sync creates the instance and the tables
        syncs, imports = [], []
        for _ in range(repeat):
            imports.append(_wall(bare, env))
            syncs.append(_wall(sync, env))
    sync_s, import_s = (statistics.median(w for w, _ in runs) for runs in (syncs, imports))
    sync_cpu, import_cpu = (statistics.median(c for _, c in runs) for runs in (syncs, imports))
    return {
        "records": records,
        "sync_s": sync_s,
        "import_s": import_s,
        "ratio": sync_s / import_s,
        "sync_cpu_s": sync_cpu,
        "import_cpu_s": import_cpu,
        "cpu_ratio": sync_cpu / import_cpu,
    }


def noop(repeat: int, sizes: tuple[int, int]) -> dict[str, Any]:
    """Median job wall time of an incremental no-op after a full sync, at two table sizes: the
    full sync in one process, the no-ops in a fresh one (as a scheduled sync runs)."""
    import tempfile

    from run import demo_api

    seconds = {}
    for records in sizes:
        with demo_api(records) as url, tempfile.TemporaryDirectory() as home:
            for step in ("full", "noop"):
                output = subprocess.run(
                    [sys.executable, str(BENCHMARKS / "run.py"), "--noop", str(records),
                     "--noop-step", step, "--noop-url", url, "--noop-home", home,
                     "--repeat", str(repeat)],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
        seconds[records] = float(output.strip().splitlines()[-1])
    small, large = sizes
    return {
        f"noop_{small}_s": seconds[small],
        f"noop_{large}_s": seconds[large],
        "ratio": seconds[large] / seconds[small],
    }


def noop_in_this_process(url: str, home: str, records: int, step: str, repeat: int) -> float:
    """``full``: a full incremental sync of ``records`` into ``home``; ``noop``: one warm-up
    no-op, then ``repeat`` more; the median of their job wall times."""
    from run import API_KEY, CONNECTOR, INCREMENTAL, restsync_sync

    connectors = Path(home, "connectors")
    connectors.mkdir(exist_ok=True)
    (connectors / "bench.yaml").write_text(
        CONNECTOR.format(extra="rate_limit: {max_concurrency: 4}", incremental=INCREMENTAL)
    )
    os.environ.update(
        {
            "RESTSYNC_HOME": str(Path(home, "state")),
            "RESTSYNC_CONNECTORS_DIR": str(connectors),
            "RESTSYNC_INCLUDE_EXAMPLES": "false",
            "BENCH_BASE_URL": f"{url}/generic",
            "BENCH_API_KEY": API_KEY,
        }
    )
    if step == "full":
        return restsync_sync(records)[0]
    restsync_sync(records, fresh=False)
    return statistics.median(restsync_sync(records, fresh=False)[0] for _ in range(repeat))


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The table rows of these cases (those that ran)."""
    out = []
    if "tiny_sync" in results:
        tiny = results["tiny_sync"]
        out += [
            (f"tiny sync ({tiny['records']} records, restsync sync)", f"{tiny['sync_s']:.2f} s", ""),
            ("  import dagster, dlt, dagster_dlt", f"{tiny['import_s']:.2f} s", ""),
            ("  ratio", f"{tiny['ratio']:.2f}", "<= 1.4"),
            ("  the same in CPU time", f"{tiny['sync_cpu_s']:.2f} / {tiny['import_cpu_s']:.2f} s = {tiny['cpu_ratio']:.2f}", ""),
        ]  # fmt: skip
    if "noop_sizes" in results:
        sizes = results["noop_sizes"]
        small, large = (k for k in sizes if k.startswith("noop_"))
        out += [
            (
                f"incremental no-op, {small.split('_')[1]} / {large.split('_')[1]} records",
                f"{sizes[small]:.2f} s / {sizes[large]:.2f} s",
                "",
            ),
            ("  ratio", f"{sizes['ratio']:.2f}", "<= 1.1"),
        ]
    return out
