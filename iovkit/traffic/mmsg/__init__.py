"""Batched UDP socket I/O: recvmmsg/sendmmsg through ctypes over buffers allocated once.

This package is the only place in iovkit that does batched socket I/O (abi.py: structures, libc calls, the
ring; batch.py: BatchSocket; txring.py: the load generator's stamped send batches). The relay, the reflector and
the load generator use it.
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
        .echo_batch(timeout=None, match=None) -> (received, sent, bytes)  one recvmmsg, the datagrams back to
                                   their senders with one sendmmsg (the reflector's batched step, reflector.py)
        counters: .truncated (datagrams longer than bufsize, dropped), .send_errors (datagrams the kernel refused)
    encode_sockaddr(addr, family) -> bytes;  decode_sockaddr(raw) -> Address
    TxRing(sock, template, batch, seq_at, time_at, sent_at=None): .send(seq0, times) -> int, .send_one(seq, t)

Blocking rules: with `timeout=None`, recv on a blocking socket (sock.gettimeout() is None) waits for the first
datagram (MSG_WAITFORONE) then takes what else is queued; SO_RCVTIMEO (`open_udp(rcvtimeo=)`) or a signal ends the
wait with []. On a non-blocking socket it returns what is queued, possibly []. With `timeout=S` it polls up to S
seconds first. send on a non-blocking socket stops at EAGAIN and returns the count sent, unless `timeout` is given,
in which case it waits up to that long for room. ECONNREFUSED (an ICMP port-unreachable on a connected socket)
raises ConnectionRefusedError; other per-datagram errors skip that datagram and count it in `.send_errors`.
Kernel receive timestamps are SO_TIMESTAMPNS (CLOCK_REALTIME ns), so compare them with time.time_ns().
"""

from iovkit.traffic.mmsg.abi import (
    HAVE_FASTPATH,
    HAVE_MMSG,
    Iovec,
    Mmsghdr,
    open_udp,
    set_buffers,
)
from iovkit.traffic.mmsg.batch import BatchSocket
from iovkit.traffic.mmsg.txring import TxRing
from iovkit.traffic.sockaddr import Address, decode_sockaddr, encode_sockaddr

__all__ = [
    "HAVE_FASTPATH",
    "HAVE_MMSG",
    "Address",
    "BatchSocket",
    "Iovec",
    "Mmsghdr",
    "TxRing",
    "decode_sockaddr",
    "encode_sockaddr",
    "open_udp",
    "set_buffers",
]
