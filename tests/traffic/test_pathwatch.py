"""pathwatch: which interface carries the host's traffic, steal and CPU; the bench's step guard; compare's VF flag."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from iovkit.traffic import pathwatch
from iovkit.traffic.compare import compare
from iovkit.traffic.relay import RelaySettings, serve_metrics, start_relay
from tests.fixtures import guest_trees as gt
from tests.traffic.test_compare import _run

STAT = "cpu  {u} 0 {s} {i} 0 0 0 {st} 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n"


def test_cpu_jiffies_busy_and_steal() -> None:
    a = pathwatch.cpu_jiffies(STAT.format(u=100, s=50, i=800, st=50))
    b = pathwatch.cpu_jiffies(STAT.format(u=150, s=60, i=870, st=70))
    assert pathwatch.percent(a, b) == (53.33, 13.33)  # 80 busy (20 of it stolen) of 150 jiffies
    assert pathwatch.percent(b, b) == (None, None)


class Scripted(pathwatch.PathWatcher):
    """A watcher over a sysfs tree whose /proc/net/dev readings are given (one per sample)."""

    def __init__(self, sys_net: str, readings: list[dict[str, tuple[int, int]]]) -> None:
        ticks = iter(range(len(readings)))
        super().__init__(interval=1.0, sys_net=sys_net, clock=lambda: float(next(ticks)))  # one second apart
        self.readings = readings

    def _counters(self) -> dict[str, tuple[int, int]]:
        return self.readings.pop(0)


def test_netvsc_keeps_only_its_own_share(tmp_path: Path) -> None:
    """hv_netvsc's totals include its VF's: VF traffic is 'vf', netvsc minus VF is 'synthetic'."""
    gt.build_netvsc_vf(tmp_path)
    vf = "enP53091s1np0"
    sys_net = str(tmp_path / "sys/class/net")
    assert pathwatch.kind_of("eth0", sys_net) == "synthetic" and pathwatch.kind_of(vf, sys_net) == "vf"
    w = Scripted(
        sys_net,
        [
            {"eth0": (1000, 1000), vf: (900, 900)},
            {"eth0": (6000, 6000), vf: (5800, 5800)},  # the VF carried 4900 of eth0's 5000 each way
            {"eth0": (11000, 11000), vf: (5800, 5800)},  # the VF left: everything on the synthetic path
        ],
    )
    assert w.sample() is None  # the first reading only starts the interval
    on_vf = w.sample()
    assert on_vf is not None and on_vf["path"] == f"vf:{vf}"
    fallback = w.sample()
    assert fallback is not None and fallback["path"] == "synthetic:eth0"
    assert w.summary()["path_changes"] == 1 and w.summary()["paths_seen"] == [f"vf:{vf}", "synthetic:eth0"]


def test_kvm_virtio_is_paravirtual_and_quiet_is_idle(tmp_path: Path) -> None:
    gt.build_kvm_virtio(tmp_path)
    sys_net = str(tmp_path / "sys/class/net")
    w = Scripted(sys_net, [{"eth0": (0, 0)}, {"eth0": (10, 10)}, {"eth0": (5010, 5010)}])
    w.sample()
    quiet = w.sample()
    assert quiet is not None and quiet["path"] == "idle"  # 20 packets in a second: chatter, not a path
    busy = w.sample()
    assert busy is not None and busy["path"] == "paravirtual:eth0"


class _Step:
    steal_pct: float | None = None
    target_path: dict[str, Any] | None = None
    invalid_because: str | None = None


def test_guard_marks_steal_and_records_a_failed_query() -> None:
    a = pathwatch.cpu_jiffies(STAT.format(u=100, s=50, i=800, st=0))
    b = pathwatch.cpu_jiffies(STAT.format(u=150, s=60, i=870, st=20))
    step = _Step()
    samples = [{"seq": 5, "path": "vf:eth1", "steal_pct": 0.5, "cpu_pct": 30.0}]
    pathwatch.guard_step(step, a, b, lambda since: {"host": {"seq": 5, "samples": samples}}, 4, 5.0)
    assert step.steal_pct == pytest.approx(13.33, abs=0.01)
    assert step.target_path == {
        "samples": 1,
        "paths": ["vf:eth1"],
        "path_changes": 0,
        "steal_pct_max": 0.5,
        "cpu_pct_max": 30.0,
    }
    assert step.invalid_because == "generator steal 13.33% > 5%"

    def down(since: int) -> dict[str, Any]:
        raise ConnectionRefusedError(111, "Connection refused")

    quiet = _Step()
    pathwatch.guard_step(quiet, a, a, down, 0, 5.0)
    assert quiet.target_path is not None and "stats query failed" in quiet.target_path["error"]
    assert quiet.invalid_because is None and quiet.steal_pct is None


def _with_paths(run: Any, paths: list[str]) -> Any:
    for s in run.steps:
        s.target_path = {"samples": 3, "paths": paths, "path_changes": 0, "steal_pct_max": 0.0, "cpu_pct_max": 9.0}
    return run


def test_compare_flags_an_after_that_never_ran_on_a_vf() -> None:
    before = [_with_paths(_run(4000, 100, seed=1), ["synthetic:eth0"])]
    stuck = compare(before, [_with_paths(_run(6000, 60, seed=2), ["synthetic:eth0"])])
    assert stuck.after_on_vf is False
    assert any(
        w.startswith("AFTER never ran on a VF: the target's traffic went over synthetic:eth0") for w in stuck.warnings
    )
    good = compare(before, [_with_paths(_run(6000, 60, seed=2), ["vf:enP1s1"])])
    assert good.after_on_vf is True and not any("never ran on a VF" in w for w in good.warnings)
    unknown = compare([_run(4000, 100, seed=1)], [_run(6000, 60, seed=2)])
    assert unknown.after_on_vf is None
    loopback = compare(before, [_with_paths(_run(6000, 60, seed=2), [])])  # the relay saw only lo: no answer
    assert loopback.after_on_vf is None and not any("never ran on a VF" in w for w in loopback.warnings)


def test_relay_serves_its_samples_and_metrics() -> None:
    with start_relay(RelaySettings(mode="echo", path_interval=0.05)) as h:
        addr = serve_metrics(h, "127.0.0.1", 0)
        for _ in range(200):
            if h.watcher is not None and h.watcher.seq >= 2:
                break
            time.sleep(0.05)
        data = pathwatch.fetch(addr, 1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{addr[1]}/metrics", timeout=5).read().decode()
    assert data["host"]["seq"] >= 2 and all(s["seq"] > 1 for s in data["host"]["samples"])
    assert {"path", "steal_pct", "cpu_pct", "pps", "time"} <= set(data["host"]["samples"][0])
    assert "relay" in data and "total" in data["relay"]
    assert "iovkit_relay_host_steal_percent" in metrics and "iovkit_relay_host_path_changes_total" in metrics
    assert "iovkit_relay_packets_received_total" in metrics  # the relay's own metrics are still there


def test_compare_cli_says_after_never_ran_on_a_vf(cli: Any, tmp_path: Path) -> None:
    b, a = tmp_path / "before.json", tmp_path / "after.json"
    _with_paths(_run(4000, 100, seed=1), ["synthetic:eth0"]).write(b)
    after = _with_paths(_run(6000, 60, seed=2), ["synthetic:eth0"])
    after.steps[0].invalid_because = "the target's data path changed during the step (vf:enP1s1 -> synthetic:eth0)"
    after.write(a)
    r = cli("compare", str(b), str(a), "--no-plots")
    assert "AFTER never ran on a VF" in r.out
    assert "1 AFTER step(s) are invalid: the target's data path changed" in r.err
    j = cli("compare", str(b), str(a), "--no-plots", "--format", "json")
    assert json.loads(j.out)["after_on_vf"] is False


def test_relay_command_serves_the_stats_query_and_names_the_path_in_its_final_stats() -> None:
    """`iovkit relay --metrics`: the load generator's stats query answers; --format json ends with the host part."""
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "iovkit", "relay", "--mode", "echo", "--listen", "127.0.0.1:0", "--metrics",
         "127.0.0.1:0", "--format", "json", "--log-interval", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IOVKIT_FASTPATH": "0"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = ""
        while "metrics on http://" not in line:
            line = proc.stderr.readline()
            assert line, "the relay ended before serving metrics"
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        data: dict[str, Any] = {}
        for _ in range(100):  # the first sample comes one interval after the start
            data = pathwatch.fetch(("127.0.0.1", port), 0)
            if data["host"]["samples"]:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert data["host"]["samples"] and "steal_pct" in data["host"]["samples"][0]
    final = json.loads(out)
    assert final["host"]["seq"] >= 1 and "paths_seen" in final["host"]
