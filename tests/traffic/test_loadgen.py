"""Load generator: exact counters on real loopback sockets, relay-protocol traffic, one-line errors."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from iovkit.errors import InputError, UnreachableError
from iovkit.traffic import histo
from iovkit.traffic.loadcore import FlowTracker, LoadSpec, Schedule
from iovkit.traffic.loadgen import probe_echo, run_load
from tests.conftest import needs_root
from tests.fixtures.forwarder import _Shaper, start_forwarder

# -- pure counters -----------------------------------------------------------------------------------------------


def test_tracker_counts_reordering_duplicates_and_rfc3550_jitter() -> None:
    t = FlowTracker()
    arrivals = [(0, 100), (2, 100), (1, 100), (2, 100), (3, 116), (5, 100), (4, 100)]
    firsts = [t.on(seq, transit) for seq, transit in arrivals]
    assert firsts == [True, True, True, False, True, True, True]
    assert (t.received, t.duplicates, t.reordered) == (6, 1, 2)
    # J moves by (|D| - J)/16 only where transit changed: 116-100 then 100-116
    j = 0.0
    for d in (0, 0, 16, 16, 0):
        j += (d - j) / 16
    assert t.jitter_ns == pytest.approx(j)


def test_tracker_handles_large_sequence_numbers() -> None:
    t = FlowTracker()
    assert t.on(1_000_000, 5)
    assert not t.on(1_000_000, 5)
    assert t.duplicates == 1


def test_constant_schedule_is_exact_and_poisson_keeps_the_mean_rate() -> None:
    s = Schedule(1000.0, 0)
    times = [s.pop() for _ in range(1001)]
    assert times[0] == 0 and times[-1] == 1_000_000_000
    p = Schedule(1000.0, 0, poisson=True, seed=1)
    last = [p.pop() for _ in range(20_001)][-1]
    assert 19.0e9 < last < 21.0e9  # 20 s of gaps at 1000/s, within 5 %
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps == {1_000_000}


def test_due_returns_every_late_send_time_once() -> None:
    s = Schedule(1000.0, 0)
    assert s.due(-1, 100) == []
    assert s.due(3_500_000, 100) == [0, 1_000_000, 2_000_000, 3_000_000]
    assert s.due(3_900_000, 100) == []
    assert s.due(10_000_000, 2) == [4_000_000, 5_000_000]  # capped; the rest stays due
    assert s.next_ns == 6_000_000
    odd = Schedule(3.0, 0)  # 333,333,333.33 ns gaps: next_ns is truncated below the exact time
    odd.due(0, 10)
    assert odd.due(odd.next_ns, 10) == [333_333_333]


def test_due_array_is_due_as_an_int64_array() -> None:
    """The constant-rate hot path: the same times as due(), capped the same way, as int64, never one twice."""
    s = Schedule(1000.0, 0)
    empty = s.due_array(-1, 100)
    assert empty.dtype == np.int64 and len(empty) == 0
    got = s.due_array(3_500_000, 100)
    assert got.dtype == np.int64 and got.tolist() == [0, 1_000_000, 2_000_000, 3_000_000]
    assert len(s.due_array(3_900_000, 100)) == 0
    assert s.due_array(10_000_000, 2).tolist() == [4_000_000, 5_000_000]  # capped; the rest stays due
    assert s.next_ns == 6_000_000
    big = s.due_array(6_000_000 + 9_999_000_000, 5000)  # more than the precomputed ramp of 4096
    assert len(big) == 5000 and big[0] == 6_000_000 and big[-1] == 6_000_000 + 4999 * 1_000_000


@pytest.mark.parametrize("rate", [3.0, 7_777.0, 123_456.7, 1_000_000.0])
def test_due_array_and_due_agree_on_fractional_gaps(rate: float) -> None:
    """Schedules whose gap is not a whole ns: both paths truncate the same exact times, in any call pattern."""
    a, b = Schedule(rate, 10**12), Schedule(rate, 10**12)
    rng = random.Random(int(rate))
    now, seen = 10**12, []
    for _ in range(300):
        now += rng.randrange(0, int(3 * a.interval) + 2)
        cap = rng.choice([1, 2, 7, 64, 256])
        want = a.due(now, cap)
        got = b.due_array(now, cap)
        assert got.dtype == np.int64 and got.tolist() == want
        assert a.next_ns == b.next_ns
        seen += want
    assert seen == sorted(set(seen))  # strictly increasing: no send time twice


def test_poisson_due_array_follows_the_seeded_schedule() -> None:
    a, b = Schedule(5000.0, 0, poisson=True, seed=7), Schedule(5000.0, 0, poisson=True, seed=7)
    assert b.due_array(10_000_000, 1000).tolist() == a.due(10_000_000, 1000)


def test_shaper_swaps_within_a_client_and_duplicates() -> None:
    sh = _Shaper(swap_every=2, dup_every=3, hold_ns=10)
    a, b = ("10.0.0.1", 1), ("10.0.0.2", 1)
    out = []
    for i, data in enumerate([b"1", b"2", b"3", b"4"]):
        out += sh.feed(data, a, i)
    assert out == [b"1", b"3", b"3", b"2"]  # 2 held, 3 sent (and duplicated: it is a's 3rd), then 2
    assert sh.feed(b"x", b, 0) == [b"x"]  # other clients are not affected
    assert sh.expired(100) == [(b"4", a)]
    assert (sh.stats.swapped, sh.stats.duplicated, sh.stats.flushed_unswapped) == (1, 1, 1)


# -- real sockets on loopback ------------------------------------------------------------------------------------


def test_reordering_and_duplicates_from_a_forwarder_are_counted_exactly() -> None:
    with start_forwarder(swap_every=9, dup_every=13) as fw:
        m = run_load(LoadSpec(target=fw.address, rate=4000, seconds=0.6, warmup=0.0, drain=0.3, flows=3))
        stats = fw.stop()
    assert m.sent == stats.received
    assert m.received == m.expected == m.sent  # nothing lost: the forwarder flushes what it holds
    assert m.reordered == stats.swapped > 0
    assert m.duplicates == stats.duplicated > 0


def test_two_sender_processes_merge_into_one_exact_result() -> None:
    with start_forwarder() as fw:
        m = run_load(LoadSpec(target=fw.address, rate=6000, seconds=0.5, warmup=0.0, senders=2, flows=2))
        stats = fw.stop()
    h = histo.decode(m.histogram)
    assert m.sent == stats.received
    assert m.received == m.sent
    assert h.count == m.received  # every distinct datagram of both processes is in the merged histogram
    assert m.latency_kind == "rtt"
    assert m.latency_us["p99"] is not None
    assert m.histogram_from_send and histo.decode(m.histogram_from_send).count == m.received


def test_a_payload_too_short_for_the_send_time_has_no_latency_from_send() -> None:
    with start_forwarder() as fw:
        m = run_load(LoadSpec(target=fw.address, rate=2000, seconds=0.3, warmup=0.0, payload=32))
    assert m.received == m.sent > 0 and m.latency_us["p50"] is not None
    assert m.latency_from_send_us is None and m.histogram_from_send is None


def test_relay_mode_reaches_every_other_member_one_way() -> None:
    from iovkit.traffic.relay import RelaySettings, start_relay

    key = secrets.token_bytes(32)
    with start_relay(RelaySettings(mode="relay", key=key, rate_pps=1e6, rate_burst=1e6)) as relay:
        m = run_load(
            LoadSpec(
                target=relay.address[:2], rate=2000, seconds=0.5, mode="relay", relay_key=key, clients=6, sessions=2
            )
        )
    assert m.expected == m.sent * 2  # 3 members per session: each datagram reaches 2 others
    assert m.received == m.expected
    assert m.latency_kind == "one-way"
    assert m.duplicates == 0


def test_relay_mode_with_the_wrong_key_is_refused_in_one_line() -> None:
    from iovkit.traffic.relay import RelaySettings, start_relay

    with (
        start_relay(RelaySettings(mode="relay", key=secrets.token_bytes(32))) as relay,
        pytest.raises(InputError) as exc,
    ):
        run_load(
            LoadSpec(
                target=relay.address[:2],
                rate=100,
                seconds=0.2,
                mode="relay",
                relay_key=secrets.token_bytes(32),
                clients=2,
                sessions=1,
            )
        )
    assert "BAD_TOKEN" in str(exc.value)


def _closed_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_closed_port_is_an_unreachable_error_not_a_hang() -> None:
    start = time.monotonic()
    with pytest.raises(UnreachableError) as exc:
        probe_echo(("127.0.0.1", _closed_udp_port()))
    assert "ICMP port unreachable" in str(exc.value)
    assert time.monotonic() - start < 5


def test_silent_target_ends_with_no_reply() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(UnreachableError) as exc:
            probe_echo(silent.getsockname(), timeout=0.5)
    finally:
        silent.close()
    assert "no reply within 0.5 s" in str(exc.value)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--rate", "0"], 2, "--rate"),
        (["--target", "127.0.0.1"], 2, "HOST:PORT"),
        (["--target", "127.0.0.1:70000"], 2, "1..65535"),
        (["--payload", "8"], 2, "--payload"),
        (["--mode", "tcp"], 2, "--mode"),
        (["--steps", "0"], 2, "--steps"),
        (["--target", "nosuchhost.invalid:7777"], 3, "cannot resolve"),
    ],
)
def test_bad_arguments_end_with_one_line(cli, args: list[str], code: int, needle: str) -> None:
    r = cli("bench", "--no-plots", *args)
    assert r.code == code
    assert r.err.startswith("iovkit: error:") and needle in r.err
    assert r.err.count("\n") == 1


def test_cli_closed_port_exits_3(cli) -> None:
    r = cli("bench", "--target", f"127.0.0.1:{_closed_udp_port()}", "--no-plots")
    assert r.code == 3
    assert r.err.count("\n") == 1 and "nothing listens" in r.err


# -- network namespaces --------------------------------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str, str, str]]:
    """ns A (10.239.x.1) and ns B (10.239.x.2) joined by a veth pair; removed afterwards."""
    tag = f"{os.getpid() % 10000}{secrets.token_hex(2)}"
    a, b = f"iovlga{tag}", f"iovlgb{tag}"
    net = 1 + os.getpid() % 250
    ip_a, ip_b = f"10.239.{net}.1", f"10.239.{net}.2"
    _ip("netns", "add", a)
    try:
        _ip("netns", "add", b)
        _ip("link", "add", f"lga{tag}", "netns", a, "type", "veth", "peer", "name", f"lgb{tag}", "netns", b)
        for ns, dev, addr in ((a, f"lga{tag}", ip_a), (b, f"lgb{tag}", ip_b)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield a, b, ip_a, ip_b
    finally:
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def _in_ns(ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "iovkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.getcwd(),
    )


@needs_root
def test_nftables_random_drop_between_namespaces_is_measured_within_one_point(two_namespaces, tmp_path) -> None:
    a, b, _ip_a, ip_b = two_namespaces
    port = 17000 + os.getpid() % 1000
    share = 10
    nft = (
        f"add table inet iovlg\nadd chain inet iovlg in {{ type filter hook input priority 0; }}\n"
        f"add rule inet iovlg in udp dport {port} numgen random mod 100 < {share} counter drop\n"
    )
    subprocess.run(["ip", "netns", "exec", b, "nft", "-f", "-"], input=nft, text=True, check=True)
    server = subprocess.Popen(
        ["ip", "netns", "exec", b, "sockperf", "server", "-i", ip_b, "-p", str(port), "-m", "1472"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        out = tmp_path / "loss.json"
        socket_drops = _rcvbuf_errors(a) + _rcvbuf_errors(b)
        r = _in_ns(
            a,
            "bench",
            "--target",
            f"{ip_b}:{port}",
            "--rate",
            "10000",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--step-seconds",
            "2.2",
            "--max-loss",
            "100",
            "--max-p99",
            "1000000",
            # across veth a GSO message stays one packet until the receiving socket cuts it: the per-packet drop
            # rule would drop whole messages, so this per-datagram test sends one datagram per packet
            "--no-gso",
            "--no-plots",
            "-q",
            "-o",
            str(out),
        )
        socket_drops = _rcvbuf_errors(a) + _rcvbuf_errors(b) - socket_drops
        listing = subprocess.run(["ip", "netns", "exec", b, "nft", "list", "ruleset"], capture_output=True, text=True)
        dropped = int(re.search(r"counter packets (\d+)", listing.stdout)[1])  # type: ignore[index]
    finally:
        server.terminate()
        server.wait(5)
    assert r.returncode == 0, r.stderr
    step = json.loads(out.read_text())["steps"][0]
    assert step["expected"] >= 20_000
    assert abs(100 * dropped / step["expected"] - share) <= 1.0  # the rule dropped its share
    # what the generator measured is what the rule dropped plus what a full socket queue dropped (a loaded machine
    # can starve the reflector): within one point (the rule also saw the few datagrams of the reachability check)
    actual = 100 * (dropped + socket_drops) / step["expected"]
    assert abs(step["loss_pct"] - actual) <= 1.0, (step["loss_pct"], actual, socket_drops)


def _rcvbuf_errors(ns: str) -> int:
    """UDP datagrams the kernel dropped in namespace `ns` because a receive queue was full (/proc/net/snmp)."""
    text = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True, text=True).stdout
    head, values = [line.split() for line in text.splitlines() if line.startswith("Udp:")][:2]
    return int(values[head.index("RcvbufErrors")])


@needs_root
def test_unreachable_network_is_exit_3_in_one_line(two_namespaces) -> None:
    a, _b, _ip_a, _ip_b = two_namespaces
    r = _in_ns(a, "bench", "--target", "10.238.77.1:7777", "--no-plots", "-q", timeout=30)
    assert r.returncode == 3
    assert r.stderr.startswith("iovkit: error:") and r.stderr.count("\n") == 1


def test_tx_ring_stamps_each_datagram_of_a_batch_and_keeps_the_template() -> None:
    """The vectorised sender must put seq0.. and each scheduled time into its own datagram, nothing else."""
    import socket as _socket
    import struct as _struct

    import numpy as np

    from iovkit.traffic.loadcore import ECHO_HDR, ECHO_MAGIC, ECHO_TIME_AT, SOCKPERF_CLIENT_PONG
    from iovkit.traffic.mmsg import TxRing

    rx = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    tx = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 1 << 20)
        tx.connect(rx.getsockname())
        tpl = bytearray(b"\xab" * 100)
        ECHO_HDR.pack_into(tpl, 0, 0, SOCKPERF_CLIENT_PONG, 100, ECHO_MAGIC, 3, 0)
        ring = TxRing(tx, bytes(tpl), 16, 0, ECHO_TIME_AT)
        times = np.array([10**15 + 7 * i for i in range(16)], dtype=np.int64)
        assert ring.send(1000, times) == 16
        assert ring.send(2000, times[:5]) == 5
        assert ring.send_one(5, 42) == 1
        rx.settimeout(2.0)
        got = [rx.recv(2048) for _ in range(22)]
    finally:
        rx.close()
        tx.close()
    want = [(1000 + i, int(times[i])) for i in range(16)] + [(2000 + i, int(times[i])) for i in range(5)] + [(5, 42)]
    assert [(_struct.unpack_from("!Q", d)[0], _struct.unpack_from("!Q", d, ECHO_TIME_AT)[0]) for d in got] == want
    for d in got:
        assert len(d) == 100 and d[30:] == bytes(tpl[30:])
        assert ECHO_HDR.unpack_from(d)[1:5] == (SOCKPERF_CLIENT_PONG, 100, ECHO_MAGIC, 3)


def test_loopback_targets_are_local_and_others_are_not() -> None:
    from iovkit.traffic.loadgen import is_local_target

    assert is_local_target("127.0.0.1") and is_local_target("localhost")
    assert not is_local_target("192.0.2.1")  # TEST-NET-1: never assigned to a host


def test_default_senders_one_per_cpu_only_for_a_remote_target() -> None:
    from iovkit.cli.bench import default_senders
    from iovkit.traffic.loadgen import cpu_count

    assert default_senders(None, "echo", 2) == 1  # --local: the relay shares our CPUs
    assert default_senders("127.0.0.1:7777", "echo", 2) == 1
    assert default_senders("192.0.2.1:7777", "echo", 2) == cpu_count()
    assert default_senders("192.0.2.1:7777", "relay", 1) == 1  # relay mode: no more senders than sessions
