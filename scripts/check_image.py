#!/usr/bin/env python3
"""Run the Dockerfile's steps without Docker, then start its command and talk to it.

    python3 scripts/check_image.py

CI has no Docker engine, so this reads the Dockerfile and does what ``docker build`` and
``docker run`` would, in a temporary directory standing in for the image's root:

- ``FROM python:3.11-slim``: a local Python 3.11 with venv stands in for the base image's
  ``python`` (Debian's ``/usr/bin/python3.11`` when present);
- ``ENV``, ``WORKDIR``, ``COPY``: applied in order; the image's own paths (under
  ``/opt/restsync`` and ``/tmp/restsync``) are moved into the temporary root; any other absolute
  path is an error, so the check cannot silently drift from the Dockerfile;
- ``RUN``: each line runs with ``/bin/sh -c`` in that environment, from a fresh virtualenv on;
- ``USER``, ``EXPOSE``, ``CMD``: the command starts (as that numeric user when this runs as
  root) on 127.0.0.1 and a free port instead of 0.0.0.0 and the exposed port, with the bundled
  example connectors copied into ``RESTSYNC_CONNECTORS_DIR`` (as a mounted ConfigMap would be);
  ``dagster api grpc-health-check`` must answer and ``dagster job list`` over gRPC must list the
  five ``<connector>_sync`` jobs; then, as a run pod would, ``restsync sync generic`` loads the
  package's demo API into ``RESTSYNC_HOME`` as that user, with ``HOME=/``.

What it cannot check: the base image's OS packages, file ownership inside the image, and the
Docker build itself. Only the standard library is used here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_PATHS = ("/opt/restsync", "/tmp/restsync")
EXPECTED_JOBS = {
    f"{name}_sync" for name in ("analytics", "communications", "database", "ecommerce", "generic")
}


class CheckFailed(Exception):
    """The Dockerfile's steps did not produce a working image."""


@dataclass
class Instruction:
    keyword: str
    argument: str


@dataclass
class Stage:
    """The state ``docker build`` keeps between instructions, in a temporary root."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    expose: list[int] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def host_path(self, image_path: str) -> Path:
        """Where an absolute path of the image lives in the temporary root."""
        if not image_path.startswith(IMAGE_PATHS):
            raise CheckFailed(
                f"{image_path}: a path outside {', '.join(IMAGE_PATHS)}; teach "
                "scripts/check_image.py where it lives"
            )
        return self.root / image_path.lstrip("/")

    def map_value(self, value: str) -> str:
        """An ENV value with the image's paths moved into the temporary root."""
        for prefix in IMAGE_PATHS:
            # Whole path components only: /tmp/restsync, not /tmp/restsync-other.
            pattern = rf"(?<![^:=\s]){re.escape(prefix)}(?=/|:|$)"
            value = re.sub(pattern, str(self.root / prefix.lstrip("/")), value)
        return value


def parse(dockerfile: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, argument = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), argument.strip()))
    return instructions


def expand(value: str, env: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` as the Dockerfile's ENV expands them."""
    for name in sorted(env, key=len, reverse=True):
        value = value.replace(f"${{{name}}}", env[name]).replace(f"${name}", env[name])
    return value


def env_pairs(argument: str) -> list[tuple[str, str]]:
    pairs = []
    for token in shlex.split(argument):
        name, sep, value = token.partition("=")
        if not sep:
            raise CheckFailed(f"ENV {argument!r}: only the NAME=value form is supported")
        pairs.append((name, value))
    return pairs


def base_python(user_prefix: list[str]) -> str:
    """A Python 3.11 with venv that the image's user can run: it stands in for the base image's
    ``/usr/local/bin/python``. This interpreter may live under a home the user cannot enter
    (pyenv under /root), so a system one is preferred."""
    candidates = ["/usr/local/bin/python3.11", "/usr/bin/python3.11", sys.executable]
    probe = "import ensurepip, sys, venv; assert sys.version_info[:2] == (3, 11)"
    for candidate in candidates:
        if not Path(candidate).exists():
            continue
        ok = subprocess.run(
            [*user_prefix, candidate, "-c", probe], capture_output=True, cwd="/"
        ).returncode
        if ok == 0:
            return candidate
    raise CheckFailed(
        f"no Python 3.11 with venv that the image's user can run among {candidates} "
        "(Debian: apt-get install python3-venv)"
    )


def base_environment(stage: Stage, python: str) -> dict[str, str]:
    """The environment a build step sees: this machine's (registries, proxies, HOME), without
    any restsync, Dagster or connector setting that the image would not have."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RESTSYNC_", "DAGSTER_", "DESTINATION__", "VIRTUAL_ENV", "PYTHON"))
        and not k.endswith(("_API_KEY", "_BASE_URL"))
    }
    # The base image's `python` is first on PATH: put the stand-in there under that name.
    shim = stage.root / "usr" / "local" / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        (shim / name).symlink_to(python)
    env["PATH"] = f"{shim}{os.pathsep}/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def build(stage: Stage, instructions: list[Instruction]) -> None:
    users = [ins.argument for ins in instructions if ins.keyword == "USER"]
    stage.user = users[-1] if users else None
    python = base_python(as_image_user(stage))
    print(f"  python:3.11-slim's python is played by {python}", flush=True)
    env = base_environment(stage, python)
    for number, ins in enumerate(instructions, 1):
        label = f"step {number}: {ins.keyword} {ins.argument}"
        print(f"+ {label}", flush=True)
        if ins.keyword == "FROM":
            if ins.argument != "python:3.11-slim":
                raise CheckFailed(f"{label}: this check stands in for python:3.11-slim only")
        elif ins.keyword == "ENV":
            for name, value in env_pairs(ins.argument):
                env[name] = stage.map_value(expand(value, env))
                stage.env[name] = env[name]
        elif ins.keyword == "WORKDIR":
            stage.workdir = ins.argument
            stage.host_path(ins.argument).mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            *sources, destination = shlex.split(ins.argument)
            if any(s.startswith("--") for s in sources):
                raise CheckFailed(f"{label}: COPY flags are not supported here")
            target = (
                stage.host_path(destination)
                if destination.startswith("/")
                else stage.host_path(stage.workdir) / destination
            )
            for source in sources:
                copy(ROOT / source, target, into=destination.endswith("/") or len(sources) > 1)
        elif ins.keyword == "RUN":
            if ins.argument.startswith("["):
                raise CheckFailed(f"{label}: only the shell form of RUN is supported")
            result = subprocess.run(
                ["/bin/sh", "-c", ins.argument],
                cwd=stage.host_path(stage.workdir),
                env=env,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise CheckFailed(
                    f"{label} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                )
        elif ins.keyword == "USER":
            pass  # applies to the command only (read above)
        elif ins.keyword == "EXPOSE":
            stage.expose = [int(p.split("/")[0]) for p in ins.argument.split()]
        elif ins.keyword == "CMD":
            stage.cmd = json.loads(ins.argument)
        else:
            raise CheckFailed(f"{label}: not supported by this check")
    stage.env = {**env, **stage.env}


def copy(source: Path, target: Path, into: bool) -> None:
    if not source.exists():
        raise CheckFailed(f"COPY {source.relative_to(ROOT)}: no such file in the repository")
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        return
    destination = target / source.name if into else target
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_image_user(stage: Stage) -> list[str]:
    """``setpriv`` to the Dockerfile's numeric USER when we are root (CI is), else nothing."""
    if not stage.user:
        raise CheckFailed("the Dockerfile sets no USER: the server would run as root")
    uid, _, gid = stage.user.partition(":")
    if not uid.isdigit() or not (gid or "0").isdigit():
        raise CheckFailed(f"USER {stage.user}: use a numeric uid:gid (no passwd entry needed)")
    if os.geteuid() != 0:
        return []  # cannot change user: the server runs as this one
    return ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups", "--"]


def serve_and_probe(stage: Stage) -> None:
    cmd = list(stage.cmd)
    if "-p" not in cmd or "-h" not in cmd:
        raise CheckFailed(f"CMD {cmd}: expected -h HOST -p PORT")
    port = int(cmd[cmd.index("-p") + 1])
    if port not in stage.expose:
        raise CheckFailed(f"CMD listens on {port} but the Dockerfile exposes {stage.expose}")
    local_port = free_port()
    cmd[cmd.index("-p") + 1] = str(local_port)
    cmd[cmd.index("-h") + 1] = "127.0.0.1"

    # A numeric USER without a passwd entry gets HOME=/ from Docker: nothing may be written there.
    env = {**stage.env, "HOME": "/"}
    connectors = Path(env["RESTSYNC_CONNECTORS_DIR"])
    for example in (ROOT / "restsync_dagster" / "connectors").glob("*.yaml"):
        shutil.copy2(example, connectors / example.name)
    # What the image's user may write: its RESTSYNC_HOME, under a world-writable /tmp.
    tmp = stage.root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    for path in (stage.root, *stage.root.parents):
        if path == Path(tempfile.gettempdir()):
            break
        path.chmod(path.stat().st_mode | 0o755)

    bin_dir = Path(env["VIRTUAL_ENV"]) / "bin"
    executable = shutil.which(cmd[0], path=env["PATH"])
    if executable is None or Path(executable).parent != bin_dir:
        raise CheckFailed(f"CMD {cmd[0]!r} is not the virtualenv's ({executable})")
    user = stage.user if os.geteuid() == 0 else f"uid {os.geteuid()}, not {stage.user}"
    print(f"+ {' '.join(cmd)}  (as {user}, on 127.0.0.1:{local_port})", flush=True)
    log = stage.root / "code-server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*as_image_user(stage), executable, *cmd[1:]],
            cwd=stage.host_path(stage.workdir),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(bin_dir, local_port, server, log)
        jobs = subprocess.run(
            [bin_dir / "dagster", "job", "list", "--grpc-host", "127.0.0.1",
             "--grpc-port", str(local_port)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        listed = {
            line.split(":", 1)[-1].strip()
            for line in jobs.stdout.splitlines()
            if line.strip().endswith("_sync")
        }
        if jobs.returncode != 0 or not EXPECTED_JOBS.issubset(listed):
            raise CheckFailed(
                f"dagster job list over gRPC: expected {sorted(EXPECTED_JOBS)}\n"
                f"{jobs.stdout}{jobs.stderr}"
            )
        print(f"  the code server lists {', '.join(sorted(listed))}", flush=True)
    finally:
        stop(server)
    sync_as_image_user(stage, env, bin_dir)


def sync_as_image_user(stage: Stage, env: dict[str, str], bin_dir: Path) -> None:
    """What a run pod does, in miniature: a connector syncs as the image's user, from the
    package's own demo API, into RESTSYNC_HOME (the only place it may write)."""
    port = free_port()
    # As the image's user too: the demo API records its port under RESTSYNC_HOME (for
    # `restsync demo-env`), and a home made by root would be closed to the sync below.
    api = subprocess.Popen(
        [*as_image_user(stage), bin_dir / "restsync", "demo-api", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert api.stdout is not None
        banner = api.stdout.readline().decode()
        if "listening on" not in banner:
            raise CheckFailed(f"the demo API did not start: {banner}")
        run_env = {
            **env,
            "GENERIC_BASE_URL": f"http://127.0.0.1:{port}/generic",
            "GENERIC_API_KEY": "demo-generic-key",
        }
        print(f"+ restsync sync generic --json  (as {stage.user or 'this user'})", flush=True)
        result = subprocess.run(
            [*as_image_user(stage), bin_dir / "restsync", "sync", "generic", "--json"],
            env=run_env, cwd="/", capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        try:
            outcomes = json.loads(result.stdout)
        except json.JSONDecodeError:
            outcomes = []
        if (
            result.returncode != 0
            or not outcomes
            or any(o["status"] != "ok" or not o["rows_loaded"] for o in outcomes)
        ):
            raise CheckFailed(
                f"the sync failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        loaded = ", ".join(f"{o['table']}: {o['rows_loaded']} rows" for o in outcomes)
        print(f"  synced {loaded}", flush=True)
    finally:
        stop(api)


def wait_healthy(bin_dir: Path, port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"the code server exited ({server.returncode}):\n{log.read_text()}")
        probe = subprocess.run(
            [bin_dir / "dagster", "api", "grpc-health-check", "--port", str(port),
             "--host", "127.0.0.1"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if probe.returncode == 0:
            print("  dagster api grpc-health-check: SERVING", flush=True)
            return
        time.sleep(2)
    raise CheckFailed(f"the code server did not become healthy in 180 s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="check-image-") as tmp:
        stage = Stage(root=Path(tmp) / "root")
        stage.root.mkdir()
        try:
            build(stage, parse(DOCKERFILE))
            serve_and_probe(stage)
        except CheckFailed as exc:
            print(f"check_image: {exc}", file=sys.stderr)
            return 1
    print(f"check_image: the Dockerfile's steps work ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
