"""The floors contract: ``lint-imports`` keeps every import pointing down, and says so when not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from restsync_dagster_tests.helpers import REPO


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with this repo's contracts over the copy of the package in ``root``."""
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / "lint-imports"), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_upward_import_breaks_the_floors_contract_and_names_both_modules(tmp_path):
    shutil.copytree(
        REPO / "restsync_dagster",
        tmp_path / "restsync_dagster",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    clean = lint_imports(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    model = tmp_path / "restsync_dagster" / "connector" / "model.py"
    model.write_text(
        model.read_text(encoding="utf-8") + "\nimport restsync_dagster.orchestration.run  # noqa\n",
        encoding="utf-8",
    )
    planted = lint_imports(tmp_path)
    assert planted.returncode != 0
    report = " ".join(planted.stdout.split())
    assert "restsync_dagster.connector is not allowed to import restsync_dagster.orchestration" in (
        report
    )
    assert "restsync_dagster.connector.model -> restsync_dagster.orchestration.run" in report
    assert "Only the orchestration floor and above import Dagster BROKEN" in report
