"""The one Hyper-V normaliser: per-cmdlet records in, a HostSnapshot out.

The three Hyper-V inputs (collector bundle, pasted Format-List text, Get-NetView capture) differ only in how
they spell a value: PowerShell 5.1's ConvertTo-Json writes enums as numbers and dates as `/Date(ms)/`,
PowerShell 7 (with -EnumsAsStrings) writes names and ISO dates, and Format-List text is all strings
("True", "{a, b}", "1 Gbps"). Each reader only turns its input into `RawHost` (cmdlet name -> list of
records); every coercion and every mapping rule lives here, so the same host gives the same snapshot
whichever way it was captured. A fact that is absent stays None: it is never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iovkit.snapshot import (
    CollectionError,
    CpuInfo,
    GuestNic,
    HostInfo,
    HostIov,
    HostSnapshot,
    HostVmq,
    SourceInfo,
)
from iovkit.sources.hyperv import records
from iovkit.sources.hyperv.records import UNNAMED_SWITCH as UNNAMED_SWITCH  # re-exported
from iovkit.sources.windows import (
    PsRecord,
    normalize_mac,
)

_R = PsRecord

# The sources the collector gathers, under the names the bundle uses (issue 2, item 3a).
SOURCES: tuple[str, ...] = (
    "Get-VMHost",
    "Get-VMSwitch",
    "Get-VMSwitchTeam",
    "Get-VM",
    "Get-VMNetworkAdapter",  # collected with -All: VM and management-OS adapters
    "Get-NetAdapter",
    "Get-NetAdapterSriov",
    "Get-NetAdapterSriovVf",
    "Get-NetAdapterVmq",
    "Get-NetAdapterVmqQueue",  # which VM (or host) vNIC each receive queue serves, on which processor
    "Get-NetAdapterRss",
    "Get-NetLbfoTeam",
    "Win32_OperatingSystem",
    "Win32_Processor",
    "Win32_ComputerSystem",
    "Get-ComputerInfo",  # HyperVisorPresent and HyperVRequirement* only
    "VMSMP-Parameters",  # HKLM:\SYSTEM\CurrentControlSet\Services\VMSMP\Parameters (BelowTenGigVmqEnabled, ...)
)

_NO_SLAT_REASON = "second level address translation"

Record = dict[str, Any]


@dataclass
class RawHost:
    """What a reader found: records per cmdlet, with keys kept as PowerShell spelled them."""

    kind: str  # SourceInfo.kind
    origin: str
    records: dict[str, list[Record]] = field(default_factory=dict)
    computer_name: str | None = None
    collected_at: datetime | None = None
    powershell_version: str | None = None
    collector_version: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    # Cmdlets whose output the input held, even when it was empty (a bundle's `"Get-NetLbfoTeam": null`).
    seen: set[str] = field(default_factory=set)

    def add(self, cmdlet: str, rec: Mapping[str, Any]) -> None:
        self.records.setdefault(cmdlet, []).append(dict(rec))
        self.seen.add(cmdlet)


# -- record merging -------------------------------------------------------------------------------------------
_KEYS: dict[str, tuple[str, ...]] = {
    "Get-VMHost": (),
    "Get-VMSwitch": ("Name",),
    "Get-VMSwitchTeam": ("Name",),
    "Get-VM": ("Name", "VMName"),
    "Get-VMNetworkAdapter": ("Id", "VMName", "Name"),
    "Get-NetAdapter": ("Name",),
    "Get-NetAdapterSriov": ("Name",),
    "Get-NetAdapterSriovVf": ("Name", "FunctionID"),
    "Get-NetAdapterVmq": ("Name",),
    "Get-NetAdapterVmqQueue": ("Name", "QueueID"),
    "VMSMP-Parameters": (),
    "Get-NetAdapterRss": ("Name",),
    "Get-NetLbfoTeam": ("Name",),
    "Win32_OperatingSystem": (),
    "Win32_Processor": ("DeviceID", "SocketDesignation"),
    "Win32_ComputerSystem": (),
    "Get-ComputerInfo": (),
}


def merged(cmdlet: str, records: Iterable[Record]) -> list[_R]:
    """Merge records that describe the same object (Get-NetView prints most objects twice, and reports some
    NICs and teams in two folders); the first non-empty value of a property wins."""
    keys = _KEYS.get(cmdlet, ("Name",))
    out: dict[Any, Record] = {}
    anon = 0
    for rec in records:
        r = _R(rec)
        if cmdlet == "Get-VMNetworkAdapter" and r.s("Id"):
            ident: Any = ("id", r.s("Id"))
        elif keys:
            parts = tuple(r.s(k) for k in keys if k != "Id")
            if all(p is None for p in parts):
                anon += 1
                ident = ("anon", anon)
            else:
                ident = parts
        else:
            ident = ()
        if cmdlet == "Get-VMNetworkAdapter":
            # Never by name alone (field-notes: -ManagementOS can list two adapters of one name, and ghosts):
            # by Id, else by (VMName, Name, MAC); a record with neither stands alone.
            mac = normalize_mac(r.s("MacAddress"))
            alt = (r.s("VMName"), r.s("Name"), mac)
            if ident[0] == "id":
                if mac and alt in out and ident not in out:
                    ident = alt
            elif mac:
                ident = next((k for k, v in out.items() if k[0] == "id" and _mac_of(v) == mac), alt)
            else:
                anon += 1
                ident = ("anon", anon)
        base = out.setdefault(ident, {})
        low = {k.lower() for k in base}
        for k, v in rec.items():
            if k.lower() not in low or (v not in (None, "", []) and _R(base).raw(k) is None):
                base[k] = v
    anon_ids = [i for i in out if isinstance(i, tuple) and i[:1] == ("anon",)]
    named = [i for i in out if i not in anon_ids]
    if anon_ids and len(named) == 1 and cmdlet == "Get-VMSwitch":
        # `Get-VMSwitch | fl Name, SwitchType` and `Get-VMSwitch | fl *iov*` of a one-switch host: one object
        base = out[named[0]]
        for i in anon_ids:
            for k, v in out.pop(i).items():
                if _R(base).raw(k) is None:
                    base[k] = v
    return [_R(v) for v in out.values()]


def _mac_of(rec: Record) -> str | None:
    return normalize_mac(_R(rec).s("MacAddress"))


# -- the normaliser -------------------------------------------------------------------------------------------
def build_snapshot(raw: RawHost) -> HostSnapshot:
    """Map the per-cmdlet records of one host onto the snapshot model."""
    recs = {c: merged(c, rs) for c, rs in raw.records.items()}

    def one(cmdlet: str) -> _R | None:
        rs = recs.get(cmdlet) or []
        return rs[0] if rs else None

    os_ = one("Win32_OperatingSystem")
    cs = one("Win32_ComputerSystem")
    ci = one("Get-ComputerInfo")
    vmhost = one("Get-VMHost")
    procs = recs.get("Win32_Processor", [])

    host = _host(raw, os_, cs, ci, vmhost)
    if host.name is None:  # a paste of only `Get-VMSwitch | fl *` still names its host
        host.name = next(
            (cn for rs in recs.values() for r in rs if (cn := r.s("ComputerName", "PSComputerName", "SystemName"))),
            None,
        )
    cpu = _cpu(procs, ci, host.hypervisor_present, vmhost)
    iov = HostIov()
    if vmhost is not None:
        supported = vmhost.b("IovSupport")
        reasons = records.reasons(vmhost) if vmhost.has("IovSupportReasons") else None
        if reasons is None and supported is True:
            reasons = []  # IovSupport True: Hyper-V gives no reason (the property is empty)
        iov = HostIov(supported=supported, reasons=reasons)
    vmsmp = one("VMSMP-Parameters")
    vmq = HostVmq()
    if vmsmp is not None:  # a value that is not set is the system default, 0
        vmq = HostVmq(
            below_ten_gig_vmq_enabled=vmsmp.i("BelowTenGigVmqEnabled") or 0,
            ten_gig_vmq_enabled=vmsmp.i("TenGigVmqEnabled") or 0,
        )

    # Every adapter Get-NetAdapter knows, physical or not, resolves interface descriptions to names.
    desc_to_name: dict[str, str] = {}
    for src in ("Get-NetAdapter", "Get-NetAdapterSriov", "Get-NetAdapterVmq", "Get-NetAdapterRss"):
        for r in recs.get(src, []):
            desc, nm = r.s("InterfaceDescription", "ifDesc", "DriverDescription"), r.s("Name", "ifAlias")
            if desc and nm:
                desc_to_name.setdefault(desc, nm)

    nics = records.nics(recs)
    guest_nics: list[GuestNic] = []
    if host.is_vm_guest:
        guest_nics, vf_names = records.guest_nics(recs)
        nics = [n for n in nics if n.name not in vf_names]  # a VF inside a VM is not this machine's NIC
    teams = records.teams(recs, nics, desc_to_name)
    for t in teams:
        for n in nics:
            if n.name in t.members and n.team is None:
                n.team = t.name
    switches = records.switches(recs, desc_to_name, teams)
    for t in teams:  # a LBFO team NIC carries the team's name; make the switch binding resolve to it
        if t.kind == "lbfo":
            for s in switches:
                if (
                    "Microsoft Network Adapter Multiplexor Driver" in " ".join(s.net_adapters or [])
                    and t.name not in s.net_adapter_names
                    and len([x for x in teams if x.kind == "lbfo"]) == 1
                ):
                    s.net_adapter_names.append(t.name)
    vms = [records.vm(r) for r in recs.get("Get-VM", []) if r.s("Name", "VMName")]
    adapters = [a for a in (records.adapter(r) for r in recs.get("Get-VMNetworkAdapter", [])) if a is not None]
    vfs = [v for v in (records.vf(r) for r in recs.get("Get-NetAdapterSriovVf", [])) if v is not None]
    queues = [q for q in (records.queue(r) for r in recs.get("Get-NetAdapterVmqQueue", [])) if q is not None]

    # One order whatever the input's (Get-NetView's folder walk, pasted order): by name, management OS first.
    nics.sort(key=lambda n: _natural(n.name))
    teams.sort(key=lambda t: _natural(t.name))
    switches.sort(key=lambda s: _natural(s.name))
    vms.sort(key=lambda v: _natural(v.name))
    adapters.sort(key=lambda a: (not a.is_management_os, _natural(a.vm_name or ""), _natural(a.name)))
    vfs.sort(key=lambda v: (_natural(v.pf), v.index))
    queues.sort(key=lambda q: (_natural(q.nic), q.queue_id))
    errors = [CollectionError(source=s, error=e) for s, e in raw.errors]
    seen = raw.seen | set(raw.records)

    def got(*cmdlets: str) -> bool:
        return any(c in seen for c in cmdlets)

    guest = None
    if host.is_vm_guest:  # inside a Windows VM: the data-path verdict from the guest part of the bundle
        from iovkit.sources.guest.windows import windows_guest

        guest = windows_guest(raw.records)
    snap = HostSnapshot(
        guest=guest,
        collected_at=raw.collected_at,
        source=SourceInfo(
            kind=raw.kind,
            origin=raw.origin,
            collector_version=raw.collector_version,
            powershell_version=raw.powershell_version,
            sources_read=[c for c in SOURCES if c in seen],
        ),
        host=host,
        cpu=cpu,
        iov=iov,
        vmq=vmq,
        nics=nics,
        teams=teams,
        switches=switches,
        vms=vms,
        vm_adapters=adapters,
        vfs=vfs,
        vmq_queues=queues,
        guest_nics=guest_nics,
        errors=errors,
    )
    # What the input did not hold is "not collected" (null), never "none" (issue 13).
    absent = {
        "nics": not got("Get-NetAdapter", "Get-NetAdapterSriov", "Get-NetAdapterVmq", "Get-NetAdapterRss"),
        "teams": not teams and not got("Get-NetLbfoTeam", "Get-VMSwitchTeam"),
        "switches": not got("Get-VMSwitch"),
        "vms": not got("Get-VM"),
        "vm_adapters": not got("Get-VMNetworkAdapter"),
        "vfs": not got("Get-NetAdapterSriovVf"),
        "vmq_queues": not got("Get-NetAdapterVmqQueue"),
    }
    snap.mark_absent(*(k for k, v in absent.items() if v and not getattr(snap, k)))
    return snap


def _natural(s: str) -> tuple[Any, ...]:
    """ "Ethernet 2" before "Ethernet 10"."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", s))


def _host(raw: RawHost, os_: _R | None, cs: _R | None, ci: _R | None, vmhost: _R | None) -> HostInfo:
    name = raw.computer_name
    for r, keys in (
        (cs, ("Name", "DNSHostName")),
        (os_, ("CSName",)),
        (ci, ("CsName", "CsDNSHostName")),
        (vmhost, ("ComputerName", "Name")),
    ):
        if name is None and r is not None:
            name = r.s(*keys)
    edition: Any = None
    ptype = os_.i("ProductType") if os_ else None
    if ptype is None and ci is not None:
        ptype = {"workstation": 1, "domaincontroller": 2, "server": 3}.get((ci.s("OsProductType") or "").lower())
        if ptype is None:
            ptype = ci.i("OsProductType")
    if ptype == 1:
        edition = "client"
    elif ptype in (2, 3):
        edition = "server"
    present = ci.b("HyperVisorPresent") if ci else None
    if present is None and cs is not None:
        present = cs.b("HypervisorPresent")
    guest: bool | None = None
    guest_of: str | None = None
    model = (cs.s("Model") if cs else None) or (ci.s("CsModel") if ci else None)
    maker = (cs.s("Manufacturer") if cs else None) or (ci.s("CsManufacturer") if ci else None)
    if model is not None:
        text = f"{maker or ''} {model}".lower()
        for needle, hv in (
            ("microsoft corporation virtual machine", "hyperv"),
            ("vmware", "vmware"),
            ("kvm", "kvm"),
            ("qemu", "kvm"),
            ("virtualbox", "virtualbox"),
            ("xen", "xen"),
        ):
            if needle in text:
                guest, guest_of = True, hv
                break
        else:
            guest = False
    return HostInfo(
        name=name,
        platform="hyperv",
        os_caption=(os_.s("Caption") if os_ else None) or (ci.s("OsName", "WindowsProductName") if ci else None),
        os_version=(os_.s("Version") if os_ else None) or (ci.s("OsVersion") if ci else None),
        os_build=(os_.s("BuildNumber") if os_ else None) or (ci.s("OsBuildNumber") if ci else None),
        edition=edition,
        hypervisor_present=present,
        is_vm_guest=guest,
        guest_of=guest_of,
    )


def _cpu(procs: list[_R], ci: _R | None, hv_present: bool | None, vmhost: _R | None) -> CpuInfo:
    """SLAT and friends: Win32_Processor reads False once the hypervisor runs, so under a hypervisor they stay
    None unless IovSupportReasons prove there is no SLAT; without one, Get-ComputerInfo's HyperVRequirement*
    fields are preferred (hyperv.md §1.8)."""
    p = procs[0] if procs else None

    def requirement(ci_key: str, proc_key: str) -> bool | None:
        if hv_present:
            return None
        v = ci.b(ci_key) if ci else None
        if v is None and hv_present is False and p is not None:
            v = p.b(proc_key)
        return v

    slat = requirement("HyperVRequirementSecondLevelAddressTranslation", "SecondLevelAddressTranslationExtensions")
    if vmhost is not None and any(_NO_SLAT_REASON in x.lower() for x in records.reasons(vmhost)):
        slat = False
    cores = [r.i("NumberOfCores") for r in procs]
    lps = [r.i("NumberOfLogicalProcessors") for r in procs]
    return CpuInfo(
        model=p.s("Name") if p else None,
        vendor=p.s("Manufacturer") if p else None,
        sockets=len(procs) or None,
        cores=sum(c for c in cores if c is not None) if procs and None not in cores else None,
        logical_processors=sum(c for c in lps if c is not None) if procs and None not in lps else None,
        slat=slat,
        virtualization_extensions=requirement("HyperVRequirementVMMonitorModeExtensions", "VMMonitorModeExtensions"),
        firmware_virtualization=requirement(
            "HyperVRequirementVirtualizationFirmwareEnabled", "VirtualizationFirmwareEnabled"
        ),
    )
