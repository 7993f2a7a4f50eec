"""Pasted Format-List text -> snapshot: prompts or none, wrapped lines, `{a, b}`, `...`, ` : ` in values."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from iovkit.errors import InputError
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from iovkit.sources.hyperv.formatlist import (
    looks_like_formatlist,
    parse_records,
    snapshot_from_formatlist_file,
    snapshot_from_formatlist_text,
)
from iovkit.sources.hyperv.normalize import UNNAMED_SWITCH
from tests.fixtures import hyperv_bundles as B

# hyperv.md §2, Mastering Windows Server 2016 Hyper-V: the book's text, truncated at "sys..."
BOOK_IOV = r"""PS C:\> Get-VMSwitch | Format-List *iov*
IovEnabled        : True
IovSupport        : False
IovSupportReasons : {To use SR-IOV on this system, the system BIOS
                    must be updated to allow Windows to control
                    PCI Express. Contact your sys...
"""

# hyperv.md §8.3 (no prompt)
SRIOV_CX3 = """
Name                 : VM NIC
InterfaceDescription : Mellanox ConnectX-3 Pro Ethernet Adapter
Enabled              : True
SriovSupport         : Supported
SwitchName           : "Default Switch"
NumVFs               : 32

Name                 : VM NIC 2
InterfaceDescription : Mellanox ConnectX-3 Pro Ethernet Adapter #2
Enabled              : True
SriovSupport         : Supported
SwitchName           : "Default Switch"
NumVFs               : 32
"""

# hyperv.md §8.4, Get-VMNetworkAdapter -ManagementOS | fl (excerpt up to VmmqQueuePairs)
MGMT_OS = """
Name                           : ExternalSwitch
IsManagementOs                 : True
SwitchName                     : ExternalSwitch
Connected                      :
PoolName                       :
DynamicMacAddressEnabled       :
AllowPacketDirect              :
MacAddressSpoofing             : Off
AllowTeaming                   : Off
RouterGuard                    : Off
DhcpGuard                      : Off
StormLimit                     : 0
PortMirroringMode              : None
IeeePriorityTag                : On
VirtualSubnetId                : 0
DynamicIPAddressLimit          : 0
DeviceNaming                   :
VMQWeight                      : 100
VMQUsage                       : 1
PacketDirectNumProcs           :
PacketDirectModerationCount    :
PacketDirectModerationInterval :
VrssEnabledRequested           : True
VrssEnabled                    : True
VmmqEnabledRequested           : True
VmmqEnabled                    : True
VmmqQueuePairsRequested        : 16
VmmqQueuePairs                 : 4
"""


def _paste(bundle: dict[str, Any], width: int, prompts: bool) -> str:
    """What an operator pastes: several cmdlets' `| fl *` output, at a console `width` wide."""
    src = bundle["sources"]
    parts = []
    vmq = [{**r, "BaseVmqProcessor": "0:2"} for r in src["Get-NetAdapterVmq"]]
    rss = [{**r, "Profile": "NUMAStatic"} for r in src["Get-NetAdapterRss"]]
    for cmd, recs in (
        ("Get-VMHost | fl *", src["Get-VMHost"]),
        ("Get-VMSwitch | fl *", src["Get-VMSwitch"]),
        ("Get-NetAdapter | fl *", src["Get-NetAdapter"]),
        ("Get-NetAdapterSriov | fl", src["Get-NetAdapterSriov"]),
        # the real list views carry view-only members that tell VMQ from RSS records
        ("Get-NetAdapterVmq | fl *", vmq),
        ("Get-NetAdapterRss | fl *", rss),
        ("Get-VM | fl *", src["Get-VM"]),
        ("Get-VMNetworkAdapter -All | fl *", src["Get-VMNetworkAdapter"]),
        ("Get-NetAdapterSriovVf | fl *", src["Get-NetAdapterSriovVf"]),
        ("Get-VMSwitchTeam | fl *", src["Get-VMSwitchTeam"]),
        ("Get-NetLbfoTeam | fl *", src["Get-NetLbfoTeam"]),
        ("Get-CimInstance Win32_OperatingSystem | fl *", src["Win32_OperatingSystem"]),
        ("Get-CimInstance Win32_ComputerSystem | fl *", src["Win32_ComputerSystem"]),
        ("Get-CimInstance Win32_Processor | fl *", src["Win32_Processor"]),
    ):
        if not recs:
            continue
        if prompts:
            parts.append(f"PS C:\\Users\\admin> {cmd}")
        parts.append(B.format_list(recs, width=width))
    return "\n".join(parts)


@pytest.mark.parametrize("prompts", [True, False], ids=["prompts", "no-prompts"])
@pytest.mark.parametrize("make", ["i350_bundle", "ready_bundle", "firmware_blocked_bundle", "lbfo_bundle"])
def test_pasted_text_gives_the_bundles_snapshot(make: str, prompts: bool) -> None:
    """The same host pasted as Format-List text (wrapped at 100 columns) reads as its collector bundle does."""
    bundle = getattr(B, make)()
    text = _paste(bundle, width=100, prompts=prompts)
    assert any(line.startswith(" " * 10) for line in text.splitlines())  # some values did wrap
    fl = snapshot_from_formatlist_text(text, "paste.txt")
    js = snapshot_from_bundle(bundle, "bundle.json")
    assert fl.source.kind == "hyperv-formatlist"
    for part in ("nics", "teams", "switches", "vms", "vm_adapters", "vfs", "iov"):
        assert getattr(fl, part) == getattr(js, part), part
    assert fl.host.model_dump(exclude={"hypervisor_present"}) == js.host.model_dump(exclude={"hypervisor_present"})
    assert fl.cpu.model == js.cpu.model and fl.cpu.cores == js.cpu.cores


def test_book_iov_block_with_prompt_wrapped_and_truncated() -> None:
    snap = snapshot_from_formatlist_text(BOOK_IOV, "ticket.txt")
    (sw,) = snap.switches
    assert sw.name == UNNAMED_SWITCH
    assert (sw.iov_enabled, sw.iov_support) == (True, False)
    assert sw.iov_support_reasons == [
        "To use SR-IOV on this system, the system BIOS must be updated to allow Windows to control PCI Express. "
        "Contact your sys..."
    ]
    assert any(e.source == "Get-VMSwitch" and "IovSupportReasons truncated" in e.error for e in snap.errors)
    assert snap.iov.supported is None  # a switch's IovSupport says nothing about the host's


def test_sriov_records_without_prompts() -> None:
    snap = snapshot_from_formatlist_text(SRIOV_CX3, "sriov.txt")
    assert [(n.name, n.description, n.sriov_support, n.sriov_enabled, n.vfs_total) for n in snap.nics] == [
        ("VM NIC", "Mellanox ConnectX-3 Pro Ethernet Adapter", "Supported", True, 32),
        ("VM NIC 2", "Mellanox ConnectX-3 Pro Ethernet Adapter #2", "Supported", True, 32),
    ]
    assert snap.nics[0].vfs_allocated is None  # not in the default view: unknown, not 0


def test_management_os_adapter_has_no_iov_facts() -> None:
    snap = snapshot_from_formatlist_text(MGMT_OS, "mgmt.txt")
    (a,) = snap.vm_adapters
    assert (a.name, a.is_management_os, a.switch_name, a.vm_name) == ("ExternalSwitch", True, "ExternalSwitch", None)
    assert a.iov_weight is None and a.iov_usage is None and a.iov_queue_pairs_requested is None
    assert (a.vmq_weight, a.vrss_enabled, a.connected) == (100, True, None)


def test_host_reasons_two_sentences_with_commas_wrapped_indented_paste() -> None:
    text = "PS C:\\Users\\admin> Get-VMHost | Format-List IovSupport, IovSupportReasons\n\n" + B.format_list(
        [{"IovSupport": False, "IovSupportReasons": [B.REASON_SLAT, B.REASON_ACS]}], width=90
    )
    indented = textwrap.indent(text, "    ")  # pasted into a ticket as a code block
    for t in (text, indented):
        snap = snapshot_from_formatlist_text(t, "host.txt")
        assert snap.iov.supported is False
        assert snap.iov.reasons == [B.REASON_SLAT, B.REASON_ACS]  # ", " inside a reason does not split it
        assert snap.cpu.slat is False  # reason #1 proves there is no SLAT
        assert snap.errors == []


def test_value_with_colon_collections_and_enumeration_limit() -> None:
    rec = {
        "Name": "SETswitch",
        "SwitchType": "External",
        "Notes": "moved: rack 4 : port 7",
        "NetAdapterInterfaceDescription": "Teamed-Interface",
        "NetAdapterInterfaceDescriptions": ["NIC A", "NIC B", "NIC C", "NIC D", "NIC E"],
        "EmbeddedTeamingEnabled": True,
        "IovEnabled": True,
        "IovSupportReasons": [],
        "IovQueuePairCount": 127,
        "ComputerName": "HV-LAB-07",
    }
    recs = parse_records(B.format_list([rec]).splitlines())
    assert recs[0].values["Notes"] == "moved: rack 4 : port 7"
    assert recs[0].values["NetAdapterInterfaceDescriptions"] == ["NIC A", "NIC B", "NIC C", "NIC D..."]
    assert recs[0].truncated == ["NetAdapterInterfaceDescriptions"]
    assert recs[0].values["IovSupportReasons"] == []
    snap = snapshot_from_formatlist_text(B.format_list([rec]), "sw.txt")
    sw = snap.switches[0]
    assert sw.net_adapters == ["NIC A", "NIC B", "NIC C", "NIC D..."] and sw.queue_pairs == 127
    assert sw.iov_support is None and sw.iov_support_reasons == []
    assert snap.host.name == "HV-LAB-07"  # the only host name in a one-cmdlet paste
    assert [e.source for e in snap.errors] == ["Get-VMSwitch"]


def test_numeric_enums_and_unknown_commands_in_text() -> None:
    text = (
        "PS C:\\> Get-NetAdapterAdvancedProperty | fl\n\nName        : Ethernet\nDisplayName : Jumbo Packet\n\n"
        "PS C:\\> Get-NetAdapterSriov | fl *\n\nName         : Ethernet\nSriovSupport : 2\nNumVFs       : 7\n"
    )
    snap = snapshot_from_formatlist_text(text, "t.txt")
    assert [(n.name, n.sriov_support, n.vfs_total) for n in snap.nics] == [("Ethernet", "MissingAcs", 7)]


def test_looks_like_formatlist() -> None:
    assert looks_like_formatlist(BOOK_IOV) and looks_like_formatlist(SRIOV_CX3)
    assert looks_like_formatlist("PS C:\\Windows\\system32> Get-VMHost\n")
    assert not looks_like_formatlist("hello world\nthis is a note\n")
    assert not looks_like_formatlist("Host Name:                 HV-01\nOS Name:   Windows\n")  # systeminfo


def test_file_encodings_and_cli(tmp_path: Path, cli: Any) -> None:
    text = _paste(B.i350_bundle(), width=120, prompts=True)
    utf16 = tmp_path / "paste-utf16.txt"  # Windows PowerShell 5.1's `>` redirection
    utf16.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    assert snapshot_from_formatlist_file(utf16).host.name == "HV-RELAY-01"
    r = cli("collect", "--from", str(utf16), "-q")
    assert r.code == 0 and '"HV-RELAY-01"' in r.out, r.err
    plain = tmp_path / "paste.txt"
    plain.write_text(text, encoding="utf-8")
    r = cli("collect", "--from", str(plain), "-q")
    assert r.code == 0, r.err
    assert '"hyperv-formatlist"' in r.out and '"HV-RELAY-01"' in r.out


def test_no_known_records_is_an_input_error(tmp_path: Path, cli: Any) -> None:
    p = tmp_path / "other.txt"
    p.write_text("PS C:\\> Get-Date | fl\n\nDisplayHint : DateTime\nDate        : 11/20/2026 12:00:00 AM\n")
    with pytest.raises(InputError, match="no Format-List record"):
        snapshot_from_formatlist_file(p)
    r = cli("collect", "--from", str(p))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and str(p) in r.err
    junk = tmp_path / "junk.txt"
    junk.write_text("just some words\n")
    r = cli("collect", "--from", str(junk))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and str(junk) in r.err
