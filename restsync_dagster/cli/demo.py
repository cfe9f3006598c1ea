"""``restsync demo-api`` and ``restsync demo``: the bundled demo API, alone or with ``dagster dev``."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from restsync_dagster.cli.common import EXIT_OK, EXIT_USAGE, CliError, load
from restsync_dagster.orchestration.instance import apply_pool_limits, dagster_home, open_instance
from restsync_dagster.settings import Settings

DEMO_VERTICALS = ("generic", "analytics", "ecommerce", "database", "communications")


def add_demo_api_options(parser: argparse.ArgumentParser, port_flag: str) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="demo API interface to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        port_flag, dest="port", type=int, default=8765, help="demo API port (0 picks a free one)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the deterministic data")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key every vertical accepts (default: demo-<vertical>-key per vertical)",
    )
    parser.add_argument(
        "--records",
        action="append",
        default=[],
        metavar="[VERTICAL.COLLECTION=]N",
        help="records per collection: N for all, or e.g. ecommerce.orders=5000 (repeatable)",
    )
    parser.add_argument("--databases", type=int, default=None, help="databases served (default 3)")
    parser.add_argument(
        "--records-per-database", type=int, default=None, help="records in each database"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API request")
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests answered with a fault"
    )
    parser.add_argument(
        "--fault-statuses", default="429,503", help="statuses used for faults (comma-separated)"
    )
    parser.add_argument(
        "--fault-retry-after", type=int, default=None, help="Retry-After seconds sent with faults"
    )
    parser.add_argument(
        "--fault-max-consecutive",
        type=int,
        default=3,
        help="a request never fails more often than this in a row (default 3)",
    )
    parser.add_argument(
        "--outage-seconds", type=float, default=0.0, help="answer 503 to everything at first"
    )
    parser.add_argument(
        "--tenants",
        default="",
        metavar="NAMES|N",
        help="serve these tenants (comma-separated, or a number N for t01..tN) under "
        "/t/<tenant>/..., each with its own key and data (more: POST /_demo/tenants/add)",
    )
    parser.add_argument(
        "--tenant-ids",
        choices=("overlap", "distinct"),
        default="overlap",
        help="tenants' record ids: 1..N for each (overlap, default) or a range of their own",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        metavar="N",
        help="answer 429 beyond N requests per window, counted per API key (default: no limit)",
    )
    parser.add_argument(
        "--rate-window", type=float, default=1.0, metavar="S", help="the window in seconds"
    )
    parser.add_argument(
        "--rate-headers",
        choices=("x", "ietf", "ietf8", "none"),
        default="x",
        help="how answers tell the budget: X-RateLimit-*, RateLimit (draft 7 or 8), or none",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")


def _demo_api_config(args: argparse.Namespace, port: int) -> Any:
    from restsync_dagster.demo_api import DemoApiConfig
    from restsync_dagster.demo_api.data import DEFAULT_RECORDS_PER_DATABASE

    counts: dict[str, int] = {}
    for item in args.records:
        key, _, value = item.rpartition("=")
        try:
            counts[key or "*"] = int(value)
        except ValueError:
            raise CliError(
                f"--records {item!r}: expected N or VERTICAL.COLLECTION=N", EXIT_USAGE
            ) from None
    try:
        statuses = tuple(int(s) for s in args.fault_statuses.split(",") if s.strip())
    except ValueError:
        raise CliError(
            f"--fault-statuses {args.fault_statuses!r}: expected e.g. 429,503", EXIT_USAGE
        ) from None
    if not 0 <= args.fault_rate <= 1:
        raise CliError("--fault-rate must be between 0 and 1", EXIT_USAGE)
    if args.rate_limit is not None and args.rate_limit < 1:
        raise CliError("--rate-limit must be at least 1", EXIT_USAGE)
    return DemoApiConfig(
        host=args.host,
        port=port,
        seed=args.seed,
        counts=counts,
        databases=args.databases,
        records_per_database=args.records_per_database or DEFAULT_RECORDS_PER_DATABASE,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        fault_statuses=statuses,
        fault_retry_after=args.fault_retry_after,
        fault_max_consecutive=args.fault_max_consecutive,
        outage_seconds=args.outage_seconds,
        api_keys={"*": args.api_key} if args.api_key else {},
        tenants=_tenants(args.tenants),
        tenant_ids=args.tenant_ids,
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        rate_headers=args.rate_headers,
        verbose=args.verbose,
    )


def _tenants(text: str) -> tuple[str, ...]:
    """``--tenants``: names separated by commas, or a number of generated names."""
    from restsync_dagster.demo_api.tenants import check_tenant_name, tenant_names

    text = text.strip()
    if text.isdigit():
        return tuple(tenant_names(int(text)))
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        for name in names:
            check_tenant_name(name)
    except ValueError as exc:
        raise CliError(f"--tenants: {exc}", EXIT_USAGE) from None
    if len(set(names)) != len(names):
        raise CliError(f"--tenants {text!r}: a tenant is named twice", EXIT_USAGE)
    return names


def cmd_demo_api(args: argparse.Namespace) -> int:
    from restsync_dagster.demo_api import DemoApi

    api = DemoApi(_demo_api_config(args, args.port))
    try:
        api.start()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"demo API listening on {api.url()} (verticals: {', '.join(DEMO_VERTICALS)})", flush=True)
    for tenant in api.config.tenants:  # the demo's own public keys, like demo-<vertical>-key
        print(f"tenant {tenant}: {api.tenant_url(tenant)} key {api.tenant_key(tenant)}", flush=True)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with announced(Settings.from_env(), api.url()):
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return EXIT_OK


#: Where a running demo API says its address, under ``RESTSYNC_HOME``: ``restsync demo-env`` in
#: a second terminal (same project folder, so same home) reads it, whatever port it took.
DEMO_API_FILE = "demo_api_url"


@contextlib.contextmanager
def announced(settings: Settings, url: str) -> Iterator[None]:
    """Write the demo API's address for ``restsync demo-env`` while it runs, then remove it."""
    path = settings.home / DEMO_API_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url + "\n", encoding="utf-8")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8").strip() == url:
                path.unlink()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo_env(api_url: str) -> dict[str, str]:
    """The variables that point the bundled connectors at a demo API, with its demo keys."""
    from restsync_dagster.demo_api import default_api_key

    env = {}
    for vertical in DEMO_VERTICALS:
        env[f"{vertical.upper()}_BASE_URL"] = f"{api_url}/{vertical}"
        env[f"{vertical.upper()}_API_KEY"] = default_api_key(vertical)
    return env


def cmd_demo_env(args: argparse.Namespace) -> int:
    """``restsync demo-env``: print the bundled connectors' variables for a demo API, as shell
    ``export`` lines (``eval "$(restsync demo-env)"`` in a second terminal). The keys are the demo
    API's own fixed ones (``demo-<vertical>-key``, public like the rest of its data), never a
    variable's value read from anywhere."""
    import shlex

    url = f"http://{args.host}:{args.api_port or 8765}"
    announced_file = Settings.from_env().home / DEMO_API_FILE
    if args.api_port is None and announced_file.is_file():
        url = announced_file.read_text(encoding="utf-8").strip() or url
    for name, value in demo_env(url).items():
        print(f"export {name}={shlex.quote(value)}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from restsync_dagster.demo_api import DemoApi

    settings = Settings.from_env()
    connectors = load(settings)  # fail early, readably, on a bad connector file
    api = DemoApi(_demo_api_config(args, args.port))
    try:
        api.start()
    except OSError as exc:
        raise CliError(
            f"cannot start the demo API on {args.host}:{args.port}: {exc.strerror or exc}; "
            "pass --api-port to use another port"
        ) from None
    home = dagster_home(settings)
    if any(c.config.partitions and c.config.partitions.max_concurrent > 1 for c in connectors):
        with open_instance(settings) as instance:
            apply_pool_limits(instance, connectors)
    workspace = settings.home / "workspace.yaml"
    workspace.parent.mkdir(parents=True, exist_ok=True)
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: restsync_dagster.definitions\n"
        "      location_name: restsync\n",
        encoding="utf-8",
    )
    # The demo keys exist in the child's environment only. The examples' schedules start
    # stopped (the user turns them on in the UI). `dagster dev` warns that `dg dev` supersedes
    # it; the demo runs the code location `dagster dev` was made for, so that one warning goes.
    warnings_filter = "ignore:Function `dev_command` is superseded"
    child_env = {
        **os.environ,
        **demo_env(api.url()),
        "DAGSTER_HOME": str(home),
        "RESTSYNC_HOME": str(settings.home),  # the code servers' cwd must not decide it
        "RESTSYNC_EXAMPLE_SCHEDULES": os.environ.get("RESTSYNC_EXAMPLE_SCHEDULES", "stopped"),
        "RESTSYNC_UI_URL": f"http://{args.ui_host}:{args.ui_port}",
        "PYTHONWARNINGS": ",".join(
            w for w in (os.environ.get("PYTHONWARNINGS"), warnings_filter) if w
        ),
    }
    command = [
        sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
        "-h", args.ui_host, "-p", str(args.ui_port),
    ]  # fmt: skip
    where = settings.duckdb_path if settings.destination == "duckdb" else settings.destination
    print(
        f"demo API on {api.url()}; Dagster UI on http://{args.ui_host}:{args.ui_port}\n"
        f"warehouse: {where}\n"
        f'in a second terminal, for restsync preview and sync: eval "$(restsync demo-env)"',
        flush=True,
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    # A shell's `&` or `nohup` starts the demo with SIGINT ignored, which `dagster dev` would
    # inherit; it maps SIGTERM onto SIGINT's handler, so it would then ignore both. Ours raises
    # KeyboardInterrupt, which exec resets to the default: dagster dev installs its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Its own process group, so stopping the demo stops dagster dev's webserver, daemon and code
    # servers too, not only the parent; and dagster dev gets SIGTERM if the demo dies unasked.
    child = subprocess.Popen(
        command, env=child_env, start_new_session=True, preexec_fn=_die_with_parent()
    )
    try:
        with announced(settings, api.url()):
            return child.wait()
    except KeyboardInterrupt:
        stop_process_group(child)
        return EXIT_OK
    finally:
        api.stop()


def _die_with_parent() -> Any:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when this process ends (however
    it ends, SIGKILL included), or None elsewhere. ``prctl`` is looked up here, in the parent:
    between fork and exec the child only makes the one system call."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return preexec


def stop_process_group(child: subprocess.Popen[bytes], grace_seconds: float = 8) -> None:
    """Interrupt a process group like Ctrl-C would, then kill what is left after
    ``grace_seconds``.

    ``dagster dev`` stops its webserver and daemon within seconds of SIGINT (measured 3-7 s on
    2 busy cores). SIGTERM would add nothing: Dagster's processes map it onto SIGINT's handler.
    A second SIGINT or SIGTERM while it stops does not cut the stop short (that is what left a
    whole ``dagster dev`` tree running with parent 1): it is ignored until the group is gone.
    """
    main = threading.current_thread() is threading.main_thread()  # where handlers can change
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals} if main else {}
    for sig in previous:
        signal.signal(sig, signal.SIG_IGN)
    try:
        for sig, wait in ((signal.SIGINT, grace_seconds), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            if _group_gone(child, time.monotonic() + wait):
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _group_gone(child: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until no process of ``child``'s group is left (the leader reaped), or ``deadline``."""
    while time.monotonic() < deadline:
        child.poll()
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
