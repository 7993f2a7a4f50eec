"""One sender process of the load generator: its sockets, the join (relay mode), the send loop and the receive path.

Why a module of its own: this is the part that touches sockets and clocks; the wire format, schedule and counters
are in loadcore.py (pure), batched sending and receiving in the mmsg package (TxRing, BatchSocket), and starting several
of these processes and merging their results in loadgen.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import secrets
import select
import socket
import struct
import time
from typing import Any

import numpy as np

from iovkit.errors import InputError, UnreachableError
from iovkit.traffic import histo
from iovkit.traffic import protocol as proto
from iovkit.traffic.loadcore import (
    ECHO_HDR,
    ECHO_MAGIC,
    ECHO_SENT_AT,
    ECHO_SENT_END,
    ECHO_SEQ_AT,
    ECHO_TIME_AT,
    RELAY_SEQ_AT,
    RELAY_TIME_AT,
    SOCKPERF_CLIENT,
    SOCKPERF_CLIENT_PONG,
    WARM_BASE,
    FlowTracker,
    LoadSpec,
    Progress,
    Schedule,
    WorkerResult,
    members,
    recent_p99,
)
from iovkit.traffic.mmsg import BatchSocket, TxRing, set_buffers
from iovkit.traffic.rxpath import Arrivals, take, take_plain

_NS = 1_000_000_000
_U64 = struct.Struct("!Q")
_SOCKBUF = 4 * 1024 * 1024
# Sends go out in batches of spec.batch (256 by default: on this project's VM that reached 98% of a C sendmmsg
# loop's rate against 95% with 64, one system call per 256 datagrams); replies come back spread out, so a
# receive takes at most RECV_BATCH, and a receive ring (2 KiB a slot, one per socket) stays small.
RECV_BATCH = 64
RECV_TURNS = 4  # receive batches per socket between two sends
DIRECT_READ_MAX = 8  # up to this many sockets per sender are read by trying each, beyond it through epoll
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


def probe_port(target: tuple[str, int], wait: float = 0.1) -> None:
    """Before a one-way run: one datagram, and an UnreachableError if the host answers that nothing listens there
    (ICMP port unreachable). Silence proves nothing (a sink answers nothing, a firewall may drop ICMP)."""
    family, addr = resolve(target)
    sock = _connected(family, addr, target)
    try:
        with contextlib.suppress(BlockingIOError):
            sock.send(ECHO_HDR.pack(WARM_BASE, SOCKPERF_CLIENT, ECHO_HDR.size, ECHO_MAGIC, 0, 0))
        select.select([sock], [], [], wait)
        with contextlib.suppress(BlockingIOError):
            sock.recv(2048)
    except ConnectionRefusedError as err:
        raise _refused(target) from err
    finally:
        sock.close()


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
class Sender:
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
        self.arr = Arrivals()  # the numpy receive path's counts (rxpath.py)
        self.trackers: dict[tuple[int, int], FlowTracker] = self.arr.trackers
        self.res = WorkerResult()
        self.rate = spec.rate / spec.senders
        self.peer_of: list[int] = []
        self.session_of: list[int] = []
        self.kernel_ts_seen = False
        self.flags = SOCKPERF_CLIENT_PONG
        self._direct = False  # set by _run: read each socket in turn instead of through epoll
        # send mode never asks for replies (sockperf's server only counts what it gets); echo mode unless told
        self.replies = (spec.replies and spec.mode == "echo") or spec.mode == "relay"

    # setup
    def prepare(self) -> None:
        spec = self.spec
        if spec.mode in ("echo", "send"):
            self.flags = SOCKPERF_CLIENT_PONG if self.replies else SOCKPERF_CLIENT
            for i in range(spec.flows):
                self._add_socket()
                tpl = bytearray(spec.payload)
                ECHO_HDR.pack_into(tpl, 0, 0, self.flags, spec.payload, ECHO_MAGIC, i, 0)
                self.templates.append(tpl)
                self.fanout.append(1 if self.replies else 0)
        else:
            self._prepare_relay()
        n = len(self.socks)
        self.seq, self.wseq, self.sent_by = [0] * n, [0] * n, [0] * n
        at = (RELAY_SEQ_AT, RELAY_TIME_AT) if spec.mode == "relay" else (ECHO_SEQ_AT, ECHO_TIME_AT)
        sent_at = ECHO_SENT_AT if spec.mode != "relay" and spec.payload >= ECHO_SENT_END else None
        self.rings = [
            TxRing(sock, bytes(tpl), spec.batch, *at, sent_at=sent_at, gso=spec.gso)
            for sock, tpl in zip(self.socks, self.templates, strict=True)
        ]

    def _add_socket(self) -> BatchSocket:
        sock = _connected(self.family, self.addr, self.spec.target)
        # no replies asked, nothing to stamp: SO_TIMESTAMPNS would switch on stamping of every packet the
        # kernel receives (a global switch), which costs the pure send test for nothing
        stamps = self.spec.kernel_timestamps and (self.replies or self.spec.mode == "relay")
        # GRO: a relay's GSO forwards (and any GSO sender's) arrive as one buffer per 64 datagrams; the numpy
        # receive path cuts them (64 slots of 64 KiB: 4 MiB a socket)
        gro = self.spec.gso and self.replies
        bs = BatchSocket(
            sock,
            batch=min(self.spec.batch, RECV_BATCH),
            bufsize=65535 if gro else max(2048, self.spec.payload),
            timestamps=stamps,
            gro=gro,
        )
        self.socks.append(sock)
        self.bsocks.append(bs)
        return bs

    def _prepare_relay(self) -> None:
        spec = self.spec
        assert spec.relay_key is not None
        my_sessions = [s for s in range(spec.sessions) if s % spec.senders == self.index]
        share = sum(members(spec, s) for s in my_sessions)
        self.rate = spec.rate * share / spec.clients
        base = secrets.randbits(31) + 1  # fresh session ids each step: old bindings cannot clash
        expiry = int(time.time()) + 3600
        joiners: list[proto.Joiner] = []
        for s in my_sessions:
            sid = (base + s * 7919) & 0xFFFFFFFF or 1
            size = members(spec, s)
            for peer in range(1, size + 1):
                self._add_socket()
                token = proto.mint_token(spec.relay_key, sid, peer, expiry)
                joiners.append(proto.Joiner(sid, peer, token))
                tpl = bytearray(spec.payload)
                proto.HEADER.pack_into(
                    tpl, 0, proto.MAGIC, proto.VERSION, proto.MsgType.DATA_ALL, 0, 0, sid, peer, 0, 0
                )
                self.templates.append(tpl)
                self.fanout.append(size - 1)
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
        if spec.at_max:
            return self._run_max(t0)
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
                    self.progress(sum(sent_by), self._received(), recent_p99(self.arr.recent()))
            self._drain(poller, fd_index, spec.drain)
        finally:
            poller.close()
        res.send_lag_max_ns = lag_max
        return self._finish()

    def _run_max(self, t0: int) -> WorkerResult:
        """`--rate max`: whole batches back to back on every flow, each datagram stamped with the time its batch
        was built (so latency from the schedule is latency from the send call); replies read between batches."""
        spec = self.spec
        measure_from = t0 + int(spec.warmup * _NS)
        end = measure_from + int(spec.seconds * _NS)
        self._direct = True
        self.offset = time.time_ns() - time.monotonic_ns()
        poller = select.epoll()
        rings, seqs, wseqs, sent_by = self.rings, self.seq, self.wseq, self.sent_by
        stamp = np.empty(spec.batch, dtype=np.int64)
        mono = time.monotonic_ns
        while mono() < t0:
            pass
        try:
            while True:
                now = mono()
                if now >= end:
                    break
                stamp.fill(now)
                warm = now < measure_from
                for f, ring in enumerate(rings):
                    try:
                        if warm:
                            wseqs[f] += ring.send(WARM_BASE + wseqs[f], stamp)
                        else:
                            done = ring.send(seqs[f], stamp)
                            seqs[f] += done
                            sent_by[f] += done
                    except ConnectionRefusedError:
                        if self.replies:
                            raise
                        # one way: the far end went away during the step (checked before it); keep sending
                        self.res.stray += 1
                if self.replies:
                    self._receive(poller, {}, 0)
            if self.replies:
                self._drain(poller, {}, spec.drain)
        finally:
            poller.close()
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
        nflows = len(self.socks)
        for i in ready:
            bs = self.bsocks[i]
            step = take if bs.native else take_plain
            try:
                # a bounded number of batches per socket and turn: a backlog must not starve the sending (it
                # stays queued and shows as latency, or as loss where the queue overflows)
                for _ in range(RECV_TURNS):
                    if step(self.arr, bs, i, relay, nflows, self.offset, time.monotonic_ns()) < bs.batch:
                        break
            except ConnectionRefusedError as err:
                raise _refused(self.spec.target) from err

    def _finish(self) -> WorkerResult:
        h = histo.new()
        for chunk in self.arr.chunks():
            h.record_many(chunk)
        r = self.res
        r.stray += self.arr.stray
        self.kernel_ts_seen = self.kernel_ts_seen or self.arr.kernel_ts
        r.sent = sum(self.sent_by)
        r.expected = self._expected()
        r.received = self._received()
        r.reordered = sum(t.reordered for t in self.trackers.values())
        r.duplicates = sum(t.duplicates for t in self.trackers.values())
        r.jitters_ns = [t.jitter_ns for t in self.trackers.values() if t.prev_transit is not None]
        r.histogram = h.encode()
        if self.rings and self.rings[0].sent is not None:
            hs = histo.new()
            for chunk in self.arr.chunks_sent():
                hs.record_many(chunk)
            r.sent_histogram = hs.encode()
        r.out_of_range = h.out_of_range
        r.kernel_ts = self.kernel_ts_seen
        return r
