"""A Windows guest judged offline: the collector bundle's guest part (two statistics reads, hardware info, RSS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iovkit.checks.catalog import run_checks
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from iovkit.sources.hyperv.script import collector_script
from tests.fixtures import hyperv_bundles as B

NOT_A_HOST = (
    "The term 'Get-VMHost' is not recognized as the name of a cmdlet, function, script file, or operable program."
)
MAC = "00-15-5D-0A-01-07"


def _stats(name: str, rx: tuple[int, int], tx: tuple[int, int]) -> list[dict[str, Any]]:
    return [
        {"Read": 1, "Name": name, "ReceivedUnicastPackets": rx[0], "SentUnicastPackets": tx[0]},
        {"Read": 2, "Name": name, "ReceivedUnicastPackets": rx[1], "SentUnicastPackets": tx[1]},
    ]


def _bundle(
    *, vf: str | None, vf_moves: bool = True, rss_on: bool = True, model: str = "Virtual Machine"
) -> dict[str, Any]:
    syn_desc = (
        "Red Hat VirtIO Ethernet Adapter" if model.startswith("Standard PC") else "Microsoft Hyper-V Network Adapter"
    )
    adapters = [B.netadapter("Ethernet", syn_desc, 4, MAC, 10, "netvsc.sys" if "Hyper-V" in syn_desc else "netkvm.sys")]
    stats = _stats("Ethernet", (500_000, 510_000 if vf_moves else 540_000), (400_000, 409_000 if vf_moves else 430_000))
    hw = [{"Name": "Ethernet", "LocationInformationString": "Virtual Bus, Slot 0", "NumaNode": 0}]
    if vf:
        adapters.append(B.netadapter("Ethernet 3", vf, 9, MAC, 50, "mlx5.sys"))
        stats += _stats(
            "Ethernet 3", (480_000, 490_000 if vf_moves else 480_000), (390_000, 399_000 if vf_moves else 390_000)
        )
        hw.append({"Name": "Ethernet 3", "LocationInformationString": "PCI Slot 1 (Serial 1), bus 2, device 0"})
    maker = "QEMU" if model.startswith("Standard PC") else "Microsoft Corporation"
    sources = {
        "Win32_OperatingSystem": B.os_("Microsoft Windows Server 2022 Datacenter", "10.0.20348", "RELAY-01"),
        "Win32_ComputerSystem": B.computer("RELAY-01", maker, model, hv_present=True),
        "Get-NetAdapter": adapters,
        "Get-NetAdapterRss": [{**B.rss("Ethernet", syn_desc, rss_on), "NumberOfReceiveQueues": 2}],
        "Win32_Processor": [B.processor(0, "Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz", 4)],  # 8 vCPUs
        "Guest-NetAdapterStatistics": stats,
        "Guest-NetAdapterHardwareInfo": hw,
    }
    return B.envelope(
        "RELAY-01", "2026-11-20T09:00:00Z", ("Desktop", "5.1.20348.2849"), sources, errors={"Get-VMHost": NOT_A_HOST}
    )


def _one(snap: Any, rid: str) -> Any:
    (f,) = [f for f in run_checks(snap).findings if f.id == rid]
    return f


@pytest.mark.parametrize(
    "vf",
    ["Mellanox ConnectX-4 Lx Virtual Ethernet Adapter", "Microsoft Azure Network Adapter #3"],
    ids=["mlx5", "mana"],
)
def test_vf_adapter_whose_statistics_rise_carries_the_traffic(vf: str) -> None:
    snap = snapshot_from_bundle(_bundle(vf=vf), "guest.json")
    assert snap.guest is not None and snap.guest.os == "windows"
    eth = snap.guest.interface("Ethernet")
    vfi = snap.guest.interface("Ethernet 3")
    assert eth is not None and vfi is not None
    assert (eth.kind, eth.path, eth.basis, eth.paired_vf, vfi.master) == (
        "synthetic",
        "vf",
        "counters",
        "Ethernet 3",
        "Ethernet",
    )
    assert (
        "Get-NetAdapterStatistics -Name 'Ethernet 3': ReceivedUnicastPackets 480000 -> 490000 (+10000 in 1 s)"
        in vfi.evidence
    )
    assert any("LocationInformationString 'PCI Slot 1 (Serial 1)" in e for e in vfi.evidence)
    assert _one(snap, "GUEST-VF").status == "pass"
    assert _one(snap, "GUEST-RSS").status == "pass"


def test_idle_vf_while_the_synthetic_adapter_moves_is_the_synthetic_path() -> None:
    snap = snapshot_from_bundle(_bundle(vf="Mellanox ConnectX-4 Lx Virtual Ethernet Adapter", vf_moves=False), "g.json")
    eth = snap.guest.interface("Ethernet") if snap.guest else None
    assert eth is not None and (eth.path, eth.basis) == ("synthetic", "counters")
    f = _one(snap, "GUEST-VF")
    assert f.status == "warn" and f.fix.startswith("Enable-NetAdapter -Name 'Ethernet 3'")


def test_no_vf_and_rss_off() -> None:
    snap = snapshot_from_bundle(_bundle(vf=None, rss_on=False), "g.json")
    eth = snap.guest.interface("Ethernet") if snap.guest else None
    assert eth is not None and (eth.path, eth.paired_vf) == ("synthetic", None)
    assert _one(snap, "GUEST-VF").status == "fail"
    rss = _one(snap, "GUEST-RSS")
    assert rss.status == "fail" and rss.fix == "Enable-NetAdapterRss -Name 'Ethernet'"
    # Windows' default of 2 RSS queues for 8 vCPUs (guest.md §4: raise it to the maximum)
    q = _one(snap, "GUEST-QUEUES")
    assert q.status == "warn" and q.fix == "Set-NetAdapterRss -Name 'Ethernet' -NumberOfReceiveQueues 8"
    assert _one(snap, "GUEST-RPS").status == "not-applicable"  # a Linux setting


def test_windows_on_kvm_with_netkvm_is_paravirtual(cli: Any, tmp_path: Path) -> None:
    p = tmp_path / "guest.json"
    p.write_text(json.dumps(_bundle(vf=None, model="Standard PC (Q35 + ICH9, 2009)")))
    r = cli("check", "--from", str(p), "--only", "GUEST-VF", "--format", "json")
    data = json.loads(r.out)
    (eth,) = data["datapath"]["interfaces"]
    assert (eth["name"], eth["path"], eth["kind"]) == ("Ethernet", "paravirtual", "paravirtual")
    assert [f["status"] for f in data["findings"]] == ["fail"]


def test_collector_script_has_a_guest_part_run_only_off_a_hyperv_host() -> None:
    text = collector_script()
    assert "function Invoke-GuestSources" in text
    assert "if (-not $sources['Get-VMHost']) { Invoke-GuestSources }" in text
    for name in ("Guest-NetAdapterStatistics", "Guest-NetAdapterHardwareInfo"):
        assert f"Invoke-Source '{name}'" in text
    assert "Start-Sleep -Seconds 1" in text and "Get-NetAdapterStatistics" in text
