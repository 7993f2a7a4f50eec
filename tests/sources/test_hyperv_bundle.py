"""Collector bundles in both PowerShell JSON shapes -> snapshot, field by field; bad bundles -> exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot
from iovkit.sources.hyperv.bundle import snapshot_from_bundle, snapshot_from_bundle_file
from tests.fixtures import hyperv_bundles as B


def facts(snap: HostSnapshot) -> dict[str, Any]:
    """Everything but where the snapshot came from."""
    d = snap.model_dump()
    d.pop("source")
    return d


@pytest.mark.parametrize("shape", ["ps7", "ps51", "ps51-wrapped"])
def test_i350_host_field_by_field(shape: str) -> None:
    bundle = B.i350_bundle()
    if shape == "ps51":
        bundle = B.to_ps51(bundle)
    elif shape == "ps51-wrapped":
        bundle = B.to_ps51(bundle, wrap="Get-VMNetworkAdapter")
    snap = snapshot_from_bundle(bundle, "bundle.json")

    assert snap.source.kind == "hyperv-bundle" and snap.source.origin == "bundle.json"
    assert snap.source.powershell_version == "5.1.17763.6189"
    assert snap.collected_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    h = snap.host
    assert (h.name, h.platform, h.os_caption, h.os_version, h.os_build, h.edition) == (
        "HV-RELAY-01",
        "hyperv",
        "Microsoft Windows Server 2019 Datacenter",
        "10.0.17763",
        "17763",
        "server",
    )
    assert h.hypervisor_present is True and h.is_vm_guest is False
    assert snap.iov.supported is True and snap.iov.reasons == []
    # Win32_Processor reads False under the hypervisor and HyperVRequirement* are empty: SLAT is unknown
    assert snap.cpu.slat is None and snap.cpu.virtualization_extensions is None
    assert (snap.cpu.cores, snap.cpu.logical_processors, snap.cpu.sockets) == (8, 16, 1)

    assert [n.name for n in snap.nics] == ["Ethernet", "Ethernet 2"]  # vEthernet (External) is not physical
    eth = snap.nic("Ethernet")
    assert eth is not None
    assert eth.description == B.I350 and eth.driver == "e1r68x64.sys" and eth.mac == "A0369F1A2B30"
    assert eth.link_speed_bps == 1_000_000_000 and eth.status == "Up"
    assert (eth.sriov_support, eth.sriov_enabled, eth.vfs_total, eth.vfs_allocated) == ("Supported", True, 6, 0)
    assert eth.vmq_enabled is True and eth.rss_enabled is True and eth.team is None

    (sw,) = snap.switches
    assert (sw.name, sw.switch_type, sw.net_adapters, sw.net_adapter_names) == (
        "External",
        "External",
        [B.I350],
        ["Ethernet"],
    )
    assert (sw.iov_enabled, sw.iov_support, sw.vf_count, sw.vfs_in_use) == (False, True, 0, 0)
    assert sw.allow_management_os is True and sw.embedded_teaming is False and sw.allow_lbfo_teams is None
    assert sw.bandwidth_mode == "Weight"
    assert snap.switch_nics(sw) == [eth]

    assert [v.name for v in snap.vms] == [f"relay-{i:02d}" for i in range(1, 9)]
    assert all(v.state == "Running" and v.operational_status == ["Ok"] and v.generation == 2 for v in snap.vms)
    mgmt = [a for a in snap.vm_adapters if a.is_management_os]
    vm_nics = [a for a in snap.vm_adapters if not a.is_management_os]
    assert len(mgmt) == 1 and len(vm_nics) == 8
    # management-OS adapter: Iov* members absent -> None ("not applicable"), never 0
    m = mgmt[0]
    assert (m.name, m.vm_name, m.switch_name, m.iov_weight, m.iov_usage, m.iov_queue_pairs_requested) == (
        "External",
        None,
        "External",
        None,
        None,
        None,
    )
    a = vm_nics[0]
    assert (a.vm_name, a.name, a.switch_name, a.connected, a.mac, a.kind) == (
        "relay-01",
        "Network Adapter",
        "External",
        True,
        "00155D010101",
        "synthetic",
    )
    assert (a.iov_weight, a.iov_queue_pairs_requested, a.iov_queue_pairs_assigned, a.iov_usage) == (0, 1, 0, 0)
    assert a.vf_data_path_active is False and a.vmq_weight == 100 and a.status == ["Ok"]
    assert a.status_description == ["OK"]
    assert snap.vfs == [] and snap.teams == [] and snap.errors == []


def test_both_shapes_give_the_same_snapshot() -> None:
    for make in (B.i350_bundle, B.ready_bundle, B.firmware_blocked_bundle, B.lbfo_bundle):
        b7 = make()
        s7, s51 = facts(snapshot_from_bundle(b7, "x")), facts(snapshot_from_bundle(B.to_ps51(b7), "x"))
        t7, t51 = s7.pop("collected_at"), s51.pop("collected_at")
        assert abs((t7 - t51).total_seconds()) < 0.001  # /Date(ms)/ keeps milliseconds only
        assert s7 == s51


def test_ready_host_set_team_and_vfs() -> None:
    snap = snapshot_from_bundle(B.to_ps51(B.ready_bundle(), wrap="Get-NetAdapterSriovVf"), "ready.json")
    (team,) = snap.teams
    assert (team.name, team.kind, team.members, team.mode, team.load_balancing) == (
        "SETswitch",
        "set",
        ["SLOT 3 Port 1", "SLOT 3 Port 2"],
        "SwitchIndependent",
        "HyperVPort",
    )
    assert [n.team for n in snap.nics] == ["SETswitch", "SETswitch"]
    sw = snap.switch("SETswitch")
    assert sw is not None and sw.embedded_teaming is True
    assert sw.net_adapters == [B.X710, f"{B.X710} #2"]  # the members, not "Teamed-Interface"
    assert (sw.iov_enabled, sw.iov_support, sw.vf_count, sw.vfs_in_use, sw.queue_pairs) == (True, True, 62, 3, 127)
    assert [n.name for n in snap.switch_nics(sw)] == ["SLOT 3 Port 1", "SLOT 3 Port 2"]
    assert [(v.pf, v.index, v.vm, v.mac) for v in snap.vfs] == [
        ("SLOT 3 Port 1", 0, "fast-01", "00155D020101"),
        ("SLOT 3 Port 1", 1, "fast-02", "00155D020102"),
        ("SLOT 3 Port 2", 0, "fast-03", "00155D020103"),
    ]
    by_mac = {a.mac: a for a in snap.vm_adapters}
    for vf in snap.vfs:  # each VF's MAC is its VM adapter's MAC
        adapter = by_mac[vf.mac]
        assert adapter.vm_name == vf.vm and adapter.iov_usage == 1 and adapter.vf_data_path_active is True
        assert vf.vm_nic_id is not None and vf.vm_nic_id.startswith("Microsoft:")


def test_firmware_blocked_reasons_verbatim() -> None:
    snap = snapshot_from_bundle(B.firmware_blocked_bundle(), "fw.json")
    assert snap.iov.supported is False and snap.iov.reasons == [B.REASON_OSC, B.REASON_ACS]
    assert [n.sriov_support for n in snap.nics] == ["NoOscSupport", "NoOscSupport"]
    (sw,) = snap.switches
    assert (sw.iov_enabled, sw.iov_support, sw.iov_support_reasons, sw.vf_count) == (True, False, [B.REASON_OSC], 0)
    assert sw.bandwidth_mode == "None" and sw.allow_lbfo_teams is False
    assert all(a.iov_weight == 100 and a.iov_usage == 0 and a.vf_data_path_active is False for a in snap.vm_adapters)
    assert snap.cpu.sockets == 2 and snap.cpu.cores == 20
    assert snap.source.powershell_version == "7.4.6"


def test_lbfo_team_and_switch_binding() -> None:
    snap = snapshot_from_bundle(B.to_ps51(B.lbfo_bundle()), "lbfo.json")
    (team,) = snap.teams
    assert (team.name, team.kind, team.members, team.mode, team.load_balancing, team.status) == (
        "Team1",
        "lbfo",
        ["NIC1", "NIC2"],
        "SwitchIndependent",
        "Dynamic",
        "Up",
    )
    assert [n.name for n in snap.nics] == ["NIC1", "NIC2"]  # the team NIC is not a physical NIC
    assert all(n.team == "Team1" for n in snap.nics)
    sw = snap.switches[0]
    assert sw.net_adapters == [B.MUX] and sw.net_adapter_names == ["Team1"]
    assert [n.name for n in snap.switch_nics(sw)] == ["NIC1", "NIC2"]


def test_slat_rules() -> None:
    b = B.i350_bundle()
    src = b["sources"]
    # no hypervisor: HyperVRequirement* are the truth, even if Win32_Processor disagrees
    src["Get-ComputerInfo"] = [B.computer_info(hv_present=False)]
    src["Get-ComputerInfo"][0]["HyperVRequirementSecondLevelAddressTranslation"] = False
    src["Win32_ComputerSystem"][0]["HypervisorPresent"] = False
    src["Win32_Processor"] = [B.processor(0, "Intel(R) Core(TM) i5", 4, hv_present=False)]
    cpu = snapshot_from_bundle(b, "x").cpu
    assert (cpu.slat, cpu.virtualization_extensions, cpu.firmware_virtualization) == (False, True, True)
    # no hypervisor and no Get-ComputerInfo: Win32_Processor is read as it is
    del src["Get-ComputerInfo"]
    assert snapshot_from_bundle(b, "x").cpu.slat is True
    # hypervisor running, reasons prove no SLAT
    b2 = B.i350_bundle()
    b2["sources"]["Get-VMHost"] = [B.vmhost("HV", False, [B.REASON_SLAT], 4)]
    assert snapshot_from_bundle(b2, "x").cpu.slat is False


def test_edition_guest_and_failed_sources() -> None:
    b = B.to_ps51(B.i350_bundle())
    b["sources"]["Win32_OperatingSystem"]["ProductType"] = 1
    b["sources"]["Win32_ComputerSystem"].update(Manufacturer="Microsoft Corporation", Model="Virtual Machine")
    b["sources"]["Get-NetAdapterSriovVf"] = None
    b["errors"] = {"Get-NetLbfoTeam": "The term 'Get-NetLbfoTeam' is not recognized\r\n as a cmdlet."}
    snap = snapshot_from_bundle(b, "x")
    assert snap.host.edition == "client"
    assert snap.host.is_vm_guest is True and snap.host.guest_of == "hyperv"
    assert [(e.source, e.error) for e in snap.errors] == [
        ("Get-NetLbfoTeam", "The term 'Get-NetLbfoTeam' is not recognized as a cmdlet.")
    ]


def test_link_speed_from_text_when_numbers_are_absent() -> None:
    b = B.i350_bundle()
    for rec in b["sources"]["Get-NetAdapter"]:
        for k in ("ReceiveLinkSpeed", "TransmitLinkSpeed"):
            rec.pop(k)
        rec["LinkSpeed"] = "2.5 Gbps"
    assert snapshot_from_bundle(b, "x").nics[0].link_speed_bps == 2_500_000_000


def test_unknown_cmdlet_is_an_input_error() -> None:
    b = B.i350_bundle()
    b["sources"]["Get-VMFrobnicator"] = []
    with pytest.raises(InputError, match="Get-VMFrobnicator") as ei:
        snapshot_from_bundle(b, "b.json")
    assert str(ei.value).startswith("b.json")


def test_bad_bundles_via_cli(tmp_path: Path, cli: Any) -> None:
    good = json.dumps(B.to_ps51(B.i350_bundle()))
    trunc = tmp_path / "trunc.json"
    trunc.write_text(good[: len(good) // 2], encoding="utf-8")
    with pytest.raises(InputError, match=r"trunc\.json"):
        snapshot_from_bundle_file(trunc)
    unknown = tmp_path / "unknown.json"
    b = B.i350_bundle()
    b["sources"]["Get-Nonsense"] = None
    unknown.write_text(json.dumps(b), encoding="utf-8")
    version = tmp_path / "v9.json"
    b = B.i350_bundle()
    b["format_version"] = 9
    version.write_text(json.dumps(b), encoding="utf-8")
    for path, needle in ((trunc, "JSON"), (unknown, "Get-Nonsense"), (version, "format_version")):
        r = cli("collect", "--from", str(path))
        assert r.code == 2, r.err
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], r.err
        assert "Traceback" not in r.err


def test_good_bundle_via_cli(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(B.to_ps51(B.i350_bundle())).encode())  # 5.1 writes a BOM
    r = cli("collect", "--from", str(path), "-q")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["host"]["name"] == "HV-RELAY-01" and len(out["vm_adapters"]) == 9


def test_a_bundle_redirected_by_powershell_51_reads_like_the_utf8_one(tmp_path: Path, cli: Any) -> None:
    """`.\\collect.ps1 > bundle.json` in Windows PowerShell 5.1 writes UTF-16 with a BOM: the same host comes out."""
    text = json.dumps(B.to_ps51(B.i350_bundle()), indent=2)
    utf8, utf16 = tmp_path / "utf8.json", tmp_path / "utf16.json"
    utf8.write_text(text, encoding="utf-8")
    utf16.write_bytes(text.encode("utf-16"))
    a, b = cli("collect", "--from", str(utf8)), cli("collect", "--from", str(utf16))
    assert a.code == b.code == 0, b.err
    assert json.loads(a.out)["host"] == json.loads(b.out)["host"]
    assert json.loads(a.out)["switches"] == json.loads(b.out)["switches"]
