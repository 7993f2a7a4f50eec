"""RelayCore driven by hand: fake addresses, a fake clock, no sockets (aioquic style)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iovkit.traffic import protocol as p
from iovkit.traffic.relaycore import RelayConfig, RelayCore

KEY = b"relay-key-for-tests-0123456789ab"
A = ("198.51.100.1", 1111)
B = ("198.51.100.2", 2222)
C = ("198.51.100.3", 3333)
ATTACKER = ("203.0.113.66", 6666)
NOW = 1_700_000_000.0
EXPIRY = int(NOW) + 3600


def core(**kw: Any) -> RelayCore:
    return RelayCore(RelayConfig(key=KEY, **kw))


def send(c: RelayCore, data: bytes, addr: Any, now: float = NOW) -> list[tuple[bytes, Any]]:
    c.on_datagrams([(data, addr)], now)
    return c.datagrams_to_send()


def join(c: RelayCore, sid: int, pid: int, addr: Any, token: bytes | None = None, now: float = NOW) -> p.Joiner:
    j = p.Joiner(sid, pid, token or p.mint_token(KEY, sid, pid, EXPIRY))
    out = send(c, j.first(), addr, now)
    assert len(out) == 1 and out[0][1] == addr
    nxt = j.on_reply(out[0][0])
    assert nxt is not None
    for data, to in send(c, nxt, addr, now):
        assert to == addr
        j.on_reply(data)
    return j


def test_two_peers_join_and_exchange_data() -> None:
    c = core()
    assert join(c, 7, 1, A).joined
    jb = join(c, 7, 2, B)
    assert jb.joined and jb.members == 2
    msg = p.encode_data(7, 1, 10, 123, b"hello")
    assert send(c, msg, A) == [(msg, B)]  # forwarded byte for byte: seq and ts survive
    to_one = p.encode_data(7, 2, 11, 456, b"direct", to=1)
    assert send(c, to_one, B) == [(to_one, A)]
    assert send(c, p.encode_data(7, 2, 12, 0, b"?", to=9), B) == []
    assert c.drops["no_target"] == 1


def test_keepalive_is_echoed_and_leave_removes_the_peer() -> None:
    c = core()
    join(c, 7, 1, A)
    join(c, 7, 2, B)
    ka = p.encode_keepalive(7, 1, 5)
    assert send(c, ka, A) == [(ka, A)]
    assert send(c, p.encode_leave(7, 1), A) == []
    assert send(c, p.encode_data(7, 2, 1, 0, b"x"), B) == []  # nobody left to receive
    assert set(c.peers) == {B}
    send(c, p.encode_leave(7, 2), B)
    assert c.sessions == {} and c.peers == {}


def test_forged_token_is_rejected() -> None:
    c = core()
    forged = p.mint_token(b"not-the-relay-key-000000000000000", 7, 1, EXPIRY)
    j = join(c, 7, 1, A, token=forged)
    assert not j.joined and j.rejected is p.Reason.BAD_TOKEN
    assert c.peers == {} and c.drops["bad_token"] == 1


def test_expired_token_is_rejected() -> None:
    c = core()
    j = join(c, 7, 1, A, token=p.mint_token(KEY, 7, 1, int(NOW) - 1))
    assert j.rejected is p.Reason.EXPIRED and c.peers == {}


def test_token_replayed_from_another_address_is_rejected() -> None:
    c = core()
    tok = p.mint_token(KEY, 7, 1, EXPIRY)
    join(c, 7, 1, A, token=tok)
    thief = join(c, 7, 1, ATTACKER, token=tok)  # it proves its own address but the token is taken
    assert thief.rejected is p.Reason.TOKEN_IN_USE and not thief.joined
    join(c, 7, 2, B)
    out = send(c, p.encode_data(7, 2, 1, 0, b"secret"), B)
    assert [to for _, to in out] == [A]


def test_a_replayed_join_with_a_cookie_for_another_address_gets_no_answer() -> None:
    c = core()
    j = p.Joiner(7, 1, p.mint_token(KEY, 7, 1, EXPIRY))
    ((challenge, _),) = send(c, j.first(), A)
    with_cookie = j.on_reply(challenge)
    assert with_cookie is not None
    assert send(c, with_cookie, ATTACKER) == []  # the cookie proves A, not the attacker
    assert c.drops["bad_cookie"] == 1 and c.peers == {}


def test_unproven_sources_get_nothing_but_a_smaller_challenge() -> None:
    c = core()
    join(c, 7, 1, A)
    join(c, 7, 2, B)
    # data, keepalive, leave and to-one from a non-member (or a member's ids from another address): silence
    for msg in (
        p.encode_data(7, 1, 0, 0, b"x" * 100),
        p.encode_keepalive(7, 1),
        p.encode_leave(7, 2),
        p.encode_data(7, 1, 0, 0, b"x", to=2),
    ):
        assert send(c, msg, C) == []
    assert c.drops["unknown_source"] == 4 and set(c.peers) == {A, B}
    # a handshake that is not padded would let a challenge amplify: dropped
    short = p.encode_join(7, 3, p.mint_token(KEY, 7, 3, EXPIRY))[: p.HEADER_SIZE + p.TOKEN_SIZE]
    assert send(c, short, C) == []
    assert c.drops["short_handshake"] == 1
    out = send(c, p.encode_allocate(), C)
    assert len(out) == 1 and len(out[0][0]) <= p.HANDSHAKE_MIN and p.decode(out[0][0]).type is p.MsgType.CHALLENGE


def test_allocate_needs_the_admission_proof_when_a_key_is_set() -> None:
    akey = b"admission-key-0123456789abcdefgh"
    c = core(admission_key=akey)
    ((challenge, _),) = send(c, p.encode_allocate(), A)
    cookie = p.decode(challenge).cookie
    assert cookie is not None
    ((reply, _),) = send(c, p.encode_allocate(cookie=cookie), A)
    assert p.decode(reply).reason is p.Reason.NOT_ADMITTED
    ((reply, _),) = send(c, p.encode_allocate(cookie=cookie, proof=p.admission_proof(b"wrong" * 7, cookie)), A)
    assert p.decode(reply).reason is p.Reason.NOT_ADMITTED
    ((reply, _),) = send(c, p.encode_allocate(cookie=cookie, proof=p.admission_proof(akey, cookie)), A)
    got = p.decode(reply)
    assert got.type is p.MsgType.ALLOCATE_REPLY and got.key == p.session_key(KEY, got.session)
    # the allocator mints tokens for its own session with the key it got, and peers join with them
    assert join(c, got.session, 1, A, token=p.mint_session_token(got.key, got.session, 1, EXPIRY)).joined
    assert join(c, got.session, 2, B, token=p.mint_session_token(got.key, got.session, 2, EXPIRY)).joined
    # a proof is bound to its cookie, hence to one address: replayed from elsewhere it is refused
    ((ch2, _),) = send(c, p.encode_allocate(), C)
    c_cookie = p.decode(ch2).cookie
    ((reply, _),) = send(c, p.encode_allocate(cookie=c_cookie, proof=p.admission_proof(akey, cookie)), C)
    assert p.decode(reply).reason is p.Reason.NOT_ADMITTED


def test_idle_peers_expire_on_the_timer() -> None:
    c = core(peer_idle=30.0)
    join(c, 7, 1, A)
    join(c, 7, 2, B)
    assert c.next_deadline() == NOW + 1.0
    send(c, p.encode_keepalive(7, 1), A, now=NOW + 20)
    c.on_timer(NOW + 31)
    assert set(c.peers) == {A} and c.stats["expired_peers"] == 1
    c.on_timer(NOW + 51)
    assert c.peers == {} and c.sessions == {}


def test_tables_are_bounded() -> None:
    c = core(max_members=2, max_peers=3, max_sessions=2)
    join(c, 1, 1, ("10.0.0.1", 1))
    join(c, 1, 2, ("10.0.0.2", 1))
    assert join(c, 1, 3, ("10.0.0.3", 1)).rejected is p.Reason.SESSION_FULL
    join(c, 2, 1, ("10.0.0.4", 1))
    assert join(c, 3, 1, ("10.0.0.5", 1)).rejected is p.Reason.TABLE_FULL  # sessions at cap, peers at cap
    assert len(c.peers) == 3 and len(c.sessions) == 2


def test_per_source_rate_limit() -> None:
    c = core(rate_pps=100.0, rate_burst=10.0)
    join(c, 7, 1, A)
    join(c, 7, 2, B)
    batch = [(p.encode_data(7, 1, i, 0, b"x"), A) for i in range(50)]
    c.on_datagrams(batch, NOW)
    assert len(c.datagrams_to_send()) < 10
    assert c.drops["rate_limited"] > 40
    c.on_datagrams(batch[:5], NOW + 1.0)  # a second later the bucket has refilled
    assert len(c.datagrams_to_send()) == 5


def test_spoofed_flood_keeps_tables_bounded_and_never_amplifies() -> None:
    c = core(max_sources=1000)
    join(c, 7, 1, A)
    join(c, 7, 2, B)
    rng = random.Random(1)
    tok = p.mint_token(KEY, 9, 1, EXPIRY)
    kinds = [
        p.encode_join(9, 1, tok),
        p.encode_allocate(),
        p.encode_data(7, 1, 0, 0, b"z" * 200),
        p.encode_keepalive(7, 2),
        p.encode_join(9, 1, tok)[:60],
        p.encode_allocate(cookie=bytes(24)),
    ]
    sizes: dict[Any, int] = {}
    total_out = 0
    for step in range(100):
        batch = []
        for _ in range(1000):
            src = (f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}", rng.randrange(1, 65536))
            data = rng.choice(kinds)
            sizes[src] = len(data)
            batch.append((data, src))
        c.on_datagrams(batch, NOW + step * 0.01)
        for data, to in c.datagrams_to_send():
            assert to in sizes and len(data) <= sizes[to]  # only challenges, each no bigger than its request
            assert p.decode(data).type is p.MsgType.CHALLENGE
            total_out += len(data)
        assert len(c._buckets) <= 1000
    assert set(c.peers) == {A, B} and set(c.sessions) == {7}
    assert c.stats["pkts_in"] >= 100_000 and c.stats["bytes_out"] < c.stats["bytes_in"]


# --- fuzz: 100,000+ random datagrams raise nothing ----------------------------------------------------------------
_VALID = [
    p.encode_data(7, 1, 1, 1, b"abc"),
    p.encode_data(7, 1, 1, 1, b"abcd", to=2),
    p.encode_keepalive(7, 1),
    p.encode_leave(7, 2),
    p.encode_allocate(),
    p.encode_join(7, 3, p.mint_token(KEY, 7, 3, EXPIRY)),
    p.encode_allocate(cookie=bytes(24), proof=bytes(32)),
    p.encode_challenge(bytes(24)),
    p.encode_join_ack(7, 1, 1, 1),
    p.encode_reject(7, 1, p.Reason.BAD_TOKEN),
]


def _mutate(rng: random.Random, base: bytes) -> bytes:
    buf = bytearray(base)
    for _ in range(rng.randrange(4)):
        op = rng.randrange(4)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:
            del buf[rng.randrange(len(buf) + 1) :]
        elif op == 2:
            buf += rng.randbytes(rng.randrange(64))
        elif len(buf) > 3:
            buf[3] = rng.randrange(16)  # another message type on the same body
    return bytes(buf)


@settings(max_examples=110, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), head=st.binary(max_size=80), proven=st.booleans())
def test_random_datagrams_never_raise(seed: int, head: bytes, proven: bool) -> None:
    rng = random.Random(seed)
    c = core(rate_pps=1e9, rate_burst=1e9)
    if proven:
        join(c, 7, 1, A)
        join(c, 7, 2, B)
    srcs = [A, B, C, ATTACKER]
    before = c.stats["pkts_in"]
    batch = [(head, C)]
    for _ in range(1000):
        r = rng.random()
        if r < 0.3:
            data = rng.randbytes(rng.randrange(0, 120))
        elif r < 0.4:
            data = b"IV\x01" + rng.randbytes(rng.randrange(0, 120))
        else:
            data = _mutate(rng, rng.choice(_VALID))
        batch.append((data, rng.choice(srcs)))
    c.on_datagrams(batch, NOW)
    for data, to in c.datagrams_to_send():
        if to not in c.peers and to not in (A, B):
            # an unproven source only ever gets a challenge no bigger than the handshake minimum
            assert len(data) <= p.HANDSHAKE_MIN
    c.on_timer(NOW + 1000)
    assert c.stats["pkts_in"] - before == 1001
