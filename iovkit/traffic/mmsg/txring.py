"""TxRing: the load generator's batched send, every slot of a preallocated sendmmsg batch a copy of one datagram.

Why here and not in the generator: this is batched socket I/O, which lives in this package only (one sendmmsg
loader, one set of structures). See the class for why it is not BatchSocket.send.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
import time
from typing import Any

import numpy as np

from iovkit.traffic.mmsg.abi import HDR_SIZE, UDP_MAX_SEGMENTS, Iovec, Mmsghdr, libc_sendmmsg, set_gso

GSO_MAX_BYTES = 65000  # one GSO message stays under the 64 KiB IP datagram

_U64 = struct.Struct("!Q")


class TxRing:
    """A preallocated sendmmsg batch for one connected socket, every slot a copy of the flow's datagram.

    Why not BatchSocket.send: that copies each payload into its ring (a Python slice per datagram) after the
    caller built a bytes object per datagram. Here the slots already hold the template, and a batch rewrites
    only the two fields that change (sequence number, scheduled time) for all slots at once through strided
    big-endian numpy views: the Python cost per datagram is a few ns, so the kernel sets the rate.

    With `gso` (UDP_SEGMENT, Linux 4.18+), the slots are contiguous datagrams already, so up to 64 of them leave
    in one message that the kernel cuts into the same datagrams: far fewer trips through the socket layer. Each
    datagram keeps its own sequence number and scheduled time; the datagrams of one call share the send-call
    time. Where the kernel refuses (no UDP GSO, a device without checksum offload: EIO), the ring turns GSO off
    and sends the rest one message per datagram.
    """

    def __init__(
        self,
        sock: socket.socket,
        template: bytes,
        batch: int,
        seq_at: int,
        time_at: int,
        sent_at: int | None = None,
        gso: bool = False,
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
        # GSO: message j covers slots [j * per, (j + 1) * per)
        self.per = max(1, min(UDP_MAX_SEGMENTS, GSO_MAX_BYTES // size))
        nmsg = -(-batch // self.per)
        self.giovs = (Iovec * nmsg)()
        self.ghdrs = (Mmsghdr * nmsg)()
        for j in range(nmsg):
            self.giovs[j].iov_base = base + j * self.per * size
            self.giovs[j].iov_len = self.per * size
            self.ghdrs[j].msg_hdr.msg_iov = ctypes.addressof(self.giovs[j])
            self.ghdrs[j].msg_hdr.msg_iovlen = 1
        self.gat = ctypes.addressof(self.ghdrs)
        self.gso = bool(gso and libc_sendmmsg is not None and self.per > 1 and set_gso(sock, size))

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
        if m == 1 or libc_sendmmsg is None:
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
        if self.gso:
            start = self._send_gso(m)
            if self.gso:
                return start
        went, _ = _send_all(self.fd, self.at, start, m)
        return went

    def _send_gso(self, m: int) -> int:
        """Datagrams [0, m) as GSO messages of `per` datagrams; the count the kernel took. Turns GSO off (and
        returns what went) when the kernel refuses it."""
        per, size = self.per, self.size
        nmsg = -(-m // per)
        last = self.giovs[nmsg - 1]
        last.iov_len = (m - (nmsg - 1) * per) * size
        try:
            start, refused = _send_all(self.fd, self.gat, 0, nmsg, _GSO_REFUSED)
        finally:
            last.iov_len = per * size
        if refused:
            self.gso = False
            set_gso(self.sock, 0)
        return min(m, start * per)


# What sendmmsg answers when the kernel or the device will not segment a GSO message.
_GSO_REFUSED = (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP)


def _send_all(fd: int, base: int, start: int, end: int, refusals: tuple[int, ...] = ()) -> tuple[int, bool]:
    """sendmmsg of headers [start, end) at `base` until all went or the socket is full; (where it stopped, whether
    it stopped on one of `refusals`). A refused connection and any other error raise."""
    while start < end:
        r: int = libc_sendmmsg(fd, base + start * HDR_SIZE, end - start, 0)
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
        if e in refusals:
            return start, True
        raise OSError(e, f"sendmmsg: {errno.errorcode.get(e, e)}")
    return start, False
