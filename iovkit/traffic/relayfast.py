"""The relay's data path in C (_datapath.c) around the Python RelayCore, and the counting sink.

Why: forwarding in Python costs about 9 us of CPU per datagram sent out; the C path reads the receive ring in
place, checks and forwards members' datagrams over the core's member table (relaytable.py) and sends the plan
with sendmmsg (GSO where consecutive forwards go to one member). Everything else, a source that is not a member
(challenges, joins, allocations) and a member's LEAVE, JOIN or ALLOCATE, goes to RelayCore one datagram at a time
in arrival order, so the outcome is the Python path's (tests/traffic/test_relayfast.py checks that on random
traffic). Without the C module (or with IOVKIT_FASTPATH=0) the relay runs RelayCore alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from iovkit.traffic.mmsg import BatchSocket
from iovkit.traffic.relaycore import RelayCore
from iovkit.traffic.sockaddr import Address

try:
    from iovkit.traffic import _datapath
except ImportError:  # pragma: no cover - depends on the install
    _datapath = None  # type: ignore[assignment]

HAVE_DATAPATH = _datapath is not None and os.environ.get("IOVKIT_FASTPATH", "1") != "0"
TX_CAP = 512  # plan entries (messages) per send; a fan-out needs one per member at most


class TxPlan:
    """The buffer relay_plan fills: mmsghdrs with up to 64 iovecs each, GSO control messages, bookkeeping."""

    def __init__(self, cap: int = TX_CAP) -> None:
        assert _datapath is not None
        hdr, iov, ctrl, meta, segs = _datapath.tx_layout()
        self.cap = cap
        self.buf = bytearray(cap * (hdr + segs * iov + ctrl + meta))


class FastRelay:
    """One worker's data path: `step(timeout)` receives a batch and handles it (C first, Python for the rest)."""

    def __init__(
        self,
        core: RelayCore,
        bs: BatchSocket | None,
        gso: bool = True,
        send_plan: Callable[[TxPlan, int], None] | None = None,
    ) -> None:
        """`bs` None and `send_plan` given: no socket (tests drive handle() with a ring they filled)."""
        if _datapath is None or (bs is not None and not bs.native):
            raise RuntimeError("the C data path needs iovkit.traffic._datapath and recvmmsg")
        self.core, self.bs, self.gso = core, bs, gso
        self._plan_out = send_plan
        self.plan = TxPlan(max(TX_CAP, core.cfg.max_members + 1))
        self.send_failed = 0
        self.gso_refused = False

    def step(self, timeout: float | None, now: float) -> int:
        """Receive one batch into the ring and handle every datagram in it; the ring entries received."""
        bs = self.bs
        assert bs is not None
        n = bs.raw_recv(timeout)
        if n:
            try:
                self.handle(n, now, bs.ring_at, bs.entry, bs.send)
            finally:
                bs.release(n)
        return n

    def handle(
        self,
        n: int,
        now: float,
        ring_at: int,
        entry: Callable[[int], tuple[memoryview, Address, int]],
        send: Callable[[list[tuple[bytes, Address]]], int],
    ) -> None:
        """Handle ring entries [0, n) at `ring_at` (`entry(i)`: its bytes, source and GRO segment size); `send`
        takes the core's own replies (the Python path), in order with the plans."""
        assert _datapath is not None
        core, cfg, table, plan = self.core, self.core.cfg, self.core.table, self.plan
        i = off = 0
        reserve = cfg.max_members + 1
        while True:
            i, off, n_tx, status = _datapath.relay_plan(
                ring_at,
                n,
                i,
                off,
                table.mem,
                table.cap,
                table.scap,
                table.hsize,
                now,
                cfg.rate_pps,
                cfg.rate_burst,
                cfg.max_datagram,
                plan.buf,
                plan.cap,
                self.gso and not self.gso_refused,
                reserve,
            )
            if n_tx:
                self._send_plan(n_tx)
            if status == 0:
                break
            if status == 3:
                continue
            data, addr, seg = entry(i)
            size = seg if seg and seg < len(data) else max(len(data), 1)
            one = bytes(data[off : off + size])
            core.fold(table.take_counters())  # the C path's counts first: the core's checks read them
            if status == 1:
                core.on_datagrams([(one, addr)], now)
            else:
                core.on_allowed(one, addr, now)
            out = core.datagrams_to_send()
            if out:
                self.send_failed += len(out) - send(out)
            off += size
            if off >= len(data):
                i, off = i + 1, 0
        core.fold(table.take_counters())

    def _send_plan(self, n_tx: int) -> None:
        assert _datapath is not None
        if self._plan_out is not None:
            self._plan_out(self.plan, n_tx)
            return
        assert self.bs is not None
        _sent, failed, refused = _datapath.send_plan(self.bs.fd, self.plan.buf, self.plan.cap, n_tx)
        self.send_failed += failed
        if refused:
            self.gso_refused = True


def sink_step(bs: BatchSocket, timeout: float | None) -> tuple[int, int, int]:
    """Count one batch (GRO buffers as their datagrams); (datagrams, bytes, truncated). C where built."""
    if _datapath is not None and bs.native:
        flags = bs.recv_flags(timeout)
        if flags is None:
            return 0, 0, 0
        msgs, dgrams, nbytes, trunc = _datapath.sink_batch(bs.fd, bs.ring_at, bs.batch, flags)
        if msgs:
            bs.release(msgs)
        return dgrams, nbytes, trunc
    before = bs.truncated
    got = bs.recv(timeout)
    return len(got), sum(len(d) for d, _ in got), bs.truncated - before


def plan_datagrams(plan: TxPlan, n_tx: int) -> list[tuple[bytes, Address]]:
    """The datagrams a plan would send, in order, as (bytes, address): for tests and inspection."""
    import ctypes

    from iovkit.traffic.sockaddr import decode_sockaddr

    assert _datapath is not None
    hdr, iov, ctrl, meta, segs = _datapath.tx_layout()
    base = ctypes.addressof((ctypes.c_char * len(plan.buf)).from_buffer(plan.buf))
    out: list[tuple[bytes, Address]] = []
    ptr = ctypes.c_size_t
    for k in range(n_tx):
        at = base + k * hdr
        name, namelen = ptr.from_address(at).value, ctypes.c_uint32.from_address(at + 8).value
        iov_at, iovlen = ptr.from_address(at + 16).value, ptr.from_address(at + 24).value
        addr = decode_sockaddr(ctypes.string_at(name, namelen))
        for s in range(iovlen):
            b, ln = ptr.from_address(iov_at + s * iov).value, ptr.from_address(iov_at + s * iov + 8).value
            out.append((ctypes.string_at(b, ln), addr))
    del ctrl, meta, segs
    return out


def describe() -> dict[str, Any]:
    """Which data path a relay worker runs (for the start line and metrics)."""
    return {"c_datapath": HAVE_DATAPATH}
