"""The path guard for real: a bench step whose traffic moves from one veth to another mid-step is marked invalid.

Topology (made here, removed after; no address outside these namespaces): namespace R runs the relay (an echo
reflector) on 10.234.N.100, an address on its loopback; namespace C runs the bench from 10.235.N.2 on its own
loopback. Two veth pairs join them (pw1c-pw1r on 10.232.N.0/24, pw2c-pw2r on 10.233.N.0/24). Host routes send the
service traffic over pair 1; mid-step the test moves both directions' routes to pair 2, so the relay's own
samples (pathwatch) see its busiest interface change from pw1r to pw2r.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from iovkit.traffic import pathwatch
from iovkit.traffic.benchrun import run_bench
from iovkit.traffic.relay import RelaySettings, serve_metrics, start_relay
from iovkit.traffic.results import BenchSettings, Objective
from tests.conftest import needs_root
from tests.traffic.test_relay_netns import in_netns, ip

pytestmark = needs_root


@pytest.fixture
def two_paths() -> Iterator[dict[str, str]]:
    suf = f"{os.getpid() % 100000}{random.randrange(1000):03d}"
    n = os.getpid() % 250
    ns = {"r": f"iovk-pr-{suf}", "c": f"iovk-pc-{suf}"}
    svc, cli = f"10.234.{n}.100", f"10.235.{n}.2"
    try:
        for name in ns.values():
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", ns["r"], "addr", "add", f"{svc}/32", "dev", "lo")
        ip("-n", ns["c"], "addr", "add", f"{cli}/32", "dev", "lo")
        for k, net in ((1, f"10.232.{n}"), (2, f"10.233.{n}")):
            ip("-n", ns["c"], "link", "add", f"pw{k}c", "type", "veth", "peer", "name", f"pw{k}r", "netns", ns["r"])
            ip("-n", ns["c"], "addr", "add", f"{net}.2/24", "dev", f"pw{k}c")
            ip("-n", ns["r"], "addr", "add", f"{net}.1/24", "dev", f"pw{k}r")
            ip("-n", ns["c"], "link", "set", f"pw{k}c", "up")
            ip("-n", ns["r"], "link", "set", f"pw{k}r", "up")
        for name in ns.values():  # a reply may leave by another pair than its request came in on, for a moment
            subprocess.run(
                ["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
                check=True,
                capture_output=True,
                timeout=10,
            )
        ip("-n", ns["c"], "route", "add", f"{svc}/32", "via", f"10.232.{n}.1", "src", cli)
        ip("-n", ns["r"], "route", "add", f"{cli}/32", "via", f"10.232.{n}.2", "src", svc)
        yield {**ns, "svc": svc, "cli": cli, "net2": f"10.233.{n}"}
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def _move_to_pair2(t: dict[str, str]) -> None:
    ip("-n", t["c"], "route", "replace", f"{t['svc']}/32", "via", f"{t['net2']}.1", "src", t["cli"])
    ip("-n", t["r"], "route", "replace", f"{t['cli']}/32", "via", f"{t['net2']}.2", "src", t["svc"])


def test_moving_traffic_to_another_veth_mid_step_marks_the_step(two_paths: dict[str, str]) -> None:
    t = two_paths

    def start() -> tuple[Any, tuple[str, int]]:
        h = start_relay(RelaySettings(host="0.0.0.0", port=0, mode="echo", path_interval=0.2))
        return h, serve_metrics(h, t["svc"], 0)

    handle, metrics = in_netns(t["r"], start)
    moved = threading.Event()

    def move_once_pair1_carries() -> None:
        """Wait until the relay's own samples show pair 1 carrying the step, then move the routes."""
        for _ in range(200):
            samples = in_netns(t["c"], lambda: pathwatch.fetch(metrics, 0))["host"]["samples"]
            if any(s["path"] == "virtual:pw1r" for s in samples):
                _move_to_pair2(t)
                moved.set()
                return
            time.sleep(0.05)

    movers: list[threading.Thread] = []

    def on_start(rate: float) -> None:
        if not movers:  # the first step only: the second runs on pair 2 from start to end
            movers.append(threading.Thread(target=move_once_pair1_carries))
            movers[0].start()

    settings = BenchSettings(
        mode="echo",
        target=f"{t['svc']}:{handle.address[1]}",
        start_rate=2000,
        step_factor=1.2,
        max_steps=2,
        step_seconds=4.0,  # the move comes ~0.5 s in: samples of both pairs fall inside the step
        flows=1,
        senders=1,
        objective=Objective(max_loss_pct=100, max_p99_us=1e9, min_achieved_ratio=0),
        target_stats=f"{metrics[0]}:{metrics[1]}",
        max_steal_pct=100.0,  # this test is about the path; a busy CI box may steal
    )
    try:
        result = in_netns(t["c"], lambda: run_bench(settings, kernel_timestamps=False, on_start=on_start))
    finally:
        for m in movers:
            m.join(15)
        final = handle.stop()
    assert moved.is_set()
    first, second = result.steps
    assert first.target_path is not None and first.target_path["paths"] == ["virtual:pw1r", "virtual:pw2r"]
    assert first.invalid_because is not None and "data path changed" in first.invalid_because
    assert "virtual:pw1r -> virtual:pw2r" in first.invalid_because
    assert second.target_path is not None and second.target_path["paths"] == ["virtual:pw2r"]
    assert second.invalid_because is None
    assert first.steal_pct is not None and second.steal_pct is not None  # every step carries steal time
    assert final.host is not None and final.host["path_changes"] >= 1
