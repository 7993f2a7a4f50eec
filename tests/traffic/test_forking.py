"""Ctrl-C around fork(): held while the workers are forked, then raised, never dropped in the at-fork hooks."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator

import pytest

from iovkit.traffic.forking import sigint_held

_armed: list[bool] = []


def _interrupt_inside_the_hook() -> None:
    """An at-fork hook (like logging's) in which the interrupt is taken: what a Ctrl-C at that instant does."""
    if _armed:
        _armed.clear()
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10_000))  # the handler runs here, inside the hook


os.register_at_fork(after_in_parent=_interrupt_inside_the_hook)  # disarmed except in the test below


def _nothing() -> None:
    pass


@pytest.fixture(autouse=True)
def _python_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler, whatever an earlier test or library in this process installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_in_the_fork_hooks_is_raised_after_the_fork(capfd: pytest.CaptureFixture[str]) -> None:
    proc = multiprocessing.get_context("fork").Process(target=_nothing, daemon=True)
    started = False
    with pytest.raises(KeyboardInterrupt), sigint_held():
        _armed.append(True)
        proc.start()
        started = True
    assert started and proc in multiprocessing.active_children()  # the worker is known, so it can be stopped
    proc.join(10)
    assert "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_python_handler_gets_the_held_signal_after_the_block() -> None:
    got: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        with sigint_held():
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(10_000))
            assert got == []
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nothing_held_nothing_raised() -> None:
    with sigint_held():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
