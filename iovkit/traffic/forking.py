"""Forking worker processes while Ctrl-C may arrive: the interrupt is held until the fork is done.

Why: Python raises KeyboardInterrupt wherever the main thread happens to be when it next checks for signals. Just
around fork() that is inside the at-fork hooks (logging's lock release), where the exception is printed as
"Exception ignored" and dropped: the run went on without the interrupt (and a worker forked in that instant was
left out of multiprocessing's bookkeeping, so nobody stopped it). Held, the interrupt is raised right after.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Within the block, SIGINT (and SIGTERM, which the CLI turns into an interrupt) is recorded, not acted on;
    on leaving the block, the first recorded one goes to the handler it was meant for."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers run in the main thread only: nothing to hold here
        return
    caught: list[int] = []
    owner = os.getpid()

    def hold(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # a worker forked inside the block, before it set its own handlers: Ctrl-C is the parent's to handle,
            # and SIGTERM (multiprocessing stopping a daemon worker) must still end it
            if signum == signal.SIGTERM:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            return
        caught.append(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):  # a Python handler (SIG_DFL and SIG_IGN need no holding)
            previous[sig] = handler
            signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            first = previous[signal.Signals(caught[0])]
            if first is signal.default_int_handler:
                raise KeyboardInterrupt
            first(caught[0], None)
