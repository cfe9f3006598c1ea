"""Progress of long syncs in the run log: pages, rows and the rate, every few seconds."""

from __future__ import annotations

from restsync_dagster.definitions import load_definitions
from restsync_dagster.extract.progress import Progress
from restsync_dagster_tests.helpers import point_connectors_at


def test_progress_reports_at_most_once_per_interval_with_totals_and_rate():
    now = [0.0]
    lines: list[str] = []
    progress = Progress("shop", lines.append, interval=5, clock=lambda: now[0])
    for second in range(1, 12):
        now[0] = float(second)
        progress.page("orders", 100)
    assert len(lines) == 2  # at 5 s and at 10 s
    assert lines[0] == (
        "connector 'shop': 5 pages, 500 rows fetched in 5.0 s (100 rows/s); orders 5 pages/500 rows"
    )


def test_a_long_sync_logs_its_progress_to_the_run_log(
    start_demo_api, restsync_home, instance, monkeypatch
):
    api = start_demo_api(latency_ms=30)
    point_connectors_at(api, monkeypatch)
    monkeypatch.setenv("RESTSYNC_PROGRESS_INTERVAL_SECONDS", "0.05")
    result = (
        load_definitions().resolve_job_def("analytics_sync").execute_in_process(instance=instance)
    )
    assert result.success
    lines = [
        str(entry.user_message)
        for entry in instance.all_logs(result.run_id)
        if "rows fetched" in str(entry.user_message)
    ]
    assert len(lines) >= 3, lines
    assert lines[-1].startswith("connector 'analytics': 9 pages, 820 rows fetched in ")
    assert "events 7 pages/640 rows, sessions 2 pages/180 rows" in lines[-1]
