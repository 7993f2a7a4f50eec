"""`iovkit doctor`: the live-sample path (only for a snapshot of this host) and this machine's answer."""

from __future__ import annotations

import json

import pytest

from iovkit.doctor import is_this_host, run_doctor
from iovkit.snapshot import HostSnapshot
from tests.fixtures.snapshots import lx_ready


def live(snap: HostSnapshot) -> HostSnapshot:
    snap.source.kind, snap.source.origin = "linux-live", "/"
    return snap


def test_only_a_live_snapshot_of_this_host_is_sampled():
    calls: list[float] = []

    def sampler(seconds: float):
        calls.append(seconds)
        return None

    r = run_doctor(lx_ready(), sampler=sampler)  # an archive from elsewhere
    assert calls == [] and "not of this host" in r.diagnose_note
    s = lx_ready()
    s.source.kind, s.source.origin = "linux-live", "/srv/other-root"
    assert not is_this_host(s)
    r = run_doctor(live(lx_ready()), sampler=sampler, seconds=0.3)
    assert calls == [0.3] and r.diagnose is None and "no live counters" in r.diagnose_note
    assert r.verdict == "ready" and r.exit_code == 0


def test_without_diagnose_module_says_so():
    r = run_doctor(live(lx_ready()), use_default_sampler=False)
    assert r.diagnose is None and "not available" in r.diagnose_note and r.verdict == "ready"


def test_bottleneck_from_sample_becomes_the_verdict():
    detect = pytest.importorskip("iovkit.diagnose.detect")
    report = detect.DiagnoseReport(
        verdict="bottleneck",
        findings=[
            detect.Finding(
                id="SINGLE-CORE-SWITCH", severity="critical", summary="CPU 0 spends 97% in softirq handling 150k pps"
            )
        ],
        recommendations=[],
        platform="linux",
        cores=[],
        missing=[],
        source="procfs",
        samples=4,
    )
    r = run_doctor(live(lx_ready()), sampler=lambda s: report)
    assert r.verdict == "bottleneck" and r.exit_code == 1
    assert "CPU 0 spends 97%" in r.headline
    doc = r.to_dict()
    assert doc["verdict"] == "bottleneck" and doc["check_verdict"] == "ready"
    assert doc["diagnose"]["verdict"] == "bottleneck"
    s = live(lx_ready())
    s.iommu.active = False  # not-ready stays the verdict; the bottleneck is still named
    r = run_doctor(s, sampler=lambda sec: report)
    assert r.verdict == "not-ready" and "CPU 0 spends 97%" in r.headline


def test_real_live_sample_on_this_machine():
    diagnose = pytest.importorskip("iovkit.diagnose")
    if not diagnose.live_available():
        pytest.skip("no live counters here")
    r = run_doctor(live(lx_ready()), seconds=0.2)
    assert r.diagnose is not None and r.diagnose.verdict in ("bottleneck", "ok", "idle", "insufficient-data")
    assert r.diagnose_note.startswith("live sample 0.2 s")


def _linux_collector_ready() -> bool:
    try:
        from iovkit.sources.linux import collect  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _linux_collector_ready(), reason="the Linux collector (iovkit.sources.linux) is not in yet")
def test_doctor_on_this_machine_a_vm_guest_is_not_ready_and_says_why(cli):
    r = cli("doctor", "--format", "json", "--duration", "0.3")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    guest_finding = next(f for f in doc["findings"] if f["id"] == "LX-GUEST")
    if guest_finding["status"] == "pass":
        pytest.skip("this machine is not a VM guest")
    assert doc["check_verdict"] == "not-ready" and guest_finding["status"] == "fail"
    assert doc["top_fixes"][0]["id"] == "LX-GUEST"
    r = cli("doctor", "--duration", "0.3")
    assert "NOT READY" in r.out.splitlines()[0]
    assert "host-side SR-IOV cannot be set up inside a guest" in r.out


@pytest.mark.skipif(not _linux_collector_ready(), reason="the Linux collector (iovkit.sources.linux) is not in yet")
def test_check_on_this_machine_names_guest_and_no_vf(cli):
    r = cli("check", "--format", "json")
    doc = json.loads(r.out)
    by = {f["id"]: f for f in doc["findings"]}
    if by["LX-GUEST"]["status"] == "pass":
        pytest.skip("this machine is not a VM guest")
    assert r.code == 1 and doc["verdict"] == "not-ready"
    assert by["LX-GUEST"]["evidence"]["host.is_vm_guest"] is True
    assert by["LX-IOMMU"]["status"] == "not-applicable"  # host-side rules do not apply inside a guest


def test_the_hidden_checks_hint_keeps_the_input(cli) -> None:
    """Doctor on a capture hides passing checks; a bare `iovkit check` would judge this machine instead."""
    r = cli("doctor", "--example", "esxi-x710")
    assert "`iovkit check` with the same input lists them" in " ".join(r.out.split())


def test_unknowns_are_headed_by_where_the_input_came_from(cli, tmp_path) -> None:
    """A paste is told to collect and paste; a live run on this host is told iovkit could not read it here."""
    import json

    snap = tmp_path / "lx.json"
    assert cli("collect", "--example", "linux-cx5", "-o", str(snap)).code == 0
    doc = json.loads(snap.read_text())
    doc["nics"] = None  # the NIC list was not collected
    pasted, live_here = tmp_path / "pasted.json", tmp_path / "live.json"
    pasted.write_text(json.dumps(doc))
    doc["source"]["kind"], doc["source"]["origin"] = "linux-live", str(tmp_path)  # not "/": no live sample
    live_here.write_text(json.dumps(doc))
    r = cli("doctor", "--from", str(pasted))
    assert "Collect (not in this input; run on the host and paste the output)" in r.out, r.out
    assert "grep . /sys/class/net/*/device/sriov_totalvfs" in r.out
    r = cli("doctor", "--from", str(live_here))
    assert "Not collected (iovkit could not read these here" in r.out and "paste the output" not in r.out, r.out
