"""Per-object mappers of the Hyper-V normaliser: one cmdlet's merged records -> snapshot records.

NICs (Get-NetAdapter, -Sriov, -Vmq, -Rss), teams (LBFO, SET), switches, VMs, VM adapters (ghosts dropped),
VMQ queues, VFs, and the NICs a Windows guest shows. `normalize.build_snapshot` calls them; each is a pure
function of records whose keys are PowerShell's spelling (see sources.windows.PsRecord).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from iovkit.snapshot import VM, GuestNic, PhysicalNic, Team, VirtualFunction, VmAdapter, VmqQueue, VSwitch
from iovkit.sources.windows import (
    ADAPTER_STATUS,
    BANDWIDTH_MODE,
    LBFO_ALGORITHM,
    LBFO_MODE,
    LBFO_STATUS,
    SET_ALGORITHM,
    SET_MODE,
    SRIOV_SUPPORT,
    SWITCH_TYPE,
    VM_OPERATIONAL_STATUS,
    VM_STATE,
    PsRecord,
    as_enum_list,
    as_int,
    normalize_mac,
)

_R = PsRecord
SET_DESCRIPTION = "Teamed-Interface"  # a SET switch's NetAdapterInterfaceDescription (hyperv.md §1.2, inferred)
UNNAMED_SWITCH = "(unnamed)"  # a switch record without its Name (e.g. `Get-VMSwitch | fl *iov*` pasted alone)

# Adapters Get-NetAdapter lists that are not physical NICs.
_VIRTUAL_DESCRIPTIONS = (
    "Hyper-V Virtual Ethernet Adapter",
    "Microsoft Network Adapter Multiplexor Driver",
    "Microsoft Kernel Debug Network Adapter",
    "WAN Miniport",
    "Microsoft Hyper-V Network Adapter",
)
_SPEED = re.compile(r"^\s*([\d.]+)\s*([kKmMgGtT]?)(?:bps|b/s)\s*$")
_SPEED_MULT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def link_speed_bps(r: _R) -> int | None:
    """Get-NetAdapter: ReceiveLinkSpeed/Speed in bits/s, or the LinkSpeed text ("1 Gbps", "10 Gbps")."""
    n = r.i("ReceiveLinkSpeed", "Speed", "TransmitLinkSpeed")
    if n is not None:
        return n
    text = r.s("LinkSpeed")
    m = _SPEED.match(text or "")
    if not m:
        return None
    return int(float(m.group(1)) * _SPEED_MULT[m.group(2).lower()])


def reasons(r: _R) -> list[str]:
    """IovSupportReasons: a string[] from JSON; from Format-List text a `{a, b}` already split by sentences."""
    return [x.strip() for x in r.lst("IovSupportReasons") if x.strip()]


def oreasons(r: _R) -> list[str] | None:
    """IovSupportReasons when the record carries the property (else not collected); empty means none."""
    return reasons(r) if r.has("IovSupportReasons") else None


_SYNTHETIC_GUEST_NIC = "Microsoft Hyper-V Network Adapter"
# What a VF looks like from inside a Windows VM on Hyper-V: Intel "... Virtual Function ...", Mellanox/NVIDIA
# "... Virtual Ethernet Adapter", Azure's "Microsoft Azure Network Adapter" (MANA).
_GUEST_VF_NEEDLES = ("virtual function", "virtual ethernet adapter", "azure network adapter")


def guest_nics(recs: dict[str, list[_R]]) -> tuple[list[GuestNic], set[str]]:
    """Inside a Windows VM: the synthetic adapters, and the VFs paired with them by MAC address.

    Hyper-V gives a VF the same MAC as the synthetic adapter it backs; the guest shows both in Get-NetAdapter.
    """
    synthetic: list[tuple[GuestNic, str | None]] = []
    vfs: list[tuple[GuestNic, str | None]] = []
    for r in recs.get("Get-NetAdapter", []):
        name = r.s("Name", "ifAlias")
        desc = r.s("InterfaceDescription", "ifDesc") or ""
        if not name:
            continue
        mac = normalize_mac(r.s("MacAddress", "PermanentAddress"))
        if desc.startswith(_SYNTHETIC_GUEST_NIC):
            synthetic.append((GuestNic(name=name, driver="netvsc"), mac))
        elif any(n in desc.lower() for n in _GUEST_VF_NEEDLES) and not desc.startswith("Hyper-V Virtual Ethernet"):
            vfs.append((GuestNic(name=name, driver=r.s("DriverFileName") or desc, is_vf=True), mac))
    for syn, mac in synthetic:
        for vf, vf_mac in vfs:
            if mac and vf_mac == mac and vf.paired_with is None:
                syn.paired_with, vf.paired_with = vf.name, syn.name
                break
    return [g for g, _ in synthetic + vfs], {g.name for g, _ in vfs}


def _is_virtual(r: _R) -> bool:
    if r.b("Virtual") is True or r.b("HardwareInterface") is False:
        return True
    d = r.s("InterfaceDescription", "ifDesc") or ""
    return any(d.startswith(v) for v in _VIRTUAL_DESCRIPTIONS)


def nics(recs: dict[str, list[_R]]) -> list[PhysicalNic]:
    by_name: dict[str, PhysicalNic] = {}
    virtual: set[str] = set()
    for r in recs.get("Get-NetAdapter", []):
        name = r.s("Name", "ifAlias")
        if not name:
            continue
        if _is_virtual(r):
            virtual.add(name)
            continue
        driver = r.s("DriverFileName") or (r.s("DriverName") or "").rsplit("\\", 1)[-1] or None
        by_name[name] = PhysicalNic(
            name=name,
            description=r.s("InterfaceDescription", "ifDesc"),
            driver=driver,
            mac=normalize_mac(r.s("MacAddress", "PermanentAddress")),
            interface_guid=_guid(r.s("InterfaceGuid")),
            link_speed_bps=link_speed_bps(r),
            status=r.s("Status"),
        )

    def nic_for(r: _R) -> PhysicalNic | None:
        name = r.s("Name")
        if not name or name in virtual or _is_virtual(r):
            return None
        if name not in by_name:
            by_name[name] = PhysicalNic(name=name, description=r.s("InterfaceDescription"))
        nic = by_name[name]
        if nic.description is None:
            nic.description = r.s("InterfaceDescription")
        return nic

    for r in recs.get("Get-NetAdapterSriov", []):
        nic = nic_for(r)
        if nic is None:
            continue
        nic.sriov_support = r.enum(SRIOV_SUPPORT, "SriovSupport")
        nic.sriov_enabled = r.b("Enabled")
        nic.vfs_total = r.i("NumVFs")
        nic.vfs_allocated = r.i("NumAllocatedVFs")
    for r in recs.get("Get-NetAdapterVmq", []):
        nic = nic_for(r)
        if nic is not None:
            nic.vmq_enabled = r.b("Enabled")
    for r in recs.get("Get-NetAdapterRss", []):
        nic = nic_for(r)
        if nic is not None:
            nic.rss_enabled = r.b("Enabled")
            nic.rss_base_processor = r.i("BaseProcessorNumber")
            if nic.rss_base_processor is None:  # the default list view: `BaseProcessor: [Group:Number] : 0:2`
                nic.rss_base_processor = _proc_number(r.s("BaseProcessor"))
            nic.rss_queues = r.i("NumberOfReceiveQueues")
            nic.numa_node = r.i("NumaNode")
    return list(by_name.values())


def _names(descs: list[str], desc_to_name: Mapping[str, str]) -> list[str]:
    return [desc_to_name[d] for d in descs if d in desc_to_name]


def teams(recs: dict[str, list[_R]], nics: list[PhysicalNic], desc_to_name: Mapping[str, str]) -> list[Team]:
    teams: list[Team] = []
    for r in recs.get("Get-NetLbfoTeam", []):
        name = r.s("Name")
        if name:
            teams.append(
                Team(
                    name=name,
                    kind="lbfo",
                    members=r.lst("Members"),
                    mode=r.enum(LBFO_MODE, "TeamingMode"),
                    load_balancing=r.enum(LBFO_ALGORITHM, "LoadBalancingAlgorithm"),
                    status=r.enum(LBFO_STATUS, "Status"),
                )
            )
    seen = {t.name for t in teams}
    for r in recs.get("Get-VMSwitchTeam", []):
        name = r.s("Name")
        if not name or name in seen:
            continue
        descs = r.lst("NetAdapterInterfaceDescription", "NetAdapterInterfaceDescriptions")
        teams.append(
            Team(
                name=name,
                kind="set",
                members=_names(descs, desc_to_name) or descs,
                mode=r.enum(SET_MODE, "TeamingMode"),
                load_balancing=r.enum(SET_ALGORITHM, "LoadBalancingAlgorithm"),
            )
        )
        seen.add(name)
    # A SET switch whose Get-VMSwitchTeam was not captured still names its members.
    for r in recs.get("Get-VMSwitch", []):
        name = r.s("Name")
        if name and name not in seen and r.b("EmbeddedTeamingEnabled"):
            descs = r.lst("NetAdapterInterfaceDescriptions")
            teams.append(Team(name=name, kind="set", members=_names(descs, desc_to_name) or descs))
            seen.add(name)
    return teams


def switches(recs: dict[str, list[_R]], desc_to_name: Mapping[str, str], teams: list[Team]) -> list[VSwitch]:
    out: list[VSwitch] = []
    for r in recs.get("Get-VMSwitch", []):
        # `Get-VMSwitch | fl *iov*` pasted alone has no Name; its IOV facts still matter.
        name = r.s("Name") or UNNAMED_SWITCH
        descs = r.olst("NetAdapterInterfaceDescriptions", "NetAdapterInterfaceDescription")
        if descs == [] and r.lst("NetAdapterInterfaceDescription"):
            descs = r.lst("NetAdapterInterfaceDescription")
        embedded = r.b("EmbeddedTeamingEnabled")
        if descs and [d.lower() for d in descs] == [SET_DESCRIPTION.lower()]:
            # A SET switch's NetAdapterInterfaceDescription (the default table's column) names no NIC; its members
            # are in NetAdapterInterfaceDescriptions, which this input did not carry (hyperv.md §1.2).
            descs, embedded = None, True if embedded is None else embedded
        names = _names(descs or [], desc_to_name)
        stype = r.enum(SWITCH_TYPE, "SwitchType")
        reasons = oreasons(r)
        if reasons is None and r.b("IovSupport") is True:
            reasons = []
        out.append(
            VSwitch(
                name=name,
                id=r.s("Id"),
                switch_type=stype if stype in ("External", "Internal", "Private") else None,
                net_adapters=descs,
                net_adapter_names=names,
                net_adapter_guids=[_guid(g) for g in r.olst("NetAdapterInterfaceGuid") or []] or None,
                iov_enabled=r.b("IovEnabled"),
                iov_support=r.b("IovSupport"),
                iov_support_reasons=reasons,
                vf_count=r.i("IovVirtualFunctionCount"),
                vfs_in_use=r.i("IovVirtualFunctionsInUse"),
                queue_pairs=r.i("IovQueuePairCount"),
                queue_pairs_in_use=r.i("IovQueuePairsInUse"),
                allow_management_os=r.b("AllowManagementOS"),
                embedded_teaming=embedded,
                allow_lbfo_teams=r.b("AllowNetLbfoTeams"),
                bandwidth_mode=r.enum(BANDWIDTH_MODE, "BandwidthReservationMode"),
            )
        )
    return out


def vm(r: _R) -> VM:
    return VM(
        name=r.s("Name", "VMName") or "",
        id=r.s("Id", "VMId"),
        state=r.enum(VM_STATE, "State"),
        operational_status=as_enum_list(r.raw("OperationalStatus"), VM_OPERATIONAL_STATUS)
        if r.has("OperationalStatus")
        else None,
        generation=r.i("Generation"),
        vcpus=r.i("ProcessorCount"),
    )


def adapter(r: _R) -> VmAdapter | None:
    if r.b("IsExternalAdapter"):
        return None  # the switch's port on the physical NIC, not a virtual adapter
    name = r.s("Name")
    if not name:
        return None
    mgmt = bool(r.b("IsManagementOs"))
    if mgmt and r.has("MacAddress") and not any(r.s(k) for k in ("MacAddress", "DeviceId", "AdapterId")):
        return None  # a ghost record (field-notes: empty MacAddress, DeviceId and AdapterId, yet Status Ok)
    legacy = r.b("IsLegacy")
    kind: Any = None if mgmt or legacy is None else ("legacy" if legacy else "synthetic")
    return VmAdapter(
        vm_name=None if mgmt else r.s("VMName"),
        name=name,
        is_management_os=mgmt,
        kind=kind,
        switch_name=r.s("SwitchName"),
        connected=r.b("Connected"),
        mac=normalize_mac(r.s("MacAddress")),
        # Absent on management-OS adapters (VMInternalNetworkAdapter): None means "not applicable".
        iov_weight=None if mgmt else r.i("IovWeight"),
        iov_queue_pairs_requested=None if mgmt else r.i("IovQueuePairsRequested"),
        iov_queue_pairs_assigned=None if mgmt else r.i("IovQueuePairsAssigned"),
        iov_usage=None if mgmt else r.i("IovUsage"),
        vf_data_path_active=r.b("VFDataPathActive"),
        vmq_weight=r.i("VMQWeight", "VmqWeight"),
        vrss_enabled=r.b("VrssEnabled"),
        status=as_enum_list(r.raw("Status"), ADAPTER_STATUS) if r.has("Status") else None,
        status_description=r.olst("StatusDescription"),
    )


def _guid(v: Any) -> Any:
    """`{6a1b...}` (Get-NetAdapter) and a bare Guid (Get-VMSwitch's Guid array) -> lower case, no braces."""
    if v is None:
        return None
    if isinstance(v, dict):  # a Guid object in JSON: {"Guid": "..."} (rare) or its string
        v = v.get("Guid") or v.get("value")
    s = str(v).strip().strip("{}").lower()
    return s or None


def _proc_number(v: str | None) -> int | None:
    """`0:2` (group:number) -> 2; a bare number stays itself."""
    if not v:
        return None
    return as_int(v.rsplit(":", 1)[-1])


def _processor(v: Any) -> str | None:
    """Get-NetAdapterVmqQueue's Processor: `0:2` (group:number) in text, or {Group, Number} in JSON."""
    if v is None or v == "":
        return None
    if isinstance(v, dict):
        g, n = as_int(v.get("Group")), as_int(v.get("Number"))
        return f"{g or 0}:{n}" if n is not None else None
    return str(v).strip() or None


def queue(r: _R) -> VmqQueue | None:
    nic, qid = r.s("Name", "ifAlias"), r.i("QueueID", "QueueId")
    if nic is None or qid is None:
        return None
    return VmqQueue(
        nic=nic,
        queue_id=qid,
        mac=normalize_mac(r.s("MacAddress")),
        vlan=r.i("VlanID", "VlanId"),
        processor=_processor(r.raw("Processor", "ProcessorAffinity")),
        vm=r.s("VmFriendlyName"),
    )


def vf(r: _R) -> VirtualFunction | None:
    pf, idx = r.s("Name"), r.i("FunctionID")
    if pf is None or idx is None:
        return None
    return VirtualFunction(
        pf=pf,
        index=idx,
        mac=normalize_mac(r.s("CurrentMacAddress")),
        vm=r.s("VmFriendlyName"),
        vm_nic_id=r.s("VmNicID"),
    )
