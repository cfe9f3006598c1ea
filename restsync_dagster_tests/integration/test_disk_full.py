"""A full disk mid-sync, on a real 20 MB tmpfs: dlt's working directory filling while it
extracts, or the DuckDB file's filesystem filling while it loads. The run fails with one clear
reason (no space left on device, while what, writing where), the tables keep the rows of the
sync before, and once space is freed the next sync loads exactly the API's rows.

Mounting needs root with CAP_SYS_ADMIN (CI's fresh machine has it); where mounting is not
permitted, as in most containers, the tests skip and say so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from restsync_dagster_tests.helpers import point_connectors_at, step_failure, sync_job, table_rows


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs, unmounted after the test."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no 'mount' command here: cannot make a small filesystem to fill")
    if mounted.returncode != 0:
        pytest.skip(
            "mounting a tmpfs is not permitted here (it needs root with CAP_SYS_ADMIN, which "
            f"containers usually withhold): {mounted.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)


def fill(filesystem: Path, leave_bytes: int) -> Path:
    """Write a file that leaves ``leave_bytes`` free on ``filesystem``."""
    stat = os.statvfs(filesystem)
    free = stat.f_bavail * stat.f_frsize
    filler = filesystem / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(free - leave_bytes, 0))
    return filler


@pytest.mark.parametrize(
    ("full", "phase"),
    [
        ("dlt working directory", "while extracting (writing dlt's working files)"),
        ("DuckDB file", "while loading into the destination"),
    ],
)
def test_a_full_disk_fails_the_sync_clearly_and_the_next_sync_after_freeing_space_loads_exactly(
    full, phase, small_filesystem, start_demo_api, restsync_home, monkeypatch, instance, tmp_path
):
    if full == "DuckDB file":
        warehouse_dir = small_filesystem
    else:
        warehouse_dir = tmp_path / "warehouse"
        monkeypatch.setenv("RESTSYNC_HOME", str(small_filesystem / "restsync"))
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(warehouse_dir / "warehouse.duckdb"))
    api = start_demo_api()
    point_connectors_at(api, monkeypatch)
    assert sync_job("ecommerce", instance).success
    before = table_rows(warehouse_dir, "ecommerce.orders")

    api.advance("ecommerce.orders", insert=15_000, update=40, hours=6)
    filler = fill(small_filesystem, leave_bytes=1024 * 1024)
    failed = sync_job("ecommerce", instance)
    assert not failed.success
    message, metadata = step_failure(failed)
    assert metadata["restsync/kind"] == "disk_full"
    assert metadata["restsync/transient"] is False
    first_line = message.splitlines()[0]
    assert "connector 'ecommerce'" in first_line
    assert "no space left on device. Out of space " + phase in first_line
    assert str(small_filesystem) in first_line, "names the directory or file that filled"
    if full == "DuckDB file":
        assert metadata["restsync/resource"] == "orders"
        assert f"DuckDB file {small_filesystem / 'warehouse.duckdb'}" in first_line
    else:
        assert "the destination was not written" in first_line
    assert "Free space on that filesystem" in first_line
    assert table_rows(warehouse_dir, "ecommerce.orders") == before, "previous rows intact"

    filler.unlink()
    assert sync_job("ecommerce", instance).success
    expected = api.expected_rows("ecommerce", "orders")
    stored = table_rows(warehouse_dir, "ecommerce.orders")
    assert [r["id"] for r in stored] == sorted(r["id"] for r in expected), "none lost, none twice"
    status = {r["id"]: r["status"] for r in expected}
    assert all(r["status"] == status[r["id"]] for r in stored), "every update applied"
    lines = table_rows(warehouse_dir, "ecommerce.orders__line_items", order_by="_dlt_parent_id")
    assert len(lines) == sum(len(o["line_items"]) for o in expected)
