"""The slots of a rate key in each lock store: flock files, and PostgreSQL advisory locks held by
sessions of their own (as runs on different hosts hold them). N holders at most; the next one
waits, says so once, and gets the slot that is freed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from restsync_dagster.load.lock_store import FileLockStore, PostgresLockStore
from restsync_dagster.load.locks import LockStore, try_hold
from restsync_dagster.load.rate_slots import rate_slot
from restsync_dagster_tests.helpers import PostgresServer


@pytest.fixture(params=["files", "postgres"])
def stores(request, tmp_path: Path) -> Iterator[list[LockStore]]:
    """Three holders' stores: one directory, or three sessions of one database."""
    if request.param == "files":
        yield [FileLockStore(tmp_path)] * 3
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database: str = request.getfixturevalue("postgres_database")
    sessions = [PostgresLockStore(server.dsn(database)) for _ in range(3)]
    try:
        yield list(sessions)
    finally:
        for session in sessions:
            session.close()


def test_a_third_run_waits_for_one_of_two_slots_and_gets_the_freed_one(stores):
    first, second, third = stores
    waited = threading.Event()
    got: list[int] = []

    def third_run() -> None:
        with rate_slot(third, "acme", 2, waited.set) as index:
            got.append(index)

    with rate_slot(first, "acme", 2) as a:
        with rate_slot(second, "acme", 2) as b:
            assert (a, b) == (0, 1)
            thread = threading.Thread(target=third_run)
            thread.start()
            assert waited.wait(10), "the third says it waits"
            time.sleep(0.6)
            assert got == [], "never a third holder"
            with rate_slot(third, "other", 2) as other:
                assert other == 0, "another key has slots of its own"
        thread.join(10)
        assert got == [1], "the freed slot"


def test_a_try_lock_holds_nothing_when_the_lock_is_taken(stores):
    first, second, _ = stores
    with try_hold(first, "restsync_rate.acme.slot0") as held:
        assert held is not None
        with try_hold(second, "restsync_rate.acme.slot0") as other:
            assert other is None
    with try_hold(second, "restsync_rate.acme.slot0") as again:
        assert again is not None, "free again once released"
