"""The relay runner: N worker processes on one UDP port (SO_REUSEPORT), each a RelayCore (or a reflector)
behind a BatchSocket. The parent only starts, watches, reports and stops them.

Stable API (the load generator and tests depend on it):

    RelaySettings(host="127.0.0.1", port=0, mode="relay"|"echo"|"sockperf"|"sink", workers=1, pin=None, rcvbuf=None,
                  sndbuf=None, key=None, admission_key=None, batch=256, peer_idle=30.0, rate_pps=5000.0,
                  rate_burst=500.0, max_sessions=10000, max_peers=100000, max_members=64, max_datagram=1500,
                  gso=True)  gso: UDP GRO on receive and GSO on send where the kernel and the C paths allow
    start_relay(settings) -> RelayHandle      sockets are bound before it returns: send at once
    RelayHandle.address -> (host, port); .stats() -> RelayStats; .stop(timeout=1.0) -> RelayStats (final);
               .pids; context manager (stops on exit)
    serve_metrics(handle, host, port) -> the bound (host, port) of a Prometheus /metrics endpoint
    load_key(env, path, what) -> bytes | None  a secret from a file or the environment, never argv

Why processes and sockets made by the parent: each worker gets its own socket and receive queue (SO_REUSEPORT),
which is what scales a kernel-bound relay past one core; creating all sockets in the parent, in order, before
forking makes a bind error a clean one-line message, keeps the reuseport group order known, and lets relay mode
attach a classic BPF program that steers every datagram by its session id (header bytes 8..11) to worker
`session % N`, so all members of a session meet in one worker's tables whatever their source ports hash to.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import multiprocessing
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import RawArray, RawValue
from pathlib import Path
from typing import Any, Literal

from iovkit.errors import InputError
from iovkit.traffic import pathwatch
from iovkit.traffic.forking import sigint_held
from iovkit.traffic.mmsg import HAVE_FASTPATH, BatchSocket, open_udp
from iovkit.traffic.pathwatch import PathWatcher
from iovkit.traffic.reflector import SOCKPERF_MATCH, Reflector, echo_loop
from iovkit.traffic.relaycore import RelayConfig, RelayCore, derive_cookie_secret
from iovkit.traffic.relayfast import HAVE_DATAPATH, FastRelay, sink_step
from iovkit.traffic.relaystats import INDEX, WIDTH, RelayStats, read_rows

SO_ATTACH_REUSEPORT_CBPF = 51
PUBLISH_EVERY = 0.1  # seconds between a worker's stats updates
RCV_TIMEOUT = 0.1  # SO_RCVTIMEO: the longest a worker sleeps in recvmmsg before checking its stop flag
MIN_KEY = 16
MAX_SOCKBUF = (1 << 31) - 1 >> 1  # the kernel doubles the request into a C int
MODES = ("relay", "echo", "sockperf", "sink")


@dataclass
class RelaySettings:
    host: str = "127.0.0.1"
    port: int = 0
    mode: Literal["relay", "echo", "sockperf", "sink"] = "relay"
    workers: int = 1
    pin: list[int] | None = None
    rcvbuf: int | None = None
    sndbuf: int | None = None
    key: bytes | None = field(default=None, repr=False)
    admission_key: bytes | None = field(default=None, repr=False)
    batch: int = 256  # per recvmmsg/sendmmsg: draining a full queue, 256 ran 10-15% faster than 64 here
    peer_idle: float = 30.0
    rate_pps: float = 5_000.0
    rate_burst: float = 500.0
    max_sessions: int = 10_000
    max_peers: int = 100_000
    max_members: int = 64
    max_datagram: int = 1500
    busy_poll_us: float = 0.0
    path_interval: float = 1.0  # seconds between data-path/steal/CPU samples of this host (0: none; pathwatch)
    gso: bool = True  # GRO on receive, GSO on send, where the kernel and the C paths allow (--gso/--no-gso)


def load_key(env: str, path: Path | None, what: str) -> bytes | None:
    """A secret from `path` (raw bytes, trailing newline stripped) or the environment variable `env`."""
    if path is not None:
        try:
            key = path.read_bytes().rstrip(b"\r\n")
        except OSError as err:
            raise InputError(f"cannot read {what}: {err.strerror}", path=str(path)) from err
        source = str(path)
    elif os.environ.get(env):
        key, source = os.environ[env].encode(), env
    else:
        return None
    if len(key) < MIN_KEY:
        raise InputError(f"{what} is {len(key)} bytes; use at least {MIN_KEY} random bytes", field=source)
    return key


def _check(settings: RelaySettings) -> None:
    if settings.mode not in MODES:
        raise InputError(f"unknown mode {settings.mode!r}; choose {', '.join(MODES)}", field="--mode")
    if settings.mode == "relay" and not settings.key:
        raise InputError("relay mode needs a key: set IOVKIT_RELAY_KEY or pass --key-file", field="--key-file")
    if not 1 <= settings.workers <= 256:
        raise InputError(f"must be 1..256, not {settings.workers}", field="--workers")
    if not 1 <= settings.batch <= 1024:
        raise InputError(f"must be 1..1024, not {settings.batch}", field="--batch")
    for value, name, what in (
        (settings.peer_idle, "--peer-idle", "seconds"),
        (settings.rate_pps, "--rate-limit", "datagrams/s"),
    ):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"must be above 0 {what}, not {value:g}", field=name)
    if not (math.isfinite(settings.rate_burst) and settings.rate_burst >= 1):
        raise InputError(
            f"the rate burst must be at least 1 datagram, not {settings.rate_burst:g}", field="--rate-limit"
        )
    if not (math.isfinite(settings.busy_poll_us) and 0 <= settings.busy_poll_us <= 1_000_000):
        raise InputError(f"must be 0..1000000 us, not {settings.busy_poll_us:g}", field="--busy-poll")
    if settings.busy_poll_us and settings.mode == "relay":
        raise InputError("applies to --mode echo and sockperf only", field="--busy-poll")
    for size, name in ((settings.rcvbuf, "--rcvbuf"), (settings.sndbuf, "--sndbuf")):
        if size is not None and not 1 <= size <= MAX_SOCKBUF:
            raise InputError(
                f"must be 1 byte to {MAX_SOCKBUF >> 20} MiB (a socket option is a C int), not {size}", field=name
            )
    for value, name in (
        (settings.max_sessions, "max_sessions"),
        (settings.max_peers, "max_peers"),
        (settings.max_members, "max_members"),
    ):
        if value < 1:
            raise InputError(f"must be at least 1, not {value}", field=name)
    if not 64 <= settings.max_datagram <= 65507:
        raise InputError(f"max_datagram must be 64..65507 bytes, not {settings.max_datagram}", field="max_datagram")
    if settings.pin:
        allowed = os.sched_getaffinity(0)
        bad = [c for c in settings.pin if c not in allowed]
        if bad:
            raise InputError(f"CPU {bad[0]} is not available here (allowed: {sorted(allowed)})", field="--pin")


def _steer_by_session(sock: socket.socket, workers: int) -> None:
    """Attach `A = payload[8:12]; return A % workers` as the reuseport group's socket selector."""

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.c_void_p)]

    prog = (SockFilter * 3)(
        SockFilter(0x20, 0, 0, 8),  # BPF_LD | BPF_W | BPF_ABS: the session id (the UDP payload starts at 0)
        SockFilter(0x94, 0, 0, workers),  # BPF_ALU | BPF_MOD | BPF_K
        SockFilter(0x16, 0, 0, 0),  # BPF_RET | BPF_A
    )
    fprog = SockFprog(3, ctypes.addressof(prog))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))


def _bind_all(settings: RelaySettings) -> list[socket.socket]:
    socks: list[socket.socket] = []
    port = settings.port
    try:
        for _ in range(settings.workers):
            s = open_udp(
                settings.host,
                port,
                reuseport=settings.workers > 1,
                rcvbuf=settings.rcvbuf,
                sndbuf=settings.sndbuf,
                blocking=True,
                rcvtimeo=RCV_TIMEOUT,
            )
            socks.append(s)
            port = s.getsockname()[1]
        if settings.mode == "relay" and settings.workers > 1:
            _steer_by_session(socks[0], settings.workers)
    except (OSError, socket.gaierror) as err:
        for s in socks:
            s.close()
        raise InputError(
            f"cannot listen on {settings.host}:{settings.port}: {err.strerror or err}", field="--listen"
        ) from err
    return socks


class RelayHandle:
    """Running relay workers; stop() ends them and returns the final stats."""

    def __init__(
        self, settings: RelaySettings, address: tuple[Any, ...], procs: list[Any], array: Any, stop_flag: Any
    ) -> None:
        self.settings = settings
        self.address = address
        self._procs = procs
        self._array = array
        self._stop_flag = stop_flag
        self._started = time.monotonic()
        self._final: RelayStats | None = None
        self.watcher: PathWatcher | None = None  # this host's data path, steal and CPU, sampled each second

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def alive(self) -> bool:
        return any(p.is_alive() for p in self._procs)

    def stats(self) -> RelayStats:
        if self._final is not None:
            return self._final
        return RelayStats(
            read_rows(self._array, len(self._procs)),
            time.monotonic() - self._started,
            host=self.watcher.summary() if self.watcher else None,
        )

    def stats_since(self, seq: int) -> dict[str, Any]:
        """The stats query's answer: relay counters, and the host samples numbered after `seq`."""
        host = {**self.watcher.summary(), "samples": self.watcher.since(seq)} if self.watcher else None
        return {"relay": self.stats().to_dict(), "host": host}

    def stop(self, timeout: float = 1.0) -> RelayStats:
        """Ask every worker to stop (flag + SIGTERM), wait up to `timeout`, kill stragglers; final stats."""
        if self._final is not None:
            return self._final
        self._stop_flag.value = 1
        for p in self._procs:
            if p.is_alive() and p.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self._procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self._procs:
            if p.is_alive():
                p.kill()
                p.join(1.0)
        if self.watcher is not None:
            self.watcher.stop()
        self._final = RelayStats(
            read_rows(self._array, len(self._procs)),
            time.monotonic() - self._started,
            host=self.watcher.summary() if self.watcher else None,
        )
        return self._final

    def __enter__(self) -> RelayHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_relay(settings: RelaySettings) -> RelayHandle:
    """Bind the sockets, fork the workers and return once every worker is running."""
    _check(settings)
    socks = _bind_all(settings)
    address = socks[0].getsockname()
    array = RawArray("q", settings.workers * WIDTH)
    stop_flag = RawValue("i", 0)
    salt = secrets.token_bytes(16)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Barrier(settings.workers + 1)
    procs = []
    for i in range(len(socks)):
        proc = ctx.Process(
            target=_worker,
            name=f"iovkit-relay-{i}",
            daemon=True,
            args=(i, socks, settings, salt, array, stop_flag, ready),
        )
        with sigint_held():  # a Ctrl-C now is raised after the fork, not dropped in its hooks
            proc.start()
            procs.append(proc)
    for s in socks:
        s.close()  # the workers hold their own copies
    handle = RelayHandle(settings, address, procs, array, stop_flag)
    try:
        ready.wait(10.0)
    except Exception as err:  # a worker died before it was ready (bad CPU pin, ...)
        handle.stop()
        raise InputError(f"relay workers did not start: {err!r}", field="--workers") from err
    if settings.path_interval > 0:  # after the fork: the workers never carry the sampling thread
        handle.watcher = PathWatcher(settings.path_interval).start()
    return handle


def serve_metrics(handle: RelayHandle, host: str, port: int) -> tuple[str, int]:
    """Serve Prometheus text metrics (/metrics) and the stats query (/stats?since=SEQ) from a background thread."""
    from prometheus_client import CollectorRegistry, make_wsgi_app

    from iovkit.traffic.relaystats import MetricsCollector

    registry = CollectorRegistry()
    registry.register(MetricsCollector(handle.stats))
    try:
        return pathwatch.serve(pathwatch.with_stats(make_wsgi_app(registry), handle.stats_since), host, port)
    except OSError as err:
        raise InputError(f"cannot serve metrics on {host}:{port}: {err.strerror}", field="--metrics") from err


# -- worker side ---------------------------------------------------------------------------------------------
def _worker(
    index: int, socks: list[socket.socket], settings: RelaySettings, salt: bytes, array: Any, stop_flag: Any, ready: Any
) -> None:
    stopping = False
    sock = socks[index]
    for other in socks:
        if other is not sock:
            other.close()  # only the parent's copies matter until the workers exit

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def should_stop() -> bool:
        # A worker whose parent vanished (killed test runner) stops instead of leaking. Not PR_SET_PDEATHSIG:
        # that fires when the forking *thread* ends, and start_relay may be called from a short-lived thread.
        return stopping or os.getppid() != parent

    parent = os.getppid()
    if settings.pin:
        os.sched_setaffinity(0, {settings.pin[index % len(settings.pin)]})
    # GRO hands over up to 64 datagrams of one source in one buffer: a ring slot then holds 64 KiB, so the ring
    # takes at most 64 of them (4 MiB). Only where a C loop reads the segment sizes (the Python loops cannot).
    gro = settings.gso and (HAVE_DATAPATH if settings.mode in ("relay", "sink") else HAVE_FASTPATH)
    bs = BatchSocket(
        sock,
        batch=min(settings.batch, 64) if gro else settings.batch,
        bufsize=65535 if gro else max(2048, settings.max_datagram + 1),
        gro=gro,
    )
    # Objects inherited from the parent (typer, pydantic, ...) never need collecting: freezing them keeps full
    # collections short. The reflector loops make no reference cycles, so they run with the collector off.
    gc.freeze()
    if settings.mode != "relay":
        gc.disable()
    row = memoryview(array).cast("B").cast("q")[index * WIDTH : (index + 1) * WIDTH]
    ready.wait(10.0)
    if settings.mode == "sink":
        _sink_loop(bs, row, stop_flag, should_stop)
    elif settings.mode in ("echo", "sockperf"):
        echo_loop(
            Reflector(bs, gso=bs.gro),
            row,
            stop_flag,
            should_stop,
            SOCKPERF_MATCH if settings.mode == "sockperf" else None,
            int(settings.busy_poll_us * 1000),
            PUBLISH_EVERY,
        )
    else:
        _relay_loop(bs, settings, salt, row, stop_flag, should_stop)


def _relay_loop(bs: BatchSocket, settings: RelaySettings, salt: bytes, row: Any, stop_flag: Any, stopping: Any) -> None:
    assert settings.key is not None
    cfg = RelayConfig(
        key=settings.key,
        admission_key=settings.admission_key,
        cookie_secret=derive_cookie_secret(settings.key, salt),
        max_sessions=settings.max_sessions,
        max_peers=settings.max_peers,
        max_members=settings.max_members,
        peer_idle=settings.peer_idle,
        rate_pps=settings.rate_pps,
        rate_burst=settings.rate_burst,
        max_datagram=settings.max_datagram,
    )
    core = RelayCore(cfg)
    if HAVE_DATAPATH and bs.native:
        _fast_loop(FastRelay(core, bs, gso=settings.gso), row, stop_flag, stopping)
        return
    failed = 0
    next_pub = time.monotonic() + PUBLISH_EVERY
    while True:
        got = bs.recv()
        now = time.time()
        if got:
            core.on_datagrams(got, now)
            out = core.datagrams_to_send()
            if out:
                failed += len(out) - bs.send(out)
        deadline = core.next_deadline()
        if deadline is not None and now >= deadline:
            core.on_timer(now)
        mono = time.monotonic()
        stop = stop_flag.value or (mono >= next_pub and stopping())
        if mono >= next_pub or stop:
            _publish(row, core, failed, bs.truncated)
            next_pub = mono + PUBLISH_EVERY
            if stop:
                return


def _publish(row: Any, core: RelayCore, failed: int, truncated: int) -> None:
    for k, v in core.stats.items():
        row[INDEX[k]] = v
    for k, v in core.drops.items():
        row[INDEX[f"drop_{k}"]] = v
    row[INDEX["drop_send_failed"]] = failed
    row[INDEX["drop_oversized"]] = core.drops["oversized"] + truncated
    row[INDEX["pkts_in"]] = core.stats["pkts_in"] + truncated
    row[INDEX["sessions"]] = len(core.sessions)
    row[INDEX["peers"]] = len(core.peers)


def _fast_loop(fast: FastRelay, row: Any, stop_flag: Any, stopping: Any) -> None:
    """_relay_loop with the C data path (relayfast.py)."""
    core, bs = fast.core, fast.bs
    assert bs is not None
    next_pub = time.monotonic() + PUBLISH_EVERY
    while True:
        now = time.time()
        fast.step(None, now)
        deadline = core.next_deadline()
        if deadline is not None and now >= deadline:
            core.on_timer(now)
        mono = time.monotonic()
        stop = stop_flag.value or (mono >= next_pub and stopping())
        if mono >= next_pub or stop:
            _publish(row, core, fast.send_failed, bs.truncated)
            next_pub = mono + PUBLISH_EVERY
            if stop:
                return


def _sink_loop(bs: BatchSocket, row: Any, stop_flag: Any, stopping: Any) -> None:
    """Count what arrives (a GRO buffer as its datagrams) and answer nothing: the receive side of a one-way test."""
    pin = bin_ = trunc = 0
    i_pin, i_bin, i_big = INDEX["pkts_in"], INDEX["bytes_in"], INDEX["drop_oversized"]
    next_pub = time.monotonic() + PUBLISH_EVERY
    while True:
        n, nbytes, t = sink_step(bs, None)
        pin += n + t
        bin_ += nbytes
        trunc += t
        mono = time.monotonic()
        stop = stop_flag.value or (mono >= next_pub and stopping())
        if mono >= next_pub or stop:
            row[i_pin], row[i_bin], row[i_big] = pin, bin_, trunc
            next_pub = mono + PUBLISH_EVERY
            if stop:
                return
