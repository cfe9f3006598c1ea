"""Start, find and kill pods: ``unshare --mount --uts --pid --fork --mount-proc`` around a command.

A pod keeps the paths of its environment but not their contents: a fresh tmpfs is mounted over
``RESTSYNC_HOME``, ``DAGSTER_HOME``, ``HOME`` and ``TMPDIR`` (every directory restsync, dlt and
Dagster write to locally), so two pods see the same file names and different files, as two
Kubernetes pods of one image do. Files a pod is given (its ``dagster.yaml``, like a ConfigMap) are
written into those directories after the mounts. Its hostname is its own (two pods may be given
the same one, as ``hostNetwork`` pods or cloned VMs have), its process ids start at 1, and when
the ``unshare`` process dies (SIGKILL included) the kernel kills everything in the pod.

Everything else is shared: the repository and the virtualenv (the image), and 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The variables naming the directories a pod gets a private tmpfs over.
PRIVATE_VARIABLES = ("RESTSYNC_HOME", "DAGSTER_HOME", "HOME", "TMPDIR")
#: ``$0`` of a pod's shell, so the pod can be found in ``/proc`` by its name.
MARK = "restsync-pod:"


@dataclass(frozen=True)
class Pod:
    """What a pod is: its name, its hostname, where its scratch directories live on the machine,
    and the files it is given."""

    name: str
    hostname: str
    #: A directory on the machine holding the pod's mount points for ``HOME`` and ``TMPDIR`` and
    #: its log (``<root>/logs/<name>.log``); pods of one deployment share it (same paths).
    root: Path
    files: Mapping[str, str] = field(default_factory=dict)
    #: Number the pod's processes from here (a long-lived pod's numbers are high); None: from 1.
    first_pid: int | None = None

    @property
    def log(self) -> Path:
        return self.root / "logs" / f"{self.name}.log"


def pods_unavailable() -> str | None:
    """Why pods cannot start here (``unshare`` missing or refused), or None when they can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare cannot run: {exc}"
    if done.returncode != 0:
        return f"unshare is refused here ({done.stderr.strip()}); pods need root (CAP_SYS_ADMIN)"
    return None


def pod_environment(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """``env`` for a pod: ``HOME`` and ``TMPDIR`` under ``root`` (the machine's own home may hold
    the repository), this interpreter's ``bin`` first on ``PATH`` (the image's ``dagster``)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "PATH": path}


def pod_command(
    pod: Pod, argv: Sequence[str], private: Sequence[str] = PRIVATE_VARIABLES
) -> list[str]:
    """The ``unshare`` command line that runs ``argv`` in ``pod``, with a tmpfs over the
    directory each variable in ``private`` names in the pod's environment (unset: none), mounted
    in that order (an outer directory first), then ``pod.files`` written."""
    lines = ["set -e", f"hostname {shlex.quote(pod.hostname)}"]
    for name in private:
        lines.append(
            f'if [ -n "${{{name}:-}}" ]; then mkdir -p "${name}" && '
            f'mount -t tmpfs -o mode=0755 restsync-pod "${name}"; fi'
        )
    for path, text in pod.files.items():
        lines.append(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
        lines.append(f"printf '%s' {shlex.quote(text)} > {shlex.quote(path)}")
    if pod.first_pid is not None:
        lines.append(f"echo {pod.first_pid} > /proc/sys/kernel/ns_last_pid")
    # Not the last command, so the shell forks it and stays the pod's init (pid 1).
    lines += ["set +e", '"$@"', "exit $?"]
    return [
        "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
        "sh", "-c", "\n".join(lines), f"{MARK}{pod.name}", *argv,
    ]  # fmt: skip


def start_pod(
    pod: Pod, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in ``pod`` (its output in ``pod.log``); returns the ``unshare`` process."""
    env = {**pod_environment(env, pod.root), "PGAPPNAME": pod.name[:63]}
    for name in ("home", "tmp", "logs"):
        (pod.root / name).mkdir(parents=True, exist_ok=True)
    with open(pod.log, "ab") as log:
        return subprocess.Popen(
            pod_command(pod, argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _pods(match: str, exact: bool = False) -> list[int]:
    """Machine pids of the ``unshare`` processes of pods with ``match`` in their command line
    (``exact``: as one whole argument)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        wanted = match.encode()
        if argv[0].endswith(b"unshare") and any(
            a == wanted if exact else wanted in a for a in argv
        ):
            found.append(int(entry.name))
    return found


def pod_pids(name: str) -> list[int]:
    """Machine pids of the running pod called ``name`` (its ``unshare`` process)."""
    return _pods(f"{MARK}{name}", exact=True)


def kill_pods(match: str, timeout: float = 30) -> list[int]:
    """SIGKILL every pod whose command line contains ``match`` (a pod's name, or a deployment's
    root: every pod of it); returns their pids once they are gone."""
    pids = _pods(match)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return pids


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped by its parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
