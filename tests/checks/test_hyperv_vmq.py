"""HV-VMQ as it really is (issue 13 item 4; field-notes "VMQ, vRSS and queues"): Get-NetAdapterVmq's Enabled is not
proof. Below 10 Gbps the Hyper-V switch does not use VMQ unless BelowTenGigVmqEnabled is 1, and
Get-NetAdapterVmqQueue shows whether adapters on the switch really got queues."""

from __future__ import annotations

import json

from iovkit.checks.catalog import run_checks
from iovkit.sources import load_example
from iovkit.sources.hyperv.formatlist import snapshot_from_formatlist_text

I350 = "Intel(R) Ethernet Server Adapter I350-T2"


def _vmq(snap):  # type: ignore[no-untyped-def]
    return [f for f in run_checks(snap, only=["HV-VMQ"]).findings if f.scope.kind == "nic"]


def test_the_1gbe_example_says_vmq_is_not_in_use_and_what_enabling_it_takes() -> None:
    [f] = _vmq(load_example("hyperv-i350-no-iov"))
    assert f.status == "warn" and "not in use" in f.message and "1 Gbps" in f.message
    assert "BelowTenGigVmqEnabled is 1 (here 0, the system default)" in f.message
    assert f.fix == (
        "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Services\\VMSMP\\Parameters "
        "-Name BelowTenGigVmqEnabled -Value 1 -Type DWord"
    )


def test_10gbe_with_queues_for_the_vm_adapters_passes() -> None:
    fs = _vmq(load_example("hyperv-firmware-blocked"))
    assert fs[0].status == "pass" and "2 queue(s)" in fs[0].message


def ft(headers: list[str], rows: list[list[str]], right: tuple[str, ...] = ()) -> str:
    """A table the way Format-Table -AutoSize prints it (netview.md "Tables"): a column as wide as its widest cell,
    one space between columns, numbers right-aligned (header too), dashes as long as the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, headers, strict=True)]
        return " ".join(parts).rstrip()

    dashes = line(["-" * len(h) for h in headers])
    return "\n".join([line(headers), dashes] + [line(r) for r in rows]) + "\n"


# A 1 GbE host pasted: link speed, VMQ Enabled, the VMSMP registry value and the queue table (default views).
BASE = f"""PS C:\\> Get-VMSwitch | fl Name, SwitchType, NetAdapterInterfaceDescription, IovEnabled

Name                           : External
SwitchType                     : External
NetAdapterInterfaceDescription : {I350}
IovEnabled                     : False

PS C:\\> Get-VMNetworkAdapter -VMName * | fl VMName, Name, SwitchName, MacAddress, VFDataPathActive

VMName           : relay-01
Name             : Network Adapter
SwitchName       : External
MacAddress       : 00155D010101
VFDataPathActive : False

"""

BASE += "\nPS C:\\> Get-NetAdapter\n\n" + ft(
    ["Name", "InterfaceDescription", "ifIndex", "Status", "MacAddress", "LinkSpeed"],
    [["Ethernet", I350, "4", "Up", "A0-36-9F-1A-2B-30", "1 Gbps"]],
    right=("ifIndex", "LinkSpeed"),
)
BASE += "\nPS C:\\> Get-NetAdapterVmq\n\n" + ft(
    ["Name", "InterfaceDescription", "Enabled", "BaseVmqProcessor", "MaxProcessors", "NumberOfReceiveQueues"],
    [["Ethernet", I350, "True", "0:0", "8", "7"]],
    right=("MaxProcessors", "NumberOfReceiveQueues"),
)

REGISTRY_ON = r"""PS C:\> Get-ItemProperty HKLM:\SYSTEM\CurrentControlSet\Services\VMSMP\Parameters

BelowTenGigVmqEnabled : 1
PSPath                : Microsoft.PowerShell.Core\Registry::HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\VMSM
                        P\Parameters
PSChildName           : Parameters
PSProvider            : Microsoft.PowerShell.Core\Registry
"""

QUEUES = "PS C:\\> Get-NetAdapterVmqQueue\n\n" + ft(
    ["Name", "QueueID", "MacAddress", "VlanID", "Processor", "VmFriendlyName"],
    [["Ethernet", "0", "", "0", "0:0", "HV-RELAY-01"], ["Ethernet", "1", "00-15-5D-01-01-01", "0", "0:2", "relay-01"]],
    right=("QueueID", "VlanID"),
)


def test_1gbe_paste_without_registry_or_queues_is_unknown_not_pass() -> None:
    snap = snapshot_from_formatlist_text(BASE, "paste.txt")
    assert snap.nics[0].link_speed_bps == 1_000_000_000 and snap.nics[0].vmq_enabled is True
    [f] = _vmq(snap)
    assert f.status == "unknown" and f.collect == "Get-NetAdapterVmqQueue -Name 'Ethernet' | Format-List *"
    assert "vmq.below_ten_gig_vmq_enabled" in f.missing


def test_override_set_and_a_queue_for_the_vm_passes_matched_by_mac_spelling() -> None:
    snap = snapshot_from_formatlist_text(BASE + REGISTRY_ON + QUEUES, "paste.txt")
    assert snap.vmq.below_ten_gig_vmq_enabled == 1
    assert [(q.queue_id, q.mac, q.processor) for q in snap.vmq_queues] == [(0, None, "0:0"), (1, "00155D010101", "0:2")]
    [f] = _vmq(snap)
    assert f.status == "pass" and "queue 1 -> relay-01 on processor 0:2" in str(f.evidence)


def test_override_set_but_no_queue_for_a_vm_still_warns() -> None:
    only_default = QUEUES.rsplit("\n", 2)[0] + "\n"
    [f] = _vmq(snapshot_from_formatlist_text(BASE + REGISTRY_ON + only_default, "paste.txt"))
    assert f.status == "warn" and "not in use" in f.message and "(here 1" in f.message


def test_diagnose_remedy_says_the_same_about_vmq_below_10_gbps() -> None:
    from iovkit.diagnose.remedies import CATALOG

    vmq = next(r for r in CATALOG if r.id == "VMQ")
    assert "10 Gbps" in vmq.why and "BelowTenGigVmqEnabled" in " ".join(vmq.commands)
    assert any(c.startswith("Get-NetAdapterVmqQueue") for c in vmq.commands)


def test_unknown_and_not_applicable_stay_apart_in_every_output(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A paste of only the switch: unknown findings (with their command) and not-applicable ones are counted and
    shown apart in the table, JSON, Markdown and JUnit."""
    p = tmp_path / "paste.txt"
    p.write_text(BASE.split("PS C:\\> Get-VMNetworkAdapter")[0], encoding="utf-8")
    doc = json.loads(cli("check", "--from", str(p), "--format", "json").out)
    assert doc["verdict"] == "not-ready" and "every external switch" in doc["reason"]  # IovEnabled False: observed
    assert doc["counts"]["unknown"] > 0 and set(doc["counts"]) >= {"unknown", "not-applicable"}
    statuses = {f["status"] for f in doc["findings"]}
    assert "skip" not in statuses and "unknown" in statuses
    unknown = [f for f in doc["findings"] if f["status"] == "unknown"]
    assert all(f["missing"] and f["collect"] for f in unknown)
    md = cli("check", "--from", str(p), "--format", "markdown").out
    assert "unknown, " in md.splitlines()[-1] and "not applicable" in md.splitlines()[-1]
    junit = cli("check", "--from", str(p), "--format", "junit").out
    assert 'message="unknown: ' in junit
    table = cli("check", "--from", str(p)).out
    assert "UNKNOWN" in table and "collect: Get-VM" in table.replace("\n", " ").replace("│", " ").replace("  ", " ")
