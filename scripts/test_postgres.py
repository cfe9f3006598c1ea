#!/usr/bin/env python3
"""A throwaway PostgreSQL server on 127.0.0.1 for the tests (CI starts one; so can you).

    python3 scripts/test_postgres.py start DIR   # prints the path of an env file to source
    python3 scripts/test_postgres.py stop DIR    # stops the server and deletes DIR
    python3 scripts/test_postgres.py pause DIR   # stops the server at once, keeping DIR
    python3 scripts/test_postgres.py resume DIR  # starts it again, same port and data

``start`` creates a cluster in ``DIR`` with Debian's ``postgresql`` binaries, listening on
127.0.0.1 only, on a free port, with a role ``restsync`` (random password, ``CREATEDB``: each test
creates its own database) and writes ``DIR/env``::

    export RESTSYNC_TEST_POSTGRES_DSN=postgresql://restsync:<password>@127.0.0.1:<port>/restsync

The password is never printed. Run as root (as CI does), the server runs as the ``postgres``
user, since PostgreSQL refuses to run as root. Only the standard library is used here.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROLE = "restsync"


def binaries() -> Path:
    """The directory of ``initdb``/``pg_ctl``: Debian keeps them off PATH, per major version."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not versions:
        sys.exit("PostgreSQL is not installed (Debian: apt-get install -y postgresql)")
    return Path(versions[-1]).parent


def as_server_user() -> list[str]:
    """Prefix that runs a command as ``postgres`` when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(root: Path) -> int:
    bin_dir = binaries()
    root.mkdir(parents=True, exist_ok=True)
    cluster = root / "cluster"  # owned by the server's user: data, socket, log
    cluster.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chmod(root, 0o711)  # the server's user must reach cluster/, not read root/
        os.chown(cluster, user.pw_uid, user.pw_gid)
    os.chmod(cluster, 0o700)
    data = cluster / "data"
    password = secrets.token_urlsafe(18)
    port = free_port()
    run = as_server_user()
    subprocess.run(
        [*run, bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-instructions"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    # A test server: nothing it holds must survive a crash, so trade durability for speed.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {cluster} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    (root / "options").write_text(options, encoding="utf-8")  # for resume
    _pg_ctl_start(root)
    sql = (
        f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}';\n"
        f"CREATE DATABASE {ROLE} OWNER {ROLE};\n"
    )
    # The password goes through stdin, never a command line that `ps` would show.
    subprocess.run(
        [*run, bin_dir / "psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", cluster, "-p", str(port),
         "-U", "postgres", "-d", "postgres"],
        input=sql.encode(), check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    env_file = root / "env"
    env_file.touch(mode=0o600)
    env_file.write_text(
        f"export RESTSYNC_TEST_POSTGRES_DSN=postgresql://{ROLE}:{password}@127.0.0.1:{port}/{ROLE}\n",
        encoding="utf-8",
    )
    print(env_file)
    print(f"PostgreSQL listens on 127.0.0.1:{port}; source {env_file}", file=sys.stderr)
    return 0


def _pg_ctl_start(root: Path) -> None:
    cluster = root / "cluster"
    options = (root / "options").read_text(encoding="utf-8")
    subprocess.run(
        [*as_server_user(), binaries() / "pg_ctl", "-D", cluster / "data",
         "-l", cluster / "postgres.log", "-o", options, "-w", "-t", "60", "start"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def pause(root: Path) -> int:
    """Stop the server as a crash would (``-m immediate``: clients are cut off mid-statement)."""
    data = root / "cluster" / "data"
    subprocess.run(
        [*as_server_user(), binaries() / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return 0


def resume(root: Path) -> int:
    """Start a paused server again, on its port, with its data."""
    _pg_ctl_start(root)
    return 0


def stop(root: Path) -> int:
    data = root / "cluster" / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [*as_server_user(), binaries() / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
    shutil.rmtree(root, ignore_errors=True)
    return 0


def main() -> int:
    commands = {"start": start, "stop": stop, "pause": pause, "resume": resume}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[sys.argv[1]](Path(sys.argv[2]).absolute())


if __name__ == "__main__":
    sys.exit(main())
