"""Batched UDP socket I/O: recvmmsg/sendmmsg through ctypes over buffers allocated once.

This is the only module in iovkit that does batched socket I/O. The relay and the load generator both use it.
Python has no recvmmsg/sendmmsg, and one recvfrom/sendto per datagram costs microseconds of interpreter time, so
one syscall moves up to `batch` datagrams here. All mmsghdr/iovec/sockaddr/data arrays are allocated in the
constructor and reused: a call allocates only the returned `bytes` objects. If libc lacks the calls (or
`native=False`), the same API runs on recvfrom/sendto loops.

Stable API (the load generator depends on it; additive changes only):

    Address = tuple: ("127.0.0.1", 7777) for IPv4, ("::1", 7777, flowinfo, scope_id) for IPv6 (as socket gives)
    HAVE_MMSG: bool                          libc has recvmmsg and sendmmsg
    HAVE_FASTPATH: bool                      the C echo loops (_fastpath.c) were built and can be used
    open_udp(host, port, *, reuseport=False, rcvbuf=None, sndbuf=None, blocking=True, rcvtimeo=None) -> socket
    set_buffers(sock, rcvbuf=None, sndbuf=None) -> (rcvbuf, sndbuf)   effective sizes as the kernel reports them
    BatchSocket(sock, batch=64, bufsize=2048, timestamps=False, native=None, fastpath=None)
        .recv(timeout=None)    -> list[(payload: bytes, addr: Address)]
        .recv_ts(timeout=None) -> list[(payload, addr, kernel_rx_ns: int)]   needs timestamps=True; 0 if unknown
        .send(items, timeout=None) -> int    items: Sequence[(payload, addr or None)]; returns datagrams sent
        .echo(timeout=None, match=None) -> (received, sent, bytes)  datagrams go back to their senders unchanged
                                   (or, with match, only those with given flag bits, some bits cleared: sockperf)
        counters: .truncated (datagrams longer than bufsize, dropped), .send_errors (datagrams the kernel refused)
    encode_sockaddr(addr, family) -> bytes;  decode_sockaddr(raw) -> Address

Blocking rules: with `timeout=None`, recv on a blocking socket (sock.gettimeout() is None) waits for the first
datagram (MSG_WAITFORONE) then takes what else is queued; SO_RCVTIMEO (`open_udp(rcvtimeo=)`) or a signal ends the
wait with []. On a non-blocking socket it returns what is queued, possibly []. With `timeout=S` it polls up to S
seconds first. send on a non-blocking socket stops at EAGAIN and returns the count sent, unless `timeout` is given,
in which case it waits up to that long for room. ECONNREFUSED (an ICMP port-unreachable on a connected socket)
raises ConnectionRefusedError; other per-datagram errors skip that datagram and count it in `.send_errors`.
Kernel receive timestamps are SO_TIMESTAMPNS (CLOCK_REALTIME ns), so compare them with time.time_ns().
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any, Literal

Address = tuple[Any, ...]

SO_TIMESTAMPNS = 35  # include/uapi/asm-generic/socket.h; Python 3.11 has no constant
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
MSG_WAITFORONE = 0x10000
MSG_DONTWAIT = int(socket.MSG_DONTWAIT)
MSG_TRUNC = int(socket.MSG_TRUNC)
UIO_MAXIOV = 1024
_NAME_SLOT = 32  # >= sizeof(sockaddr_in6) (28), 8-aligned
_CTRL_SLOT = 32  # CMSG_SPACE(sizeof(struct timespec)) on 64-bit
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_now_ns = time.perf_counter_ns

try:  # the echo loops in C, built at install where a compiler is (setup.py); optional
    from iovkit.traffic import _fastpath
except ImportError:  # pragma: no cover - depends on the install
    _fastpath = None  # type: ignore[assignment]
# Its deadline is on CLOCK_MONOTONIC, which is perf_counter's clock on Linux only. IOVKIT_FASTPATH=0 turns it off
# (to compare, or to rule it out).
HAVE_FASTPATH = (
    _fastpath is not None
    and os.environ.get("IOVKIT_FASTPATH", "1") != "0"
    and time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
)


class Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", Msghdr), ("msg_len", ctypes.c_uint)]


def _load_libc() -> tuple[Any, Any]:
    """recvmmsg and sendmmsg from libc, or (None, None) where libc has neither (non-Linux, old glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        rx, tx = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None, None
    rx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    rx.restype = ctypes.c_int
    tx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    tx.restype = ctypes.c_int
    return rx, tx


_recvmmsg, _sendmmsg = _load_libc()
HAVE_MMSG = _recvmmsg is not None and ctypes.sizeof(ctypes.c_void_p) == 8

_SIZE_FMT: Literal["Q", "I"] = "Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I"
_HDR = ctypes.sizeof(Mmsghdr)
_IOV = ctypes.sizeof(Iovec)
_OFF_NAMELEN = Msghdr.msg_namelen.offset // 4
_OFF_FLAGS = Msghdr.msg_flags.offset // 4
_OFF_LEN = Mmsghdr.msg_len.offset // 4
_OFF_CTRLLEN = Msghdr.msg_controllen.offset // ctypes.sizeof(ctypes.c_size_t)
_FAM = struct.Struct("=H")
_V6 = struct.Struct("!HI")
_SCOPE = struct.Struct("=I")
_CMSG = struct.Struct("=" + _SIZE_FMT + "ii")
_TS = struct.Struct("=qq")


def decode_sockaddr(raw: bytes) -> Address:
    """sockaddr_in/_in6 bytes as the kernel wrote them -> the address tuple socket.recvfrom would give."""
    fam = _FAM.unpack_from(raw)[0]
    if fam == socket.AF_INET:
        return (socket.inet_ntop(socket.AF_INET, raw[4:8]), (raw[2] << 8) | raw[3])
    if fam == socket.AF_INET6:
        port, flow = _V6.unpack_from(raw, 2)
        return (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, flow, _SCOPE.unpack_from(raw, 24)[0])
    return ("?", 0)


def encode_sockaddr(addr: Address, family: int) -> bytes:
    """An address tuple -> sockaddr bytes for `family` (an IPv4 address on an AF_INET6 socket becomes v4-mapped)."""
    host, port = str(addr[0]), int(addr[1])
    if family == socket.AF_INET:
        try:
            packed = socket.inet_pton(socket.AF_INET, host)
        except OSError:
            packed = socket.inet_pton(socket.AF_INET, str(socket.getaddrinfo(host, port, socket.AF_INET)[0][4][0]))
        return _FAM.pack(socket.AF_INET) + struct.pack("!H", port) + packed + bytes(8)
    flow = int(addr[2]) if len(addr) > 2 else 0
    scope = int(addr[3]) if len(addr) > 3 else 0
    try:
        packed = socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        try:
            packed = b"\0" * 10 + b"\xff\xff" + socket.inet_pton(socket.AF_INET, host)
        except OSError:
            info: tuple[Any, ...] = socket.getaddrinfo(host, port, socket.AF_INET6)[0][4]
            packed, scope = socket.inet_pton(socket.AF_INET6, str(info[0]).split("%")[0]), int(info[3])
    return _FAM.pack(socket.AF_INET6) + _V6.pack(port, flow) + packed + _SCOPE.pack(scope)


def set_buffers(sock: socket.socket, rcvbuf: int | None = None, sndbuf: int | None = None) -> tuple[int, int]:
    """Ask for socket buffer sizes; FORCE variants (root, CAP_NET_ADMIN) pass net.core.[rw]mem_max.

    The kernel doubles the request for bookkeeping, so the returned (effective) values are about 2x the request.
    """
    for size, force, plain in ((rcvbuf, SO_RCVBUFFORCE, socket.SO_RCVBUF), (sndbuf, SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        if size:
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, int(size))
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, plain, int(size))
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


def open_udp(
    host: str,
    port: int,
    *,
    reuseport: bool = False,
    rcvbuf: int | None = None,
    sndbuf: int | None = None,
    blocking: bool = True,
    rcvtimeo: float | None = None,
) -> socket.socket:
    """A bound UDP socket (IPv4 or IPv6 from `host`); port 0 picks one. OSError from bind propagates.

    `rcvtimeo` sets SO_RCVTIMEO so a blocking BatchSocket.recv() returns [] at least that often (for stop flags).
    """
    info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, socket.IPPROTO_UDP)[0]
    sock = socket.socket(info[0], socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        set_buffers(sock, rcvbuf, sndbuf)
        if rcvtimeo:
            sec = int(rcvtimeo)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", sec, int((rcvtimeo - sec) * 1e6)))
        sock.bind(info[4])
        sock.setblocking(blocking)
    except OSError:
        sock.close()
        raise
    return sock


class _Ring:
    """One preallocated mmsghdr array with its iovecs, data slots, sockaddr slots and control slots."""

    def __init__(self, n: int, bufsize: int, ctrl: int) -> None:
        self.hdr_ba = bytearray(_HDR * n)
        self.hdrs = (Mmsghdr * n).from_buffer(self.hdr_ba)
        self.iov_ba = bytearray(ctypes.sizeof(Iovec) * n)
        self.iovs = (Iovec * n).from_buffer(self.iov_ba)
        self.data = bytearray(bufsize * n)
        self.names = bytearray(_NAME_SLOT * n)
        self.ctrl = bytearray(max(ctrl, 1) * n)
        data_at = ctypes.addressof((ctypes.c_char * len(self.data)).from_buffer(self.data))
        name_at = ctypes.addressof((ctypes.c_char * len(self.names)).from_buffer(self.names))
        ctrl_at = ctypes.addressof((ctypes.c_char * len(self.ctrl)).from_buffer(self.ctrl))
        iov_at = ctypes.addressof(self.iovs)
        for i in range(n):
            self.iovs[i].iov_base = data_at + i * bufsize
            self.iovs[i].iov_len = bufsize
            h = self.hdrs[i].msg_hdr
            h.msg_name = name_at + i * _NAME_SLOT
            h.msg_namelen = _NAME_SLOT
            h.msg_iov = iov_at + i * ctypes.sizeof(Iovec)
            h.msg_iovlen = 1
            if ctrl:
                h.msg_control = ctrl_at + i * ctrl
                h.msg_controllen = ctrl
        self.hdr_tpl = memoryview(bytes(self.hdr_ba))
        self.iov_tpl = memoryview(bytes(self.iov_ba))
        self.hdr_mv = memoryview(self.hdr_ba)
        self.iov_mv = memoryview(self.iov_ba)
        self.at = ctypes.addressof(self.hdrs)
        self.u32 = memoryview(self.hdr_ba).cast("I")
        self.szt = memoryview(self.hdr_ba).cast(_SIZE_FMT)
        self.iov_len = memoryview(self.iov_ba).cast(_SIZE_FMT)
        self.data_mv = memoryview(self.data)
        self.names_mv = memoryview(self.names)

    def reset(self, n: int) -> None:
        """Restore the first n entries' lengths the kernel or a send overwrote (two memcpy's, no per-entry work)."""
        h, v = n * _HDR, n * _IOV
        self.hdr_mv[:h] = self.hdr_tpl[:h]
        self.iov_mv[:v] = self.iov_tpl[:v]


class BatchSocket:
    """recvmmsg/sendmmsg over one UDP socket; see the module docstring for the contract."""

    _ADDR_CACHE_MAX = 65536
    # After a receive that found at most one datagram, the next SINGLES receives use plain recvfrom/sendto: for
    # one datagram the stdlib call costs about half of a ctypes recvmmsg, which is what ping-pong latency sees.
    # Every SINGLES+1-th receive is batched again, so a queue that builds up is drained in batches; 256 keeps
    # that slower probe out of the p99 of a ping-pong run.
    SINGLES = 256
    # ...unless QUICK_RUN plain receives in a row came back faster than a sleep and wake-up could: then datagrams
    # were already queued (a backlog), and the next receive is batched at once. A blocked-then-woken receive takes
    # well over BACKLOG_NS; one that finds data queued about 1.5 us here. One quick receive proves little (a fast
    # ping-pong client's next request can beat the server back into recvfrom); a run of them is a queue.
    BACKLOG_NS = 4000
    QUICK_RUN = 8

    def __init__(
        self,
        sock: socket.socket,
        batch: int = 64,
        bufsize: int = 2048,
        timestamps: bool = False,
        native: bool | None = None,
        fastpath: bool | None = None,
    ) -> None:
        if not 1 <= batch <= UIO_MAXIOV:
            raise ValueError(f"batch must be 1..{UIO_MAXIOV}, not {batch}")
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.batch = batch
        self.bufsize = bufsize
        self.timestamps = timestamps
        self.native = HAVE_MMSG if native is None else (native and HAVE_MMSG)
        self.fastpath = HAVE_FASTPATH if fastpath is None else (fastpath and HAVE_FASTPATH)
        self.truncated = 0
        self.send_errors = 0
        self._singles = 0
        self._quick = 0  # plain receives in a row that found a datagram already queued
        self._one_buf = bytearray(bufsize + 1)  # bufsize + 1: a longer datagram shows up as truncated
        self._one_mv = memoryview(self._one_buf)
        self._tables: dict[int, bytes] = {}
        self._rx_names: dict[bytes, Address] = {}
        self._tx_names: dict[Address, bytes] = {}
        if timestamps:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.native:
            self._rx = _Ring(batch, bufsize, _CTRL_SLOT if timestamps else 0)
            self._tx = _Ring(batch, bufsize, 0)
        self._poller = select.poll()
        self._poller.register(self.fd, select.POLLIN)
        self._out_poller = select.poll()
        self._out_poller.register(self.fd, select.POLLOUT)

    # -- helpers -------------------------------------------------------------------------------------------
    def _blocking_fd(self) -> bool:
        return self.sock.gettimeout() is None

    def _wait_in(self, timeout: float) -> bool:
        return bool(self._poller.poll(max(0.0, timeout) * 1000.0))

    def _name(self, raw: bytes) -> Address:
        addr = self._rx_names.get(raw)
        if addr is None:
            if len(self._rx_names) >= self._ADDR_CACHE_MAX:
                self._rx_names.clear()
            addr = self._rx_names[raw] = decode_sockaddr(raw)
        return addr

    def _raw(self, addr: Address) -> bytes:
        raw = self._tx_names.get(addr)
        if raw is None:
            if len(self._tx_names) >= self._ADDR_CACHE_MAX:
                self._tx_names.clear()
            raw = self._tx_names[addr] = encode_sockaddr(addr, self.family)
        return raw

    def _recv_flags(self, timeout: float | None) -> int | None:
        """recvmmsg flags for a receive under `timeout` (polled here first); None if nothing came in time."""
        if timeout is not None:
            return MSG_DONTWAIT if self._wait_in(timeout) else None
        return MSG_WAITFORONE if self._blocking_fd() else MSG_DONTWAIT

    def _recv_native(self, timeout: float | None) -> int:
        """recvmmsg into the rx ring; the count received (0 on EAGAIN/EINTR/SO_RCVTIMEO)."""
        flags = self._recv_flags(timeout)
        if flags is None:
            return 0
        n: int = _recvmmsg(self.fd, self._rx.at, self.batch, flags, None)
        if n < 0:
            e = ctypes.get_errno()
            if e in _AGAIN:
                return 0
            if e == errno.ECONNREFUSED:
                raise ConnectionRefusedError(e, "connection refused (ICMP port unreachable)")
            raise OSError(e, f"recvmmsg: {errno.errorcode.get(e, e)}")
        return n

    def _collect(self, n: int, with_ts: bool) -> list[Any]:
        ring, u32, bs = self._rx, self._rx.u32, self.bufsize
        out: list[Any] = []
        data, names = ring.data_mv, ring.names_mv
        stride = _HDR // 4
        for i in range(n):
            b = i * stride
            if u32[b + _OFF_FLAGS] & MSG_TRUNC:
                self.truncated += 1
                continue
            ln = u32[b + _OFF_LEN]
            addr = self._name(bytes(names[i * _NAME_SLOT : i * _NAME_SLOT + u32[b + _OFF_NAMELEN]]))
            payload = bytes(data[i * bs : i * bs + ln])
            if with_ts:
                out.append((payload, addr, self._ts(i)))
            else:
                out.append((payload, addr))
        ring.reset(n)
        return out

    def _ts(self, i: int) -> int:
        ring = self._rx
        if ring.szt[(i * _HDR) // ctypes.sizeof(ctypes.c_size_t) + _OFF_CTRLLEN] < _CMSG.size + 16:
            return 0
        _, level, kind = _CMSG.unpack_from(ring.ctrl, i * _CTRL_SLOT)
        if level != socket.SOL_SOCKET or kind != SCM_TIMESTAMPNS:
            return 0
        sec, nsec = _TS.unpack_from(ring.ctrl, i * _CTRL_SLOT + _CMSG.size)
        return int(sec * 1_000_000_000 + nsec)

    # -- receive -------------------------------------------------------------------------------------------
    def recv(self, timeout: float | None = None) -> list[tuple[bytes, Address]]:
        """Up to `batch` datagrams as (payload, address); [] when nothing arrived in time."""
        if self.native:
            if self._singles > 0 and self.plain_ok():
                self._singles -= 1
                one = self._recv_one(timeout)
                return [] if one is None else [one]
            n = self._recv_native(timeout)
            if n <= 1:
                self._singles = self.SINGLES
            return self._collect(n, False) if n else []
        return [(d, a) for d, a, _ in self._recv_fallback(timeout, False)]

    def recv_ts(self, timeout: float | None = None) -> list[tuple[bytes, Address, int]]:
        """Like recv, plus the kernel receive time (CLOCK_REALTIME ns; 0 if the kernel gave none)."""
        if not self.timestamps:
            raise ValueError("recv_ts needs BatchSocket(..., timestamps=True)")
        if self.native:
            n = self._recv_native(timeout)
            return self._collect(n, True) if n else []
        return self._recv_fallback(timeout, True)

    def plain_ok(self) -> bool:
        """The stdlib calls match recvmmsg semantics only when Python adds no timeout polling of its own."""
        t = self.sock.gettimeout()
        return (t is None or t == 0.0) and not self.timestamps

    def _saw_queue(self, queued: bool) -> None:
        """Count plain receives in a row that found a datagram already queued; a run of QUICK_RUN ends singles."""
        if queued:
            self._quick += 1
            if self._quick >= self.QUICK_RUN:
                self._singles = self._quick = 0
        else:
            self._quick = 0

    def _wait_one(self, timeout: float | None) -> tuple[bool, bool]:
        """Before a plain receive: (go on, a datagram was queued already). With a timeout, poll(0) says whether one
        is waiting (the poll needed anyway, when it is); blocking callers find out by timing the receive."""
        if timeout is None:
            return True, False
        if self._poller.poll(0):
            return True, True
        return self._wait_in(timeout), False

    def _recv_one(self, timeout: float | None) -> tuple[bytes, Address] | None:
        t0 = _now_ns()
        go, queued = self._wait_one(timeout)
        if not go:
            return None
        flags = 0 if timeout is None else MSG_DONTWAIT
        try:
            data, addr = self.sock.recvfrom(self.bufsize + 1, flags)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return None
        self._saw_queue(queued or _now_ns() - t0 < self.BACKLOG_NS)
        if len(data) > self.bufsize:
            self.truncated += 1
            return None
        return data, addr

    def _recv_fallback(self, timeout: float | None, with_ts: bool) -> list[tuple[bytes, Address, int]]:
        out: list[tuple[bytes, Address, int]] = []
        if timeout is not None and not self._wait_in(timeout):
            return out
        flags = 0 if (timeout is None and self._blocking_fd()) else int(MSG_DONTWAIT)
        ctrl = socket.CMSG_SPACE(16) if with_ts else 0
        while len(out) < self.batch:
            try:
                data, anc, mflags, addr = self.sock.recvmsg(self.bufsize, ctrl, flags)
            except (BlockingIOError, InterruptedError, TimeoutError):
                break
            flags = MSG_DONTWAIT
            if mflags & MSG_TRUNC:
                self.truncated += 1
                continue
            ts = 0
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(blob) >= 16:
                    sec, nsec = _TS.unpack_from(blob)
                    ts = sec * 1_000_000_000 + nsec
            out.append((data, addr, ts))
        return out

    # -- send ----------------------------------------------------------------------------------------------
    def send(self, items: Sequence[tuple[bytes, Address | None]], timeout: float | None = None) -> int:
        """Send every (payload, address) (address None on a connected socket); the count the kernel took."""
        if not self.native or len(items) == 1:
            return self._send_fallback(items, timeout)  # one datagram: sendto is cheaper than ctypes sendmmsg
        ring, bs, sent, i, n = self._tx, self.bufsize, 0, 0, len(items)
        u32, iov_len, data, names = ring.u32, ring.iov_len, ring.data, ring.names
        stride = _HDR // 4
        while i < n:
            k = 0
            while i + k < n and k < self.batch:
                payload, addr = items[i + k]
                ln = len(payload)
                if ln > bs:
                    break
                data[k * bs : k * bs + ln] = payload
                iov_len[k * 2 + 1] = ln
                if addr is None:
                    u32[k * stride + _OFF_NAMELEN] = 0
                else:
                    raw = self._raw(addr)
                    names[k * _NAME_SLOT : k * _NAME_SLOT + len(raw)] = raw
                    u32[k * stride + _OFF_NAMELEN] = len(raw)
                k += 1
            if k == 0:  # one datagram bigger than a slot: plain sendto keeps the order
                sent += self._send_fallback([items[i]], timeout)
                i += 1
                continue
            done, stop = self._sendmmsg(ring, k, timeout)
            sent += done
            i += k
            ring.reset(k)
            if stop:
                break
        return sent

    def _sendmmsg(self, ring: _Ring, k: int, timeout: float | None) -> tuple[int, bool]:
        """sendmmsg entries [0, k) of `ring`, resuming after partial sends; (sent, stopped on EAGAIN)."""
        start, sent = 0, 0
        while start < k:
            r: int = _sendmmsg(self.fd, ring.at + start * _HDR, k - start, 0)
            if r >= 0:
                sent += r
                start += r
                continue
            e = ctypes.get_errno()
            if e == errno.EINTR:
                continue
            if e in (errno.EAGAIN, errno.EWOULDBLOCK):
                if timeout is not None and self._out_poller.poll(timeout * 1000.0):
                    continue
                return sent, True
            if e == errno.ECONNREFUSED:
                raise ConnectionRefusedError(e, "connection refused (ICMP port unreachable)")
            self.send_errors += 1  # this datagram is refused (EMSGSIZE, ENETUNREACH, EPERM...): skip it
            start += 1
        return sent, False

    def _send_fallback(self, items: Sequence[tuple[bytes, Address | None]], timeout: float | None) -> int:
        sent = 0
        for payload, addr in items:
            while True:
                try:
                    if addr is None:
                        self.sock.send(payload)
                    else:
                        self.sock.sendto(payload, addr)
                    sent += 1
                except (BlockingIOError, TimeoutError):
                    if timeout is not None and self._out_poller.poll(timeout * 1000.0):
                        continue
                    return sent
                except InterruptedError:
                    continue
                except ConnectionRefusedError:
                    raise
                except OSError:
                    self.send_errors += 1
                break
        return sent

    # -- echo ----------------------------------------------------------------------------------------------
    def echo(self, timeout: float | None = None, match: tuple[int, int, int] | None = None) -> tuple[int, int, int]:
        """Receive a batch and send each datagram back to its sender; (received, sent, bytes received).

        Unchanged by default. With `match=(index, require, clear)` only datagrams whose byte `index` has all the
        `require` bits go back, with the `clear` bits cleared first: (9, 2, 1) is sockperf's server rule (reply to
        pong requests only, as a server, i.e. client flag cleared; the sockperf client ignores its own flag).
        Natively the received mmsghdr entries are compacted in place and handed to sendmmsg: no payload copy.
        """
        if not self.native:
            got = self.recv(timeout)
            back = got
            if match is not None:
                idx, req, clr = match
                back = [
                    (d[:idx] + bytes([d[idx] & ~clr & 0xFF]) + d[idx + 1 :], a)
                    for d, a in got
                    if len(d) > idx and d[idx] & req == req
                ]
            return len(got), self.send(back), sum(len(d) for d, _ in got)
        if self._singles > 0 and self.plain_ok():
            self._singles -= 1
            return self._echo_one(timeout, match)
        return self.echo_batch(timeout, match)

    def echo_batch(
        self, timeout: float | None = None, match: tuple[int, int, int] | None = None
    ) -> tuple[int, int, int]:
        """echo() with one recvmmsg and one sendmmsg (native only); after a batch of at most one datagram the
        next echo() calls go back to single datagrams. With `fastpath`, in C (the same steps, no Python per
        datagram)."""
        if self.fastpath:
            return self._echo_batch_c(timeout, match)
        n = self._recv_native(timeout)
        if not n:
            return 0, 0, 0
        ring = self._rx
        u32, iov_len, stride, data, bs = ring.u32, ring.iov_len, _HDR // 4, ring.data, self.bufsize
        end = n * stride
        total = sum(u32[_OFF_LEN:end:stride])  # strided views: C loops, not per-entry bytecode
        mflags = u32[_OFF_FLAGS:end:stride]
        trunc = any(mflags) and any(f & MSG_TRUNC for f in mflags)
        if trunc:
            self.truncated += sum(1 for f in mflags if f & MSG_TRUNC)
        keep: Any = range(n)
        if match is not None:
            idx, req, clr = match
            # One byte per entry, mapped to 1 where all `req` bits are set: a sockperf throughput batch (no pong
            # requests) costs no per-datagram Python at all.
            sel = data[idx : n * bs : bs].translate(self._match_table(req))
            keep = []
            i = sel.find(1)
            while i >= 0:
                keep.append(i)
                i = sel.find(1, i + 1)
        j = 0  # entries kept so far, compacted to the front
        for i in keep:
            b = i * stride
            if trunc and u32[b + _OFF_FLAGS] & MSG_TRUNC:
                continue
            ln = u32[b + _OFF_LEN]
            if match is not None:
                if ln <= idx:  # the byte came from an earlier, longer datagram in this slot
                    continue
                data[i * bs + idx] &= ~clr & 0xFF
            iov_len[i * 2 + 1] = ln
            if j != i:
                ring.hdr_ba[j * _HDR : (j + 1) * _HDR] = ring.hdr_ba[i * _HDR : (i + 1) * _HDR]
            j += 1
        if self.timestamps:
            for k in range(j):
                ring.szt[(k * _HDR) // ctypes.sizeof(ctypes.c_size_t) + _OFF_CTRLLEN] = 0
        sent = self._sendmmsg(ring, j, None)[0] if j else 0
        ring.reset(n)
        if n <= 1:
            self._singles = self.SINGLES
        return n, sent, total

    def _echo_batch_c(self, timeout: float | None, match: tuple[int, int, int] | None) -> tuple[int, int, int]:
        flags = self._recv_flags(timeout)
        if flags is None:
            return 0, 0, 0
        idx, req, clr = match if match is not None else (-1, 0, 0)
        n, sent, total, trunc, errs = _fastpath.echo_batch(self.fd, self._rx.at, self.batch, flags, idx, req, clr)
        self.truncated += trunc
        self.send_errors += errs
        if n:
            self._rx.reset(n)
        if n <= 1:
            self._singles = self.SINGLES
        return n, sent, total

    def echo_plain(
        self, match: tuple[int, int, int] | None, until_ns: int, spin_ns: int = 0
    ) -> tuple[int, int, int, bool]:
        """Echo one datagram at a time with the stdlib calls until `until_ns` (perf_counter), a receive that times
        out, or a backlog; (received, sent, bytes received, backlog seen).

        Why a loop of its own: at ping-pong and game-tick rates every reply waits for one wake-up and one pass of
        Python, so the pass is kept to the two system calls, two clock reads and the reply rule (_answer_one). A
        run of QUICK_RUN receives that each found a datagram already queued (it came back sooner than a sleep and
        wake-up could) is a backlog: the caller then drains in batches (echo()). With `spin_ns`, the socket is
        polled without sleeping for up to that long after each datagram before the next blocking receive
        (busy-poll: a CPU spent for lower latency; on a VM it also saves the halt and wake-up of the virtual CPU).
        With `fastpath` (the default where iovkit.traffic._fastpath was built), the same loop runs in C.
        """
        if self.fastpath:
            idx, req, clr = match if match is not None else (-1, 0, 0)
            n_in, n_out, nbytes, backlog, trunc, errs = _fastpath.echo_plain(
                self.fd, self._one_buf, self.bufsize, idx, req, clr, until_ns, spin_ns, self.BACKLOG_NS, self.QUICK_RUN
            )
            self.truncated += trunc
            self.send_errors += errs
            return n_in, n_out, nbytes, backlog
        recv_into, answer, clock = self.sock.recvfrom_into, self._answer_one, _now_ns
        buf, quick_ns, run = self._one_buf, self.BACKLOG_NS, self.QUICK_RUN
        n_in = n_out = nbytes = quick = 0
        while True:
            if spin_ns:
                queued, t0 = True, clock()  # queued: found at the first try
                while True:  # busy-poll until a datagram comes or spin_ns have passed
                    try:
                        n, addr = recv_into(buf, 0, MSG_DONTWAIT)
                        break
                    except (BlockingIOError, InterruptedError):
                        queued = False
                        if clock() - t0 > spin_ns:
                            n = -1
                            break
                if n < 0:  # nothing came while spinning: sleep in the kernel until one does
                    try:
                        n, addr = recv_into(buf)
                    except (BlockingIOError, InterruptedError, TimeoutError):
                        return n_in, n_out, nbytes, False
                t1 = clock()
            else:
                t0 = clock()
                try:
                    n, addr = recv_into(buf)
                except (BlockingIOError, InterruptedError, TimeoutError):
                    return n_in, n_out, nbytes, False
                t1 = clock()
                queued = t1 - t0 < quick_ns
            n_in += 1
            nbytes += n
            quick = quick + 1 if queued else 0
            n_out += answer(n, addr, match)
            if quick >= run:
                return n_in, n_out, nbytes, True
            if t1 >= until_ns:
                return n_in, n_out, nbytes, False

    def _match_table(self, req: int) -> bytes:
        tbl = self._tables.get(req)
        if tbl is None:
            tbl = self._tables[req] = bytes(1 if b & req == req else 0 for b in range(256))
        return tbl

    def _echo_one(self, timeout: float | None, match: tuple[int, int, int] | None) -> tuple[int, int, int]:
        """One datagram with the stdlib calls into a reused buffer (no allocation but the address tuple)."""
        t0 = _now_ns()
        go, queued = self._wait_one(timeout)
        if not go:
            return 0, 0, 0
        try:
            n, addr = self.sock.recvfrom_into(self._one_buf, 0, 0 if timeout is None else MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return 0, 0, 0
        self._saw_queue(queued or _now_ns() - t0 < self.BACKLOG_NS)
        return 1, self._answer_one(n, addr, match), n

    def _answer_one(self, n: int, addr: Address, match: tuple[int, int, int] | None) -> int:
        """Send the datagram of n bytes in the single-datagram buffer back to addr, under the `match` rule of
        echo(); 1 if it went out. Too long for the buffer (truncated) or not matching: counted or left, 0."""
        if n > self.bufsize:
            self.truncated += 1
            return 0
        buf = self._one_buf
        if match is not None:
            idx, req, clr = match
            if n <= idx or buf[idx] & req != req:
                return 0
            buf[idx] &= ~clr & 0xFF
        try:
            self.sock.sendto(self._one_mv[:n], addr)
        except (BlockingIOError, InterruptedError):
            return 0
        except ConnectionRefusedError:
            raise
        except OSError:
            self.send_errors += 1
            return 0
        return 1
