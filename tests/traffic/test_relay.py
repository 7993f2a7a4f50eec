"""The relay runner on loopback: worker processes, SO_REUSEPORT, session steering, stats, metrics, the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from iovkit.traffic import protocol as p
from iovkit.traffic.mmsg import HAVE_FASTPATH, BatchSocket, open_udp
from iovkit.traffic.relay import RelayHandle, RelaySettings, serve_metrics, start_relay

KEY = b"relay-key-for-tests-0123456789ab"


@pytest.fixture
def echo_relay() -> Iterator[RelayHandle]:
    # 400 datagrams arrive at once in one test: a 2 MB receive buffer keeps a busy machine from dropping any
    h = start_relay(RelaySettings(mode="echo", workers=2, rcvbuf=1 << 21))
    yield h
    h.stop()


@pytest.fixture
def relay2() -> Iterator[RelayHandle]:
    h = start_relay(RelaySettings(mode="relay", workers=2, key=KEY))
    yield h
    h.stop()


def client() -> BatchSocket:
    return BatchSocket(open_udp("127.0.0.1", 0, rcvtimeo=0.5))


def drain(bs: BatchSocket, want: int, wait: float = 2.0) -> list[tuple[bytes, tuple]]:
    got: list[tuple[bytes, tuple]] = []
    end = time.monotonic() + wait
    while len(got) < want and time.monotonic() < end:
        got.extend(bs.recv(timeout=0.2))
    return got


def joined_peer(h: RelayHandle, sid: int, pid: int) -> tuple[BatchSocket, p.Joiner]:
    bs = client()
    j = p.Joiner(sid, pid, p.mint_token(KEY, sid, pid, int(time.time()) + 60))
    nxt: bytes | None = j.first()
    for _ in range(4):
        if j.joined or j.rejected or nxt is None:
            break
        bs.send([(nxt, h.address)])
        got = drain(bs, 1)
        nxt = j.on_reply(got[0][0]) if got else j.first()
    return bs, j


def test_echo_reflects_every_datagram_from_many_source_ports(echo_relay: RelayHandle) -> None:
    clients = [client() for _ in range(8)]  # different 4-tuples spread over both workers
    for i, c in enumerate(clients):
        assert c.send([(b"%d-%d" % (i, k), echo_relay.address) for k in range(50)]) == 50
    for i, c in enumerate(clients):
        assert sorted(d for d, _ in drain(c, 50)) == sorted(b"%d-%d" % (i, k) for k in range(50))
    time.sleep(0.3)  # workers publish stats every 100 ms
    stats = echo_relay.stats()
    assert stats.total["pkts_in"] == 400 and stats.total["pkts_out"] == 400
    assert len(stats.workers) == 2


def test_sessions_meet_in_one_worker_whatever_the_source_port(relay2: RelayHandle) -> None:
    peers = {}
    for sid in (11, 12, 13, 14):
        for pid in (1, 2, 3):
            bs, j = joined_peer(relay2, sid, pid)
            assert j.joined, (sid, pid, j.rejected)
            peers[sid, pid] = bs
    for (sid, pid), bs in peers.items():
        bs.send([(p.encode_data(sid, pid, 100 + pid, time.time_ns(), b"hi"), relay2.address)])
    for (sid, pid), bs in peers.items():
        got = [p.decode(d) for d, _ in drain(bs, 2)]
        assert sorted(m.peer for m in got) == sorted({1, 2, 3} - {pid})
        assert all(m.session == sid and m.seq == 100 + m.peer and m.payload == b"hi" for m in got)
    time.sleep(0.3)
    stats = relay2.stats()
    assert stats.total["sessions"] == 4 and stats.total["peers"] == 12
    assert all(w["sessions"] == 2 for w in stats.workers)  # session % 2 steering: 12, 14 -> w0; 11, 13 -> w1


def test_forged_join_over_sockets_is_rejected_and_counted(relay2: RelayHandle) -> None:
    bs = client()
    j = p.Joiner(5, 1, p.mint_token(b"wrong-key-wrong-key-wrong-key-00", 5, 1, int(time.time()) + 60))
    bs.send([(j.first(), relay2.address)])
    nxt = j.on_reply(drain(bs, 1)[0][0])
    assert nxt is not None
    bs.send([(nxt, relay2.address)])
    j.on_reply(drain(bs, 1)[0][0])
    assert j.rejected is p.Reason.BAD_TOKEN
    bs.send([(b"garbage", relay2.address), (p.encode_data(5, 1, 0, 0, b"x"), relay2.address)])
    assert drain(bs, 1, wait=0.5) == []
    time.sleep(0.3)
    drops = relay2.stats().drops()
    assert drops["bad_token"] == 1 and drops["malformed"] == 1 and drops["unknown_source"] == 1


@pytest.mark.skipif(shutil.which("sockperf") is None, reason="sockperf not installed")
@pytest.mark.parametrize("fastpath", ["1", "0"])
def test_both_echo_loops_serve_the_sockperf_client_and_the_start_line_names_the_one_used(fastpath: str) -> None:
    """The C loop (the default where it was built) and the Python loop (IOVKIT_FASTPATH=0) answer a real
    ping-pong client alike, and the final stats count every datagram."""
    env = {**os.environ, "IOVKIT_FASTPATH": fastpath}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iovkit",
            "relay",
            "--mode",
            "sockperf",
            "--listen",
            "127.0.0.1:0",
            "--format",
            "json",
            "--log-interval",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        want = "C" if fastpath == "1" and HAVE_FASTPATH else "Python"
        assert line.rstrip().endswith(f"reflector loops in {want}"), line
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        run = subprocess.run(
            ["sockperf", "ping-pong", "-i", "127.0.0.1", "-p", str(port), "-t", "1", "-m", "64", "--mps", "2000"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = run.stdout + run.stderr
    found = re.search(r"\[Valid Duration\].*SentMessages=(\d+); ReceivedMessages=(\d+)", text)
    assert found and int(found[1]) == int(found[2]) > 0, text
    assert "# dropped messages = 0" in text
    total = json.loads(out)["total"]
    assert total["pkts_in"] == total["pkts_out"] >= int(found[1]), err


def test_stop_returns_final_stats_and_ends_workers(echo_relay: RelayHandle) -> None:
    c = client()
    c.send([(b"x" * 64, echo_relay.address)] * 10)
    drain(c, 10)
    final = echo_relay.stop()
    assert final.total["pkts_in"] == 10 and final.total["bytes_in"] == 640
    assert not echo_relay.alive()


def test_metrics_endpoint_serves_counters(echo_relay: RelayHandle) -> None:
    host, port = serve_metrics(echo_relay, "127.0.0.1", 0)
    c = client()
    c.send([(b"m", echo_relay.address)] * 3)
    drain(c, 3)
    time.sleep(0.3)
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    values = [
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("iovkit_relay_packets_received_total")
    ]
    assert sum(values) == 3
    assert 'iovkit_relay_dropped_total{reason="rate_limited",worker="0"}' in text


def test_relay_mode_without_a_key_is_a_one_line_error(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOVKIT_RELAY_KEY", raising=False)
    r = cli("relay", "--listen", "127.0.0.1:0", "--duration", "0.1")
    assert r.code == 2 and "relay mode needs a key" in r.err and "Traceback" not in r.err


def test_bad_arguments_are_one_line_errors(cli, tmp_path: Path) -> None:
    short = tmp_path / "k"
    short.write_text("tiny\n")
    (tmp_path / "k32").write_text("k" * 32)
    for args, needle in (
        (("--listen", "nowhere"), "expected HOST:PORT"),
        (("--key-file", str(short)), "at least 16"),
        (("--key-file", str(tmp_path / "missing")), "cannot read relay key"),
        (("--mode", "echo", "--pin", "9999"), "CPU 9999"),
        (("--mode", "echo", "--listen", "192.0.2.1:7777"), "cannot listen"),
        (("--mode", "echo", "--rcvbuf", "999999G"), "--rcvbuf: must be"),
        (("--mode", "echo", "--sndbuf", "0"), "--sndbuf: must be"),
        (("--mode", "echo", "--rate-limit", "-1"), "--rate-limit: must be above 0"),
        (("--mode", "echo", "--peer-idle", "0"), "--peer-idle: must be above 0"),
        (("--mode", "echo", "--log-interval", "-1"), "--log-interval: must be"),
        (("--mode", "echo", "--peer-idle", "nan"), "--peer-idle: must be above 0"),
        (("--mode", "echo", "--busy-poll", "-5"), "--busy-poll: must be"),
        (("--key-file", str(tmp_path / "k32"), "--busy-poll", "50"), "--busy-poll: applies to --mode echo"),
        (("--mode", "echo", "--key-file", str(tmp_path / "missing")), "--key-file: applies to --mode relay only"),
        (
            ("--mode", "sockperf", "--admission-key-file", str(tmp_path / "k32")),
            "--admission-key-file: applies to --mode relay only",
        ),
    ):
        r = cli("relay", *args, "--duration", "0.1")
        assert r.code == 2, (args, r.err)
        assert needle in r.err and r.err.count("\n") == 1
    for bad in ("-1", "inf"):  # a negative or endless duration would run forever instead of failing
        r = cli("relay", "--mode", "echo", "--listen", "127.0.0.1:0", "--duration", bad)
        assert r.code == 2, (bad, r.err)
        assert "--duration: must be" in r.err and r.err.count("\n") == 1


def test_cli_runs_for_a_duration_and_prints_json_stats(cli) -> None:
    r = cli(
        "relay", "--mode", "echo", "--listen", "127.0.0.1:0", "--duration", "0.3", "--format", "json", "--workers", "2"
    )
    assert r.code == 0, r.err

    stats = json.loads(r.out)
    assert len(stats["workers"]) == 2 and stats["total"]["pkts_in"] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_relay_with_final_stats(tmp_path: Path, sig: int) -> None:
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32).hex().encode())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iovkit",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--key-file",
            str(key),
            "--log-interval",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "iovkit relay: relay on 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        c = client()
        c.send([(b"not-a-relay-message", ("127.0.0.1", port))] * 5)
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)  # generous: the relay itself stops within 1 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "relay stopped after" in out and "packets in 5 out 0" in out
    assert "malformed 5" in out and "worker 1:" in out


def test_relay_over_ipv6_loopback() -> None:
    try:
        h = start_relay(RelaySettings(host="::1", mode="relay", key=KEY))
    except Exception as err:  # no IPv6 in this environment
        pytest.skip(f"no IPv6 loopback: {err}")
    with h:
        socks = [BatchSocket(open_udp("::1", 0, rcvtimeo=0.5)) for _ in range(2)]
        for pid, bs in enumerate(socks, start=1):
            j = p.Joiner(3, pid, p.mint_token(KEY, 3, pid, int(time.time()) + 60))
            bs.send([(j.first(), h.address)])
            nxt = j.on_reply(drain(bs, 1)[0][0])
            assert nxt is not None
            bs.send([(nxt, h.address)])
            j.on_reply(drain(bs, 1)[0][0])
            assert j.joined
        socks[0].send([(p.encode_data(3, 1, 7, 0, b"v6"), h.address)])
        ((data, addr),) = drain(socks[1], 1)
        assert p.decode(data).payload == b"v6" and addr[:2] == h.address[:2]


def test_periodic_log_line_and_final_stats(cli) -> None:
    r = cli("relay", "--mode", "echo", "--listen", "127.0.0.1:0", "--duration", "0.7", "--log-interval", "0.2")
    assert r.code == 0, r.err
    lines = [line for line in r.err.splitlines() if line.startswith("relay: in ")]
    assert lines and all("pps" in line and "drops" in line and "[w0=" in line for line in lines)
    assert "relay stopped after" in r.out and "drops: none" in r.out


def test_workers_are_pinned_to_the_given_cpus() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    with start_relay(RelaySettings(mode="echo", workers=2, pin=[cpus[-1]])) as h:
        for pid in h.pids:
            status = Path(f"/proc/{pid}/status").read_text()
            allowed = next(line for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
            assert allowed.split()[-1] == str(cpus[-1])


def test_busy_polling_reflector_answers_datagrams_that_come_while_it_spins_and_after_it_sleeps() -> None:
    with start_relay(RelaySettings(mode="echo", busy_poll_us=300)) as h:
        c = client()
        for i in range(20):  # one at a time: most arrive while the worker spins
            c.send([(b"spin-%d" % i, h.address)])
            assert [d for d, _ in drain(c, 1)] == [b"spin-%d" % i]
        time.sleep(0.2)  # long past the 300 us window: the worker sleeps in the kernel again
        c.send([(b"after-sleep", h.address)])
        assert [d for d, _ in drain(c, 1)] == [b"after-sleep"]
        time.sleep(0.3)  # workers publish stats every 100 ms
        assert h.stats().total["pkts_out"] == 21


@pytest.mark.parametrize("gso", [True, False], ids=["gro", "no-gro"])
def test_sink_counts_every_datagram_a_gso_buffer_included_and_answers_none(gso: bool) -> None:
    with start_relay(RelaySettings(mode="sink", gso=gso, rcvbuf=1 << 21)) as h:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tx.connect(h.address[:2])
            for i in range(50):
                tx.send(b"%d" % i)
            tx.sendmsg([b"z" * (64 * 30 + 10)], [(17, 103, (64).to_bytes(2, "little"))])  # 31 datagrams, GSO
            deadline = time.monotonic() + 10
            while h.stats().total["pkts_in"] < 81 and time.monotonic() < deadline:
                time.sleep(0.05)  # the sink publishes its counts every 0.1 s
        finally:
            tx.close()
        final = h.stop()
    assert final.total["pkts_in"] == 81
    assert final.total["bytes_in"] == sum(len(b"%d" % i) for i in range(50)) + 64 * 30 + 10
    assert final.total["pkts_out"] == 0
