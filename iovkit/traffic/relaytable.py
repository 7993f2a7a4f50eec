"""The relay's member table as flat arrays in one buffer: what the C data path (_datapath.c) reads and updates.

Why flat arrays: the C path looks a source up by its sockaddr bytes, takes a token from its bucket, checks its
session and peer id, stamps its last use and walks its session's member list, without a Python object per
datagram. Python (RelayCore) owns the table: it adds a member on a join, removes it on a leave or expiry, and
reads the same arrays, so one state serves both paths. The layout below must match `layout()` in _datapath.c.

    tokens, btime, last: f64[cap]   the member's token bucket (tokens, time of last take) and last use
    counters: i64[16]               what the C path counted since Python last folded them (COUNTERS order)
    namelen, sid, pid: u32[cap]     sockaddr length (0: free slot), session and peer id
    sess, next: i32[cap]            session index; next member of the session in join order (-1: none)
    head: i32[scap]                 first member of each session index (-1: none)
    index: i32[hsize]               open addressing by FNV-1a of the sockaddr (-1 empty, -2 deleted)
    names: 32 bytes[cap]            the sockaddr as the kernel writes it
"""

from __future__ import annotations

from typing import Any

NAME_SLOT = 32
NCOUNT = 16
COUNTERS: tuple[str, ...] = (
    "pkts_in",
    "bytes_in",
    "pkts_out",
    "bytes_out",
    "rate_limited",
    "oversized",
    "malformed",
    "bad_version",
    "unknown_source",
    "no_target",
    "unknown_type",
    "truncated",
)
_EMPTY, _DELETED = -1, -2


def fnv1a(raw: bytes) -> int:
    """FNV-1a, 32 bit: the index hash (the C path computes the same)."""
    h = 2166136261
    for b in raw:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


class PeerTable:
    """Members (slots) and sessions (indexes) of one relay worker, in one bytearray (`mem`)."""

    def __init__(self, cap: int, scap: int) -> None:
        self.cap, self.scap = cap, scap
        hsize = 16
        while hsize < 2 * cap:
            hsize *= 2
        self.hsize = hsize
        size = 24 * cap + 8 * NCOUNT + 20 * cap + 4 * scap + 4 * hsize + NAME_SLOT * cap
        self.mem = bytearray(size)
        mv = memoryview(self.mem)
        at = 0

        def take(n: int, fmt: str, width: int) -> Any:
            nonlocal at
            view = mv[at : at + n * width].cast(fmt)  # type: ignore[call-overload]
            at += n * width
            return view

        self.tokens, self.btime, self.last = take(cap, "d", 8), take(cap, "d", 8), take(cap, "d", 8)
        self.counters = take(NCOUNT, "q", 8)
        self.namelen, self.sid, self.pid = take(cap, "I", 4), take(cap, "I", 4), take(cap, "I", 4)
        self.sess, self.next = take(cap, "i", 4), take(cap, "i", 4)
        self.head = take(scap, "i", 4)
        self.index = take(hsize, "i", 4)
        self.names = mv[at : at + NAME_SLOT * cap]
        for arr in (self.sess, self.next, self.head, self.index):
            arr[:] = memoryview(bytes([0xFF]) * (len(arr) * 4)).cast("i")  # all -1
        self._free = list(range(cap - 1, -1, -1))
        self._free_sess = list(range(scap - 1, -1, -1))
        self._sess_index: dict[int, int] = {}
        self._deleted = 0

    # -- lookups --------------------------------------------------------------------------------------------
    def find(self, raw: bytes) -> int:
        """The slot of the member at sockaddr `raw`, or -1."""
        mask = self.hsize - 1
        h = fnv1a(raw) & mask
        for _ in range(self.hsize):
            s = self.index[h]
            if s == _EMPTY:
                return -1
            if s >= 0 and self.namelen[s] == len(raw) and self.names[s * NAME_SLOT : s * NAME_SLOT + len(raw)] == raw:
                return s
            h = (h + 1) & mask
        return -1

    # -- changes (Python only) ------------------------------------------------------------------------------
    def add(self, raw: bytes, sid: int, pid: int, tokens: float, btime: float, last: float) -> int:
        """A new member at the end of its session's list; its slot. The caller keeps the caps (max_peers)."""
        if not 0 < len(raw) <= NAME_SLOT:
            raise ValueError(f"a sockaddr of {len(raw)} bytes does not fit a slot")
        if self._deleted > self.cap // 2:
            self._rebuild()
        s = self._free.pop()
        sx = self._sess_index.get(sid)
        if sx is None:
            sx = self._sess_index[sid] = self._free_sess.pop()
            self.head[sx] = -1
        self.names[s * NAME_SLOT : s * NAME_SLOT + len(raw)] = raw
        self.namelen[s], self.sid[s], self.pid[s], self.sess[s], self.next[s] = len(raw), sid, pid, sx, -1
        self.tokens[s], self.btime[s], self.last[s] = tokens, btime, last
        m = self.head[sx]
        if m < 0:
            self.head[sx] = s
        else:
            while self.next[m] >= 0:
                m = self.next[m]
            self.next[m] = s
        mask = self.hsize - 1
        h = fnv1a(raw) & mask
        while self.index[h] >= 0:
            h = (h + 1) & mask
        if self.index[h] == _DELETED:
            self._deleted -= 1
        self.index[h] = s
        return s

    def remove(self, s: int) -> None:
        """Free slot `s`: out of the index and of its session's list (the session index goes with its last)."""
        n = self.namelen[s]
        raw = bytes(self.names[s * NAME_SLOT : s * NAME_SLOT + n])
        mask = self.hsize - 1
        h = fnv1a(raw) & mask
        while self.index[h] != s:
            h = (h + 1) & mask
        self.index[h] = _DELETED
        self._deleted += 1
        sx = self.sess[s]
        if self.head[sx] == s:
            self.head[sx] = self.next[s]
        else:
            m = self.head[sx]
            while self.next[m] != s:
                m = self.next[m]
            self.next[m] = self.next[s]
        if self.head[sx] < 0:
            del self._sess_index[self.sid[s]]
            self._free_sess.append(sx)
        self.namelen[s], self.sess[s], self.next[s] = 0, -1, -1
        self._free.append(s)

    def _rebuild(self) -> None:
        """Drop the deleted marks (they lengthen probes): re-insert every live slot."""
        self.index[:] = memoryview(bytes([0xFF]) * (self.hsize * 4)).cast("i")
        mask = self.hsize - 1
        for s in range(self.cap):
            n = self.namelen[s]
            if n:
                h = fnv1a(bytes(self.names[s * NAME_SLOT : s * NAME_SLOT + n])) & mask
                while self.index[h] >= 0:
                    h = (h + 1) & mask
                self.index[h] = s
        self._deleted = 0

    def take_counters(self) -> dict[str, int]:
        """What the C path counted since the last call (and zero them)."""
        out = {name: int(self.counters[i]) for i, name in enumerate(COUNTERS) if self.counters[i]}
        for i in range(NCOUNT):
            self.counters[i] = 0
        return out
