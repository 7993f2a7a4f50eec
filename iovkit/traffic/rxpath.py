"""The load generator's receive path without Python per datagram: one receive batch parsed in numpy passes.

Why: in relay mode every datagram sent comes back to two or more members, so a generator driving a relay at
200,000 datagrams/s receives 400,000 a second; parsing each in Python (about 1.5 us) would spend the core that
sends. Here a recvmmsg batch (GRO buffers included, each cut into its datagrams) is read through numpy views of
the receive ring: header fields gathered for all datagrams at once, the per-flow counters updated with
FlowTracker.on_many, the latencies kept as arrays for the histogram. The same counters as the per-datagram path
one at a time (tests/traffic/test_gso.py checks that), which small receives and sockets without recvmmsg use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iovkit.traffic import protocol as proto
from iovkit.traffic.loadcore import (
    ECHO_HDR,
    ECHO_MAGIC,
    ECHO_MIN_PAYLOAD,
    ECHO_SENT_AT,
    ECHO_SENT_END,
    RELAY_MIN_PAYLOAD,
    WARM_BASE,
    FlowTracker,
)
from iovkit.traffic.mmsg import BatchSocket

_U64 = struct.Struct("!Q")
_ECHO_MAGIC_AT, _ECHO_FLOW_AT, _ECHO_SCHED_AT = 14, 18, 22  # in ECHO_HDR, after the sockperf header
_RELAY_PEER_AT, _RELAY_SEQ_AT, _RELAY_SCHED_AT = 12, 16, 24  # in protocol.HEADER


@dataclass
class Arrivals:
    """What the receive path has counted: per-flow trackers and the latencies of first arrivals (ns arrays)."""

    trackers: dict[tuple[int, int], FlowTracker] = field(default_factory=dict)
    lat: list[Any] = field(default_factory=list)
    lat_sent: list[Any] = field(default_factory=list)
    stray: int = 0
    kernel_ts: bool = False
    small: list[int] = field(default_factory=list)  # latencies counted one at a time (_take_small)
    small_sent: list[int] = field(default_factory=list)

    def recent(self) -> list[int]:
        """The latest latencies (for a live p99)."""
        return self.small[-2000:] if not self.lat else self.lat[-1][-2000:].tolist()

    def chunks(self) -> list[Any]:
        return [*self.lat, np.array(self.small, dtype=np.int64)]

    def chunks_sent(self) -> list[Any]:
        return [*self.lat_sent, np.array(self.small_sent, dtype=np.int64)]


_HEAD = 38  # bytes of a datagram the counters read: the echo header and send time, or the relay header


def _heads(data: Any, offs: Any, sizes: Any) -> Any:
    """The first _HEAD bytes of every datagram, one row each (one gather; short datagrams were dropped before,
    and bytes past a datagram's end are the slot's leftovers, never read as fields of a shorter one)."""
    return data[np.minimum(offs[:, None] + np.arange(_HEAD), len(data) - 1)]


def _be(heads: Any, at: int, width: int) -> Any:
    """Big-endian unsigned fields of `width` bytes at column `at` of the header rows, as int64."""
    if width == 8:
        return np.ascontiguousarray(heads[:, at : at + 8]).view(">u8").ravel().astype(np.int64)
    if width == 4:
        return np.ascontiguousarray(heads[:, at : at + 4]).view(">u4").ravel().astype(np.int64)
    return np.ascontiguousarray(heads[:, at : at + 2]).view(">u2").ravel().astype(np.int64)


SMALL = 32  # ring entries up to which a receive is parsed in Python (if they hold at most SMALL_SEGMENTS)
SMALL_SEGMENTS = 32


def _take_small(
    arr: Arrivals, bs: BatchSocket, n: int, sock_index: int, relay: bool, nflows: int, offset: int, now_ns: int
) -> bool:
    """take() for a handful of datagrams, one at a time; False (nothing consumed) when they hold too many."""
    entries = []
    for i in range(n):
        size = bs.entry_len(i)
        data, _addr, seg = bs.entry(i) if size >= 0 else (memoryview(b""), None, 0)
        step = seg if 0 < seg < size else max(size, 1)
        entries.append((data, size, step))
    if sum(-(-max(size, 0) // step) for _d, size, step in entries) > SMALL_SEGMENTS:
        return False
    for i, (data, size, step) in enumerate(entries):
        if size < 0:
            bs.truncated += 1
            continue
        kts = bs.control(i)[1] if bs.timestamps else 0
        for at in range(0, size, step):
            _count(arr, data[at : at + step], kts, offset, now_ns, sock_index, relay, nflows)
    bs.release(n)
    return True


def _count(
    arr: Arrivals, one: Any, kts: int, offset: int, now_ns: int, sock_index: int, relay: bool, nflows: int
) -> None:
    """Count one datagram (the per-datagram path)."""
    if kts:
        arr.kernel_ts = True
    rx = kts - offset if kts else now_ns
    if relay:
        if len(one) < RELAY_MIN_PAYLOAD:
            arr.stray += 1
            return
        magic, _v, kind, _f, _r, _sid, peer, seq, sched = proto.HEADER.unpack_from(one)
        if magic != proto.MAGIC or kind != proto.MsgType.DATA_ALL:
            arr.stray += magic != proto.MAGIC  # keepalive/ack echoes are not traffic
            return
        key, sent = (sock_index, peer), 0
    else:
        if len(one) < ECHO_MIN_PAYLOAD:
            arr.stray += 1
            return
        seq, _fl, _ln, magic, flow, sched = ECHO_HDR.unpack_from(one)
        if magic != ECHO_MAGIC or flow >= nflows:
            arr.stray += 1
            return
        key = (flow, 0)
        sent = _U64.unpack_from(one, ECHO_SENT_AT)[0] if len(one) >= ECHO_SENT_END else 0
    if seq >= WARM_BASE:
        return
    tr = arr.trackers.get(key)
    if tr is None:
        tr = arr.trackers[key] = FlowTracker()
    transit = rx - sched
    if tr.on(seq, transit):  # first arrivals only: a duplicate is counted, not timed
        arr.small.append(transit)
        if sent:
            arr.small_sent.append(rx - sent)


def take_plain(
    arr: Arrivals, bs: BatchSocket, sock_index: int, relay: bool, nflows: int, offset: int, now_ns: int
) -> int:
    """take() for a socket without recvmmsg (recvfrom loops): one datagram at a time."""
    got = bs.recv_ts() if bs.timestamps else [(d, a, 0) for d, a in bs.recv()]
    for data, _addr, kts in got:
        _count(arr, data, kts, offset, now_ns, sock_index, relay, nflows)
    return len(got)


def take(arr: Arrivals, bs: BatchSocket, sock_index: int, relay: bool, nflows: int, offset: int, now_ns: int) -> int:
    """Receive one batch from `bs` and count it; the receive ring entries it held (0: nothing waiting).

    `offset` turns kernel receive times (CLOCK_REALTIME) into CLOCK_MONOTONIC; `now_ns` (monotonic) stands in
    where the kernel gave none. ConnectionRefusedError passes through."""
    n = bs.raw_recv(None)
    if not n:
        return 0
    # a few datagrams: numpy's fixed cost per call (some 50 us) would exceed Python's per datagram (1-2 us)
    if n <= SMALL and _take_small(arr, bs, n, sock_index, relay, nflows, offset, now_ns):
        return n
    n, offs, sizes, kts = bs.segments(n)
    data = bs.ring_data
    if kts.any():
        arr.kernel_ts = True
    rx = np.where(kts > 0, kts - offset, now_ns)
    if relay:
        ok = sizes >= RELAY_MIN_PAYLOAD
        arr.stray += int((~ok).sum())
        offs, sizes, rx = offs[ok], sizes[ok], rx[ok]
        heads = _heads(data, offs, sizes)
        magic = _be(heads, 0, 2)
        kind = heads[:, 3].astype(np.int64)
        arr.stray += int((magic != proto.MAGIC).sum())
        keep = (magic == proto.MAGIC) & (kind == int(proto.MsgType.DATA_ALL))  # keepalive/ack echoes: not traffic
        heads, rx = heads[keep], rx[keep]
        peers = _be(heads, _RELAY_PEER_AT, 4)
        seq = _be(heads, _RELAY_SEQ_AT, 8)
        sched = _be(heads, _RELAY_SCHED_AT, 8)
        sent = None
    else:
        ok = sizes >= ECHO_MIN_PAYLOAD
        arr.stray += int((~ok).sum())
        offs, sizes, rx = offs[ok], sizes[ok], rx[ok]
        heads = _heads(data, offs, sizes)
        magic = _be(heads, _ECHO_MAGIC_AT, 4)
        peers = _be(heads, _ECHO_FLOW_AT, 4)
        keep = (magic == ECHO_MAGIC) & (peers < nflows)
        arr.stray += int((~keep).sum())
        heads, sizes, rx, peers = heads[keep], sizes[keep], rx[keep], peers[keep]
        seq = _be(heads, 0, 8)
        sched = _be(heads, _ECHO_SCHED_AT, 8)
        sent = np.where(sizes >= ECHO_SENT_END, _be(heads, ECHO_SENT_AT, 8), 0)
    counted = seq < WARM_BASE  # warm-up datagrams are reflected, never counted
    if not counted.all():
        seq, sched, rx, peers = seq[counted], sched[counted], rx[counted], peers[counted]
        sent = None if sent is None else sent[counted]
    transit = rx - sched
    for peer in np.unique(peers).tolist():
        sel = peers == peer
        key = (sock_index, peer) if relay else (peer, 0)
        tr = arr.trackers.get(key)
        if tr is None:
            tr = arr.trackers[key] = FlowTracker()
        new = tr.on_many(seq[sel], transit[sel])
        arr.lat.append(transit[sel][new])
        if sent is not None:
            s = sent[sel][new]
            arr.lat_sent.append((rx[sel][new] - s)[s > 0])
    return n
