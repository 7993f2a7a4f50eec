"""The relay's C data path (relayfast + _datapath.c) against RelayCore alone, on random traffic, without sockets.

Both cores get the same joins and then the same batches of datagrams (members and strangers, every message type,
broken headers, oversized and zero-length datagrams, a clock that moves so token buckets run dry and refill). The
C side reads a receive ring filled here as the kernel would fill it, GRO buffers included (consecutive datagrams of
one source and size in one entry with its segment size). What each address receives, in order, and every counter
must be the same.
"""

from __future__ import annotations

import ctypes
import struct
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iovkit.traffic import protocol as p
from iovkit.traffic.mmsg.abi import (
    GRO_CTRL_SLOT,
    HDR_SIZE,
    NAME_SLOT,
    OFF_CTRLLEN,
    OFF_FLAGS,
    OFF_LEN,
    OFF_NAMELEN,
    Ring,
)
from iovkit.traffic.relaycore import RelayConfig, RelayCore
from iovkit.traffic.relayfast import HAVE_DATAPATH, FastRelay, TxPlan, plan_datagrams
from iovkit.traffic.sockaddr import encode_sockaddr, family_of

_NEEDS_C = pytest.mark.skipif(not HAVE_DATAPATH, reason="iovkit.traffic._datapath not built")

KEY = b"relay-key-for-tests-0123456789ab"
NOW = 1_700_000_000.0
EXPIRY = int(NOW) + 3600
MEMBERS = [((f"198.51.100.{i + 1}", 1000 + i), 7 if i < 3 else 9, i + 1) for i in range(5)]
MEMBERS.append((("2001:db8::5", 2000, 0, 0), 9, 6))  # an IPv6 member (as an IPv6 socket reports it)
STRANGERS = [("203.0.113.66", 6666), ("198.51.100.1", 9999)]
BUFSIZE = 2048
CMSG = struct.Struct("=Qiii")  # cmsghdr (len, level, type) and the int UDP_GRO carries


def cores() -> tuple[RelayCore, RelayCore]:
    cfg = {"key": KEY, "cookie_secret": b"s" * 32, "rate_pps": 40.0, "rate_burst": 6.0, "max_datagram": 600}
    return RelayCore(RelayConfig(**cfg)), RelayCore(RelayConfig(**cfg))  # type: ignore[arg-type]


def join_all(c: RelayCore) -> None:
    for addr, sid, pid in MEMBERS:
        j = p.Joiner(sid, pid, p.mint_token(KEY, sid, pid, EXPIRY))
        c.on_datagrams([(j.first(), addr)], NOW)
        (reply,) = c.datagrams_to_send()
        nxt = j.on_reply(reply[0])
        assert nxt is not None
        c.on_datagrams([(nxt, addr)], NOW)
        for data, _to in c.datagrams_to_send():
            j.on_reply(data)
        assert j.joined


def datagram(kind: str, sid: int, pid: int, seq: int, size: int, to: int) -> bytes:
    body = bytes(max(0, size))
    if kind == "all":
        return p.encode_data(sid, pid, seq, seq * 7, body)
    if kind == "one":
        return p.encode_data(sid, pid, seq, seq * 7, body, to=to)
    if kind == "keepalive":
        return p.encode_keepalive(sid, pid, seq, 0)
    if kind == "leave":
        return p.encode_leave(sid, pid, seq, 0)
    if kind == "join":
        return p.encode_join(sid, pid, p.mint_token(KEY, sid, pid, EXPIRY), seq=seq)
    if kind == "wrong-member":
        return p.encode_data(sid, pid + 1, seq, 0, body)
    if kind == "bad-version":
        d = bytearray(p.encode_data(sid, pid, seq, 0, body))
        d[2] = 9
        return bytes(d)
    if kind == "unknown-type":
        d = bytearray(p.encode_data(sid, pid, seq, 0, body))
        d[3] = 42
        return bytes(d)
    if kind == "short-one":
        return p.encode_data(sid, pid, seq, 0, b"")[:33]
    return bytes([seq & 0xFF]) * (size % 40)  # garbage, short or empty


KINDS = ["all", "all", "all", "one", "keepalive", "leave", "join", "wrong-member", "bad-version"]
KINDS += ["unknown-type", "short-one", "garbage"]
event = st.tuples(
    st.integers(0, len(MEMBERS) + len(STRANGERS) - 1),  # who sends
    st.sampled_from(KINDS),
    st.sampled_from([0, 8, 8, 8, 100, 567, 569, 700]),  # body size: 568 + 32 = 600 is the limit
    st.integers(1, 6),  # DATA_ONE target
    st.integers(0, 3),  # how many times in a row (GRO coalesces a run)
)
batches = st.lists(st.tuples(st.lists(event, min_size=1, max_size=12), st.floats(0.0, 0.3)), min_size=1, max_size=8)


class Filled:
    """A receive ring filled as recvmmsg would fill it."""

    def __init__(self, items: list[tuple[bytes, Any]], gro: bool) -> None:
        entries: list[tuple[bytes, Any, int]] = []  # (bytes, addr, segment size or 0)
        for data, addr in items:
            last = entries[-1] if entries else None
            if (
                gro
                and last is not None
                and last[1] == addr
                and data
                and len(last[0]) % len(data) == 0
                and (last[2] or len(last[0])) == len(data)
                and len(last[0]) + len(data) <= BUFSIZE
            ):
                entries[-1] = (last[0] + data, addr, len(data))
            else:
                entries.append((data, addr, 0))
        self.ring = Ring(len(entries), BUFSIZE, GRO_CTRL_SLOT)
        self.entries = entries
        stride = HDR_SIZE // 4
        for i, (data, addr, seg) in enumerate(entries):
            raw = encode_sockaddr(addr, family_of(addr))
            self.ring.data[i * BUFSIZE : i * BUFSIZE + len(data)] = data
            self.ring.names[i * NAME_SLOT : i * NAME_SLOT + len(raw)] = raw
            self.ring.u32[i * stride + OFF_LEN] = len(data)
            self.ring.u32[i * stride + OFF_NAMELEN] = len(raw)
            self.ring.u32[i * stride + OFF_FLAGS] = 0
            szt = (i * HDR_SIZE) // ctypes.sizeof(ctypes.c_size_t) + OFF_CTRLLEN
            if seg and seg < len(data):
                CMSG.pack_into(self.ring.ctrl, i * GRO_CTRL_SLOT, 20, 17, 104, seg)
                self.ring.szt[szt] = 24
            else:
                self.ring.szt[szt] = 0

    def entry(self, i: int) -> tuple[memoryview, Any, int]:
        data, addr, seg = self.entries[i]
        return memoryview(data), addr, seg


def by_destination(out: list[tuple[bytes, Any]]) -> dict[Any, list[bytes]]:
    got: dict[Any, list[bytes]] = defaultdict(list)
    for data, addr in out:
        got[tuple(addr)].append(data)
    return dict(got)


@_NEEDS_C
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.booleans(), st.booleans())
def test_c_data_path_forwards_and_counts_like_the_python_core(plan: Any, gro: bool, gso: bool) -> None:
    ref, fast = cores()
    join_all(ref)
    join_all(fast)
    sent: list[tuple[bytes, Any]] = []

    def record(tx: TxPlan, n_tx: int) -> None:
        sent.extend(plan_datagrams(tx, n_tx))

    def send_py(out: list[tuple[bytes, Any]]) -> int:
        sent.extend(out)
        return len(out)

    fr = FastRelay(fast, None, gso=gso, send_plan=record)
    now, seq, want = NOW, 0, []
    senders = [(a, s, i) for a, s, i in MEMBERS] + [(a, 7, 1) for a in STRANGERS]
    for events, dt in plan:
        now += dt
        items = []
        for who, kind, size, to, times in events:
            addr, sid, pid = senders[who]
            for _ in range(times + 1):
                seq += 1
                items.append((datagram(kind, sid, pid, seq, size, to), addr))
        ref.on_datagrams(items, now)
        want.extend(ref.datagrams_to_send())
        filled = Filled(items, gro)
        fr.handle(len(filled.entries), now, filled.ring.at, filled.entry, send_py)
    assert by_destination(sent) == by_destination(want)
    assert fast.stats == ref.stats
    assert fast.drops == ref.drops
    assert set(fast.peers) == set(ref.peers) and set(fast.sessions) == set(ref.sessions)
    for addr, peer in ref.peers.items():
        other = fast.peers[addr]
        assert ref.table.tokens[peer.slot] == fast.table.tokens[other.slot]
        assert ref.table.last[peer.slot] == fast.table.last[other.slot]


@_NEEDS_C
def test_consecutive_forwards_to_one_member_become_one_gso_message() -> None:
    """Ten DATA_ALL from one member of a three-member session: two plan messages of ten segments each."""
    _ref, fast = cores()
    fast.cfg.rate_burst = fast.cfg.rate_pps = 1e9
    join_all(fast)
    messages: list[int] = []

    def record(tx: TxPlan, n_tx: int) -> None:
        messages.append(n_tx)
        got.extend(plan_datagrams(tx, n_tx))

    got: list[tuple[bytes, Any]] = []
    fr = FastRelay(fast, None, gso=True, send_plan=record)
    a, sid, pid = MEMBERS[0]
    items = [(p.encode_data(sid, pid, k, 0, b"x" * 32), a) for k in range(10)]
    filled = Filled(items, gro=True)
    assert len(filled.entries) == 1  # one GRO buffer
    fr.handle(1, NOW, filled.ring.at, filled.entry, lambda out: len(out))
    assert messages == [2]
    assert by_destination(got) == {MEMBERS[1][0]: [d for d, _ in items], MEMBERS[2][0]: [d for d, _ in items]}
    assert fast.stats["pkts_in"] - 12 == 10 and fast.stats["pkts_out"] - 12 == 20  # the joins: 12 in, 12 out


def test_the_c_data_path_is_built_where_a_compiler_is() -> None:
    """`pip install` builds _datapath where a compiler is; a silent fallback to Python would hide a 20x cost."""
    import os
    import shutil

    if shutil.which("cc") is None or os.environ.get("IOVKIT_FASTPATH") == "0":
        pytest.skip("no C compiler here, or the C paths are turned off")
    from iovkit.traffic import _datapath  # noqa: F401  (ImportError fails the test)
