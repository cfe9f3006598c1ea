"""Where a command's state and connectors come from when nothing is set: the project folder's
``.restsync`` (found from any subfolder, as git finds ``.git``), and the ``dg`` project whose
components the CLI sees (never restsync's own checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from restsync_dagster.cli.project import find_dg_project
from restsync_dagster.settings import Settings, SettingsError, default_home
from restsync_dagster_tests.helpers import REPO

DG_PROJECT = '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "shop"\n'


def test_the_default_home_is_the_nearest_existing_one_above_then_the_project_folders(
    tmp_path: Path,
):
    deep = tmp_path / "project" / "notebooks" / "deep"
    deep.mkdir(parents=True)
    assert default_home(deep) == deep / ".restsync"  # no marker anywhere: here
    (tmp_path / "project" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert default_home(deep) == tmp_path / "project" / ".restsync"
    (tmp_path / ".restsync").mkdir()  # an existing home wins over a nearer project file
    assert default_home(deep) == tmp_path / ".restsync"


def test_a_relative_restsync_home_is_refused_and_an_absolute_one_kept(tmp_path: Path):
    with pytest.raises(SettingsError, match="RESTSYNC_HOME='state' is relative"):
        Settings.from_env({"RESTSYNC_HOME": "state"})
    settings = Settings.from_env({"RESTSYNC_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.pipelines_dir == tmp_path / "dlt"


def test_dlt_data_dir_puts_the_working_directories_where_dlt_puts_its_pipelines(tmp_path: Path):
    settings = Settings.from_env(
        {"RESTSYNC_HOME": str(tmp_path / "home"), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    )
    assert settings.pipelines_dir == tmp_path / "dlt" / "pipelines"
    assert settings.duckdb_path == tmp_path / "home" / "warehouse.duckdb"


def test_a_dg_project_is_found_from_below_and_restsyncs_own_checkout_is_not_one(tmp_path: Path):
    project = tmp_path / "shop"
    (project / "src" / "shop" / "defs").mkdir(parents=True)
    (project / "pyproject.toml").write_text(DG_PROJECT)
    assert find_dg_project(project / "src" / "shop" / "defs") == project
    assert find_dg_project(REPO) is None  # a dg project too, but its code location is ours
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "pyproject.toml").write_text('[project]\nname = "plain"\n')
    assert find_dg_project(plain) is None
    (plain / "dg.toml").write_text('directory_type = "project"\n[project]\nroot_module = "p"\n')
    assert find_dg_project(plain) == plain
