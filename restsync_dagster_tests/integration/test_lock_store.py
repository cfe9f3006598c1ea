"""restsync's locks between real processes that share only PostgreSQL: each holder is its own
Python process, and where it matters a "pod" (own mount, UTS and PID namespaces, a private tmpfs
over ``RESTSYNC_HOME``), so no file lock can keep them apart. The locks go through the public API
(``pipeline_lock``, ``load_one_at_a_time``) with ``RESTSYNC_LOCK_DATABASE`` set, as a deployment
would set it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from restsync_dagster.failures.classify import classify
from restsync_dagster.failures.errors import FailureKind, LockLost
from restsync_dagster.load.locks import lock_store, pipeline_lock
from restsync_dagster.settings import Settings
from restsync_dagster_tests.helpers import in_pod, line_process

#: A process that takes restsync's locks as a run does and says what happens, one word a line:
#: ``waiting`` (another process holds it), ``held``; it keeps them until its stdin closes.
HOLDER = r"""
import sys
from restsync_dagster.settings import Settings
from restsync_dagster.load.locks import pipeline_lock
what = sys.argv[1]
partitions = what.split(":", 1)[1].split(",") if what.startswith("partitions:") else []
with pipeline_lock(Settings.from_env(), "shop", lambda: print("waiting", flush=True),
                   partitions=partitions):
    print("held", flush=True)
    sys.stdin.read()
print("released", flush=True)
"""


@pytest.fixture
def lock_env(postgres_server, postgres_database, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment of every holder: the lock database set, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTSYNC_", "DESTINATION__"))}
    env["RESTSYNC_LOCK_DATABASE"] = postgres_server.dsn(postgres_database)
    env["RESTSYNC_HOME"] = str(tmp_path / "home")
    for name, value in env.items():
        if name.startswith("RESTSYNC_"):
            monkeypatch.setenv(name, value)
    return env


class Holder:
    """One process (or pod) taking locks with :data:`HOLDER`."""

    def __init__(self, env: dict[str, str], what: str, *, pod: str | None = None) -> None:
        command = [sys.executable, "-c", HOLDER, what]
        if pod is not None:
            Path(env["RESTSYNC_HOME"]).mkdir(parents=True, exist_ok=True)
            command = in_pod(pod, command)
        self.process = line_process(command, env, stdin=True)

    def next_line(self, timeout: float = 60) -> str:
        """The next line it prints (fails the test after ``timeout`` seconds)."""
        import selectors

        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"nothing printed within {timeout} s")
        line = self.process.stdout.readline().strip()
        if line not in ("held", "waiting", "released"):
            rest = self.process.stdout.read() if self.process.poll() is not None else ""
            pytest.fail(f"the holder printed {line!r}\n{rest}")
        return line

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.next_line() == "released"
        self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(env: dict[str, str], what: str, pod: str | None = None) -> Holder:
        holder = Holder(env, what, pod=pod)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()


def test_the_pipeline_lock_excludes_pods_that_share_no_filesystem(
    unshare_allowed, lock_env, holders
):
    first = holders(lock_env, "connector", pod="pod-a")
    assert first.next_line() == "held"
    second = holders(lock_env, "connector", pod="pod-b")
    assert second.next_line() == "waiting"
    first.release()
    assert second.next_line() == "held"
    second.release()


def test_partition_runs_share_the_connectors_lock_and_exclude_a_whole_connector_run(
    lock_env, holders
):
    day1 = holders(lock_env, "partitions:2026-01-01")
    assert day1.next_line() == "held"
    day2 = holders(lock_env, "partitions:2026-01-02")
    assert day2.next_line() == "held", "two days overlap (shared lock on the connector)"
    same_day = holders(lock_env, "partitions:2026-01-02")
    assert same_day.next_line() == "waiting", "the same day never twice"
    whole = holders(lock_env, "connector")
    assert whole.next_line() == "waiting", "exclusive waits for the shared holders"
    day1.release()
    day2.release()
    # The day's second run holds the connector's lock shared already: it goes first.
    assert same_day.next_line() == "held"
    assert _nothing_printed(whole, 1)
    same_day.release()
    assert whole.next_line() == "held"
    whole.release()


def _nothing_printed(holder: Holder, seconds: float) -> bool:
    import selectors

    assert holder.process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(holder.process.stdout, selectors.EVENT_READ)
    return not selector.select(seconds)


def test_a_sigkilled_holders_lock_is_free_within_seconds(unshare_allowed, lock_env, holders):
    first = holders(lock_env, "connector", pod="pod-a")
    assert first.next_line() == "held"
    second = holders(lock_env, "connector", pod="pod-b")
    assert second.next_line() == "waiting"
    killed = time.monotonic()
    os.kill(first.process.pid, signal.SIGKILL)  # unshare: its pod (PID namespace) ends with it
    assert second.next_line(timeout=30) == "held"
    freed = time.monotonic() - killed
    assert freed < 5, f"the lock freed {freed:.1f} s after the kill"
    second.release()


WAITER = r"""
import signal, sys, time
from restsync_dagster.settings import Settings
from restsync_dagster.load.locks import pipeline_lock

class Terminated(Exception):
    pass

def terminate(*_):
    raise Terminated()  # as Dagster turns a run termination into an exception in the step

signal.signal(signal.SIGTERM, terminate)
try:
    with pipeline_lock(Settings.from_env(), "shop", lambda: print("waiting", flush=True)):
        print("held", flush=True)
except Terminated:
    print("terminated", flush=True)
"""


def test_waiting_for_a_lock_ends_when_the_run_is_terminated(lock_env, holders):
    holder = holders(lock_env, "connector")
    assert holder.next_line() == "held"
    waiter = line_process([sys.executable, "-c", WAITER], lock_env)
    try:
        assert waiter.stdout is not None
        assert waiter.stdout.readline().strip() == "waiting"
        sent = time.monotonic()
        waiter.send_signal(signal.SIGTERM)
        output, _ = waiter.communicate(timeout=30)
        assert output.strip() == "terminated", output
        assert time.monotonic() - sent < 3
    finally:
        waiter.kill()


def test_a_lock_whose_session_ended_fails_its_check_as_transient(
    lock_env, postgres_server, postgres_database
):
    settings = Settings.from_env()
    store = lock_store(settings)
    with pipeline_lock(settings, "shop", store=store) as holds:
        for hold in holds:
            hold.verify()
        # What a database restart or a network cut does to the session that holds the lock.
        postgres_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
            f"'restsync' AND datname = '{postgres_database}'"
        )
        with pytest.raises(LockLost) as lost:
            for hold in holds:
                hold.verify()
        # Another process may now take it: the lock is really gone.
        other = Holder(lock_env, "connector")
        try:
            assert other.next_line() == "held"
        finally:
            other.kill()
    failure = classify(lost.value, connector="shop", retry_statuses=())
    assert failure.kind == FailureKind.LOCK_LOST
    assert failure.transient
    password = postgres_server.password
    assert password and password not in failure.message()
    # The next lock opens a new session.
    with pipeline_lock(settings, "shop", store=store) as holds:
        holds[0].verify()


def test_try_hold_never_waits_and_gets_the_lock_once_free(lock_env, holders):
    """The piece of a counting semaphore: another process holds the lock, so try_hold yields
    None at once; once it is released, try_hold holds it."""
    store = lock_store(Settings.from_env())
    holder = holders(lock_env, "connector")
    assert holder.next_line() == "held"
    started = time.monotonic()
    with (
        store.try_hold("restsync_shop") as none,
        store.try_hold("restsync_shop", shared=True) as no,
    ):
        assert none is None and no is None
    assert time.monotonic() - started < 2
    holder.release()
    with store.try_hold("restsync_shop") as hold:
        assert hold is not None
        hold.verify()
        with store.try_hold("restsync_shop") as again:
            assert again is None, "an exclusive hold excludes this process's other threads too"
    with (
        store.try_hold("restsync_shop", shared=True) as one,
        store.try_hold("restsync_shop", shared=True) as two,
    ):
        assert one is not None and two is not None
