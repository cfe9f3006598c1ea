"""Ctrl-C during a run reaches restsync only, not the helper processes Dagster starts.

A terminal sends Ctrl-C's SIGINT to its whole foreground process group. While a step runs,
Dagster's compute-log capture has started a ``tail`` and a Python ``watch_orphans`` script per
step in that group; each watcher died of the SIGINT with a ``KeyboardInterrupt`` traceback of its
own (two per run), while Dagster, in this process, stopped the run cleanly.

While :func:`sigint_for_this_process_only` is active, SIGINT is blocked in the main thread, so
the processes started meanwhile begin with it blocked too (a signal mask survives ``fork`` and
``exec``) and end when Dagster ends them. A thread of ours takes each SIGINT with ``sigwait`` and
hands it to the main thread through SIGUSR1, whose handler calls the SIGINT handler in place
(Dagster's while a run executes): the run stops where Dagster stops runs, and a main thread
waiting in a system call is woken as a SIGINT would wake it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType


@dataclass
class Interrupts:
    """How many SIGINTs arrived while active."""

    count: int = 0


@contextlib.contextmanager
def sigint_for_this_process_only() -> Iterator[Interrupts]:
    """Within, processes started by this one do not receive the terminal's Ctrl-C; this process
    still does. Outside the main thread, or without POSIX signal masks, it does nothing."""
    interrupts = Interrupts()
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield interrupts
        return
    main = threading.main_thread().ident
    assert main is not None
    stop = threading.Event()

    def relay() -> None:
        while True:
            signal.sigwait({signal.SIGINT})
            if stop.is_set():
                return
            interrupts.count += 1
            signal.pthread_kill(main, signal.SIGUSR1)

    def handle(signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        elif handler != signal.SIG_IGN:
            raise KeyboardInterrupt

    previous_usr1 = signal.signal(signal.SIGUSR1, handle)
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    relay_thread = threading.Thread(target=relay, name="restsync-sigint", daemon=True)
    relay_thread.start()
    try:
        yield interrupts
    finally:
        stop.set()
        assert relay_thread.ident is not None
        signal.pthread_kill(relay_thread.ident, signal.SIGINT)
        relay_thread.join(timeout=5)
        signal.signal(signal.SIGUSR1, previous_usr1)
        # A SIGINT still pending is delivered here, as a KeyboardInterrupt.
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
