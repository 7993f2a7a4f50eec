"""Nothing lost with UDP GSO and GRO: real loopback sockets, every datagram accounted for, byte for byte.

Segment boundaries, a payload that does not divide, a batch that ends on a shorter datagram, a peer that changes
its datagram size mid-stream, GRO missing or refused by the kernel, and the numpy counters against the one-at-a-
time ones on random arrivals.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iovkit.traffic.loadcore import ECHO_HDR, ECHO_MAGIC, ECHO_TIME_AT, SOCKPERF_CLIENT, FlowTracker
from iovkit.traffic.mmsg import HAVE_MMSG, BatchSocket, TxRing, open_udp
from iovkit.traffic.mmsg.abi import set_gro, set_gso

pytestmark = pytest.mark.skipif(not HAVE_MMSG, reason="recvmmsg needed")
SOL_UDP, UDP_SEGMENT = 17, 103


def _kernel_has_gso() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return set_gso(s, 100) and set_gro(s, True)


needs_gso = pytest.mark.skipif(not _kernel_has_gso(), reason="kernel without UDP GSO/GRO")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx = open_udp("127.0.0.1", 0, rcvbuf=4 << 20, rcvtimeo=0.5)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    yield rx, tx
    rx.close()
    tx.close()


def gso_send(tx: socket.socket, datagrams: list[bytes]) -> None:
    """One sendmsg carrying all of `datagrams` (equal sizes, the last may be shorter) as a GSO message."""
    seg = len(datagrams[0])
    tx.sendmsg([b"".join(datagrams)], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", seg))])


def receive_all(bs: BatchSocket, want: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < want:
        part = bs.recv(timeout=2.0)
        if not part:
            break
        got += [d for d, _ in part]
    return got


def receive_segments(bs: BatchSocket, want: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < want:
        r = bs.recv_segments(2.0)
        if r is None:
            break
        _n, offs, sizes, _ts = r
        data = bs.ring_data
        got += [bytes(data[o : o + s]) for o, s in zip(offs.tolist(), sizes.tolist(), strict=True)]
    return got


def numbered(n: int, size: int, start: int = 0) -> list[bytes]:
    return [struct.pack("!I", start + i) + bytes([i & 0xFF]) * (size - 4) for i in range(n)]


@needs_gso
@pytest.mark.parametrize("reader", [receive_all, receive_segments], ids=["recv", "recv_segments"])
def test_gro_buffers_are_cut_at_segment_boundaries_and_a_short_tail_survives(pair, reader) -> None:
    rx, tx = pair
    bs = BatchSocket(rx, batch=8, bufsize=65535, gro=True)
    assert bs.gro
    first = numbered(40, 100)
    tail = numbered(17, 100, 40)
    tail[-1] = tail[-1][:37]  # the payload does not divide: the message ends on a shorter datagram
    gso_send(tx, first)
    gso_send(tx, tail)
    other = numbered(9, 333, 100)  # the peer changes its size mid-stream
    gso_send(tx, other)
    tx.send(b"single")  # and one plain datagram
    got = reader(bs, 40 + 17 + 9 + 1)
    assert got == [*first, *tail, *other, b"single"]


@needs_gso
def test_without_gro_the_kernel_cuts_a_gso_message_itself(pair) -> None:
    rx, tx = pair
    bs = BatchSocket(rx, batch=64, gro=False)
    sent = numbered(64, 64)
    gso_send(tx, sent)
    assert receive_all(bs, 64) == sent


def test_gro_refused_falls_back_to_one_datagram_per_buffer(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without UDP_GRO (setsockopt fails): the socket works as before and says it has no GRO."""
    import iovkit.traffic.mmsg.batch as batch

    monkeypatch.setattr(batch, "set_gro", lambda sock, on: False)
    rx, tx = pair
    bs = BatchSocket(rx, batch=16, gro=True)
    assert not bs.gro
    for d in numbered(5, 80):
        tx.send(d)
    assert receive_segments(bs, 5) == numbered(5, 80)


@needs_gso
def test_tx_ring_with_gso_sends_every_datagram_with_its_own_stamps(pair) -> None:
    rx, tx = pair
    tpl = bytearray(64)
    ECHO_HDR.pack_into(tpl, 0, 0, SOCKPERF_CLIENT, 64, ECHO_MAGIC, 0, 0)
    ring = TxRing(tx, bytes(tpl), 200, 0, ECHO_TIME_AT, gso=True)
    assert ring.gso and ring.per == 64
    times = np.arange(10**12, 10**12 + 200 * 7, 7, dtype=np.int64)
    assert ring.send(5000, times) == 200  # 4 messages: 64, 64, 64 and a last one of 8
    assert ring.send(9000, times[:3]) == 3
    bs = BatchSocket(rx, batch=64, bufsize=65535, gro=True)
    got = receive_segments(bs, 203)
    stamps = [(struct.unpack_from("!Q", d)[0], struct.unpack_from("!Q", d, ECHO_TIME_AT)[0]) for d in got]
    want = [(5000 + i, int(times[i])) for i in range(200)] + [(9000 + i, int(times[i])) for i in range(3)]
    assert stamps == want and all(len(d) == 64 for d in got)


def test_tx_ring_turns_gso_off_when_the_kernel_refuses_it(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    import iovkit.traffic.mmsg.txring as txring

    monkeypatch.setattr(txring, "set_gso", lambda sock, size: False)
    rx, tx = pair
    ring = TxRing(tx, bytes(64), 100, 0, 8, gso=True)
    assert not ring.gso
    assert ring.send(1, np.arange(100, dtype=np.int64)) == 100
    assert len(receive_all(BatchSocket(rx, batch=64), 100)) == 100


arrivals = st.lists(st.tuples(st.integers(0, 300), st.integers(-50, 5000)), max_size=400)


@settings(max_examples=200, deadline=None)
@given(arrivals, st.integers(1, 50))
def test_numpy_counters_match_one_at_a_time(events: list[tuple[int, int]], chunk: int) -> None:
    """FlowTracker.on_many over chunks of arrivals: the same duplicates, reordering, jitter and first copies."""
    one, many = FlowTracker(), FlowTracker()
    firsts = [one.on(s, t) for s, t in events]
    got: list[bool] = []
    for i in range(0, len(events), chunk):
        part = events[i : i + chunk]
        seqs = np.array([s for s, _ in part], dtype=np.int64)
        transits = np.array([t for _, t in part], dtype=np.int64)
        got += many.on_many(seqs, transits).tolist()
    assert got == firsts
    assert (many.received, many.duplicates, many.reordered) == (one.received, one.duplicates, one.reordered)
    assert many.jitter_ns == pytest.approx(one.jitter_ns) and many.prev_transit == one.prev_transit
