"""Where restsync's locks live: files on one machine, or PostgreSQL advisory locks across hosts.

Both stores hold named locks, shared or exclusive, with ``flock``'s meaning: any number of shared
holders, or one exclusive holder, and a holder that dies releases what it held.

- :class:`FileLockStore`: one ``flock`` file per name in a directory. Right on one machine; two
  hosts (or two pods, each with its own filesystem) never see each other's files.
- :class:`PostgresLockStore`: PostgreSQL session advisory locks (``pg_advisory_lock`` and
  ``pg_advisory_lock_shared``), held on one dedicated connection per process. The server
  releases them when the session ends: the process exits or is killed (measured: within a second),
  or its host vanishes (TCP keepalives, set on both sides, end the session within about 30 s).

What the PostgreSQL store adds to the bare SQL:

- **Keys.** A lock name becomes a signed 64-bit key: the first 8 bytes of BLAKE2b of
  ``restsync:<name>``. Two names colliding (about one chance in 2**64 per pair) make two unrelated
  locks exclude each other: runs wait longer than they need to, never write together.
- **Waiting stays interruptible.** ``pg_try_advisory_lock*`` is polled with a short sleep, so a
  run termination (a signal raised as an exception in the waiting thread) ends the wait; a
  blocking ``pg_advisory_lock`` would hold the thread inside libpq until the lock came.
- **Threads of one process.** Advisory locks are re-entrant within a session, which ``flock``
  (one lock per open file) is not: a second holder in the same process would get the lock at once.
  A process-local reader/writer gate per key keeps ``flock``'s meaning between threads too.
- **Who holds what.** The session's ``application_name`` names the run (:meth:`name_session`), so
  ``pg_stat_activity`` joined with ``pg_locks`` shows who holds a lock (docs/deployment.md).
- **Lost locks are told.** If the connection ends (a database restart, a network cut), every lock
  on it is gone. :meth:`Hold.verify` says so (``LockLost``), and the next lock opens a new session
  instead of trusting the old one.
- **Secrets.** Errors name the database by host, port and name; never the password.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from restsync_dagster.failures.errors import LockDatabaseError, LockLost
from restsync_dagster.failures.redaction import Redactor, redact_url

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pools are the only guard there
    fcntl = None  # type: ignore[assignment]

#: Seconds between two tries of a lock held by another process.
POLL_SECONDS = 0.2
#: Keepalives: a silent peer is given up after IDLE + INTERVAL * COUNT seconds (25 s), on the
#: client's side and on the server's (which then ends the session and frees its locks).
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3


class Hold(Protocol):
    """A lock this process holds."""

    name: str

    def verify(self) -> None:
        """Raise :class:`LockLost` if the lock is no longer held."""


class LockStore(Protocol):
    """Named shared/exclusive locks."""

    @property
    def where(self) -> str:
        """Where the locks live, without secrets (``files in DIR``, ``postgresql://...``)."""
        ...

    @property
    def across_hosts(self) -> bool:
        """Whether the locks hold across hosts (and so can prove a run alive)."""
        ...

    def hold(
        self, name: str, on_wait: Callable[[], None] | None = None, *, shared: bool = False
    ) -> contextlib.AbstractContextManager[Hold]:
        """Hold lock ``name`` for the block; ``on_wait`` is called once before waiting."""
        ...

    def try_hold(
        self, name: str, *, shared: bool = False
    ) -> contextlib.AbstractContextManager[Hold | None]:
        """Hold lock ``name`` for the block if it can be had now, else yield None (never waits):
        the piece of a counting semaphore (N names, the first free one taken)."""
        ...

    def is_free(self, name: str) -> bool:
        """Whether nobody holds ``name`` (tried and released at once)."""
        ...

    def name_session(self, label: str) -> None:
        """Name this process's holder (a run id, a connector) where people can see it."""
        ...


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of lock ``name``."""
    digest = hashlib.blake2b(f"restsync:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# ------------------------------------------------------------------------------------------------
# Files


@dataclass
class _FileHold:
    name: str

    def verify(self) -> None:
        """A ``flock`` lasts as long as its open file: nothing can take it away."""


@dataclass
class FileLockStore:
    """``flock`` files in ``directory``, one per lock name (``<name>.lock``)."""

    directory: Path
    across_hosts: bool = False

    @property
    def where(self) -> str:
        return f"files in {self.directory}"

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.lock"

    @contextlib.contextmanager
    def hold(
        self, name: str, on_wait: Callable[[], None] | None = None, *, shared: bool = False
    ) -> Iterator[Hold]:
        with flock(self.path(name), on_wait, shared=shared):
            yield _FileHold(name)

    @contextlib.contextmanager
    def try_hold(self, name: str, *, shared: bool = False) -> Iterator[Hold | None]:
        if fcntl is None:
            yield _FileHold(name)
            return
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            try:
                yield _FileHold(name)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def is_free(self, name: str) -> bool:
        if fcntl is None:
            return True
        path = self.path(name)
        if not path.exists():
            return True
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True

    def name_session(self, label: str) -> None:
        """Files have no session to name."""


@contextlib.contextmanager
def flock(
    path: Path, on_wait: Callable[[], None] | None = None, *, shared: bool = False
) -> Iterator[None]:
    """Hold a ``flock`` on ``path`` (created if missing) for the block."""
    if fcntl is None:
        yield
        return
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------------
# PostgreSQL


def safe_dsn(dsn: str) -> str:
    """``dsn`` without its password (and without a driver suffix such as ``+psycopg2``)."""
    return redact_url(libpq_dsn(dsn))


def libpq_dsn(dsn: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg2://``) as libpq reads it (``postgresql://``)."""
    scheme, sep, rest = dsn.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else dsn


@dataclass
class _Key:
    """This process's holders of one key (the gate between its threads)."""

    shared: bool
    holders: int = 0
    #: The session the advisory lock was taken in.
    generation: int = 0


@dataclass
class _PgHold:
    store: PostgresLockStore
    name: str
    key: int
    shared: bool
    generation: int

    def verify(self) -> None:
        self.store.verify(self)


@dataclass
class PostgresLockStore:
    """Advisory locks in the PostgreSQL database ``dsn``, one session per process."""

    dsn: str
    across_hosts: bool = True
    label: str = "restsync"
    _connection: Any = field(default=None, repr=False)
    _pid: int = field(default=0, repr=False)
    _generation: int = field(default=0, repr=False)
    _sql: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _gate: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _keys: dict[int, _Key] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> str:
        return safe_dsn(self.dsn)

    # -- the session ---------------------------------------------------------------------------

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        """Run ``sql`` on this process's session (opened if needed); return the first value."""
        with self._sql:
            if self._pid != os.getpid():  # a forked child never shares its parent's session
                self._connection, self._pid = None, os.getpid()
            if self._connection is None or self._connection.closed:
                self._connection = self._connect()
                self._generation += 1
            import psycopg2

            try:
                with self._connection.cursor() as cursor:
                    cursor.execute(sql, args)
                    row = cursor.fetchone() if cursor.description else None
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                self._drop()
                raise LockLost(
                    f"the connection to the lock database {self.where} ended "
                    f"({_first_line(exc, self.dsn)}); every lock this process held there is released"
                ) from None
            return row[0] if row else None

    def _connect(self) -> Any:
        try:
            import psycopg2
        except ImportError:
            raise LockDatabaseError(
                f"the lock database {self.where} needs psycopg2: install restsync-dagster[postgres]"
            ) from None

        try:
            connection = psycopg2.connect(
                libpq_dsn(self.dsn),
                application_name=self.label[:63],
                connect_timeout=10,
                keepalives=1,
                keepalives_idle=KEEPALIVE_IDLE,
                keepalives_interval=KEEPALIVE_INTERVAL,
                keepalives_count=KEEPALIVE_COUNT,
            )
        except psycopg2.Error as exc:
            raise LockDatabaseError(
                f"cannot connect to the lock database {self.where}: {_first_line(exc, self.dsn)}"
            ) from None
        connection.autocommit = True
        with connection.cursor() as cursor:
            # The server's side of the keepalives (a vanished host frees its locks), and no
            # idle timeout of the server's configuration ending a session that holds locks.
            cursor.execute(
                "SELECT set_config('tcp_keepalives_idle', %s, false),"
                " set_config('tcp_keepalives_interval', %s, false),"
                " set_config('tcp_keepalives_count', %s, false),"
                " set_config('idle_session_timeout', '0', false),"
                " set_config('idle_in_transaction_session_timeout', '0', false)",
                (str(KEEPALIVE_IDLE), str(KEEPALIVE_INTERVAL), str(KEEPALIVE_COUNT)),
            )
        return connection

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()
        self._connection = None

    def name_session(self, label: str) -> None:
        self.label = label
        with self._sql:
            connection = self._connection if self._pid == os.getpid() else None
        if connection is not None and not connection.closed:
            with contextlib.suppress(LockLost):
                self._execute("SELECT set_config('application_name', %s, false)", (label[:63],))

    # -- locks ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(
        self, name: str, on_wait: Callable[[], None] | None = None, *, shared: bool = False
    ) -> Iterator[Hold]:
        key = lock_key(name)
        generation = self._enter(key, shared, on_wait)
        assert generation is not None  # waits until it has it
        try:
            yield _PgHold(self, name, key, shared, generation)
        finally:
            self._leave(key)

    @contextlib.contextmanager
    def try_hold(self, name: str, *, shared: bool = False) -> Iterator[Hold | None]:
        key = lock_key(name)
        generation = self._enter(key, shared, None, wait=False)
        if generation is None:
            yield None
            return
        try:
            yield _PgHold(self, name, key, shared, generation)
        finally:
            self._leave(key)

    def _enter(
        self, key: int, shared: bool, on_wait: Callable[[], None] | None, *, wait: bool = True
    ) -> int | None:
        """Take ``key`` for this thread: beside this process's other holders when both share,
        else after them; the advisory lock itself is taken by the first holder only. Without
        ``wait``, None when it cannot be had at once."""
        waited = False
        with self._gate:
            while True:
                local = self._keys.get(key)
                if local is None:
                    self._keys[key] = _Key(shared, holders=0)  # ours to take: others wait
                    break
                if (
                    local.holders
                    and local.shared
                    and shared
                    and local.generation == self._generation
                ):
                    local.holders += 1
                    return local.generation
                if not wait:
                    return None
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                self._gate.wait(POLL_SECONDS)
        generation = None
        try:
            generation = self._take(key, shared, None if waited else on_wait, wait=wait)
        finally:
            if generation is None:  # not had (or interrupted): let this process's others in
                with self._gate:
                    del self._keys[key]
                    self._gate.notify_all()
        if generation is None:
            return None
        with self._gate:
            self._keys[key].holders, self._keys[key].generation = 1, generation
        return generation

    def _take(
        self, key: int, shared: bool, on_wait: Callable[[], None] | None, *, wait: bool = True
    ) -> int | None:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        while True:
            if self._execute(f"SELECT {function}(%s)", (key,)):
                return self._generation
            if not wait:
                return None
            if on_wait is not None:
                on_wait()
                on_wait = None
            time.sleep(POLL_SECONDS)

    def _leave(self, key: int) -> None:
        with self._gate:
            local = self._keys[key]
            local.holders -= 1
            if local.holders > 0:
                return
            del self._keys[key]
            self._gate.notify_all()
            if local.generation == self._generation:
                function = "pg_advisory_unlock_shared" if local.shared else "pg_advisory_unlock"
                # Best effort: a lost session has released it already, and a process exiting
                # releases it with its session.
                with contextlib.suppress(Exception):
                    self._execute(f"SELECT {function}(%s)", (key,))

    def verify(self, hold: _PgHold) -> None:
        """Raise :class:`LockLost` unless ``hold``'s session is alive and PostgreSQL lists its
        lock as granted to it (``pg_locks``: a bigint key is ``classid`` high, ``objid`` low)."""
        if hold.generation != self._generation:
            raise LockLost(
                f"lock {hold.name!r} was held on a session of the lock database {self.where} "
                "that has ended since; another run may hold it now"
            )
        unsigned = hold.key & 0xFFFFFFFFFFFFFFFF
        granted = self._execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid = %s::bigint::oid"
            " AND objid = %s::bigint::oid AND objsubid = 1",
            (unsigned >> 32, unsigned & 0xFFFFFFFF),
        )
        if hold.generation != self._generation or not granted:
            raise LockLost(
                f"lock {hold.name!r} is no longer held in the lock database {self.where}; "
                "another run may hold it now"
            )

    def is_free(self, name: str) -> bool:
        key = lock_key(name)
        with self._gate:
            if key in self._keys:
                return False  # held (or being taken) by this very process
            if not self._execute("SELECT pg_try_advisory_lock(%s)", (key,)):
                return False
            self._execute("SELECT pg_advisory_unlock(%s)", (key,))
            return True

    def close(self) -> None:
        """End this process's session (its locks are released)."""
        with self._sql:
            if self._connection is not None and self._pid == os.getpid():
                self._drop()


def _first_line(exc: BaseException, dsn: str) -> str:
    """The first line of a driver's error, with the DSN's password masked should it appear."""
    text = str(exc).strip()
    line = text.splitlines()[0][:300] if text else type(exc).__name__
    password = urlsplit(libpq_dsn(dsn)).password
    return Redactor([unquote(password)] if password else []).redact(line)
