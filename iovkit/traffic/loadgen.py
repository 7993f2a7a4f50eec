"""Open-loop UDP load generator: scheduled sends, latency from the intended send time, exact counters.

Why open loop: a sender that waits for replies sends less while the target stalls and so under-samples the
slow periods (coordinated omission). Here every datagram has a scheduled time (constant rate, or Poisson),
carries that time and a per-flow sequence number, and is sent when due however late the target is; latency
is arrival minus *scheduled* time, so a stalled sender or target is charged in full.

Two traffic modes:
- echo: datagrams to any UDP reflector (`iovkit relay --mode echo`, `sockperf server`); round-trip latency.
  The datagram starts with a sockperf header (seq u64, flags u16 = client|pong-request, length u32, network
  order), so `sockperf server` reflects it too, followed by our magic, flow index and scheduled time (ns),
  and, in payloads of 38 bytes or more, the time of the send call (ns). Latency counts from the scheduled
  time (open loop: a late send is the generator's delay and counts); "from send" counts from the send call.
- relay: C clients in S sessions speak the relay protocol (join with a token, then DATA_ALL); each datagram
  reaches every other member of its session; latency is one way (sender and receivers share this host's clock).

Kernel receive timestamps (SO_TIMESTAMPNS) are used where the kernel gives them, so Python's own receive delay
is not charged to the network. Counters: loss (expected - distinct received), reordering (arrivals whose
sequence number is below one already seen on that flow: sockperf's out-of-order), duplicates (exact, by a
per-flow bitmap), RFC 3550 interarrival jitter (A.8: J += (|D| - J) / 16). Several sender processes each keep
their own HDR histogram; the encoded histograms merge exactly.

Where the parts are: the wire format, schedule and counters in loadcore.py (sans-IO), one sender process in
sender.py, batched sending and receiving in the mmsg package (TxRing stamps a whole batch in preallocated buffers
with numpy, a few ns of Python per datagram, so the kernel, not the interpreter, sets the maximum rate). This
module starts the senders and merges their results. Histograms are filled in one vectorised pass after the run
(histo.record_many).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import time
from typing import Any

from iovkit.errors import InputError, IovkitError, UnreachableError
from iovkit.traffic.forking import sigint_held
from iovkit.traffic.loadcore import LoadSpec, Progress, merge
from iovkit.traffic.results import StepMeasurement
from iovkit.traffic.sender import Sender, probe_echo

__all__ = ["LoadSpec", "cpu_count", "is_local_target", "merge", "probe_echo", "run_load"]


# -- several processes -----------------------------------------------------------------------------------------
def _child(conn: Any, spec: LoadSpec, index: int) -> None:
    """A forked sender: prepare, report ready, wait for the start time, run, send back the result."""
    # Ctrl-C reaches the whole process group: the parent handles it (it stops or kills us), a child would only
    # print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sender: Sender | None = None
    try:
        sender = Sender(spec, index)
        sender.prepare()
        conn.send(("ready", None))
        kind, t0 = conn.recv()
        if kind != "go":
            return
        conn.send(("done", sender.run(t0)))
    except IovkitError as err:
        conn.send(("error", (type(err).__name__, str(err))))
    except Exception as err:  # report, never hang the parent
        conn.send(("error", ("Exception", f"sender {index}: {type(err).__name__}: {err}")))
    finally:
        if sender is not None:
            sender.close()
        conn.close()


def _raise_child(kind: str, message: str) -> None:
    if kind == "UnreachableError":
        raise UnreachableError(message)
    if kind == "InputError":
        raise InputError(message)
    raise IovkitError(message)


def run_load(spec: LoadSpec, progress: Progress | None = None, start_ns: int | None = None) -> StepMeasurement:
    """Run one step (warm-up, measured window, drain) with spec.senders processes; merged measurement.

    `start_ns`: the CLOCK_MONOTONIC time the warm-up starts (distributed runs start every agent at one moment);
    when it has already passed, the step starts at once and extra["start_late_us"] says by how much.
    """
    spec.check()
    ctx = multiprocessing.get_context("fork")
    children: list[tuple[Any, Any]] = []
    main = Sender(spec, 0, progress)
    try:
        for index in range(1, spec.senders):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(child_end, spec, index), daemon=True)
            with sigint_held():  # not lost in the at-fork hooks; raised once the child is in `children`
                proc.start()
                child_end.close()
                children.append((proc, parent_end))
        main.prepare()
        for _proc, conn in children:
            kind, payload = _recv_child(conn, spec.join_timeout + 5.0)
            if kind == "error":
                _raise_child(*payload)
        now = time.monotonic_ns()  # CLOCK_MONOTONIC is one clock for every process on a host
        t0 = now + 20_000_000 if start_ns is None else max(start_ns, now + 1_000_000)
        late_ns = 0 if start_ns is None else t0 - start_ns
        for _proc, conn in children:
            conn.send(("go", t0))
        results = [main.run(t0)]
        for _proc, conn in children:
            kind, payload = _recv_child(conn, spec.warmup + spec.seconds + spec.drain + 10.0)
            if kind == "error":
                _raise_child(*payload)
            results.append(payload)
    finally:
        main.close()
        for proc, conn in children:
            with contextlib.suppress(OSError):
                conn.send(("stop", None))
            conn.close()
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
    m = merge(spec, results)
    m.extra["start_late_us"] = late_ns / 1000.0
    return m


def _recv_child(conn: Any, timeout: float) -> tuple[str, Any]:
    if not conn.poll(timeout):
        raise IovkitError(f"a sender process did not answer within {timeout:g} s")
    try:
        msg: tuple[str, Any] = conn.recv()
    except EOFError as err:
        raise IovkitError("a sender process ended without a result") from err
    return msg


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def is_local_target(host: str) -> bool:
    """True when `host` is this machine (loopback, or an address of a local interface): it shares our CPUs."""
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_DGRAM)
    except socket.gaierror:
        return False
    import ipaddress

    import psutil

    mine = {
        a.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    }
    for info in infos:
        ip = str(info[4][0]).split("%")[0]
        if ipaddress.ip_address(ip).is_loopback or ip in mine:
            return True
    return False
