"""Wire format, tokens and cookies of the relay protocol: bytes in, bytes out, no sockets."""

from __future__ import annotations

import pytest

from iovkit.traffic import protocol as p

KEY = b"relay-key-for-tests-0123456789ab"
A = ("192.0.2.1", 4000)
B = ("192.0.2.2", 4000)


def test_every_message_type_round_trips() -> None:
    tok = p.mint_token(KEY, 7, 3, 2_000_000_000)
    cookie = p.make_cookie(b"s" * 32, A, 100.0)
    cases: list[tuple[bytes, dict[str, object]]] = [
        (p.encode_data(7, 3, 42, 123456789, b"payload"), {"type": p.MsgType.DATA_ALL, "payload": b"payload"}),
        (p.encode_data(7, 3, 43, 5, b"x", to=9), {"type": p.MsgType.DATA_ONE, "to": 9, "payload": b"x"}),
        (
            p.encode_allocate(1, 2, cookie, b"p" * 32),
            {"type": p.MsgType.ALLOCATE, "cookie": cookie, "proof": b"p" * 32},
        ),
        (p.encode_join(7, 3, tok, cookie), {"type": p.MsgType.JOIN, "token": tok, "cookie": cookie}),
        (p.encode_join(7, 3, tok), {"type": p.MsgType.JOIN, "token": tok, "cookie": None}),
        (p.encode_keepalive(7, 3, 9), {"type": p.MsgType.KEEPALIVE, "seq": 9}),
        (p.encode_leave(7, 3), {"type": p.MsgType.LEAVE}),
        (p.encode_challenge(cookie, 5, 6), {"type": p.MsgType.CHALLENGE, "cookie": cookie, "seq": 5, "ts_ns": 6}),
        (p.encode_allocate_reply(77, b"k" * 32), {"type": p.MsgType.ALLOCATE_REPLY, "session": 77, "key": b"k" * 32}),
        (p.encode_join_ack(7, 3, 2, 30), {"type": p.MsgType.JOIN_ACK, "members": 2, "idle_timeout": 30}),
        (p.encode_reject(7, 3, p.Reason.EXPIRED), {"type": p.MsgType.REJECT, "reason": p.Reason.EXPIRED}),
    ]
    for buf, want in cases:
        msg = p.decode(buf)
        for k, v in want.items():
            assert getattr(msg, k) == v, (k, buf)
    data = p.decode(cases[0][0])
    assert (data.session, data.peer, data.seq, data.ts_ns) == (7, 3, 42, 123456789)


def test_header_is_32_bytes_and_handshakes_are_padded() -> None:
    assert p.HEADER_SIZE == 32
    assert len(p.encode_data(1, 2, 3, 4)) == 32
    assert len(p.encode_allocate()) == p.HANDSHAKE_MIN
    assert len(p.encode_join(1, 2, p.mint_token(KEY, 1, 2, 10))) == p.HANDSHAKE_MIN
    # nothing the relay sends to an unproven source is bigger than a padded handshake
    assert len(p.encode_challenge(p.make_cookie(b"s", A, 0))) < p.HANDSHAKE_MIN


@pytest.mark.parametrize(
    "buf, why",
    [
        (b"", "shorter"),
        (b"IV" + bytes(29), "shorter"),
        (b"XX" + bytes(30), "magic"),
        (p.header(6, 0, 0, 0, 0)[:2] + b"\x02" + p.header(6, 0, 0, 0, 0)[3:], "version"),
        (p.header(99, 0, 0, 0, 0), "unknown message type"),
        (p.header(p.MsgType.DATA_ONE, 1, 1, 0, 0) + b"\x00", "needs 4"),
        (p.header(p.MsgType.JOIN, 1, 1, 0, 0) + bytes(10), "needs 40"),
        (p.header(p.MsgType.REJECT, 1, 1, 0, 0) + b"\x00\x63", "reason"),
    ],
)
def test_malformed_datagrams_raise_decode_error(buf: bytes, why: str) -> None:
    with pytest.raises(p.DecodeError, match=why):
        p.decode(buf)


def test_token_checks_signature_binding_and_expiry() -> None:
    skey = p.session_key(KEY, 7)
    tok = p.mint_token(KEY, 7, 3, 1000)
    assert p.check_token(skey, 7, 3, tok, now=999.0) is None
    assert p.check_token(skey, 7, 3, tok, now=1000.5) is p.Reason.EXPIRED
    assert p.check_token(skey, 7, 4, tok, now=0) is p.Reason.BAD_TOKEN  # another peer
    assert p.check_token(p.session_key(KEY, 8), 8, 3, tok, now=0) is p.Reason.BAD_TOKEN  # another session
    forged = tok[:-1] + bytes([tok[-1] ^ 1])
    assert p.check_token(skey, 7, 3, forged, now=0) is p.Reason.BAD_TOKEN
    longer = p.mint_token(KEY, 7, 3, 1000)[:8].replace(b"\x03\xe8", b"\xff\xff") + tok[8:]  # expiry edited
    assert p.check_token(skey, 7, 3, longer, now=0) is p.Reason.BAD_TOKEN
    assert p.check_token(skey, 7, 3, tok[:20], now=0) is p.Reason.BAD_TOKEN
    other_key = p.mint_token(b"x" * 32, 7, 3, 1000)
    assert p.check_token(skey, 7, 3, other_key, now=0) is p.Reason.BAD_TOKEN


def test_session_key_holder_mints_tokens_for_its_session_only() -> None:
    skey = p.session_key(KEY, 55)
    assert p.mint_session_token(skey, 55, 1, 50) == p.mint_token(KEY, 55, 1, 50)
    assert p.check_token(p.session_key(KEY, 56), 56, 1, p.mint_session_token(skey, 56, 1, 50), 0) is p.Reason.BAD_TOKEN


def test_cookie_is_bound_to_address_and_time() -> None:
    secret = b"c" * 32
    c = p.make_cookie(secret, A, 1000.0)
    assert p.cookie_ok(secret, A, c, 1000.0)
    assert p.cookie_ok(secret, A, c, 1000.0 + p.COOKIE_LIFETIME)
    assert not p.cookie_ok(secret, A, c, 1001.0 + p.COOKIE_LIFETIME)
    assert not p.cookie_ok(secret, B, c, 1000.0)
    assert not p.cookie_ok(b"d" * 32, A, c, 1000.0)
    assert not p.cookie_ok(secret, A, c[:-1] + bytes([c[-1] ^ 1]), 1000.0)


def test_joiner_follows_challenge_then_ack() -> None:
    j = p.Joiner(7, 3, p.mint_token(KEY, 7, 3, 10))
    first = p.decode(j.first())
    assert first.cookie is None
    cookie = p.make_cookie(b"s" * 32, A, 0)
    again = j.on_reply(p.encode_challenge(cookie))
    assert again is not None and p.decode(again).cookie == cookie
    assert j.on_reply(b"garbage") is None
    assert j.on_reply(p.encode_join_ack(7, 4, 2, 30)) is None and not j.joined  # someone else's ack
    j.on_reply(p.encode_join_ack(7, 3, 2, 30))
    assert j.joined and j.members == 2
    k = p.Joiner(7, 3, p.mint_token(KEY, 7, 3, 10))
    k.on_reply(p.encode_reject(7, 3, p.Reason.TOKEN_IN_USE))
    assert k.rejected is p.Reason.TOKEN_IN_USE and not k.joined
