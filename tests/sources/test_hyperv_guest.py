"""Inside a Windows VM on Hyper-V: the synthetic adapter and its VF, paired by MAC, feed GUEST-VF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iovkit.checks.catalog import run_checks
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from tests.fixtures import hyperv_bundles as B

NOT_A_HOST = (
    "The term 'Get-VMHost' is not recognized as the name of a cmdlet, function, script file, or operable program."
)


def _guest_bundle(with_vf: bool) -> dict[str, Any]:
    adapters = [
        B.netadapter(
            "Ethernet", "Microsoft Hyper-V Network Adapter", 4, "00-15-5D-0A-01-07", 10, "netvsc.sys", virtual=False
        )
    ]
    if with_vf:
        adapters.append(
            B.netadapter(
                "Ethernet 3", "Mellanox ConnectX-4 Lx Virtual Ethernet Adapter", 9, "00-15-5D-0A-01-07", 25, "mlx5.sys"
            )
        )
    sources = {
        "Win32_OperatingSystem": B.os_("Microsoft Windows Server 2022 Datacenter", "10.0.20348", "RELAY-01"),
        "Win32_ComputerSystem": B.computer("RELAY-01", "Microsoft Corporation", "Virtual Machine", hv_present=True),
        "Get-NetAdapter": adapters,
    }
    return B.envelope(
        "RELAY-01", "2026-11-20T09:00:00Z", ("Desktop", "5.1.20348.2849"), sources, errors={"Get-VMHost": NOT_A_HOST}
    )


def test_windows_guest_pairs_vf_with_synthetic_adapter_by_mac() -> None:
    snap = snapshot_from_bundle(_guest_bundle(with_vf=True), "guest.json")
    assert snap.host.is_vm_guest is True and snap.host.guest_of == "hyperv"
    by_name = {g.name: g for g in snap.guest_nics}
    assert by_name["Ethernet"].is_vf is False and by_name["Ethernet"].paired_with == "Ethernet 3"
    assert by_name["Ethernet 3"].is_vf is True and by_name["Ethernet 3"].paired_with == "Ethernet"
    assert all(n.name != "Ethernet 3" for n in snap.nics)  # the VF is not this machine's physical NIC
    guest = [f for f in run_checks(snap).findings if f.id == "GUEST-VF"]
    # VF present, its traffic counters not collected: the path is unknown, with the two reads that tell
    assert [f.status for f in guest] == ["unknown"]
    assert "Get-NetAdapterStatistics -Name 'Ethernet 3'" in (guest[0].collect or "")


def test_windows_guest_without_vf_fails_guest_vf(cli: Any, tmp_path: Path) -> None:
    p = tmp_path / "guest.json"
    p.write_text(json.dumps(_guest_bundle(with_vf=False)))
    r = cli("check", "--from", str(p), "--only", "GUEST-VF", "--format", "json")
    assert r.code == 1
    findings = json.loads(r.out)["findings"]
    assert [(f["id"], f["status"]) for f in findings] == [("GUEST-VF", "fail")]
