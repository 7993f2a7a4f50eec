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
GRO_CTRL_SLOT = 64  # ... and CMSG_SPACE(sizeof(int)) for UDP_GRO's segment size (24), rounded up
SOL_UDP = 17
UDP_SEGMENT = 103  # include/uapi/linux/udp.h (Linux 4.18): send one buffer, the kernel cuts it into datagrams
UDP_GRO = 104  # (Linux 5.0): receive several datagrams of one flow in one buffer, segment size in a cmsg
UDP_MAX_SEGMENTS = 64
INT = struct.Struct("=i")
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
CMSG = struct.Struct("=" + SIZE_FMT + "ii")
TIMESPEC = struct.Struct("=qq")


def set_gro(sock: socket.socket, on: bool) -> bool:
    """Ask for UDP GRO on receive; False where the kernel has no UDP_GRO (before 5.0) or refuses it."""
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1 if on else 0)
    except OSError:
        return False
    return True


def set_gso(sock: socket.socket, segment: int) -> bool:
    """Make every send on `sock` longer than `segment` bytes leave as datagrams of `segment` bytes (UDP_SEGMENT;
    0 turns it off); False where the kernel has no UDP GSO (before 4.18) or refuses it."""
    try:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, segment)
    except OSError:
        return False
    return True


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
