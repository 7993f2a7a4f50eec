"""The C-level plumbing of the batched socket layer: mmsghdr/iovec structures, libc's recvmmsg and sendmmsg, the
preallocated ring, sockaddr bytes, and socket setup. See the package docstring for the contract."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import struct
import time
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
NAME_SLOT = 32  # >= sizeof(sockaddr_in6) (28), 8-aligned
CTRL_SLOT = 32  # CMSG_SPACE(sizeof(struct timespec)) on 64-bit
AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)

try:  # the echo loops in C, built at install where a compiler is (setup.py); optional
    from iovkit.traffic import _fastpath as fastpath_c
except ImportError:  # pragma: no cover - depends on the install
    fastpath_c = None  # type: ignore[assignment]
# Its deadline is on CLOCK_MONOTONIC, which is perf_counter's clock on Linux only. IOVKIT_FASTPATH=0 turns it off
# (to compare, or to rule it out).
HAVE_FASTPATH = (
    fastpath_c is not None
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


libc_recvmmsg, libc_sendmmsg = _load_libc()
HAVE_MMSG = libc_recvmmsg is not None and ctypes.sizeof(ctypes.c_void_p) == 8

SIZE_FMT: Literal["Q", "I"] = "Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I"
HDR_SIZE = ctypes.sizeof(Mmsghdr)
IOV_SIZE = ctypes.sizeof(Iovec)
OFF_NAMELEN = Msghdr.msg_namelen.offset // 4
OFF_FLAGS = Msghdr.msg_flags.offset // 4
OFF_LEN = Mmsghdr.msg_len.offset // 4
OFF_CTRLLEN = Msghdr.msg_controllen.offset // ctypes.sizeof(ctypes.c_size_t)
_FAM = struct.Struct("=H")
_V6 = struct.Struct("!HI")
_SCOPE = struct.Struct("=I")
CMSG = struct.Struct("=" + SIZE_FMT + "ii")
TIMESPEC = struct.Struct("=qq")


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


class Ring:
    """One preallocated mmsghdr array with its iovecs, data slots, sockaddr slots and control slots."""

    def __init__(self, n: int, bufsize: int, ctrl: int) -> None:
        self.hdr_ba = bytearray(HDR_SIZE * n)
        self.hdrs = (Mmsghdr * n).from_buffer(self.hdr_ba)
        self.iov_ba = bytearray(ctypes.sizeof(Iovec) * n)
        self.iovs = (Iovec * n).from_buffer(self.iov_ba)
        self.data = bytearray(bufsize * n)
        self.names = bytearray(NAME_SLOT * n)
        self.ctrl = bytearray(max(ctrl, 1) * n)
        data_at = ctypes.addressof((ctypes.c_char * len(self.data)).from_buffer(self.data))
        name_at = ctypes.addressof((ctypes.c_char * len(self.names)).from_buffer(self.names))
        ctrl_at = ctypes.addressof((ctypes.c_char * len(self.ctrl)).from_buffer(self.ctrl))
        iov_at = ctypes.addressof(self.iovs)
        for i in range(n):
            self.iovs[i].iov_base = data_at + i * bufsize
            self.iovs[i].iov_len = bufsize
            h = self.hdrs[i].msg_hdr
            h.msg_name = name_at + i * NAME_SLOT
            h.msg_namelen = NAME_SLOT
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
        self.szt = memoryview(self.hdr_ba).cast(SIZE_FMT)
        self.iov_len = memoryview(self.iov_ba).cast(SIZE_FMT)
        self.data_mv = memoryview(self.data)
        self.names_mv = memoryview(self.names)

    def reset(self, n: int) -> None:
        """Restore the first n entries' lengths the kernel or a send overwrote (two memcpy's, no per-entry work)."""
        h, v = n * HDR_SIZE, n * IOV_SIZE
        self.hdr_mv[:h] = self.hdr_tpl[:h]
        self.iov_mv[:v] = self.iov_tpl[:v]
