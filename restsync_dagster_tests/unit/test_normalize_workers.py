"""How many processes dlt's normalize step is asked for (load/normalize.py)."""

from __future__ import annotations

import pytest

from restsync_dagster.load.destination import dlt_defaults
from restsync_dagster.load.normalize import MIN_FILES, normalize_workers
from restsync_dagster.settings import NORMALIZE_WORKERS_VARIABLE, Settings, SettingsError

STATE = "_dlt_pipeline_state.a1.0.typed-jsonl"


def records(n: int) -> list[str]:
    return [f"tickets.f{i}.0.typed-jsonl" for i in range(n)]


@pytest.mark.parametrize("files", [0, 1, MIN_FILES - 1])
def test_a_package_of_few_files_of_records_normalizes_in_one_process(files):
    assert normalize_workers([STATE, *records(files)], cores=8) == 1


def test_a_package_of_many_files_of_records_gets_a_process_per_file_up_to_the_cores():
    assert normalize_workers(records(MIN_FILES), cores=8) == MIN_FILES
    assert normalize_workers(records(MIN_FILES + 5), cores=2) == 2


def test_arrow_tables_and_dlts_own_state_need_no_worker():
    arrow = [f"items.f{i}.0.parquet" for i in range(10)]
    states = [f"_dlt_pipeline_state.s{i}.0.typed-jsonl" for i in range(10)]
    assert normalize_workers([*arrow, *states], cores=8) == 1


def test_one_core_means_one_process():
    assert normalize_workers(records(10), cores=1) == 1


@pytest.mark.parametrize(("value", "parallel"), [(None, False), ("1", False), ("auto", True)])
def test_normalize_workers_are_asked_for_only_with_auto(value, parallel):
    settings = Settings.from_env({} if value is None else {NORMALIZE_WORKERS_VARIABLE: value})
    assert settings.parallel_normalize is parallel
    split = "SOURCES__DATA_WRITER__FILE_MAX_ITEMS" in dlt_defaults(settings)
    assert split is parallel, "extracted files are split only for the workers"


def test_a_normalize_workers_value_other_than_1_or_auto_is_refused_naming_the_variable():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({NORMALIZE_WORKERS_VARIABLE: "4"})
    assert str(error.value) == (
        "RESTSYNC_NORMALIZE_WORKERS='4': use '1' (one process) or 'auto' (one per core)"
    )
