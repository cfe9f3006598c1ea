#!/usr/bin/env python3
"""Install and run restsync_dagster on a fresh machine that has only ``python3`` (3.11+).

    python3 scripts/dev.py demo        # install, then demo API + Dagster UI on http://127.0.0.1:3000
    python3 scripts/dev.py test        # install, then lint, type-check and run the test suite
    python3 scripts/dev.py install     # install only (into .venv)
    python3 scripts/dev.py bench       # the throughput benchmark (docs/throughput.md)
    python3 scripts/dev.py soak        # the chaos soak (docs/reliability.md): --minutes, --seed...
    python3 scripts/dev.py embedded-elt  # second environment with the dagster-embedded-elt extra
    python3 scripts/dev.py lock        # re-resolve the lock files after changing pyproject.toml

Installs are reproducible: ``.venv`` is synced exactly to ``requirements/lock.txt`` (every
package pinned with its hashes), using ``uv`` bootstrapped with pip at the version the lock pins.
Only the standard library is used here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
EMBEDDED_ELT_LOCK = ROOT / "requirements" / "embedded-elt.lock.txt"
PRODUCTION_LOCK = ROOT / "requirements" / "production.lock.txt"
#: The extras of a production install (the Dockerfile's): the main lock holds them too, so the
#: tests run against what production runs.
PRODUCTION_EXTRAS = ("postgres", "parquet", "k8s")
MAIN_VENV = ROOT / ".venv"
EMBEDDED_ELT_VENV = ROOT / ".venv-embedded-elt"
BIN = "Scripts" if os.name == "nt" else "bin"


def run(*command: str | Path, env: dict[str, str] | None = None) -> int:
    """Run a command from the repo root; return its exit code."""
    printable = " ".join(str(c) for c in command)
    print(f"+ {printable}", flush=True)
    process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env)
    # A SIGTERM for this script is for the command it runs (`dev.py demo` stopped by a
    # supervisor): pass it on and wait, rather than leave the command running without us.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                # Ctrl-C reached the child too; let it shut down cleanly instead of killing it.
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def check(*command: str | Path, env: dict[str, str] | None = None) -> None:
    """Run a command; stop with its exit code if it fails."""
    code = run(*command, env=env)
    if code != 0:
        sys.exit(code)


def pinned_uv_version() -> str:
    """The uv version the lock file pins (so the bootstrap and the lock agree)."""
    match = re.search(r"^uv==([\w.]+)", LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        sys.exit(f"{LOCK.relative_to(ROOT)} pins no uv version; run 'python3 scripts/dev.py lock'")
    return match.group(1)


def ensure_venv(path: Path, lock: Path) -> Path:
    """Create ``path`` if needed and sync it exactly to ``lock``; return its python."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs under any python3
        sys.exit(f"restsync needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = path / BIN / "python"
    if not python.exists():
        print(f"creating {path.name}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    uv = path / BIN / "uv"
    if not uv.exists():
        check(python, "-m", "pip", "install", "--quiet", f"uv=={pinned_uv_version()}")
    # Bytecode compiled once at install: where PYTHONDONTWRITEBYTECODE is set, every process
    # (the CLI, each Dagster run worker, the code server) would otherwise compile dagster anew.
    check(uv, "pip", "sync", "--quiet", "--compile-bytecode", "--python", python,
          "--require-hashes", lock)  # fmt: skip
    check(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "-e", ".")
    return python


def tool(python: Path, name: str) -> Path:
    return python.parent / name


def cmd_test(extra: list[str]) -> int:
    python = ensure_venv(MAIN_VENV, LOCK)
    linted = ("restsync_dagster", "restsync_dagster_tests", "scripts", "benchmarks")
    check(tool(python, "ruff"), "check", *linted)
    check(tool(python, "ruff"), "format", "--check", *linted)
    check(tool(python, "mypy"))
    # The floors contract (pyproject.toml, [tool.importlinter]): imports only go down.
    check(tool(python, "lint-imports"), "--no-cache")
    # Two workers (this machine has 2 cores); tests that start dagster dev share one of them.
    parallel = [] if any(a.startswith("-n") for a in extra) else ["-n", "2", "--dist", "loadgroup"]
    code = run(python, "-m", "pytest", *parallel, *extra)
    if code == 5:
        print("pytest collected no tests: that is a failure of this repository", file=sys.stderr)
        return 1
    return code


def cmd_demo(extra: list[str]) -> int:
    python = ensure_venv(MAIN_VENV, LOCK)
    return run(tool(python, "restsync"), "demo", *extra)


def cmd_bench(extra: list[str]) -> int:
    """The throughput benchmark (benchmarks/run.py); prints a table, writes bench-results/."""
    python = ensure_venv(MAIN_VENV, LOCK)
    return run(python, "benchmarks/run.py", *extra)


def cmd_soak(extra: list[str]) -> int:
    """The chaos soak (restsync_dagster_tests/soak): syncs through random faults and kills."""
    python = ensure_venv(MAIN_VENV, LOCK)
    return run(python, "-m", "restsync_dagster_tests.soak", *extra)


def cmd_install(extra: list[str]) -> int:
    ensure_venv(MAIN_VENV, LOCK)
    print(f"installed; activate with: source {MAIN_VENV.name}/{BIN}/activate")
    return 0


def cmd_embedded_elt(extra: list[str]) -> int:
    """The optional ``embedded-elt`` extra pins dagster 1.13.1: prove it loads and syncs."""
    python = ensure_venv(EMBEDDED_ELT_VENV, EMBEDDED_ELT_LOCK)
    check(
        python,
        "-c",
        "import dagster, dagster_embedded_elt.dlt; print('dagster', dagster.__version__)",
    )
    code = run(
        python, "-m", "pytest", "-p", "no:cacheprovider",
        "restsync_dagster_tests/system/test_embedded_elt.py", *extra,
    )  # fmt: skip
    if code == 5:
        print("the embedded-elt check collected no tests", file=sys.stderr)
        return 1
    return code


def cmd_lock(extra: list[str]) -> int:
    uv = MAIN_VENV / BIN / "uv"
    if not uv.exists():
        sys.exit("run 'python3 scripts/dev.py install' first")
    common = ["pip", "compile", "pyproject.toml", "--universal", "--generate-hashes",
              "--python-version", "3.11", "--quiet", "--no-header"]  # fmt: skip
    extras = [arg for extra in PRODUCTION_EXTRAS for arg in ("--extra", extra)]
    check(uv, *common, *extras, "--group", "test", "-o", LOCK.relative_to(ROOT))
    # The image installs no test tools; its versions are the main lock's (constraints). It
    # builds the package from pinned setuptools and wheel (the build group), not isolated.
    check(uv, *common, *extras, "--group", "build", "-c", LOCK.relative_to(ROOT), "-o",
          PRODUCTION_LOCK.relative_to(ROOT))  # fmt: skip
    check(uv, *common, "--extra", "embedded-elt", "--group", "test", "-o",
          EMBEDDED_ELT_LOCK.relative_to(ROOT))  # fmt: skip
    return 0


COMMANDS = {
    "test": cmd_test,
    "demo": cmd_demo,
    "install": cmd_install,
    "bench": cmd_bench,
    "soak": cmd_soak,
    "embedded-elt": cmd_embedded_elt,
    "lock": cmd_lock,
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
