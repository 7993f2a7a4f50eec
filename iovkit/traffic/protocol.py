"""The iovkit relay wire protocol, version 1: encode/decode, join tokens, address cookies (no I/O, no clock).

docs/protocol.md is the full description. Every datagram starts with a 32-byte header, network byte order:

    magic u16 0x4956 ("IV") | version u8 (1) | type u8 | flags u16 | reserved u16 (0) |
    session u32 | peer u32 | seq u64 | ts_ns u64

`seq` and `ts_ns` are the sender's: the relay forwards DATA datagrams byte for byte, so a receiver reads the
original sender's peer id, sequence number and send timestamp (the load generator's one-way latency).

Stable API (the load generator depends on it; additive changes only):

    HEADER (struct.Struct), HEADER_SIZE = 32, HANDSHAKE_MIN = 96, COOKIE_SIZE = 24, TOKEN_SIZE = 40
    MsgType (IntEnum), Flag (IntFlag), Reason (IntEnum), Message (dataclass), DecodeError (ValueError)
    decode(buf) -> Message                                  raises DecodeError on anything malformed
    encode_data(session, peer, seq, ts_ns, payload, to=None) -> bytes       DATA_ALL, or DATA_ONE with to=peer id
    encode_allocate(seq=0, ts_ns=0, cookie=None, proof=None) -> bytes       padded to HANDSHAKE_MIN
    encode_join(session, peer, token, cookie=None, seq=0, ts_ns=0) -> bytes padded to HANDSHAKE_MIN
    encode_keepalive(session, peer, seq=0, ts_ns=0), encode_leave(session, peer, seq=0, ts_ns=0)
    relay side: encode_challenge, encode_allocate_reply, encode_join_ack, encode_reject
    mint_token(relay_key, session, peer, expiry) -> bytes    expiry in unix seconds; TOKEN_SIZE bytes
    mint_session_token(session_key, session, peer, expiry)   what an allocator (holding the session key) uses
    session_key(relay_key, session) -> bytes;  check_token(...) -> Reason | None
    admission_proof(admission_key, cookie) -> bytes
    make_cookie(secret, addr, now) -> bytes;  cookie_ok(secret, addr, cookie, now) -> bool
    Joiner: a sans-IO client handshake (join -> challenge -> join with cookie -> JOIN_ACK / REJECT)

Why cookies: UDP source addresses are forgeable. A first ALLOCATE/JOIN from an address gets only a CHALLENGE that
is smaller than the (padded) request, carrying a stateless cookie bound to that address; only a request that
echoes a valid cookie proves the sender receives at that address, and only then does the relay keep state for it,
answer with anything else, or forward to it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

MAGIC = 0x4956
VERSION = 1
HEADER = struct.Struct("!HBBHHIIQQ")
HEADER_SIZE = HEADER.size  # 32
HANDSHAKE_MIN = 96  # ALLOCATE and JOIN are padded to this, so no answer to them is bigger than the request
COOKIE_SIZE = 24  # issued u32 (relay seconds) | pad u32 | mac 16
COOKIE_LIFETIME = 120.0  # seconds a cookie proves an address
TOKEN_SIZE = 40  # expiry u64 | mac 32
KEY_SIZE = 32
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_COOKIE = struct.Struct("!II16s")
_ACK = struct.Struct("!HH")
_REASON = struct.Struct("!H")


class MsgType(IntEnum):
    ALLOCATE = 1  # client -> relay: ask for a session id and its session key
    ALLOCATE_REPLY = 2  # relay -> client (address proven): session in header, body = session key
    CHALLENGE = 3  # relay -> client (unproven): body = cookie; seq/ts_ns echo the request's
    JOIN = 4  # client -> relay: body = token [| cookie]
    JOIN_ACK = 5  # relay -> client: body = members u16 | idle timeout s u16
    DATA_ALL = 6  # client -> relay -> every other member: body = payload
    DATA_ONE = 7  # client -> relay -> one member: body = to-peer u32 | payload
    KEEPALIVE = 8  # client -> relay, echoed back unchanged to a member
    LEAVE = 9  # client -> relay: no reply
    REJECT = 10  # relay -> client (address proven): body = reason u16


class Flag(IntFlag):
    NONE = 0
    COOKIE = 1  # the body carries an address cookie (ALLOCATE, JOIN)
    PROOF = 2  # ALLOCATE carries an admission proof


class Reason(IntEnum):
    BAD_TOKEN = 1
    EXPIRED = 2
    TOKEN_IN_USE = 3  # the (session, peer) is bound to another address
    SESSION_FULL = 4
    TABLE_FULL = 5
    NOT_ADMITTED = 6
    ADDRESS_IN_USE = 7  # this address already is another peer


class DecodeError(ValueError):
    """A datagram that is not a well-formed v1 message."""


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded datagram. Fields that do not apply to the type are None."""

    type: MsgType
    flags: int
    session: int
    peer: int
    seq: int
    ts_ns: int
    payload: bytes = b""  # DATA_ALL/DATA_ONE application bytes
    to: int | None = None  # DATA_ONE target peer
    cookie: bytes | None = None  # ALLOCATE/JOIN with Flag.COOKIE, CHALLENGE
    token: bytes | None = None  # JOIN
    proof: bytes | None = None  # ALLOCATE with Flag.PROOF
    key: bytes | None = None  # ALLOCATE_REPLY session key
    members: int | None = None  # JOIN_ACK
    idle_timeout: int | None = None  # JOIN_ACK
    reason: Reason | None = None  # REJECT


def header(kind: int, session: int, peer: int, seq: int, ts_ns: int, flags: int = 0) -> bytes:
    return HEADER.pack(
        MAGIC, VERSION, kind, flags, 0, session, peer, seq & 0xFFFFFFFFFFFFFFFF, ts_ns & 0xFFFFFFFFFFFFFFFF
    )


def _pad(buf: bytes) -> bytes:
    return buf + bytes(HANDSHAKE_MIN - len(buf)) if len(buf) < HANDSHAKE_MIN else buf


# -- encoders --------------------------------------------------------------------------------------------------
def encode_data(session: int, peer: int, seq: int, ts_ns: int, payload: bytes = b"", to: int | None = None) -> bytes:
    """DATA_ALL (to every other member) or, with `to`, DATA_ONE (to that member)."""
    if to is None:
        return header(MsgType.DATA_ALL, session, peer, seq, ts_ns) + payload
    return header(MsgType.DATA_ONE, session, peer, seq, ts_ns) + _U32.pack(to) + payload


def encode_allocate(seq: int = 0, ts_ns: int = 0, cookie: bytes | None = None, proof: bytes | None = None) -> bytes:
    flags = (Flag.COOKIE if cookie else 0) | (Flag.PROOF if proof else 0)
    return _pad(header(MsgType.ALLOCATE, 0, 0, seq, ts_ns, flags) + (cookie or b"") + (proof or b""))


def encode_join(
    session: int, peer: int, token: bytes, cookie: bytes | None = None, seq: int = 0, ts_ns: int = 0
) -> bytes:
    if len(token) != TOKEN_SIZE:
        raise ValueError(f"a token is {TOKEN_SIZE} bytes, not {len(token)}")
    flags = Flag.COOKIE if cookie else 0
    return _pad(header(MsgType.JOIN, session, peer, seq, ts_ns, flags) + token + (cookie or b""))


def encode_keepalive(session: int, peer: int, seq: int = 0, ts_ns: int = 0) -> bytes:
    return header(MsgType.KEEPALIVE, session, peer, seq, ts_ns)


def encode_leave(session: int, peer: int, seq: int = 0, ts_ns: int = 0) -> bytes:
    return header(MsgType.LEAVE, session, peer, seq, ts_ns)


def encode_challenge(cookie: bytes, seq: int = 0, ts_ns: int = 0) -> bytes:
    return header(MsgType.CHALLENGE, 0, 0, seq, ts_ns) + cookie


def encode_allocate_reply(session: int, key: bytes, seq: int = 0, ts_ns: int = 0) -> bytes:
    return header(MsgType.ALLOCATE_REPLY, session, 0, seq, ts_ns) + key


def encode_join_ack(session: int, peer: int, members: int, idle_timeout: int, seq: int = 0, ts_ns: int = 0) -> bytes:
    return header(MsgType.JOIN_ACK, session, peer, seq, ts_ns) + _ACK.pack(
        min(members, 0xFFFF), min(idle_timeout, 0xFFFF)
    )


def encode_reject(session: int, peer: int, reason: Reason, seq: int = 0, ts_ns: int = 0) -> bytes:
    return header(MsgType.REJECT, session, peer, seq, ts_ns) + _REASON.pack(int(reason))


# -- decoder ---------------------------------------------------------------------------------------------------
def decode(buf: bytes) -> Message:
    """Parse one datagram; DecodeError names what is wrong. Trailing bytes are padding for handshakes."""
    if len(buf) < HEADER_SIZE:
        raise DecodeError(f"datagram of {len(buf)} bytes is shorter than the {HEADER_SIZE}-byte header")
    magic, version, kind, flags, _rsv, session, peer, seq, ts = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise DecodeError(f"bad magic 0x{magic:04x}")
    if version != VERSION:
        raise DecodeError(f"unsupported version {version}")
    try:
        t = MsgType(kind)
    except ValueError:
        raise DecodeError(f"unknown message type {kind}") from None
    body = buf[HEADER_SIZE:]
    base: dict[str, Any] = {"type": t, "flags": flags, "session": session, "peer": peer, "seq": seq, "ts_ns": ts}

    def need(n: int) -> None:
        if len(body) < n:
            raise DecodeError(f"{t.name} body of {len(body)} bytes, needs {n}")

    if t is MsgType.DATA_ALL:
        return Message(**base, payload=bytes(body))
    if t is MsgType.DATA_ONE:
        need(4)
        return Message(**base, to=_U32.unpack_from(body)[0], payload=bytes(body[4:]))
    if t is MsgType.ALLOCATE:
        off = 0
        cookie = proof = None
        if flags & Flag.COOKIE:
            need(COOKIE_SIZE)
            cookie, off = bytes(body[:COOKIE_SIZE]), COOKIE_SIZE
        if flags & Flag.PROOF:
            need(off + KEY_SIZE)
            proof = bytes(body[off : off + KEY_SIZE])
        return Message(**base, cookie=cookie, proof=proof)
    if t is MsgType.JOIN:
        need(TOKEN_SIZE + (COOKIE_SIZE if flags & Flag.COOKIE else 0))
        cookie = bytes(body[TOKEN_SIZE : TOKEN_SIZE + COOKIE_SIZE]) if flags & Flag.COOKIE else None
        return Message(**base, token=bytes(body[:TOKEN_SIZE]), cookie=cookie)
    if t is MsgType.CHALLENGE:
        need(COOKIE_SIZE)
        return Message(**base, cookie=bytes(body[:COOKIE_SIZE]))
    if t is MsgType.ALLOCATE_REPLY:
        need(KEY_SIZE)
        return Message(**base, key=bytes(body[:KEY_SIZE]))
    if t is MsgType.JOIN_ACK:
        need(_ACK.size)
        members, idle = _ACK.unpack_from(body)
        return Message(**base, members=members, idle_timeout=idle)
    if t is MsgType.REJECT:
        need(_REASON.size)
        code = _REASON.unpack_from(body)[0]
        try:
            return Message(**base, reason=Reason(code))
        except ValueError:
            raise DecodeError(f"unknown reject reason {code}") from None
    return Message(**base)  # KEEPALIVE, LEAVE


# -- tokens, keys, proofs, cookies -----------------------------------------------------------------------------
def session_key(relay_key: bytes, session: int) -> bytes:
    """The per-session key an allocator gets: it can mint join tokens for its session and no other."""
    return hmac.new(relay_key, b"iovkit-session-v1" + _U32.pack(session), hashlib.sha256).digest()


def mint_session_token(skey: bytes, session: int, peer: int, expiry: int) -> bytes:
    """A join token for (session, peer) valid until `expiry` (unix seconds), signed with the session key."""
    body = struct.pack("!IIQ", session, peer, expiry)
    return _U64.pack(expiry) + hmac.new(skey, b"iovkit-join-v1" + body, hashlib.sha256).digest()


def mint_token(relay_key: bytes, session: int, peer: int, expiry: int) -> bytes:
    """A join token minted by whoever holds the relay key (a backend, tests, the load generator)."""
    return mint_session_token(session_key(relay_key, session), session, peer, expiry)


def check_token(skey: bytes, session: int, peer: int, token: bytes, now: float) -> Reason | None:
    """None if `token` admits (session, peer) at wall time `now`; else why not. Constant-time MAC compare."""
    if len(token) != TOKEN_SIZE:
        return Reason.BAD_TOKEN
    expiry = _U64.unpack_from(token)[0]
    want = mint_session_token(skey, session, peer, expiry)
    if not hmac.compare_digest(want, token):
        return Reason.BAD_TOKEN
    if expiry < now:
        return Reason.EXPIRED
    return None


def admission_proof(admission_key: bytes, cookie: bytes) -> bytes:
    """Proof that an allocator holds the admission key, bound to its address cookie (so it cannot be replayed
    from elsewhere or later)."""
    return hmac.new(admission_key, b"iovkit-alloc-v1" + cookie, hashlib.sha256).digest()


def _addr_bytes(addr: Any) -> bytes:
    return f"{addr[0]}|{addr[1]}".encode()


def make_cookie(secret: bytes, addr: Any, now: float) -> bytes:
    """A stateless cookie binding `addr` to the relay time `now` (seconds); any worker holding `secret` checks it."""
    issued = int(now) & 0xFFFFFFFF
    mac = hmac.new(secret, _U32.pack(issued) + _addr_bytes(addr), hashlib.sha256).digest()[:16]
    return _COOKIE.pack(issued, 0, mac)


def cookie_ok(secret: bytes, addr: Any, cookie: bytes, now: float, lifetime: float = COOKIE_LIFETIME) -> bool:
    """True if `cookie` was made for `addr` by a holder of `secret` no more than `lifetime` seconds ago."""
    if len(cookie) != COOKIE_SIZE:
        return False
    issued, _, mac = _COOKIE.unpack(cookie)
    want = hmac.new(secret, _U32.pack(issued) + _addr_bytes(addr), hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(want, mac):
        return False
    age = (int(now) - issued) & 0xFFFFFFFF
    return age <= lifetime


# -- client side -----------------------------------------------------------------------------------------------
class Joiner:
    """Sans-IO client handshake for one peer: send `first()`, feed each reply to `on_reply()`.

    on_reply returns the next datagram to send (the join with the cookie) or None; `.joined` / `.rejected` tell
    the outcome. Retransmission is the caller's: call `first()` (or resend the last datagram) after a timeout.
    """

    def __init__(self, session: int, peer: int, token: bytes, seq: int = 0) -> None:
        self.session, self.peer, self.token, self.seq = session, peer, token, seq
        self.cookie: bytes | None = None
        self.joined = False
        self.rejected: Reason | None = None
        self.members = 0

    def first(self, ts_ns: int = 0) -> bytes:
        return encode_join(self.session, self.peer, self.token, self.cookie, self.seq, ts_ns)

    def on_reply(self, buf: bytes, ts_ns: int = 0) -> bytes | None:
        try:
            msg = decode(buf)
        except DecodeError:
            return None
        if msg.type is MsgType.CHALLENGE and msg.cookie:
            self.cookie = msg.cookie
            return self.first(ts_ns)
        if msg.session != self.session or msg.peer != self.peer:
            return None
        if msg.type is MsgType.JOIN_ACK:
            self.joined, self.members = True, msg.members or 0
        elif msg.type is MsgType.REJECT:
            self.rejected = msg.reason
        return None
