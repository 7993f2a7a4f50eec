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

Receiving goes through `iovkit.traffic.mmsg`; sending uses TxRing below, which stamps a whole batch in
preallocated buffers with numpy (a few ns of Python per datagram) so the kernel, not the interpreter, sets the
maximum rate. Histograms are filled in one vectorised pass after the run (histo.record_many).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import multiprocessing
import os
import random
import secrets
import select
import signal
import socket
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from iovkit.errors import InputError, IovkitError, UnreachableError
from iovkit.traffic import histo
from iovkit.traffic import protocol as proto
from iovkit.traffic.mmsg import BatchSocket, Iovec, Mmsghdr, set_buffers
from iovkit.traffic.sweep import StepMeasurement

ECHO_HDR = struct.Struct("!QHIIIQ")  # sockperf seq | flags | length || magic | flow | scheduled ns
ECHO_MAGIC = 0x494F564B  # "IOVK"
SOCKPERF_CLIENT_PONG = 0x0003  # MASK_CLIENT | MASK_PONG: sockperf server answers these
SOCKPERF_CLIENT = 0x0001  # no pong request: sockperf server counts it and stays silent
ECHO_MIN_PAYLOAD = ECHO_HDR.size  # 30
RELAY_MIN_PAYLOAD = proto.HEADER_SIZE  # 32
WARM_BASE = 1 << 62  # warm-up datagrams use sequence numbers from here: reflected, never counted
_NS = 1_000_000_000
_SOCKBUF = 4 * 1024 * 1024
# Sends go out in batches of spec.batch (256 by default: on this project's VM that reached 98% of a C sendmmsg
# loop's rate against 95% with 64, one system call per 256 datagrams); replies come back spread out, so a
# receive takes at most RECV_BATCH, and a receive ring (2 KiB a slot, one per socket) stays small.
RECV_BATCH = 64
DIRECT_READ_MAX = 8  # up to this many sockets per sender are read by trying each, beyond it through epoll
ECHO_SEQ_AT, ECHO_TIME_AT = 0, 22  # offsets of the u64 sequence number and scheduled time in ECHO_HDR
# Payloads of at least ECHO_SENT_END bytes also carry the time the send call was made (u64 ns after the header):
# latency from it (service time) leaves out the generator's own lateness, as sockperf and ping measure.
ECHO_SENT_AT = ECHO_HDR.size
ECHO_SENT_END = ECHO_SENT_AT + 8
RELAY_SEQ_AT, RELAY_TIME_AT = 16, 24  # ... and in protocol.HEADER
_U64 = struct.Struct("!Q")
SPIN_WINDOW_NS = 50_000
TIMER_SLACK_NS = 1_000
"""Default wait (spin=None): with the thread's timer slack cut from 50 us to 1 us (prctl), sleep in select()
until 50 us before a send time, then busy-poll the rest. A plain sleep wakes 50-100 us late, which used to
decide the p50; with 1 us slack this VM wakes about 25 us late, inside the window. Spinning every wait instead
(spin=True) makes the p50 no better and the tail worse on a shared machine: a process that never sleeps gets
preempted for whole scheduler slices (ms). spin=False sleeps every wait (still with the small timer slack).
Without kernel receive timestamps the default busy-polls every wait: the receive time is then when Python reads
the reply, and a sleeping sender's wake-up would count as network latency."""
_PR_SET_TIMERSLACK, _PR_GET_TIMERSLACK = 29, 30

Mode = Literal["echo", "relay"]
Progress = Callable[[int, int, float | None], None]
"""progress(sent, received, recent p99 us): called about 4 times a second by the first sender."""


@dataclass
class LoadSpec:
    """One load step: where, how fast, how long, in what shape."""

    target: tuple[str, int]
    rate: float
    mode: Mode = "echo"
    seconds: float = 1.0
    warmup: float = 0.2
    drain: float = 0.3
    payload: int = 64
    flows: int = 4  # echo: source sockets per sender process
    senders: int = 1
    batch: int = 256  # datagrams per sendmmsg; receives take at most RECV_BATCH
    poisson: bool = False
    seed: int | None = None
    kernel_timestamps: bool = True
    clients: int = 8  # relay mode
    sessions: int = 2
    relay_key: bytes | None = field(default=None, repr=False)
    join_timeout: float = 2.0
    replies: bool = True  # echo: False asks nothing back (sockperf server then only counts): a pure send test
    spin: bool | None = None  # None: see SPIN_WINDOW_NS; True: always busy-poll; False: only sleep

    def check(self) -> None:
        """Reject impossible settings with one line naming the option."""
        if not self.rate > 0:
            raise InputError(f"the rate must be above 0 datagrams/s (got {self.rate:g})", field="--rate")
        if not self.seconds > 0:
            raise InputError(f"a step must last more than 0 s (got {self.seconds:g})", field="--seconds")
        if self.senders < 1 or self.senders > 64:
            raise InputError(f"senders must be 1..64 (got {self.senders})", field="--senders")
        if self.flows < 1 or self.flows > 4096:
            raise InputError(f"flows must be 1..4096 (got {self.flows})", field="--flows")
        if not 1 <= self.batch <= 1024:
            raise InputError(f"must be 1..1024 (got {self.batch})", field="--batch")
        low = ECHO_MIN_PAYLOAD if self.mode == "echo" else RELAY_MIN_PAYLOAD
        if not low <= self.payload <= 1472 * 44:
            raise InputError(
                f"payload must be {low}..65000 bytes in {self.mode} mode (got {self.payload})", field="--payload"
            )
        if not 0 < self.target[1] < 65536:
            raise InputError(f"port must be 1..65535 (got {self.target[1]})", field="--target")
        if self.mode == "relay":
            if self.sessions < 1 or self.clients < 2 * self.sessions:
                raise InputError(
                    f"relay mode needs at least 2 clients per session ({self.clients} clients, "
                    f"{self.sessions} sessions)",
                    field="--clients",
                )
            if self.relay_key is None:
                raise InputError("relay mode needs the relay key (IOVKIT_RELAY_KEY or --key-file)", field="--key-file")
            if self.senders > self.sessions:
                raise InputError(
                    f"relay mode: senders ({self.senders}) cannot exceed sessions ({self.sessions})", field="--senders"
                )


# -- pure counters ---------------------------------------------------------------------------------------------
class FlowTracker:
    """Per-flow receive counters: distinct, duplicates, reordered, RFC 3550 jitter. No I/O, no clock."""

    __slots__ = ("duplicates", "jitter_ns", "max_seq", "prev_transit", "received", "reordered", "seen")

    def __init__(self) -> None:
        self.seen = bytearray(1024)
        self.max_seq = -1
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.jitter_ns = 0.0
        self.prev_transit: int | None = None

    def on(self, seq: int, transit_ns: int) -> bool:
        """Count one arrival; True when it is the first copy of `seq` (its latency should be recorded)."""
        byte, bit = seq >> 3, 1 << (seq & 7)
        seen = self.seen
        if byte >= len(seen):
            seen.extend(bytes(max(len(seen), byte + 1 - len(seen))))
        if seen[byte] & bit:
            self.duplicates += 1
            return False
        seen[byte] |= bit
        self.received += 1
        if seq < self.max_seq:
            self.reordered += 1
        else:
            self.max_seq = seq
        prev = self.prev_transit
        if prev is not None:
            d = transit_ns - prev
            self.jitter_ns += ((d if d >= 0 else -d) - self.jitter_ns) / 16.0
        self.prev_transit = transit_ns
        return True


class Schedule:
    """Intended send times in monotonic ns: constant spacing or Poisson (exponential gaps) at `rate`/s."""

    def __init__(self, rate: float, start_ns: int, poisson: bool = False, seed: int | None = None) -> None:
        self.interval = _NS / rate
        self.poisson = poisson
        self.rng = random.Random(seed)
        self._t = float(start_ns)
        self.next_ns = start_ns

    def due(self, now_ns: int, cap: int) -> list[int]:
        """Every intended send time up to now (at most `cap`), advancing the schedule past them."""
        if self.next_ns > now_ns:
            return []
        if self.poisson:
            out: list[int] = []
            while self.next_ns <= now_ns and len(out) < cap:
                out.append(self.pop())
            return out
        iv, t0 = self.interval, self._t
        n = min(cap, max(1, int((now_ns - t0) // iv) + 1))  # next_ns = int(t0) <= now: at least one is due
        times = [int(t0 + i * iv) for i in range(n)]
        self._t = t0 + n * iv
        self.next_ns = int(self._t)
        return times

    def due_array(self, now_ns: int, cap: int) -> Any:
        """Like due(), as an int64 numpy array; constant rate computes the times without a Python loop."""
        if self.poisson or self.next_ns > now_ns:
            return np.array(self.due(now_ns, cap), dtype=np.int64)
        iv, t0 = self.interval, self._t
        n = min(cap, max(1, int((now_ns - t0) // iv) + 1))
        times = (t0 + _arange(n) * iv).astype(np.int64)
        self._t = t0 + n * iv
        self.next_ns = int(self._t)
        return times

    def pop(self) -> int:
        """The next intended send time; advances the schedule."""
        t = self.next_ns
        self._t += self.rng.expovariate(1.0) * self.interval if self.poisson else self.interval
        self.next_ns = int(self._t)
        return t


_AR = np.arange(4096, dtype=np.float64)


def _arange(n: int) -> Any:
    return _AR[:n] if n <= len(_AR) else np.arange(n, dtype=np.float64)


def _load_sendmmsg() -> Any:
    """libc's sendmmsg, or None (non-Linux, old libc): then TxRing sends one datagram per call."""
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).sendmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SENDMMSG = _load_sendmmsg()


def _timer_slack(ns: int | None) -> int | None:
    """Set this thread's timer slack (Linux prctl); the previous value, or None where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        old = int(libc.prctl(_PR_GET_TIMERSLACK, 0, 0, 0, 0))
        if ns is not None and old >= 0:
            libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0)
    except (OSError, AttributeError):
        return None
    return old if old >= 0 else None


class TxRing:
    """A preallocated sendmmsg batch for one connected socket, every slot a copy of the flow's datagram.

    Why not BatchSocket.send: that copies each payload into its ring (a Python slice per datagram) after the
    caller built a bytes object per datagram. Here the slots already hold the template, and a batch rewrites
    only the two fields that change (sequence number, scheduled time) for all slots at once through strided
    big-endian numpy views: the Python cost per datagram is a few ns, so the kernel sets the rate.
    """

    def __init__(
        self, sock: socket.socket, template: bytes, batch: int, seq_at: int, time_at: int, sent_at: int | None = None
    ) -> None:
        size = len(template)
        self.sock, self.fd, self.batch, self.size = sock, sock.fileno(), batch, size
        self.seq_at, self.time_at, self.sent_at = seq_at, time_at, sent_at
        self.data = bytearray(bytes(template) * batch)
        self.seqs = np.ndarray((batch,), dtype=">u8", buffer=self.data, offset=seq_at, strides=(size,))
        self.times = np.ndarray((batch,), dtype=">u8", buffer=self.data, offset=time_at, strides=(size,))
        self.sent = (
            None
            if sent_at is None
            else np.ndarray((batch,), dtype=">u8", buffer=self.data, offset=sent_at, strides=(size,))
        )
        self.one = memoryview(self.data)[:size]
        self.steps = np.arange(batch, dtype=np.uint64)
        self.iovs = (Iovec * batch)()
        self.hdrs = (Mmsghdr * batch)()
        base = ctypes.addressof((ctypes.c_char * len(self.data)).from_buffer(self.data))
        for i in range(batch):
            self.iovs[i].iov_base = base + i * size
            self.iovs[i].iov_len = size
            self.hdrs[i].msg_hdr.msg_iov = ctypes.addressof(self.iovs[i])
            self.hdrs[i].msg_hdr.msg_iovlen = 1
        self.at = ctypes.addressof(self.hdrs)

    def send_one(self, seq: int, t: int) -> int:
        """One datagram with plain send() (cheaper than a ctypes call for one); 1 if the kernel took it."""
        _U64.pack_into(self.data, self.seq_at, seq)
        _U64.pack_into(self.data, self.time_at, t)
        if self.sent_at is not None:
            _U64.pack_into(self.data, self.sent_at, time.monotonic_ns())
        try:
            self.sock.send(self.one)
        except (BlockingIOError, InterruptedError):
            return 0
        return 1

    def send(self, seq0: int, times: Any) -> int:
        """Datagrams seq0, seq0+1, ... stamped with `times` (at most `batch`); how many the kernel took.

        Stops at EAGAIN (a full socket buffer): open loop, the rest are not sent and counted so by the caller.
        ECONNREFUSED (ICMP port unreachable from an earlier datagram) raises ConnectionRefusedError.
        """
        m = len(times)
        if m == 1 or _SENDMMSG is None:
            sent = 0
            for j in range(m):
                if not self.send_one(seq0 + j, int(times[j])):
                    break
                sent += 1
            return sent
        self.seqs[:m] = self.steps[:m] + np.uint64(seq0)
        self.times[:m] = times
        if self.sent is not None:
            self.sent[:m] = time.monotonic_ns()
        start = 0
        while start < m:
            r: int = _SENDMMSG(self.fd, self.at + start * ctypes.sizeof(Mmsghdr), m - start, 0)
            if r > 0:
                start += r
                continue
            e = ctypes.get_errno()
            if e == errno.EINTR:
                continue
            if e == errno.ECONNREFUSED:
                raise ConnectionRefusedError(e, "connection refused")
            if e in (errno.EAGAIN, errno.EWOULDBLOCK):
                break
            raise OSError(e, f"sendmmsg: {errno.errorcode.get(e, e)}")
        return start


@dataclass
class WorkerResult:
    """What one sender process measured; several merge by summing and merging histograms."""

    sent: int = 0
    expected: int = 0
    received: int = 0
    reordered: int = 0
    duplicates: int = 0
    jitters_ns: list[float] = field(default_factory=list)
    histogram: str = ""
    sent_histogram: str = ""  # latency from the send call ("" where the datagrams do not carry its time)
    out_of_range: int = 0
    kernel_ts: bool = False
    send_lag_max_ns: int = 0
    not_sent: int = 0
    stray: int = 0


# -- sockets ---------------------------------------------------------------------------------------------------
def resolve(target: tuple[str, int]) -> tuple[int, tuple[Any, ...]]:
    """(family, sockaddr) for host:port. A name that does not resolve is an unreachable target (exit 3): from
    here a typo cannot be told from a DNS server that is down, and either way no datagram can leave."""
    host, port = target
    try:
        info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, socket.IPPROTO_UDP)[0]
    except socket.gaierror as err:
        raise UnreachableError(f"--target {host}:{port}: cannot resolve {host!r} ({err.strerror})") from err
    return info[0], info[4]


def _connected(family: int, addr: tuple[Any, ...], target: tuple[str, int]) -> socket.socket:
    """A non-blocking UDP socket connected to the target, so ICMP port-unreachable comes back as ECONNREFUSED."""
    sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        set_buffers(sock, _SOCKBUF, _SOCKBUF)
        sock.connect(addr)
    except OSError as err:
        sock.close()
        raise UnreachableError(f"{target[0]}:{target[1]}: cannot reach ({err.strerror or err})") from err
    sock.setblocking(False)
    return sock


def _refused(target: tuple[str, int]) -> UnreachableError:
    return UnreachableError(f"{target[0]}:{target[1]}: nothing listens on that UDP port (ICMP port unreachable)")


def _silent(target: tuple[str, int], seconds: float, what: str) -> UnreachableError:
    return UnreachableError(f"{target[0]}:{target[1]}: no reply within {seconds:g} s ({what})")


def probe_echo(target: tuple[str, int], timeout: float = 1.0) -> float:
    """Send a few datagrams to a reflector and wait for one back; the round trip in us.

    Ends the run early, with one line, when nothing listens (ECONNREFUSED) or nothing answers.
    """
    family, addr = resolve(target)
    sock = _connected(family, addr, target)
    try:
        deadline = time.monotonic() + timeout
        seq = WARM_BASE
        while True:
            t0 = time.monotonic_ns()
            with contextlib.suppress(BlockingIOError):
                sock.send(ECHO_HDR.pack(seq, SOCKPERF_CLIENT_PONG, ECHO_HDR.size, ECHO_MAGIC, 0, t0))
            seq += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise _silent(target, timeout, "is a UDP reflector running there?")
            ready, _, _ = select.select([sock], [], [], min(0.1, left))
            if ready:
                try:
                    data = sock.recv(65536)
                except ConnectionRefusedError as err:
                    raise _refused(target) from err
                except OSError as err:
                    raise UnreachableError(f"{target[0]}:{target[1]}: {err.strerror or err}") from err
                if len(data) >= ECHO_HDR.size:
                    fields = ECHO_HDR.unpack_from(data)
                    if fields[3] == ECHO_MAGIC:
                        return (time.monotonic_ns() - fields[5]) / 1000.0
    except ConnectionRefusedError as err:
        raise _refused(target) from err
    finally:
        sock.close()


# -- one sender process ----------------------------------------------------------------------------------------
class _Sender:
    """One process's share: its sockets, schedule and counters. prepare() (join), then run(t0)."""

    def __init__(self, spec: LoadSpec, index: int, progress: Progress | None = None) -> None:
        self.spec = spec
        self.index = index
        self.progress = progress
        self.family, self.addr = resolve(spec.target)
        self.socks: list[socket.socket] = []
        self.bsocks: list[BatchSocket] = []
        self.templates: list[bytearray] = []
        self.seq: list[int] = []
        self.wseq: list[int] = []
        self.sent_by: list[int] = []
        self.fanout: list[int] = []  # receivers per datagram from each flow
        self.trackers: dict[tuple[int, int], FlowTracker] = {}
        self.lat: list[int] = []
        self.lat_sent: list[int] = []
        self.res = WorkerResult()
        self.rate = spec.rate / spec.senders
        self.peer_of: list[int] = []
        self.session_of: list[int] = []
        self.kernel_ts_seen = False
        self.flags = SOCKPERF_CLIENT_PONG
        self._direct = False  # set by _run: read each socket in turn instead of through epoll

    # setup
    def prepare(self) -> None:
        spec = self.spec
        if spec.mode == "echo":
            self.flags = SOCKPERF_CLIENT_PONG if spec.replies else SOCKPERF_CLIENT
            for i in range(spec.flows):
                self._add_socket()
                tpl = bytearray(spec.payload)
                ECHO_HDR.pack_into(tpl, 0, 0, self.flags, spec.payload, ECHO_MAGIC, i, 0)
                self.templates.append(tpl)
                self.fanout.append(1 if spec.replies else 0)
        else:
            self._prepare_relay()
        n = len(self.socks)
        self.seq, self.wseq, self.sent_by = [0] * n, [0] * n, [0] * n
        at = (ECHO_SEQ_AT, ECHO_TIME_AT) if spec.mode == "echo" else (RELAY_SEQ_AT, RELAY_TIME_AT)
        sent_at = ECHO_SENT_AT if spec.mode == "echo" and spec.payload >= ECHO_SENT_END else None
        self.rings = [
            TxRing(sock, bytes(tpl), spec.batch, *at, sent_at=sent_at)
            for sock, tpl in zip(self.socks, self.templates, strict=True)
        ]

    def _add_socket(self) -> BatchSocket:
        sock = _connected(self.family, self.addr, self.spec.target)
        # no replies asked, nothing to stamp: SO_TIMESTAMPNS would switch on stamping of every packet the
        # kernel receives (a global switch), which costs the pure send test for nothing
        stamps = self.spec.kernel_timestamps and (self.spec.replies or self.spec.mode == "relay")
        bs = BatchSocket(
            sock, batch=min(self.spec.batch, RECV_BATCH), bufsize=max(2048, self.spec.payload), timestamps=stamps
        )
        self.socks.append(sock)
        self.bsocks.append(bs)
        return bs

    def _prepare_relay(self) -> None:
        spec = self.spec
        assert spec.relay_key is not None
        my_sessions = [s for s in range(spec.sessions) if s % spec.senders == self.index]
        share = sum(_members(spec, s) for s in my_sessions)
        self.rate = spec.rate * share / spec.clients
        base = secrets.randbits(31) + 1  # fresh session ids each step: old bindings cannot clash
        expiry = int(time.time()) + 3600
        joiners: list[proto.Joiner] = []
        for s in my_sessions:
            sid = (base + s * 7919) & 0xFFFFFFFF or 1
            members = _members(spec, s)
            for peer in range(1, members + 1):
                self._add_socket()
                token = proto.mint_token(spec.relay_key, sid, peer, expiry)
                joiners.append(proto.Joiner(sid, peer, token))
                tpl = bytearray(spec.payload)
                proto.HEADER.pack_into(
                    tpl, 0, proto.MAGIC, proto.VERSION, proto.MsgType.DATA_ALL, 0, 0, sid, peer, 0, 0
                )
                self.templates.append(tpl)
                self.fanout.append(members - 1)
                self.peer_of.append(peer)
                self.session_of.append(sid)
        self._join_all(joiners)

    def _join_all(self, joiners: list[proto.Joiner]) -> None:
        spec = self.spec
        pending = set(range(len(joiners)))
        deadline = time.monotonic() + spec.join_timeout
        answered = False
        last_sent = 0.0
        while pending:
            now = time.monotonic()
            if now >= deadline:
                if not answered:
                    raise _silent(spec.target, spec.join_timeout, "is an iovkit relay in relay mode running there?")
                raise UnreachableError(
                    f"{spec.target[0]}:{spec.target[1]}: {len(pending)} of {len(joiners)} "
                    f"clients could not join within {spec.join_timeout:g} s"
                )
            if now - last_sent > 0.25:
                for i in pending:
                    self._send_one(i, joiners[i].first())
                last_sent = now
            for i in list(pending):
                for data, _addr in self._recv_one(i):
                    answered = True
                    nxt = joiners[i].on_reply(data)
                    if nxt is not None:
                        self._send_one(i, nxt)
                    j = joiners[i]
                    if j.rejected is not None:
                        raise InputError(
                            f"the relay refused the join: {j.rejected.name} (is the relay key the same "
                            "as the relay's?)",
                            field="relay key",
                        )
                    if j.joined:
                        pending.discard(i)
            if pending:
                select.select(self.socks, [], [], 0.02)

    def _send_one(self, i: int, data: bytes) -> None:
        try:
            self.socks[i].send(data)
        except ConnectionRefusedError as err:
            raise _refused(self.spec.target) from err
        except BlockingIOError:
            pass

    def _recv_one(self, i: int) -> list[tuple[bytes, Any]]:
        try:
            return self.bsocks[i].recv()
        except ConnectionRefusedError as err:
            raise _refused(self.spec.target) from err

    def close(self) -> None:
        if self.spec.mode == "relay":
            for i in range(len(self.socks)):
                with contextlib.suppress(OSError):
                    self.socks[i].send(proto.encode_leave(self.session_of[i], self.peer_of[i]))
        for s in self.socks:
            s.close()

    # the run
    def run(self, t0: int) -> WorkerResult:
        old_slack = _timer_slack(TIMER_SLACK_NS)
        try:
            return self._run(t0)
        except ConnectionRefusedError as err:
            raise _refused(self.spec.target) from err
        except OSError as err:
            raise UnreachableError(f"{self.spec.target[0]}:{self.spec.target[1]}: {err.strerror or err}") from err
        finally:
            if old_slack is not None:
                _timer_slack(old_slack)

    def _run(self, t0: int) -> WorkerResult:
        """The send loop: take what is due, stamp and send it per flow in batches, receive between sends.

        One clock read per loop turn; a turn that finds several datagrams due (a high rate, or a late wake-up)
        sends them all with their own scheduled times, so lateness shows in the latency, never in the rate.
        """
        spec = self.spec
        sched = Schedule(self.rate, t0, spec.poisson, None if spec.seed is None else spec.seed + self.index)
        measure_from = t0 + int(spec.warmup * _NS)
        end = measure_from + int(spec.seconds * _NS)
        poller = select.epoll()
        fd_index = {s.fileno(): i for i, s in enumerate(self.socks)}
        # Registering the sockets with epoll cost about 6 % of the send rate in an A/B here (most likely the
        # write-space wake-up the kernel runs for each sent datagram while a socket has a waiter), so a few flows
        # are read by trying each one instead.
        self._direct = len(self.socks) <= DIRECT_READ_MAX
        if not self._direct:
            for fd in fd_index:
                poller.register(fd, select.EPOLLIN)
        self.offset = time.time_ns() - time.monotonic_ns()
        nflows = len(self.socks)
        cap = spec.batch * max(4, nflows)
        # without kernel receive stamps the receive time is when we read: a sleeping sender would charge its
        # wake-up (25-40 us on a VM) to the network, so the default then busy-polls every wait (CPU shows it)
        auto = SPIN_WINDOW_NS if spec.kernel_timestamps else 1 << 62
        window = {None: auto, True: 1 << 62, False: 0}[spec.spin]
        rings, seqs, wseqs, sent_by = self.rings, self.seq, self.wseq, self.sent_by
        receive = self._receive
        res = self.res
        socks = self.socks
        kts = spec.kernel_timestamps
        k = 0
        next_tick = time.monotonic() + 0.25
        mono = time.monotonic_ns
        lag_max = 0
        constant = not spec.poisson
        iv = sched.interval
        try:
            while True:
                now = mono()
                if now >= end:
                    break
                nxt = sched.next_ns
                if nxt <= now:
                    if constant and now - nxt < iv:
                        # exactly one due (the common case below the maximum rate): no arrays
                        t = sched.pop()
                        if t < end:
                            f = k % nflows
                            k += 1
                            if t >= measure_from:
                                done = rings[f].send_one(seqs[f], t)
                                seqs[f] += done
                                sent_by[f] += done
                                res.not_sent += 1 - done
                                if now - t > lag_max:
                                    lag_max = now - t
                            else:
                                wseqs[f] += rings[f].send_one(WARM_BASE + wseqs[f], t)
                    else:
                        due = sched.due_array(now, cap)
                        if due[-1] >= end:
                            due = due[: int(np.searchsorted(due, end))]
                        w = int(np.searchsorted(due, measure_from)) if len(due) and due[0] < measure_from else 0
                        if w < len(due) and now - int(due[w]) > lag_max:
                            lag_max = now - int(due[w])
                        for seg, warm in ((due[:w], True), (due[w:], False)):
                            m = len(seg)
                            for j in range(min(nflows, m)):
                                f = (k + j) % nflows
                                ring = rings[f]
                                part = seg[j::nflows]
                                for c in range(0, len(part), ring.batch):
                                    chunk = part[c : c + ring.batch]
                                    if warm:
                                        wseqs[f] += ring.send(WARM_BASE + wseqs[f], chunk)
                                        continue
                                    done = ring.send(seqs[f], chunk)
                                    seqs[f] += done
                                    sent_by[f] += done
                                    if done < len(chunk):  # socket buffer full: the rest of this turn is not sent
                                        res.not_sent += len(part) - c - done
                                        break
                            k += m
                    receive(poller, fd_index, 0)
                else:
                    wait = nxt - now
                    if wait > window:
                        # select() takes a us timeout (epoll only whole ms) and wakes for a reply at once;
                        # with 1 us timer slack it returns ~25 us late (VM wake-up), inside the spin window
                        if select.select(socks, (), (), min(wait - window, 50_000_000) / _NS)[0]:
                            receive(poller, fd_index, 0)
                    elif wait > 20_000 or not kts:
                        receive(poller, fd_index, 0)  # spin, reading replies as they come
                    else:
                        while mono() < nxt:  # the last 20 us (kernel rx stamps make a late read harmless)
                            pass
                if self.progress is not None and time.monotonic() >= next_tick:
                    next_tick += 0.25
                    self.progress(sum(sent_by), self._received(), _recent_p99(self.lat))
            self._drain(poller, fd_index, spec.drain)
        finally:
            poller.close()
        res.send_lag_max_ns = lag_max
        return self._finish()

    def _expected(self) -> int:
        return sum(s * fo for s, fo in zip(self.sent_by, self.fanout, strict=True))

    def _received(self) -> int:
        return sum(t.received for t in self.trackers.values())

    def _drain(self, poller: Any, fd_index: dict[int, int], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        want = self._expected()
        while self._received() < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._receive(poller, fd_index, min(left, 0.02))

    def _receive(self, poller: Any, fd_index: dict[int, int], timeout: float) -> None:
        ready: Any
        if self._direct:
            if timeout > 0 and not select.select(self.socks, (), (), timeout)[0]:
                return
            ready = range(len(self.bsocks))
        else:
            events = poller.poll(timeout)
            if not events:
                return
            ready = [fd_index[fd] for fd, _ev in events]
        relay = self.spec.mode == "relay"
        ts = self.bsocks[0].timestamps if self.bsocks else False
        trackers, lat, lat_sent, offset = self.trackers, self.lat, self.lat_sent, self.offset
        sent_end = ECHO_SENT_END if self.spec.payload >= ECHO_SENT_END else 1 << 30
        unpack_echo, unpack_relay = ECHO_HDR.unpack_from, proto.HEADER.unpack_from
        nflows = len(self.socks)
        for i in ready:
            bs = self.bsocks[i]
            while True:
                try:
                    got = bs.recv_ts() if ts else [(d, a, 0) for d, a in bs.recv()]
                except ConnectionRefusedError as err:
                    raise _refused(self.spec.target) from err
                if not got:
                    break
                now_rx = time.monotonic_ns()
                for data, _addr, kts in got:
                    sent_ns = 0
                    if kts:
                        rx = kts - offset
                        self.kernel_ts_seen = True
                    else:
                        rx = now_rx
                    if relay:
                        if len(data) < RELAY_MIN_PAYLOAD:
                            self.res.stray += 1
                            continue
                        magic, _v, kind, _fl, _r, _sid, peer, seq, sched = unpack_relay(data)
                        if magic != proto.MAGIC or kind != proto.MsgType.DATA_ALL:
                            if magic != proto.MAGIC:
                                self.res.stray += 1
                            continue  # keepalive/ack echoes are not traffic
                        key = (i, peer)
                    else:
                        if len(data) < ECHO_MIN_PAYLOAD:
                            self.res.stray += 1
                            continue
                        seq, _fl, _ln, magic, flow, sched = unpack_echo(data)
                        if magic != ECHO_MAGIC or flow >= nflows:
                            self.res.stray += 1
                            continue
                        key = (flow, 0)
                        if len(data) >= sent_end:
                            sent_ns = _U64.unpack_from(data, ECHO_SENT_AT)[0]
                    if seq >= WARM_BASE:
                        continue
                    tr = trackers.get(key)
                    if tr is None:
                        tr = trackers[key] = FlowTracker()
                    transit = rx - sched
                    if tr.on(seq, transit):  # first arrivals only: a duplicate is counted, not timed
                        lat.append(transit)
                        if sent_ns:
                            lat_sent.append(rx - sent_ns)
                if len(got) < bs.batch:
                    break

    def _finish(self) -> WorkerResult:
        h = histo.new()
        h.record_many(self.lat)
        r = self.res
        r.sent = sum(self.sent_by)
        r.expected = self._expected()
        r.received = self._received()
        r.reordered = sum(t.reordered for t in self.trackers.values())
        r.duplicates = sum(t.duplicates for t in self.trackers.values())
        r.jitters_ns = [t.jitter_ns for t in self.trackers.values() if t.prev_transit is not None]
        r.histogram = h.encode()
        if self.rings and self.rings[0].sent is not None:
            hs = histo.new()
            hs.record_many(self.lat_sent)
            r.sent_histogram = hs.encode()
        r.out_of_range = h.out_of_range
        r.kernel_ts = self.kernel_ts_seen
        return r


def _members(spec: LoadSpec, session: int) -> int:
    """Clients in session `session` (clients spread evenly, the first sessions take the remainder)."""
    base, extra = divmod(spec.clients, spec.sessions)
    return base + (1 if session < extra else 0)


def _recent_p99(lat: list[int]) -> float | None:
    tail = lat[-2000:]
    if len(tail) < 10:
        return None
    return statistics.quantiles(tail, n=100)[98] / 1000.0


# -- several processes -----------------------------------------------------------------------------------------
def _child(conn: Any, spec: LoadSpec, index: int) -> None:
    """A forked sender: prepare, report ready, wait for the start time, run, send back the result."""
    # Ctrl-C reaches the whole process group: the parent handles it (it stops or kills us), a child would only
    # print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sender: _Sender | None = None
    try:
        sender = _Sender(spec, index)
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


def run_load(spec: LoadSpec, progress: Progress | None = None) -> StepMeasurement:
    """Run one step (warm-up, measured window, drain) with spec.senders processes; merged measurement."""
    spec.check()
    ctx = multiprocessing.get_context("fork")
    children: list[tuple[Any, Any]] = []
    main = _Sender(spec, 0, progress)
    try:
        for index in range(1, spec.senders):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(child_end, spec, index), daemon=True)
            proc.start()
            child_end.close()
            children.append((proc, parent_end))
        main.prepare()
        for _proc, conn in children:
            kind, payload = _recv_child(conn, spec.join_timeout + 5.0)
            if kind == "error":
                _raise_child(*payload)
        t0 = time.monotonic_ns() + 20_000_000  # CLOCK_MONOTONIC is one clock for every process on a host
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
    return merge(spec, results)


def _recv_child(conn: Any, timeout: float) -> tuple[str, Any]:
    if not conn.poll(timeout):
        raise IovkitError(f"a sender process did not answer within {timeout:g} s")
    try:
        msg: tuple[str, Any] = conn.recv()
    except EOFError as err:
        raise IovkitError("a sender process ended without a result") from err
    return msg


def merge(spec: LoadSpec, results: list[WorkerResult]) -> StepMeasurement:
    """Sum the counters and merge the histograms of several senders (exact)."""
    h = histo.merge_encoded([r.histogram for r in results], where="sender histogram")
    hs = None
    if all(r.sent_histogram for r in results):
        hs = histo.merge_encoded([r.sent_histogram for r in results], where="sender histogram (from send)")
    jit = [j for r in results for j in r.jitters_ns]
    return StepMeasurement(
        offered_pps=spec.rate,
        sent=sum(r.sent for r in results),
        expected=sum(r.expected for r in results),
        received=sum(r.received for r in results),
        reordered=sum(r.reordered for r in results),
        duplicates=sum(r.duplicates for r in results),
        jitter_us=round(statistics.fmean(jit) / 1000.0, 3) if jit else None,
        latency_kind="one-way" if spec.mode == "relay" else "rtt",
        latency_us=h.percentiles_us(),
        histogram=h.encode(),
        duration_s=spec.seconds,
        latency_out_of_range=h.out_of_range + sum(r.out_of_range for r in results),
        kernel_timestamps=any(r.kernel_ts for r in results),
        send_lag_max_us=max((r.send_lag_max_ns for r in results), default=0) / 1000.0,
        extra={"not_sent": float(sum(r.not_sent for r in results)), "stray": float(sum(r.stray for r in results))},
        latency_from_send_us=None if hs is None else hs.percentiles_us(),
        histogram_from_send=None if hs is None else hs.encode(),
    )


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
