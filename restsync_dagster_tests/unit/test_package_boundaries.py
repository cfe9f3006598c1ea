"""When a load package has what it needs (extract/packages.py's ``Packages.cutting``): its
records (``RESTSYNC_PACKAGE_ROWS``) or its seconds of fetching (``RESTSYNC_PACKAGE_SECONDS``),
whichever comes first, and never before its first record."""

from __future__ import annotations

from restsync_dagster.extract.packages import Packages


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_package_is_cut_after_its_seconds_of_fetching_though_few_records_came():
    clock = Clock()
    packages = Packages(rows=1_000_000, seconds=60, clock=clock)
    packages.count(100)
    clock.now += 59.9
    assert not packages.cutting
    clock.now += 0.1
    assert packages.cutting


def test_a_package_is_cut_at_its_records_before_its_seconds():
    clock = Clock()
    packages = Packages(rows=500, seconds=60, clock=clock)
    packages.count(499)
    assert not packages.cutting
    packages.count(1)
    assert packages.cutting


def test_a_package_with_no_record_yet_is_never_cut_however_long_the_first_page_took():
    clock = Clock()
    packages = Packages(rows=1_000_000, seconds=60, clock=clock)
    clock.now += 3600
    assert not packages.cutting


def test_the_next_package_counts_its_seconds_from_when_it_starts():
    clock = Clock()
    packages = Packages(rows=1_000_000, seconds=60, clock=clock)
    packages.count(10)
    clock.now += 61
    assert packages.cutting
    packages.next_package()  # the previous one committed; its load took time of its own
    packages.count(10)
    clock.now += 30
    assert not packages.cutting
    clock.now += 30
    assert packages.cutting


def test_zero_seconds_cuts_by_records_alone():
    clock = Clock()
    packages = Packages(rows=1_000, seconds=0, clock=clock)
    packages.count(999)
    clock.now += 10**6
    assert not packages.cutting
