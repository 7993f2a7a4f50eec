"""RelayCore: the sans-IO relay state machine (sessions, peers, rate limits, address proof, no amplification).

It does no I/O and reads no clock. Three things drive it: `on_datagrams(batch, now)` with (bytes, address) pairs,
`on_timer(now)` at `next_deadline()`, and `datagrams_to_send()` which pulls the (bytes, address) replies and
forwards. `now` is wall-clock seconds (time.time()): join tokens carry unix expiry times.

Safety rules, each enforced here so it is tested with plain bytes:
- a per-source token bucket runs before any parsing; the bucket table is bounded (oldest entry evicted);
- nothing is forwarded to or answered to a source that has not proven its address with a cookie, except a
  CHALLENGE that is smaller than the request (handshakes are padded to HANDSHAKE_MIN; shorter ones are dropped);
- session, peer and bucket tables have hard caps; idle peers expire, empty sessions go;
- every datagram that is malformed, oversized, unknown or not allowed is dropped and counted by reason.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from iovkit.traffic import protocol as p
from iovkit.traffic.relaytable import PeerTable
from iovkit.traffic.sockaddr import encode_sockaddr, family_of

Address = Any

# Counters every core keeps (declared once: the relay's shared stats array and metrics use this order).
COUNTERS: tuple[str, ...] = (
    "pkts_in",
    "bytes_in",
    "pkts_out",
    "bytes_out",
    "challenges",
    "allocations",
    "joins",
    "leaves",
    "expired_peers",
)
DROPS: tuple[str, ...] = (
    "rate_limited",  # the source's token bucket was empty
    "oversized",  # longer than max_datagram
    "malformed",  # short, bad magic, bad body
    "bad_version",
    "unknown_type",  # a type a relay never receives (replies) or an unknown one
    "short_handshake",  # ALLOCATE/JOIN shorter than HANDSHAKE_MIN: a challenge would amplify
    "bad_cookie",  # a cookie that this relay did not make for this address
    "bad_proof",  # ALLOCATE without a valid admission proof
    "bad_token",
    "expired_token",
    "token_in_use",  # (session, peer) bound to another address: a replayed token
    "address_in_use",
    "table_full",  # session or peer table at its cap
    "session_full",
    "unknown_source",  # DATA/KEEPALIVE/LEAVE from an address that is not that member
    "no_target",  # DATA_ONE to a peer not in the session
    "send_failed",  # counted by the I/O layer: the kernel refused a datagram or had no room
)
_T = p.MsgType
_REASON_DROP = {
    p.Reason.BAD_TOKEN: "bad_token",
    p.Reason.EXPIRED: "expired_token",
    p.Reason.TOKEN_IN_USE: "token_in_use",
    p.Reason.SESSION_FULL: "session_full",
    p.Reason.TABLE_FULL: "table_full",
    p.Reason.NOT_ADMITTED: "bad_proof",
    p.Reason.ADDRESS_IN_USE: "address_in_use",
}


@dataclass
class RelayConfig:
    """Limits and keys. `key` signs join tokens; `cookie_secret` must be the same in every worker."""

    key: bytes
    admission_key: bytes | None = None  # None: any address-proven source may allocate
    cookie_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    max_sessions: int = 10_000
    max_peers: int = 100_000
    max_members: int = 64
    max_sources: int = 65_536  # rate-limit table entries
    peer_idle: float = 30.0  # seconds without a datagram before a peer is dropped
    rate_pps: float = 5_000.0  # per source
    rate_burst: float = 500.0
    max_datagram: int = 1500
    sweep_interval: float = 1.0


@dataclass(slots=True)
class Peer:
    """A member; its last use and token bucket live in the table (slot), where the C data path updates them."""

    session: int
    peer: int
    addr: Address
    slot: int


@dataclass(slots=True)
class Session:
    sid: int
    key: bytes
    members: dict[int, Peer] = field(default_factory=dict)


class RelayCore:
    """One worker's relay state; see the module docstring."""

    def __init__(self, config: RelayConfig) -> None:
        self.cfg = config
        self.sessions: dict[int, Session] = {}
        self.peers: dict[Address, Peer] = {}
        self.table = PeerTable(config.max_peers, config.max_sessions)
        self._buckets: dict[Address, list[float]] = {}  # sources that are not members (a member's is in the table)
        self._out: list[tuple[bytes, Address]] = []
        self.stats: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.drops: dict[str, int] = dict.fromkeys(DROPS, 0)
        self._next_sweep: float | None = None

    # -- public ----------------------------------------------------------------------------------------------
    def on_datagrams(self, batch: Iterable[tuple[bytes, Address]], now: float) -> None:
        """Feed received datagrams; replies and forwards queue for datagrams_to_send()."""
        if self._next_sweep is None:
            self._next_sweep = now + self.cfg.sweep_interval
        st, drops = self.stats, self.drops
        for data, addr in batch:
            st["pkts_in"] += 1
            st["bytes_in"] += len(data)
            if not self._allow(addr, now):
                drops["rate_limited"] += 1
                continue
            reason = self._one(data, addr, now)
            if reason:
                drops[reason] += 1

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Pull everything queued since the last call."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When on_timer should run next (None until the first datagram)."""
        return self._next_sweep

    def on_timer(self, now: float) -> None:
        """Expire idle peers, drop empty sessions, and forget idle rate-limit buckets."""
        limit = now - self.cfg.peer_idle
        last = self.table.last
        for peer in [x for x in self.peers.values() if last[x.slot] < limit]:
            self._remove(peer)
            self.stats["expired_peers"] += 1
        full_after = self.cfg.rate_burst / self.cfg.rate_pps if self.cfg.rate_pps > 0 else 0.0
        for addr in [a for a, b in self._buckets.items() if now - b[1] > full_after]:
            del self._buckets[addr]  # a full bucket is the default: no need to remember it
        self._next_sweep = now + self.cfg.sweep_interval

    @property
    def peer_count(self) -> int:
        return len(self.peers)

    def on_allowed(self, data: bytes, addr: Address, now: float) -> None:
        """One datagram the C data path already counted and took a token for (a member's LEAVE, JOIN or
        ALLOCATE): the rest of on_datagrams' work."""
        if self._next_sweep is None:
            self._next_sweep = now + self.cfg.sweep_interval
        reason = self._one(data, addr, now)
        if reason:
            self.drops[reason] += 1

    def fold(self, counted: dict[str, int]) -> None:
        """Add what the C data path counted (PeerTable.take_counters) into stats and drops."""
        for name, v in counted.items():
            if name == "truncated":
                self.stats["pkts_in"] += v
                self.drops["oversized"] += v
            elif name in self.stats:
                self.stats[name] += v
            else:
                self.drops[name] += v

    # -- internals -------------------------------------------------------------------------------------------
    def _allow(self, addr: Address, now: float) -> bool:
        cfg = self.cfg
        peer = self.peers.get(addr)
        if peer is not None:  # a member's bucket is in the table, where the C path takes from it too
            t, s = self.table, peer.slot
            tokens = min(cfg.rate_burst, t.tokens[s] + (now - t.btime[s]) * cfg.rate_pps)
            t.btime[s] = now
            if tokens < 1.0:
                t.tokens[s] = tokens
                return False
            t.tokens[s] = tokens - 1.0
            return True
        b = self._buckets.get(addr)
        if b is None:
            if len(self._buckets) >= cfg.max_sources:
                del self._buckets[next(iter(self._buckets))]  # evict the oldest: the table stays bounded
            self._buckets[addr] = [cfg.rate_burst - 1.0, now]
            return True
        tokens = min(cfg.rate_burst, b[0] + (now - b[1]) * cfg.rate_pps)
        b[1] = now
        if tokens < 1.0:
            b[0] = tokens
            return False
        b[0] = tokens - 1.0
        return True

    def _send(self, data: bytes, addr: Address) -> None:
        self._out.append((data, addr))
        self.stats["pkts_out"] += 1
        self.stats["bytes_out"] += len(data)

    def _one(self, data: bytes, addr: Address, now: float) -> str | None:
        n = len(data)
        if n > self.cfg.max_datagram:
            return "oversized"
        if n < p.HEADER_SIZE:
            return "malformed"
        magic, version, kind, flags, _r, sid, pid, seq, ts = p.HEADER.unpack_from(data)
        if magic != p.MAGIC:
            return "malformed"
        if version != p.VERSION:
            return "bad_version"
        if kind == _T.DATA_ALL or kind == _T.DATA_ONE or kind == _T.KEEPALIVE or kind == _T.LEAVE:
            peer = self.peers.get(addr)
            if peer is None or peer.session != sid or peer.peer != pid:
                return "unknown_source"
            self.table.last[peer.slot] = now
            sess = self.sessions[sid]
            if kind == _T.DATA_ALL:
                for m in sess.members.values():
                    if m is not peer:
                        self._send(data, m.addr)
            elif kind == _T.DATA_ONE:
                if n < p.HEADER_SIZE + 4:
                    return "malformed"
                target = sess.members.get(int.from_bytes(data[p.HEADER_SIZE : p.HEADER_SIZE + 4], "big"))
                if target is None:
                    return "no_target"
                self._send(data, target.addr)
            elif kind == _T.KEEPALIVE:
                self._send(data, addr)  # same bytes back: never larger than the request
            else:
                self._remove(peer)
                self.stats["leaves"] += 1
            return None
        if kind == _T.ALLOCATE or kind == _T.JOIN:
            return self._handshake(data, addr, now, kind, flags, sid, pid, seq, ts)
        return "unknown_type"

    def _handshake(
        self, data: bytes, addr: Address, now: float, kind: int, flags: int, sid: int, pid: int, seq: int, ts: int
    ) -> str | None:
        if len(data) < p.HANDSHAKE_MIN:
            return "short_handshake"
        try:
            msg = p.decode(data)
        except p.DecodeError:
            return "malformed"
        if msg.cookie is None or not self._cookie_fresh(msg.cookie, now):
            self._send(p.encode_challenge(p.make_cookie(self.cfg.cookie_secret, addr, now), seq, ts), addr)
            self.stats["challenges"] += 1
            return None
        if not p.cookie_ok(self.cfg.cookie_secret, addr, msg.cookie, now):
            return "bad_cookie"  # forged, or made for another address: no answer at all
        # From here the source has proven its address, so a (small) answer is allowed.
        if kind == _T.ALLOCATE:
            return self._allocate(msg, addr, seq, ts)
        return self._join(msg, addr, now, sid, pid, seq, ts)

    def _cookie_fresh(self, cookie: bytes, now: float) -> bool:
        """Issued within the lifetime (MAC not checked yet): a stale cookie earns a new challenge."""
        issued = int.from_bytes(cookie[:4], "big")
        return ((int(now) - issued) & 0xFFFFFFFF) <= p.COOKIE_LIFETIME

    def _reject(self, sid: int, pid: int, reason: p.Reason, addr: Address, seq: int, ts: int) -> str:
        self._send(p.encode_reject(sid, pid, reason, seq, ts), addr)
        return _REASON_DROP[reason]

    def _allocate(self, msg: p.Message, addr: Address, seq: int, ts: int) -> str | None:
        akey = self.cfg.admission_key
        if akey is not None:
            want = p.admission_proof(akey, msg.cookie or b"")
            if msg.proof is None or not hmac.compare_digest(want, msg.proof):
                return self._reject(0, 0, p.Reason.NOT_ADMITTED, addr, seq, ts)
        sid = 0
        while sid == 0 or sid in self.sessions:
            sid = secrets.randbits(32)
        self.stats["allocations"] += 1
        # No state is kept: the session exists once its first member joins with a token minted from the key.
        self._send(p.encode_allocate_reply(sid, p.session_key(self.cfg.key, sid), seq, ts), addr)
        return None

    def _join(self, msg: p.Message, addr: Address, now: float, sid: int, pid: int, seq: int, ts: int) -> str | None:
        sess = self.sessions.get(sid)
        skey = sess.key if sess is not None else p.session_key(self.cfg.key, sid)
        bad = p.check_token(skey, sid, pid, msg.token or b"", now)
        if bad is not None:
            return self._reject(sid, pid, bad, addr, seq, ts)
        current = self.peers.get(addr)
        if current is not None and (current.session != sid or current.peer != pid):
            return self._reject(sid, pid, p.Reason.ADDRESS_IN_USE, addr, seq, ts)
        if sess is not None:
            member = sess.members.get(pid)
            if member is not None:
                if member.addr != addr:
                    return self._reject(sid, pid, p.Reason.TOKEN_IN_USE, addr, seq, ts)
                self.table.last[member.slot] = now  # a retransmitted join: ack again
                self._send(p.encode_join_ack(sid, pid, len(sess.members), int(self.cfg.peer_idle), seq, ts), addr)
                return None
            if len(sess.members) >= self.cfg.max_members:
                return self._reject(sid, pid, p.Reason.SESSION_FULL, addr, seq, ts)
        if len(self.peers) >= self.cfg.max_peers or (sess is None and len(self.sessions) >= self.cfg.max_sessions):
            return self._reject(sid, pid, p.Reason.TABLE_FULL, addr, seq, ts)
        if sess is None:
            sess = self.sessions[sid] = Session(sid, skey)
        # the source's bucket moves into the table with it (and back to the sources when it goes)
        tokens, btime = self._buckets.pop(addr, [self.cfg.rate_burst, now])
        slot = self.table.add(encode_sockaddr(addr, family_of(addr)), sid, pid, tokens, btime, now)
        member = Peer(sid, pid, addr, slot)
        sess.members[pid] = member
        self.peers[addr] = member
        self.stats["joins"] += 1
        self._send(p.encode_join_ack(sid, pid, len(sess.members), int(self.cfg.peer_idle), seq, ts), addr)
        return None

    def _remove(self, peer: Peer) -> None:
        self.peers.pop(peer.addr, None)
        t, s = self.table, peer.slot
        if len(self._buckets) >= self.cfg.max_sources:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[peer.addr] = [t.tokens[s], t.btime[s]]
        t.remove(s)
        sess = self.sessions.get(peer.session)
        if sess is not None:
            sess.members.pop(peer.peer, None)
            if not sess.members:
                del self.sessions[peer.session]


def derive_cookie_secret(key: bytes, salt: bytes) -> bytes:
    """The cookie secret every worker of one relay shares: from the relay key and a per-start random salt."""
    return hmac.new(key, b"iovkit-cookie-v1" + salt, hashlib.sha256).digest()
