"""BatchSocket on real loopback sockets (IPv4 and IPv6), native recvmmsg/sendmmsg and the recvfrom/sendto fallback."""

from __future__ import annotations

import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iovkit.traffic.mmsg import HAVE_FASTPATH, HAVE_MMSG, BatchSocket, decode_sockaddr, encode_sockaddr, open_udp
from iovkit.traffic.reflector import Reflector

FAMILIES = ["127.0.0.1", "::1"]
MODES = [pytest.param(True, id="native"), pytest.param(False, id="fallback")]
# The one-datagram echo loop: in C (iovkit/traffic/_fastpath.c) and the same loop in Python, which must agree.
_NO_C = pytest.mark.skipif(not HAVE_FASTPATH, reason="_fastpath not built")
LOOPS = [pytest.param(True, id="C", marks=_NO_C), pytest.param(False, id="python")]
# echo(): (native, fastpath): recvmmsg/sendmmsg driven from C, the same through ctypes, recvfrom/sendto
ECHO_MODES = [
    pytest.param((True, True), id="native-C", marks=_NO_C),
    pytest.param((True, False), id="native-python"),
    pytest.param((False, False), id="fallback"),
]


def _has_ipv6() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture(params=FAMILIES)
def host(request: pytest.FixtureRequest) -> str:
    if ":" in request.param and not _has_ipv6():
        pytest.skip("no IPv6 loopback")
    return str(request.param)


@pytest.fixture
def pair(host: str) -> Iterator[tuple[socket.socket, socket.socket]]:
    a = open_udp(host, 0, rcvtimeo=0.5)
    b = open_udp(host, 0, rcvtimeo=0.5)
    yield a, b
    a.close()
    b.close()


def drain(bs: BatchSocket, want: int) -> list[tuple[bytes, tuple]]:
    got: list[tuple[bytes, tuple]] = []
    while len(got) < want:
        chunk = bs.recv(timeout=2.0)
        if not chunk:
            break
        got.extend(chunk)
    return got


def test_libc_has_mmsg_on_linux() -> None:
    assert HAVE_MMSG


@pytest.mark.parametrize("native", MODES)
def test_batches_arrive_whole_in_order_with_source_address(pair, native: bool) -> None:
    a, b = pair
    rx, tx = BatchSocket(a, batch=16, native=native), BatchSocket(b, batch=16, native=native)
    items = [(f"msg-{i}".encode() * (i % 7 + 1), a.getsockname()) for i in range(100)]
    assert tx.send(items) == 100  # more than one batch: the sender loops
    first = rx.recv(timeout=2.0)
    assert 1 <= len(first) <= 16  # one call never returns more than the batch
    got = first + drain(rx, 100 - len(first))
    assert [d for d, _ in got] == [d for d, _ in items]
    assert {addr[:2] for _, addr in got} == {b.getsockname()[:2]}


@pytest.mark.parametrize("native", MODES)
def test_kernel_receive_timestamps_are_wall_clock_ns(pair, native: bool) -> None:
    a, b = pair
    rx, tx = BatchSocket(a, timestamps=True, native=native), BatchSocket(b, native=native)
    before = time.time_ns()
    tx.send([(b"t", a.getsockname())])
    ((data, _addr, ts),) = rx.recv_ts(timeout=2.0)
    assert data == b"t"
    assert ts >= before - 1_000_000_000 and ts <= time.time_ns() + 1_000_000_000


@pytest.mark.parametrize("native", MODES)
def test_datagram_longer_than_the_buffer_is_dropped_and_counted(pair, native: bool) -> None:
    a, b = pair
    rx, tx = BatchSocket(a, bufsize=512, native=native), BatchSocket(b, bufsize=512, native=native)
    assert tx.send([(b"x" * 2000, a.getsockname()), (b"small", a.getsockname())]) == 2
    got = drain(rx, 1)
    assert [d for d, _ in got] == [b"small"]
    assert rx.truncated == 1


@pytest.mark.parametrize("mode", ECHO_MODES)
def test_echo_returns_each_datagram_to_its_sender(pair, mode: tuple[bool, bool]) -> None:
    native, fast = mode
    a, b = pair
    host = a.getsockname()[0]
    c = open_udp(host, 0, rcvtimeo=0.5)
    refl = Reflector(BatchSocket(a, native=native, fastpath=fast))
    tb, tc = BatchSocket(b), BatchSocket(c)
    tb.send([(b"from-b-%d" % i, a.getsockname()) for i in range(5)])
    tc.send([(b"from-c", a.getsockname())])
    seen = 0
    while seen < 6:
        n, sent, _ = refl.echo(timeout=2.0)
        assert n == sent
        assert n
        seen += n
    assert sorted(d for d, _ in drain(tb, 5)) == sorted(b"from-b-%d" % i for i in range(5))
    assert [d for d, _ in drain(tc, 1)] == [b"from-c"]
    c.close()


def test_nonblocking_and_timeout_receive_return_empty(pair) -> None:
    a, _b = pair
    blocking = BatchSocket(a)
    assert blocking.recv() == []  # SO_RCVTIMEO ends the wait
    assert blocking.recv(timeout=0.01) == []
    a.setblocking(False)
    assert BatchSocket(a).recv() == []


def test_connected_socket_reports_port_unreachable(host: str) -> None:
    dead = open_udp(host, 0)
    port = dead.getsockname()[1]
    dead.close()
    s = open_udp(host, 0, rcvtimeo=0.5)
    s.connect((host, port))
    bs = BatchSocket(s)
    bs.send([(b"anyone?", None)])
    with pytest.raises(ConnectionRefusedError):
        for _ in range(3):
            bs.recv(timeout=1.0)
            bs.send([(b"anyone?", None)])
    s.close()


def test_sockaddr_round_trip() -> None:
    for addr, fam in (
        (("10.1.2.3", 4242), socket.AF_INET),
        (("fe80::1", 53, 0, 3), socket.AF_INET6),
        (("::ffff:10.0.0.1", 9, 0, 0), socket.AF_INET6),
    ):
        assert decode_sockaddr(encode_sockaddr(addr, fam)) == addr
    assert decode_sockaddr(encode_sockaddr(("10.0.0.1", 9), socket.AF_INET6)) == ("::ffff:10.0.0.1", 9, 0, 0)


def test_batch_bounds_are_checked(pair) -> None:
    with pytest.raises(ValueError, match="batch"):
        BatchSocket(pair[0], batch=0)


@pytest.mark.parametrize("mode", ECHO_MODES)
def test_echo_with_a_flag_rule_answers_only_matching_datagrams(pair, mode: tuple[bool, bool]) -> None:
    native, fast = mode
    a, b = pair
    refl, tb = Reflector(BatchSocket(a, native=native, fastpath=fast)), BatchSocket(b)
    head = bytes(8)
    tb.send(
        [
            (head + b"\x00\x03" + b"ping", a.getsockname()),  # client + pong request: answered, client bit cleared
            (head + b"\x00\x01" + b"load", a.getsockname()),  # client, no pong request: not answered
            (b"short", a.getsockname()),
        ]
    )
    seen = 0
    while seen < 3:
        n, _sent, _ = refl.echo(timeout=2.0, match=(9, 2, 1))
        assert n
        seen += n
    assert [d for d, _ in drain(tb, 2)] == [head + b"\x00\x02" + b"ping"]


@pytest.mark.parametrize("mode", ECHO_MODES)
def test_flag_rule_ignores_leftover_bytes_and_oversized_datagrams(pair, mode: tuple[bool, bool]) -> None:
    native, fast = mode
    """A short datagram in a receive slot that held a pong request, or one too long for the slot, gets no reply."""
    a, b = pair
    refl, tb = Reflector(BatchSocket(a, bufsize=512, native=native, fastpath=fast)), BatchSocket(b)
    dst = a.getsockname()
    pong = bytes(8) + b"\x00\x03" + b"p" * 20
    assert tb.send([(pong, dst)] * 4) == 4
    assert refl.echo(timeout=2.0, match=(9, 2, 1))[:2] == (4, 4)
    assert tb.send([(b"short", dst), (b"tiny", dst), (bytes(9) + b"\x03" + b"x" * 600, dst), (pong, dst)]) == 4
    n, sent, _ = refl.echo(timeout=2.0, match=(9, 2, 1))
    assert (n, sent, refl.truncated) == (4 if native else 3, 1, 1)
    assert [d for d, _ in drain(tb, 6)] == [bytes(8) + b"\x00\x02" + b"p" * 20] * 5


@pytest.mark.parametrize("fast", LOOPS)
def test_plain_echo_answers_one_by_one_and_hands_a_backlog_to_batches(pair, fast: bool) -> None:
    """The relay's latency path: a queue that stands is noticed after QUICK_RUN datagrams, the rest go out in one
    batch, every pong request is answered once with the client bit cleared, and nothing else is answered."""
    a, b = pair
    refl, tb = Reflector(BatchSocket(a, bufsize=512, fastpath=fast)), BatchSocket(b)
    dst = a.getsockname()
    pongs = [bytes(7) + bytes([i]) + b"\x00\x03" + b"p" * 20 for i in range(100)]
    load = bytes(8) + b"\x00\x01" + b"l" * 20
    # loopback delivers within the send call: every datagram is queued before the reflector looks
    assert tb.send([(d, dst) for d in [*pongs[:50], load, *pongs[50:]]]) == 101
    n, sent, _nbytes, backlog = refl.echo_plain((9, 2, 1), time.perf_counter_ns() + 10**10)
    # each receive found its datagram queued, so the backlog is seen after exactly QUICK_RUN of them
    assert backlog and n == Reflector.QUICK_RUN and sent == n
    calls = 0
    while n < 101:
        got = refl.echo_batch(2.0, (9, 2, 1)) if HAVE_MMSG else refl.echo(2.0, (9, 2, 1))
        assert got[0]
        n, sent, calls = n + got[0], sent + got[1], calls + 1
    assert calls <= 2 or not HAVE_MMSG  # the rest leave in batches of up to 64
    assert sent == 100
    got = [d for d, _ in drain(tb, 100)]
    assert sorted(got) == sorted(p[:9] + b"\x02" + p[10:] for p in pongs)


@pytest.mark.parametrize("fast", LOOPS)
@pytest.mark.parametrize("spin_us", [0, 500])
def test_plain_echo_returns_at_its_deadline_or_when_idle(pair, spin_us: int, fast: bool) -> None:
    a, b = pair  # `a` has SO_RCVTIMEO 0.5 s: an idle socket ends the call
    refl, tb = Reflector(BatchSocket(a, fastpath=fast)), BatchSocket(b)
    # nothing comes and the deadline is 10 s away: the call still returns (on the receive timeout), empty
    assert refl.echo_plain(None, time.perf_counter_ns() + 10**10, spin_us * 1000) == (0, 0, 0, False)
    tb.send([(b"one", a.getsockname())])
    assert refl.echo_plain(None, 0, spin_us * 1000) == (1, 1, 3, False)  # past its deadline: back after one
    assert [d for d, _ in drain(tb, 1)] == [b"one"]


@pytest.mark.parametrize("fast", LOOPS)
@pytest.mark.parametrize("spin_us", [0, 200])
def test_plain_echo_sockperf_rule_short_and_oversized_datagrams(pair, fast: bool, spin_us: int) -> None:
    """One by one, as a ping-pong client sends: only pong requests are answered (client bit cleared, the rest of
    the datagram unchanged), a datagram too short to carry the flag or too long for the buffer is counted, never
    answered, and the counts come back to Python."""
    a, b = pair
    refl, tb = Reflector(BatchSocket(a, bufsize=64, fastpath=fast)), BatchSocket(b)
    dst = a.getsockname()
    pong, load = bytes(8) + b"\x00\x03" + b"p" * 30, bytes(8) + b"\x00\x01" + b"l" * 30
    seen = []
    for d in (pong, load, b"short", bytes(8) + b"\x00\x03" + b"x" * 100, pong[:10]):
        tb.send([(d, dst)])
        seen.append(refl.echo_plain((9, 2, 1), 0, spin_us * 1000))  # deadline passed: back after each datagram
    assert [s[:2] for s in seen] == [(1, 1), (1, 0), (1, 0), (1, 0), (1, 1)]
    assert [s[2] for s in seen] == [40, 40, 5, 65, 10]  # the oversized one as far as the buffer (bufsize + 1)
    assert refl.truncated == 1 and refl.send_errors == 0
    assert [d for d, _ in drain(tb, 2)] == [pong[:9] + b"\x02" + pong[10:], pong[:9] + b"\x02"]


@pytest.mark.parametrize("fast", LOOPS)
def test_plain_echo_lets_a_signal_handler_interrupt_a_blocked_receive(host: str, fast: bool) -> None:
    """The loop sleeps in recvfrom; a signal must reach its Python handler at once (the relay's SIGTERM), not when
    the next datagram comes, and an exception from the handler must come out of the call. A datagram sent only
    after the handler ran (or after 10 s, if it never does) must still be waiting, unanswered."""
    sock, peer = open_udp(host, 0), open_udp(host, 0)
    refl = Reflector(BatchSocket(sock, fastpath=fast))
    handled = threading.Event()

    class Stop(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        handled.set()
        raise Stop

    def interrupt_then_send() -> None:
        signal.pthread_kill(main, signal.SIGUSR1)
        handled.wait(10.0)
        peer.sendto(b"late", sock.getsockname())

    old = signal.signal(signal.SIGUSR1, handler)
    main = threading.get_ident()
    thread = threading.Timer(0.2, interrupt_then_send)
    thread.start()
    try:
        with pytest.raises(Stop):
            refl.echo_plain(None, 0)  # past its deadline: a datagram would end the call too
        thread.join()
        sock.settimeout(2.0)
        assert sock.recv(64) == b"late"  # still queued: the call had returned before it came
        peer.settimeout(0.5)
        with pytest.raises(TimeoutError):
            peer.recv(64)  # and nothing was answered
    finally:
        thread.cancel()
        signal.signal(signal.SIGUSR1, old)
        sock.close()
        peer.close()


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler here")
def test_the_c_loop_is_built_where_a_compiler_is() -> None:
    """setup.py builds _fastpath optionally: where a compiler is (CI), a silent fallback would cost the relay's
    latency without a word, so this says so."""
    assert HAVE_FASTPATH


def _reflect(datagrams: list[bytes], match: tuple[int, int, int] | None, fast: bool, batch: bool) -> tuple:
    """What a reflector does with these datagrams: per-call results, the replies in order, the truncated count."""
    a, b = open_udp("127.0.0.1", 0, rcvtimeo=0.5), open_udp("127.0.0.1", 0, rcvtimeo=0.5)
    try:
        refl, tb = Reflector(BatchSocket(a, bufsize=64, batch=8, fastpath=fast)), BatchSocket(b)
        calls = []
        if batch:
            assert tb.send([(d, a.getsockname()) for d in datagrams]) == len(datagrams)
            seen = 0
            while seen < len(datagrams):
                calls.append(refl.echo_batch(2.0, match))
                assert calls[-1][0], "a datagram sent on loopback never arrived"
                seen += calls[-1][0]
        else:
            for d in datagrams:
                tb.send([(d, a.getsockname())])
                calls.append(refl.echo_plain(match, 0))  # deadline passed: back after each datagram
        replies = [d for d, _ in drain(tb, sum(c[1] for c in calls))]
        return calls, replies, refl.truncated, refl.send_errors
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not HAVE_FASTPATH, reason="_fastpath not built")
@settings(max_examples=40, deadline=None)
@given(
    datagrams=st.lists(st.binary(max_size=80), min_size=1, max_size=12),
    match=st.sampled_from([None, (9, 2, 1), (0, 0x81, 0x80)]),
    batch=st.booleans(),
)
def test_c_and_python_loops_answer_alike(
    datagrams: list[bytes], match: tuple[int, int, int] | None, batch: bool
) -> None:
    """Any datagrams (empty, shorter than the flag byte, longer than the buffer, any flag bits), one by one or
    queued: the C loops give the same counts and the same replies, byte for byte, as the Python loops."""
    got_c = _reflect(datagrams, match, True, batch)
    got_py = _reflect(datagrams, match, False, batch)
    assert got_c == got_py
    calls, replies, truncated, _ = got_c
    assert truncated == sum(1 for d in datagrams if len(d) > 64)
    assert len(replies) == sum(c[1] for c in calls)
