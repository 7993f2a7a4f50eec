"""Detection rules and remedy ranking on recordings replayed through `iovkit diagnose --from`."""

from __future__ import annotations

import json
from pathlib import Path

from iovkit.diagnose import diagnose
from iovkit.diagnose.model import Recording, key


def _linux(
    busy: dict[str, float],
    softirq: dict[str, float],
    pps: dict[str, float],
    n: int = 5,
    extra: dict[str, dict[str, float]] | None = None,
) -> Recording:
    """A recording as the live sampler writes it (rates per interval), constant over n samples."""
    rec = Recording(source="procfs", host="kvm-1", timestamps=[1000.0 + i for i in range(n)])
    series = {
        key("linux cpu", "% busy"): busy,
        key("linux cpu", "% softirq"): softirq,
        key("linux cpu", "% irq"): {c: 0.0 for c in busy},
        key("softnet", "processed/sec"): pps,
    }
    series.update(extra or {})
    for ck, per in series.items():
        for inst, v in per.items():
            rec.counters.setdefault(ck, {})[inst] = [v] * n
    return rec


def test_softirq_saturated_core_on_kvm_host_with_vhost_and_drops(cli, tmp_path: Path) -> None:
    rec = _linux(
        {"0": 12.0, "1": 97.0, "2": 8.0},
        {"0": 1.0, "1": 95.0, "2": 0.5},
        {"0": 4000.0, "1": 760_000.0, "2": 1000.0},
        extra={
            key("softnet", "dropped/sec"): {"0": 0.0, "1": 120.0, "2": 0.0},
            key("softnet", "time_squeeze/sec"): {"0": 0.0, "1": 40.0, "2": 0.0},
            key("udp", "rcvbuferrors/sec"): {"": 15.0},
            key("vhost", "% cpu"): {"vhost-4242:4250": 99.0},
        },
    )
    f = tmp_path / "kvm.json"
    rec.save(f)
    r = cli("diagnose", "--from", str(f), "--format", "json")
    assert r.code == 1
    doc = json.loads(r.out)
    ids = {x["id"]: x for x in doc["findings"]}
    assert ids["SINGLE-CORE-SWITCH"]["core"] == "1"
    ev = ids["SINGLE-CORE-SWITCH"]["evidence"]
    # the host passes 765k pkt/s through NET_RX while CPU 1 is 97% busy: 765k / 0.97 at the host,
    # and CPU 1's own 760k / 0.97 beside it
    assert abs(ev["saturation_pps"] - 765_000 / 0.97) < 1000
    assert abs(ev["core_saturation_pps"] - 760_000 / 0.97) < 1000
    assert ev["saturation_pps"] >= ev["nic_pps"] == 765_000
    assert ids["SOFTNET-DROPS"]["core"] == "1" and ids["SOFTNET-SQUEEZE"]["core"] == "1"
    assert "UDP-BUFFER-DROPS" in ids and "VHOST-SATURATED" in ids
    ranked = [x["id"] for x in doc["recommendations"]]
    assert ranked[0] == "SRIOV"  # the vhost worker is CPU-bound: take the host out of the path
    assert ranked.index("RSS") < ranked.index("RPS-RFS") < ranked.index("BACKLOG") < ranked.index("UDP-BUFFERS")


def test_every_core_busy_is_overload_not_single_core() -> None:
    rep = diagnose(_linux({"0": 97.0, "1": 96.0}, {"0": 92.0, "1": 91.0}, {"0": 300_000.0, "1": 290_000.0}))
    assert rep.finding("SINGLE-CORE-SWITCH") is None
    assert rep.finding("HOST-CPU-SATURATED") is not None
    assert rep.verdict == "ok"


def test_busy_core_with_little_network_work_is_not_the_switch() -> None:
    """A CPU-bound application (100% busy, 20% softirq) is not a switch bottleneck, but its packets are unspread."""
    rep = diagnose(_linux({"0": 100.0, "1": 3.0}, {"0": 20.0, "1": 0.0}, {"0": 300_000.0, "1": 10.0}))
    assert rep.finding("SINGLE-CORE-SWITCH") is None
    spread = rep.finding("MISSING-SPREAD")
    assert spread is not None and spread.core == "0"
    assert [r.id for r in rep.recommendations][:2] == ["RSS", "RPS-RFS"]


def test_cumulative_switch_processor_counts_are_turned_into_rates() -> None:
    """`Packets from External` without /sec may be a running count: the view differentiates it."""
    n = 6
    rec = Recording(source="pdh-csv", timestamps=[float(i * 2) for i in range(n)])  # 2 s interval
    run = key("hyper-v hypervisor root virtual processor", "% total run time")
    ext = key("hyper-v virtual switch processor", "packets from external")
    for c, (busy, rate) in enumerate([(99.0, 440_000.0), (9.0, 0.0)]):
        rec.counters.setdefault(run, {})[f"root vp {c}"] = [busy] * n
        rec.counters.setdefault(ext, {})[str(c)] = [1e9 + rate * 2 * i for i in range(n)]
    rep = diagnose(rec)
    hot = rep.finding("SINGLE-CORE-SWITCH")
    assert hot is not None and hot.core == "0"
    assert hot.evidence["hot_core_pps"] == 440_000
    assert abs(hot.evidence["saturation_pps"] - 440_000 / 0.99) < 1000
    assert any("% Interrupt Time" in m for m in rep.missing)


def test_idle_recording_is_idle_not_ok_exit_2(cli, tmp_path: Path) -> None:
    """90 pkt/s proves nothing either way: verdict idle, exit 2 like any input that cannot answer the question."""
    f = tmp_path / "quiet.json"
    _linux({"0": 5.0, "1": 4.0}, {"0": 0.1, "1": 0.1}, {"0": 50.0, "1": 40.0}).save(f)
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 2
    doc = json.loads(r.out)
    assert doc["verdict"] == "idle" and doc["findings"] == [] and doc["recommendations"] == []
    assert "idle: at most 90 pkt/s" in r.err and r.err.count("\n") == 1


def test_loaded_spread_recording_is_ok_exit_0(cli, tmp_path: Path) -> None:
    f = tmp_path / "spread.json"
    _linux({"0": 45.0, "1": 40.0}, {"0": 30.0, "1": 28.0}, {"0": 200_000.0, "1": 190_000.0}).save(f)
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["verdict"] == "ok"


def test_exporter_gauge_is_1_while_single_core_switch_holds() -> None:
    from prometheus_client import generate_latest

    from iovkit.diagnose.monitor import Metrics

    hot = _linux({"0": 5.0, "1": 98.0}, {"0": 0.5, "1": 94.0}, {"0": 100.0, "1": 500_000.0})
    m = Metrics.create()
    m.update(hot, diagnose(hot))
    text = generate_latest(m.registry).decode()
    assert "iovkit_single_core_switch 1.0" in text
    assert "iovkit_single_core_switch_cpu 1.0" in text
    assert 'iovkit_cpu_softirq_percent{cpu="1"} 94.0' in text
    calm = _linux({"0": 5.0, "1": 8.0}, {"0": 0.5, "1": 4.0}, {"0": 100.0, "1": 5_000.0})
    m.update(calm, diagnose(calm))
    text = generate_latest(m.registry).decode()
    assert "iovkit_single_core_switch 0.0" in text and "iovkit_single_core_switch_cpu -1.0" in text


def _ramp(hot_from: int, n: int = 10) -> Recording:
    """A live-sampler window of n samples where CPU 1 saturates only from sample `hot_from` on."""
    rec = Recording(source="procfs", host="kvm-1", timestamps=[1000.0 + i for i in range(n)])
    hot = [i >= hot_from for i in range(n)]
    series = {
        key("linux cpu", "% busy"): {"0": [5.0] * n, "1": [97.0 if h else 20.0 for h in hot]},
        key("linux cpu", "% softirq"): {"0": [0.5] * n, "1": [95.0 if h else 10.0 for h in hot]},
        key("linux cpu", "% irq"): {"0": [0.0] * n, "1": [0.0] * n},
        key("softnet", "processed/sec"): {"0": [100.0] * n, "1": [600_000.0 if h else 60_000.0 for h in hot]},
    }
    for ck, per in series.items():
        for inst, v in per.items():
            rec.counters.setdefault(ck, {})[inst] = v
    return rec


def test_live_and_exporter_judge_their_own_window() -> None:
    """A 10 s live sample is its own window: two hot seconds at its end are a peak, not a sustained window;
    the exporter shows that peak in its max gauges and raises SINGLE-CORE-SWITCH only once the whole window is hot."""
    from prometheus_client import generate_latest

    from iovkit.diagnose.monitor import Metrics

    brief = diagnose(_ramp(hot_from=8))
    assert brief.verdict == "ok" and brief.windows == [] and brief.min_window_s == 10
    m = Metrics.create()
    m.update(_ramp(hot_from=8), brief)
    text = generate_latest(m.registry).decode()
    assert "iovkit_single_core_switch 0.0" in text
    assert 'iovkit_cpu_busy_max_percent{cpu="1"} 97.0' in text
    assert 'iovkit_diagnose_verdict{verdict="ok"} 1.0' in text
    held = diagnose(_ramp(hot_from=0))
    assert held.verdict == "bottleneck" and held.windows[0].duration_s == 10
    m.update(_ramp(hot_from=0), held)
    text = generate_latest(m.registry).decode()
    assert "iovkit_single_core_switch 1.0" in text and 'iovkit_diagnose_verdict{verdict="bottleneck"} 1.0' in text
    assert "iovkit_saturation_packets_per_second 618660.0" in text  # 600,100 pkt/s at 97% busy


def test_live_sample_without_packets_is_idle() -> None:
    rec = _ramp(hot_from=99)
    for v in rec.counters[key("softnet", "processed/sec")].values():
        v[:] = [3.0] * len(v)
    rep = diagnose(rec)
    assert rep.verdict == "idle" and "at most 6 pkt/s" in rep.note


def test_idle_and_insufficient_data_are_said_as_such_in_every_view() -> None:
    """The monitor view's caption, the exporter's gauges and doctor's note name the verdict: an idle window or one
    without the counters needed is never shown as "no single-core switch bottleneck" nor gauged 0 like a clear."""
    from prometheus_client import generate_latest

    from iovkit.diagnose.monitor import Metrics
    from iovkit.diagnose.render import verdict_line
    from iovkit.doctor import run_doctor
    from tests.fixtures.snapshots import lx_ready

    quiet = _ramp(hot_from=99)
    for v in quiet.counters[key("softnet", "processed/sec")].values():
        v[:] = [3.0] * len(v)
    blind = _ramp(hot_from=99)
    del blind.counters[key("softnet", "processed/sec")]
    spread = diagnose(_ramp(hot_from=99))
    held = diagnose(_ramp(hot_from=0))
    idle, lacking = diagnose(quiet), diagnose(blind)
    assert (idle.verdict, lacking.verdict, spread.verdict) == ("idle", "insufficient-data", "ok")
    assert verdict_line(idle).startswith("idle: at most 6 pkt/s") and "nothing to judge" in verdict_line(idle)
    assert verdict_line(lacking).startswith("insufficient-data: no packet counters")
    assert verdict_line(spread) == "ok: no single-core switch bottleneck"
    assert verdict_line(held).startswith("bottleneck: ") and "core 1" in verdict_line(held).lower()
    for rep in (idle, lacking):
        assert "no single-core" not in verdict_line(rep)
        m = Metrics.create()
        m.update(quiet, rep)
        text = generate_latest(m.registry).decode()
        assert "iovkit_single_core_switch NaN" in text and "iovkit_saturation_packets_per_second NaN" in text
        assert f'iovkit_diagnose_verdict{{verdict="{rep.verdict}"}} 1.0' in text
        snap = lx_ready()
        snap.source.kind, snap.source.origin = "linux-live", "/"
        doc = run_doctor(snap, sampler=lambda s, rep=rep: rep, seconds=0.5)
        assert doc.diagnose_note.startswith(f"live sample 0.5 s: {rep.verdict}: ") and doc.verdict == "ready"
    m = Metrics.create()
    m.update(_ramp(hot_from=99), spread)
    assert "iovkit_single_core_switch 0.0" in generate_latest(m.registry).decode()


def test_table_of_an_idle_recording_gives_no_clear(cli, tmp_path: Path) -> None:
    f = tmp_path / "quiet.json"
    _linux({"0": 5.0, "1": 4.0}, {"0": 0.1, "1": 0.1}, {"0": 50.0, "1": 40.0}).save(f)
    r = cli("diagnose", str(f))
    assert r.code == 2 and "verdict: idle" in r.out
    assert "No findings, and no clear: idle" in r.out and "No findings." not in r.out
