"""Sessions between peers in two network namespaces joined by veth pairs through a Linux bridge.

Topology (all made here, all removed after): namespace R holds bridge br0 (10.231.N.1, where the relay listens);
namespaces A (10.231.N.2) and B (10.231.N.3) each have one veth whose peer end is a port of br0. No interface is
created in the root namespace and no packet leaves these namespaces.
"""

from __future__ import annotations

import ctypes
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from iovkit.traffic import protocol as p
from iovkit.traffic.mmsg import BatchSocket, open_udp
from iovkit.traffic.relay import RelaySettings, start_relay
from tests.conftest import needs_root

KEY = b"relay-key-for-tests-0123456789ab"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run fn in a thread that entered namespace `name` (sockets made there stay in that namespace)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {name}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as err:  # re-raised in the caller
            box["error"] = err

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def bridged() -> Iterator[dict[str, str]]:
    suf = f"{os.getpid() % 100000}{random.randrange(1000):03d}"
    net = f"10.231.{os.getpid() % 250}"
    ns = {"r": f"iovk-r-{suf}", "a": f"iovk-a-{suf}", "b": f"iovk-b-{suf}"}
    try:
        for name in ns.values():
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", ns["r"], "link", "add", "br0", "type", "bridge")
        ip("-n", ns["r"], "addr", "add", f"{net}.1/24", "dev", "br0")
        ip("-n", ns["r"], "link", "set", "br0", "up")
        for i, side in enumerate(("a", "b"), start=2):
            ip("-n", ns[side], "link", "add", "eth0", "type", "veth", "peer", "name", f"port{side}", "netns", ns["r"])
            ip("-n", ns["r"], "link", "set", f"port{side}", "master", "br0")
            ip("-n", ns["r"], "link", "set", f"port{side}", "up")
            ip("-n", ns[side], "addr", "add", f"{net}.{i}/24", "dev", "eth0")
            ip("-n", ns[side], "link", "set", "eth0", "up")
        yield {**ns, "relay_ip": f"{net}.1", "a_ip": f"{net}.2", "b_ip": f"{net}.3"}
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def handshake(bs: BatchSocket, relay: tuple[str, int], sid: int, pid: int) -> p.Joiner:
    j = p.Joiner(sid, pid, p.mint_token(KEY, sid, pid, int(time.time()) + 60))
    nxt: bytes | None = j.first()
    for _ in range(10):  # the first datagrams may wait for ARP/bridge learning: retry
        if j.joined or j.rejected:
            break
        bs.send([(nxt or j.first(), relay)])
        got = bs.recv(timeout=1.0)
        nxt = j.on_reply(got[0][0]) if got else None
    return j


@needs_root
def test_session_between_two_namespaces_through_a_bridge(bridged: dict[str, str]) -> None:
    handle = in_netns(
        bridged["r"],
        lambda: start_relay(RelaySettings(host=bridged["relay_ip"], mode="relay", workers=2, key=KEY, rcvbuf=1 << 22)),
    )
    try:
        relay = (bridged["relay_ip"], handle.address[1])
        sock_a = in_netns(bridged["a"], lambda: open_udp(bridged["a_ip"], 0, rcvtimeo=0.5, rcvbuf=1 << 22))
        sock_b = in_netns(bridged["b"], lambda: open_udp(bridged["b_ip"], 0, rcvtimeo=0.5, rcvbuf=1 << 22))
        a, b = BatchSocket(sock_a), BatchSocket(sock_b)
        assert handshake(a, relay, 4242, 1).joined
        jb = handshake(b, relay, 4242, 2)
        assert jb.joined and jb.members == 2
        n = 300
        got_b: list[tuple[bytes, tuple]] = []
        got_a: list[tuple[bytes, tuple]] = []
        for start in range(0, n, 50):  # bursts of 50 stay well inside every socket buffer: no loss expected
            a.send([(p.encode_data(4242, 1, i, time.time_ns(), b"from-a"), relay) for i in range(start, start + 50)])
            b.send(
                [(p.encode_data(4242, 2, i, time.time_ns(), b"from-b", to=1), relay) for i in range(start, start + 50)]
            )
            got_b.extend(b.recv(timeout=0.5))
            got_a.extend(a.recv(timeout=0.5))
        end = time.monotonic() + 5
        while (len(got_a) < n or len(got_b) < n) and time.monotonic() < end:
            got_b.extend(b.recv(timeout=0.1))
            got_a.extend(a.recv(timeout=0.1))
        assert sorted(p.decode(d).seq for d, _ in got_b) == list(range(n))
        assert sorted(p.decode(d).seq for d, _ in got_a) == list(range(n))
        assert {addr[:2] for _, addr in got_a + got_b} == {relay}  # everything comes from the relay
        assert all(p.decode(d).payload == b"from-a" for d, _ in got_b)
        stats = handle.stop()
        assert stats.total["joins"] == 2 and stats.total["pkts_out"] >= 2 * n
        sock_a.close()
        sock_b.close()
    finally:
        handle.stop()


@needs_root
def test_unproven_namespace_host_gets_nothing_forwarded(bridged: dict[str, str]) -> None:
    handle = in_netns(
        bridged["r"], lambda: start_relay(RelaySettings(host=bridged["relay_ip"], mode="relay", workers=1, key=KEY))
    )
    try:
        relay = (bridged["relay_ip"], handle.address[1])
        sock_a = in_netns(bridged["a"], lambda: open_udp(bridged["a_ip"], 0, rcvtimeo=0.5, rcvbuf=1 << 22))
        sock_b = in_netns(bridged["b"], lambda: open_udp(bridged["b_ip"], 0, rcvtimeo=0.5, rcvbuf=1 << 22))
        a, b = BatchSocket(sock_a), BatchSocket(sock_b)
        assert handshake(a, relay, 9, 1).joined
        # B never joined: it claims to be peer 2 of session 9 and sends data; nothing reaches A or B
        b.send([(p.encode_data(9, 2, i, 0, b"spoof"), relay) for i in range(20)])
        assert a.recv(timeout=0.5) == [] and b.recv(timeout=0.2) == []
        time.sleep(0.2)
        assert handle.stats().drops().get("unknown_source") == 20
        sock_a.close()
        sock_b.close()
    finally:
        handle.stop()
