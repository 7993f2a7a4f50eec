"""What people really paste (issue 13 item 3; field-notes "Hyper-V pastes"): default table views, cut tables,
bare IovSupportReasons lines, labels with colons, `&gt;` prompts, remote-session prompts, ghost adapters, MAC and
GUID spellings, stale interface descriptions. Each input below has the shape PowerShell prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iovkit.checks.catalog import run_checks
from iovkit.errors import InputError
from iovkit.sources import detect, load_input
from iovkit.sources.hyperv.formatlist import snapshot_from_formatlist_text

I350 = "Intel(R) Ethernet Server Adapter I350-T2"
X710 = "Intel(R) Ethernet Controller X710 for 10GbE SFP+"
OSC = (
    "To use SR-IOV on this system, the system BIOS must be updated to allow Windows to control PCI Express. "
    "Contact your system manufacturer for an update."
)
ACS = (
    "SR-IOV cannot be used on this system as the PCI Express hardware does not support Access Control Services "
    "(ACS) at any root port. Contact your system vendor for further information."
)

# Get-VMNetworkAdapter -All, default table view (Windows PowerShell 5.1 pads every cell)
VMNIC_TABLE = r"""PS C:\Users\admin> Get-VMNetworkAdapter -All

Name            IsManagementOs VMName   SwitchName MacAddress   Status IPAddresses
----            -------------- ------   ---------- ----------   ------ -----------
External        True                    External   A0369F1A2B30 {Ok}
Network Adapter False          relay-01 External   00155D010101 {Ok}   {10.0.0.11, fe80::215:5dff:fe01:101}
Network Adapter False          relay-02 External   00155D010102 {Ok}   {10.0.0.12}
"""

SWITCH_TABLE = """Name     SwitchType NetAdapterInterfaceDescription
----     ---------- ------------------------------
External External   Intel(R) Ethernet Server Adapter I350-T2
"""

# Get-NetAdapter in an 80-column console: Windows PowerShell 5.1 cuts the description with "..."
NETADAPTER_CUT = r"""PS C:\> Get-NetAdapter

Name                      InterfaceDescription                    ifIndex Status
----                      --------------------                    ------- ------
Ethernet 2                Intel(R) Ethernet Server Adapter I35...       6 Up
Ethernet                  Intel(R) Ethernet Server Adapter I35...       4 Up
"""

RSS_LIST = (
    "Name                                            : SLOT 3 Port 1\n"
    f"InterfaceDescription                            : {X710}\n"
    "Enabled                                         : True\n"
    "NumberOfReceiveQueues                           : 16\n"
    "Profile                                         : NUMAStatic\n"
    "BaseProcessor: [Group:Number]                   : 0:2\n"
    "MaxProcessor: [Group:Number]                    : 1:34\n"
    "MaxProcessors                                   : 16\n"
    "RssProcessorArray: [Group:Number/NUMA Distance] : 0:2/0  0:4/0  0:6/0  0:8/0  0:10/0  0:12/0  0:14/0  0:16/0\n"
    "                                                  0:18/0  0:20/0\n"
    "IndirectionTable: [Group:Number]                : 0:2\t0:4\t0:6\t0:8\t0:10\t0:12\t0:14\t0:16\n"
    "                                                  0:2\t0:4\t0:6\t0:8\t0:10\t0:12\t0:14\t0:16\n"
)


def _write(tmp_path: Path, text: str, name: str = "paste.txt") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _one(result, rid: str, kind: str | None = None):  # type: ignore[no-untyped-def]
    fs = [f for f in result.findings if f.id == rid and (kind is None or f.scope.kind == kind)]
    assert fs, rid
    return fs


def test_default_table_of_vm_adapters_is_read_and_missing_columns_are_unknown(tmp_path: Path) -> None:
    p = _write(tmp_path, VMNIC_TABLE)
    assert detect(p) == "hyperv-formatlist"
    snap = load_input(p)
    assert [(a.vm_name, a.name, a.mac, a.is_management_os) for a in snap.vm_adapters] == [
        (None, "External", "A0369F1A2B30", True),
        ("relay-01", "Network Adapter", "00155D010101", False),
        ("relay-02", "Network Adapter", "00155D010102", False),
    ]
    assert snap.vm_adapters[1].status == ["Ok"] and snap.vm_adapters[1].iov_weight is None
    # the view has no IovWeight: one line naming the cmdlet and the exact command
    notes = [e.error for e in snap.errors if e.source == "Get-VMNetworkAdapter"]
    assert notes == [
        "the Get-VMNetworkAdapter table in the pasted text has no IovWeight, VFDataPathActive column (not "
        "collected); run `Get-VMNetworkAdapter -All | Format-List *` and paste that"
    ]
    result = run_checks(snap)
    assert not [f for f in result.findings if f.status == "fail"]
    assert result.verdict == "unknown"


def test_default_switch_table_gives_an_external_switch_whose_iov_is_unknown(tmp_path: Path) -> None:
    snap = load_input(_write(tmp_path, SWITCH_TABLE))
    [sw] = snap.switches
    assert (sw.name, sw.switch_type, sw.net_adapters, sw.iov_enabled) == ("External", "External", [I350], None)
    [f] = _one(run_checks(snap), "HV-SWITCH-IOV")
    assert f.status == "unknown" and f.collect == "Get-VMSwitch -Name 'External' | Format-List *iov*"


def test_cut_table_alone_is_one_line_naming_the_command(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path, NETADAPTER_CUT)
    with pytest.raises(InputError) as ei:
        load_input(p)
    msg = str(ei.value)
    assert "Get-NetAdapter" in msg and "`Get-NetAdapter | Format-List *`" in msg and "\n" not in msg
    r = cli("check", "--from", str(p))
    assert r.code == 2 and "Traceback" not in r.err and "Get-NetAdapter | Format-List *" in r.err


def test_cut_table_beside_other_output_is_left_out_with_a_note(tmp_path: Path) -> None:
    snap = load_input(_write(tmp_path, NETADAPTER_CUT + "\n" + VMNIC_TABLE))
    assert not snap.has("nics")  # the cut rows were not read: not collected, never "no NIC"
    assert any("cut ('...')" in e.error and e.source == "Get-NetAdapter" for e in snap.errors)


@pytest.mark.parametrize(
    "prompt",
    [
        r"PS C:\> (Get-VMHost).IovSupportReasons",
        r"PS C:\&gt; (Get-VMHost).IovSupportReasons",  # copied from a web page
        r"[hv01]: PS C:\Users\admin\Documents> (Get-VMHost).IovSupportReasons",  # Enter-PSSession
        "",  # the lines alone
    ],
)
def test_bare_reason_lines_are_the_hosts_iov_reasons(tmp_path: Path, prompt: str) -> None:
    text = (prompt + "\n" if prompt else "") + OSC + "\n" + ACS + "\n"
    p = _write(tmp_path, text)
    assert detect(p) == "hyperv-formatlist"
    snap = load_input(p)
    assert snap.iov.supported is False and snap.iov.reasons == [OSC, ACS]
    fs = _one(run_checks(snap), "HV-HOST-IOV")
    assert {f.status for f in fs} == {"fail"} and len(fs) == 2
    assert any("NO_OSC_CONTROL" in f.message for f in fs) and any("NO_ACS" in f.message for f in fs)


def test_a_switchs_bare_reasons_are_the_switch_ones() -> None:
    snap = snapshot_from_formatlist_text(r"PS C:\> (Get-VMSwitch 'SRIOV').IovSupportReasons" + "\n" + OSC, "p")
    assert snap.iov.supported is None and snap.switches[0].iov_support_reasons == [OSC]


def test_rss_default_list_with_colons_in_labels() -> None:
    snap = snapshot_from_formatlist_text(r"PS C:\> Get-NetAdapterRss -Name 'SLOT 3 Port 1'" + "\n\n" + RSS_LIST, "p")
    [nic] = snap.nics
    assert (nic.name, nic.rss_enabled, nic.rss_base_processor, nic.rss_queues) == ("SLOT 3 Port 1", True, 2, 16)


def test_text_starting_with_a_bracket_is_not_taken_for_json(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "[hv01]: PS C:\\> Get-VMHost | fl IovSupport, IovSupportReasons\n\nIovSupport        : True\n"
        "IovSupportReasons : \n",
    )
    assert detect(p) == "hyperv-formatlist"
    assert load_input(p).iov.supported is True
    j = _write(tmp_path, json.dumps([{"Name": "x"}]), "array.json")
    with pytest.raises(InputError, match="JSON array"):
        detect(j)


# -- field-notes: ghosts, MAC spellings, Guid arrays, stale descriptions ---------------------------------------
GHOSTS = r"""PS C:\> Get-VMNetworkAdapter -ManagementOS | fl Name, SwitchName, MacAddress, DeviceId, AdapterId, Status

Name       : External
SwitchName : External
MacAddress : A0369F1A2B30
DeviceId   : {5D8A41C3-9B77-4F1E-9E0A-2B3C4D5E6F70}
AdapterId  : 5D8A41C3-9B77-4F1E-9E0A-2B3C4D5E6F70
Status     : {Ok}
IsDeleted  : False

Name       : External
SwitchName : External
MacAddress :
DeviceId   :
AdapterId  :
Status     : {Ok}
IsDeleted  : False

Name       : Backup
SwitchName : External
MacAddress : 00155D00AA01
DeviceId   : {11111111-2222-3333-4444-555555555555}
AdapterId  : 11111111-2222-3333-4444-555555555555
Status     : {Ok}
IsDeleted  : False

Name       : Backup
SwitchName : External
MacAddress : 00155D00AA02
DeviceId   : {66666666-7777-8888-9999-000000000000}
AdapterId  : 66666666-7777-8888-9999-000000000000
Status     : {Ok}
IsDeleted  : False
"""


def test_ghost_management_adapters_are_dropped_and_namesakes_kept_apart() -> None:
    snap = snapshot_from_formatlist_text(GHOSTS, "p")
    mgmt = [(a.name, a.mac) for a in snap.vm_adapters if a.is_management_os]
    assert sorted(mgmt) == [("Backup", "00155D00AA01"), ("Backup", "00155D00AA02"), ("External", "A0369F1A2B30")]
    assert len(snap.vm_adapters) == 3


STALE = f"""PS C:\\> Get-VMSwitch | fl Name, SwitchType, NetAdapterInterfaceDescriptions, NetAdapterInterfaceGuid, Iov*

Name                            : SETswitch
SwitchType                      : External
NetAdapterInterfaceDescriptions : {{{X710} #2, {X710}}}
NetAdapterInterfaceGuid         : {{8d1f4b6e-2a3c-4e5f-9a0b-1c2d3e4f5a6b, 0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b}}
IovEnabled                      : True

PS C:\\> Get-NetAdapter | fl Name, InterfaceDescription, InterfaceGuid, MacAddress, LinkSpeed

Name                 : SLOT 3 Port 1
InterfaceDescription : {X710} #39
InterfaceGuid        : {{8D1F4B6E-2A3C-4E5F-9A0B-1C2D3E4F5A6B}}
MacAddress           : 3C-FD-FE-9A-00-10
LinkSpeed            : 10 Gbps

Name                 : SLOT 3 Port 2
InterfaceDescription : {X710} #40
InterfaceGuid        : {{0E9D8C7B-6A5F-4E3D-2C1B-0A9F8E7D6C5B}}
MacAddress           : 3C-FD-FE-9A-00-11
LinkSpeed            : 10 Gbps
"""


def test_switch_finds_its_nics_by_guid_when_descriptions_are_stale() -> None:
    snap = snapshot_from_formatlist_text(STALE, "p")
    sw = snap.switch("SETswitch")
    assert sw is not None and len(sw.net_adapter_guids or []) == 2
    assert sorted(n.name for n in snap.switch_nics(sw)) == ["SLOT 3 Port 1", "SLOT 3 Port 2"]
    assert snap.nics[0].mac == "3CFDFE9A0010" and snap.nics[0].link_speed_bps == 10_000_000_000


def test_stale_description_without_guid_matches_only_when_unambiguous() -> None:
    no_guid = "\n".join(ln for ln in STALE.splitlines() if "Guid" not in ln)
    snap = snapshot_from_formatlist_text(no_guid, "p")
    sw = snap.switch("SETswitch")
    assert sw is not None
    # "... #2" against "... #39" and "... #40": both lose their number the same way -> not matched
    assert snap.switch_nics(sw) == [] and snap.unresolved_nics(sw) == [f"{X710} #2", X710]
    one = "\n".join(ln for ln in no_guid.splitlines())
    cut = one[: one.index("Name                 : SLOT 3 Port 2")]
    snap1 = snapshot_from_formatlist_text(cut, "p")
    sw1 = snap1.switch("SETswitch")
    assert sw1 is not None and [n.name for n in snap1.switch_nics(sw1)] == ["SLOT 3 Port 1"]


# -- issue 13's reports, as pasted -------------------------------------------------------------------------------
LBFO_ONLY = """PS C:\\> Get-NetLbfoTeam

Name                   : Team1
Members                : {NIC2, NIC1}
TeamNics               : Team1
TeamingMode            : SwitchIndependent
LoadBalancingAlgorithm : Dynamic
Status                 : Up
"""


@pytest.mark.parametrize(
    "paste", [VMNIC_TABLE, "PS C:\\> Get-NetAdapterRss\n\n" + RSS_LIST, LBFO_ONLY], ids=["vmnic", "rss", "lbfo"]
)
def test_a_paste_without_get_vmswitch_never_says_there_is_no_external_switch(paste: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    snap = snapshot_from_formatlist_text(paste, "p")
    result = run_checks(snap)
    [f] = _one(result, "HV-SWITCH-IOV")
    assert f.status == "unknown" and f.collect == "Get-VMSwitch | Format-List *"
    assert not [x for x in result.findings if x.status == "fail"]
    p = _write(tmp_path, paste)
    r = cli("doctor", "--from", str(p), "--no-examples")
    assert "cannot work" not in r.out and "no external virtual switch" not in r.out
    assert "Get-VMSwitch | Format-List *" in r.out


def test_a_switch_without_switchtype_but_with_nics_is_external() -> None:
    text = f"""PS C:\\> Get-VMSwitch | fl Name, NetAdapterInterfaceDescriptions, IovEnabled

Name                            : SETswitch
NetAdapterInterfaceDescriptions : {{{X710}, {X710} #2, {X710} #3, {X710} #4}}
IovEnabled                      : False
"""
    snap = snapshot_from_formatlist_text(text, "p")
    [sw] = snap.switches
    assert sw.switch_type is None and len(sw.net_adapters or []) == 4 and snap.is_external(sw) is True
    [f] = _one(run_checks(snap), "HV-SWITCH-IOV")
    assert f.status == "fail" and "not in IOV mode" in f.message  # observed: IovEnabled False on an external switch


def test_no_adapter_pasted_means_no_claim_about_adapters_on_the_switch() -> None:
    snap = snapshot_from_formatlist_text(SWITCH_TABLE, "p")
    fs = run_checks(snap).findings
    vmq = [f for f in fs if f.id == "HV-VMQ"]
    assert [f.status for f in vmq] == ["unknown"] and "uses a VF" not in vmq[0].message
    assert all("every adapter" not in f.message for f in fs)


def test_a_set_switch_in_the_default_table_names_no_nic() -> None:
    """Get-VMSwitch's default table shows NetAdapterInterfaceDescription, which for a SET switch is a fixed text,
    not a NIC: its members stay "not collected", and no plan binds a switch to "Teamed-Interface"."""
    text = """Name      SwitchType NetAdapterInterfaceDescription
----      ---------- ------------------------------
SETswitch External   Teamed-Interface
"""
    snap = snapshot_from_formatlist_text(text, "p")
    [sw] = snap.switches
    assert sw.net_adapters is None and sw.embedded_teaming is True and snap.is_external(sw) is True
    [f] = _one(run_checks(snap), "HV-TEAM")
    assert f.status == "unknown"


def test_a_get_netview_command_that_printed_nothing_means_none_only_when_it_was_not_filtered() -> None:
    from iovkit.sources.hyperv.formatlist import add_text
    from iovkit.sources.hyperv.normalize import RawHost, build_snapshot

    text = (
        "PS C:\\> Get-NetLbfoTeam\nPS C:\\> Get-VMNetworkAdapter -VMName relay-09 | fl *\n"
        "PS C:\\> Get-VMSwitch\n" + SWITCH_TABLE
    )
    raw = RawHost(kind="hyperv-netview", origin="msdbg.HV01")
    add_text(raw, text, "Get-NetLbfoTeam.txt", complete=True)
    snap = build_snapshot(raw)
    assert snap.has("teams") and snap.teams == []  # ran over everything, printed nothing: no LBFO team
    assert not snap.has("vm_adapters")  # one VM's adapters printed nothing: nothing known about the others
    # the same lines pasted into a ticket: an empty output may just have been left out
    pasted = snapshot_from_formatlist_text(text, "p")
    assert not pasted.has("teams") and pasted.switches[0].name == "External"
