"""Hyper-V host rules (reference: hyperv.md §1, §2, §6) and the helpers every Hyper-V rule module shares.

Rules are pure functions of the snapshot and the policy. The rules live in four modules, registered in this
order (report order): host (here), switch (hyperv_switch), VM adapters (hyperv_adapters), VMQ (hyperv_vmq),
VF queues (hyperv_queues)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    Scope,
    current_rule,
    host_scope,
    not_applicable,
    ps,
    rule,
    unknown,
)
from iovkit.checks.reasons import SRIOV_SUPPORT, classify_reason
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot, PhysicalNic, VmAdapter, VSwitch

SERVER_2012 = (6, 2)
BUILD_2016 = 14393  # SET (Switch Embedded Teaming) exists from Windows Server 2016 on


def _version(snap: HostSnapshot) -> tuple[int, int, int] | None:
    """(major, minor, build) from os_version '10.0.17763' (build also from os_build)."""
    text = snap.host.os_version or ""
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return None
    build = int(m.group(3)) if m.group(3) else None
    if build is None and snap.host.os_build and snap.host.os_build.strip().isdigit():
        build = int(snap.host.os_build.strip())
    return int(m.group(1)), int(m.group(2)), build or 0


def _build(snap: HostSnapshot) -> int | None:
    v = _version(snap)
    if v and v[2]:
        return v[2]
    b = snap.host.os_build
    return int(b) if b and b.strip().isdigit() else None


# The exact commands that collect what a rule needs (issue 13: unknown names the fact and how to get it).
COLLECT_HOST = "Get-VMHost | Format-List IovSupport, IovSupportReasons"
COLLECT_OS = "Get-CimInstance Win32_OperatingSystem | Format-List Caption, Version, BuildNumber, ProductType"
COLLECT_SWITCH = "Get-VMSwitch | Format-List *"
COLLECT_ADAPTERS = "Get-VMNetworkAdapter -All | Format-List *"
COLLECT_SRIOV = "Get-NetAdapterSriov | Format-List *"
COLLECT_NETADAPTER = "Get-NetAdapter | Format-List Name, InterfaceDescription, InterfaceGuid, LinkSpeed, Status"
COLLECT_VMQ = "Get-NetAdapterVmq | Format-List *"
COLLECT_VMQ_QUEUES = "Get-NetAdapterVmqQueue | Format-List *"
COLLECT_VMSMP = "Get-ItemProperty HKLM:\\SYSTEM\\CurrentControlSet\\Services\\VMSMP\\Parameters"
COLLECT_COMPUTERINFO = "Get-ComputerInfo -Property HyperV*"


def external_switches(snap: HostSnapshot, policy: Policy | None) -> list[VSwitch]:
    """External switches in scope: those the policy names, else every external switch (a switch whose
    SwitchType was not in the input counts when it shows a bound NIC or IOV: see HostSnapshot.is_external)."""
    ext = snap.external_switches()
    if policy is not None and policy.switches:
        return [s for s in ext if s.name in policy.switches]
    return ext


def indexed(all_switches: list[VSwitch], chosen: list[VSwitch]) -> list[tuple[int, VSwitch]]:
    """The chosen switches with their index in snapshot.switches (evidence cites `switches[i]`)."""
    return [(i, sw) for i, sw in enumerate(all_switches) if sw in chosen]


def bound_nic_names(snap: HostSnapshot, policy: Policy | None) -> set[str]:
    names = {n.name for n in snap.bound_nics(external_switches(snap, policy))}
    if policy is not None:
        names |= set(policy.nics)
    return names


def _set_team(snap: HostSnapshot, sw: VSwitch) -> bool:
    if sw.embedded_teaming:
        return True
    keys = set(sw.net_adapters or []) | set(sw.net_adapter_names)
    return any(t.kind == "set" and (t.name in keys or t.name == sw.name) for t in snap.teams)


def _needs_rebuild(snap: HostSnapshot, sw: VSwitch) -> bool | None:
    if snap.lbfo_team(sw):
        return True
    return None if sw.iov_enabled is None else not sw.iov_enabled


def keep_adapters(switch: str, rebuild: str) -> str:
    """A by-hand rebuild that reconnects the VM adapters it disconnects (Remove-VMSwitch leaves them unplugged)."""
    return (
        f"$a = Get-VMNetworkAdapter -VMName * | Where-Object SwitchName -eq {ps(switch)}; {rebuild}; "
        f"$a | Connect-VMNetworkAdapter -SwitchName {ps(switch)}"
    )


def _lbfo_fix(snap: HostSnapshot, sw: VSwitch, team: str) -> str:
    """By hand: the switch, then the team, then a SET switch with IOV over the team's members."""
    members = next((t.members for t in snap.teams if t.name == team), [])
    nics = ", ".join(ps(m) for m in members) or "<member NICs>"
    return keep_adapters(
        sw.name,
        f"Remove-VMSwitch -Name {ps(sw.name)} -Force; Remove-NetLbfoTeam -Name {ps(team)} -Confirm:$false; "
        f"New-VMSwitch -Name {ps(sw.name)} -NetAdapterName {nics} -EnableEmbeddedTeaming $true -EnableIov $true",
    )


def _no_switch(snap: HostSnapshot, rid: str) -> Finding:
    """No external switch in scope: not applicable when the switches were read, else unknown."""
    if snap.has("switches") and all(snap.is_external(s) is not None for s in snap.switches):
        return not_applicable(rid, host_scope(snap), "no external switch in scope")
    return unknown(rid, host_scope(snap), ["switches"], collect=COLLECT_SWITCH)


def _maybe_in_scope(snap: HostSnapshot, policy: Policy | None) -> list[VmAdapter]:
    """VM adapters that would be in scope if their switch's type were known (switch not in the input)."""
    out = []
    for a in snap.vm_adapters:
        if a.is_management_os or not a.vm_name or not a.switch_name:
            continue
        if policy is not None and policy.selector_for(a) is None:
            continue
        sw = snap.switch(a.switch_name)
        if (sw is None and not snap.has("switches")) or (sw is not None and snap.is_external(sw) is None):
            out.append(a)
    return out


def _no_adapter(snap: HostSnapshot, policy: Policy | None, rid: str, why: str) -> Finding:
    """No VM adapter in scope: unknown when the adapters (or their switches) were not in the input."""
    if not snap.has("vm_adapters"):
        return unknown(rid, host_scope(snap), ["vm_adapters"], collect=COLLECT_ADAPTERS)
    maybe = _maybe_in_scope(snap, policy)
    if maybe:
        names = ", ".join(sorted({a.switch_name or "" for a in maybe}))
        return unknown(
            rid,
            host_scope(snap),
            ["switches"],
            f"whether switch {names} is external is not in the input",
            collect=COLLECT_SWITCH,
        )
    return not_applicable(rid, host_scope(snap), why)


def _nic_scope(n: PhysicalNic) -> Scope:
    return Scope("nic", n.name)


def _sw_scope(sw: VSwitch) -> Scope:
    return Scope("switch", sw.name)


def _a_scope(a: VmAdapter) -> Scope:
    if a.vm_name is None and not a.is_management_os:  # a VM adapter whose VMName was not in the input
        return Scope("vm-adapter", f"?/{a.name}")
    return Scope("vm-adapter", a.key)


def _idx(snap: HostSnapshot, a: VmAdapter) -> int:
    return snap.vm_adapters.index(a)


def _get_adapter(a: VmAdapter, props: str) -> str:
    if a.is_management_os or a.vm_name is None:
        return f"Get-VMNetworkAdapter -ManagementOS -Name {ps(a.name)} | Format-List {props}"
    return f"Get-VMNetworkAdapter -VMName {ps(a.vm_name)} -Name {ps(a.name)} | Format-List {props}"


def _set_adapter(a: VmAdapter, args: str) -> str:
    if a.is_management_os or a.vm_name is None:
        return f"Set-VMNetworkAdapter -ManagementOS -Name {ps(a.name)} {args}"
    return f"Set-VMNetworkAdapter -VMName {ps(a.vm_name)} -Name {ps(a.name)} {args}"


# ---------------------------------------------------------------------------------------------------------


@rule(
    "HV-OS-EDITION",
    "Windows Server 2012 or newer (client Windows has no SR-IOV)",
    platform="hyperv",
    severity="critical",
    rationale="Hyper-V SR-IOV exists only on Windows Server 2012 and newer; client "
    "Hyper-V (Windows 10/11) does not offer it.",
    remediation="Host OS: Windows Server 2012 or newer (Standard/Datacenter). No command fixes a client edition.",
    impact=(
        "No VM on this host can get a VF: every packet keeps crossing VMBus and the virtual switch on the root's CPUs."
    ),
)
def os_edition(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope, h = current_rule(), host_scope(snap), snap.host
    ver = _version(snap)
    ev: Ev = {"host.edition": h.edition, "host.os_caption": h.os_caption, "host.os_version": h.os_version}
    if h.edition is None and ver is None:
        yield unknown(rid, scope, ["host.edition", "host.os_version"], collect=COLLECT_OS)
        return
    if h.edition == "client":
        yield Finding(
            rid,
            "fail",
            scope,
            f"client Windows ({h.os_caption or 'ProductType 1'}) has no SR-IOV",
            ev,
            fix="Use Windows Server 2012 or newer (Standard/Datacenter) as the Hyper-V host.",
        )
        return
    if ver is not None and ver[:2] < SERVER_2012:
        yield Finding(
            rid,
            "fail",
            scope,
            f"Windows {h.os_version} is older than Server 2012 (6.2)",
            ev,
            fix="Upgrade the host to Windows Server 2012 or newer.",
        )
        return
    if h.edition is None or ver is None:
        missing = ["host.edition"] if h.edition is None else ["host.os_version"]
        yield Finding(
            rid,
            "warn",
            scope,
            f"cannot confirm Windows Server 2012+: {missing[0]} not collected (collect: {COLLECT_OS})",
            ev,
            missing=missing,
            collect=COLLECT_OS,
        )
        return
    yield Finding(rid, "pass", scope, f"{h.os_caption or 'Windows Server'} {h.os_version}", ev)


@rule(
    "HV-HOST-IOV",
    "Host supports I/O virtualization (Get-VMHost IovSupport)",
    platform="hyperv",
    severity="critical",
    rationale="Hyper-V reports why the platform cannot do SR-IOV as IovSupportReasons; "
    "each has a firmware or hardware fix.",
    remediation=(
        "Firmware or hardware, one per IovSupportReasons string (Intel VT-d / AMD IOMMU, SR-IOV in the BIOS, "
        "ACS on the root ports, a BIOS update for _OSC). Unknown reason strings are shown verbatim."
    ),
    impact=("No switch on this host can be made IOV: every VM stays on the synthetic path through the virtual switch."),
)
def host_iov(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope = current_rule(), host_scope(snap)
    if snap.iov.supported is None:
        yield unknown(rid, scope, ["iov.supported"], collect=COLLECT_HOST)
        return
    if snap.iov.supported:
        yield Finding(rid, "pass", scope, "IovSupport True", {"iov.supported": True})
        return
    if not snap.iov.reasons:
        given = "reasons not in the input" if snap.iov.reasons is None else "no reason given"
        yield Finding(
            rid,
            "fail",
            scope,
            f"IovSupport False ({given})",
            {"iov.supported": False, "iov.reasons": snap.iov.reasons},
            fix="(Get-VMHost).IovSupportReasons",
        )
        return
    for i, text in enumerate(snap.iov.reasons):
        cls = classify_reason(text)
        label = cls.label if cls.category != "UNKNOWN" else "unrecognised reason"
        yield Finding(
            rid,
            "fail",
            scope,
            f"{label}: {text!r}" if cls.category == "UNKNOWN" else f"{label} ({cls.category}): {text}",
            {"iov.supported": False, f"iov.reasons[{i}]": text, "category": cls.category},
            fix=cls.fix,
        )


@rule(
    "HV-SLAT",
    "Processor has SLAT (EPT / RVI-NPT)",
    platform="hyperv",
    severity="high",
    rationale="SR-IOV needs second level address translation. Win32_Processor reports SLAT False once the "
    "hypervisor runs, so that alone is not proof of absence.",
    remediation=(
        "Hardware (a CPU with EPT or RVI/NPT). When the facts are missing: `Get-ComputerInfo -Property "
        "HyperV*` to read them."
    ),
    impact="Without SLAT Hyper-V cannot assign VFs: the VMs stay on the synthetic path.",
)
def slat(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope = current_rule(), host_scope(snap)
    hv = snap.host.hypervisor_present
    ev: Ev = {"cpu.slat": snap.cpu.slat, "host.hypervisor_present": hv, "iov.supported": snap.iov.supported}
    no_slat = [r for r in snap.iov.reasons or [] if classify_reason(r).category == "NO_SLAT"]
    if no_slat:
        ev["iov.reasons"] = no_slat
        yield Finding(
            rid, "fail", scope, "IovSupportReasons: the processor has no SLAT", ev, fix=classify_reason(no_slat[0]).fix
        )
        return
    if snap.cpu.slat:
        yield Finding(rid, "pass", scope, "SLAT present", ev)
        return
    if hv:
        reasons_known = snap.iov.supported is not None
        build = _build(snap)
        if reasons_known:
            yield Finding(
                rid,
                "pass",
                scope,
                "hypervisor running and IovSupportReasons does not report missing "
                "SLAT (Win32_Processor reads False under a running hypervisor)",
                ev,
            )
            return
        if build is not None and build >= BUILD_2016:
            ev["host.os_build"] = build
            yield Finding(rid, "pass", scope, "the Hyper-V hypervisor runs, and on Server 2016+ it requires SLAT", ev)
            return
        yield Finding(
            rid,
            "warn",
            scope,
            "SLAT cannot be read under a running hypervisor and IovSupport was not collected",
            ev,
            missing=["iov.supported"],
            collect=COLLECT_HOST,
        )
        return
    if snap.cpu.slat is False and hv is False:
        yield Finding(
            rid,
            "fail",
            scope,
            "the processor has no SLAT (no hypervisor masks it)",
            ev,
            fix=classify_reason("second level address translation").fix,
        )
        return
    if snap.cpu.slat is False:
        yield Finding(
            rid,
            "warn",
            scope,
            "Win32_Processor says no SLAT, but whether a hypervisor runs (which hides it) was not collected",
            ev,
            missing=["host.hypervisor_present"],
            collect=COLLECT_COMPUTERINFO,
        )
        return
    yield unknown(rid, scope, ["cpu.slat", "host.hypervisor_present"], collect=COLLECT_COMPUTERINFO)


@rule(
    "HV-NIC-SRIOV",
    "Physical NIC supports SR-IOV (SriovSupport)",
    platform="hyperv",
    severity="high",
    rationale="Get-NetAdapterSriov SriovSupport says why a NIC cannot offer VFs: slot (ACS), driver, bus "
    "numbers, IOMMU, BAR space or firmware (_OSC).",
    remediation=(
        "Per SriovSupport value: another slot (MissingAcs), the vendor's PF driver (MissingPfDriver), "
        "firmware settings or a BIOS update (NoBusResources, NoVfBarSpace, NoOscSupport, NoIoMmuSupport), or "
        "an SR-IOV NIC. Unknown values: `Get-NetAdapterSriov` to read more."
    ),
    impact="This port offers no VFs: VMs behind it stay on the virtual switch, whose packets land on a root CPU.",
)
def nic_sriov(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if not snap.nics:
        if snap.has("nics") and snap.read("Get-NetAdapterSriov") is not False:
            yield not_applicable(rid, host_scope(snap), "no physical NIC on this host")
        else:
            yield unknown(rid, host_scope(snap), ["nics"], collect=COLLECT_SRIOV)
        return
    bound = bound_nic_names(snap, policy)
    # Get-NetAdapterSriov lists only SR-IOV capable NICs: a NIC it leaves out is evidence only when it ran.
    collect_failed = any("sriov" in e.source.lower() for e in snap.errors) or snap.read("Get-NetAdapterSriov") is False
    for i, n in enumerate(snap.nics):
        ev: Ev = {f"nics[{i}].sriov_support": n.sriov_support, f"nics[{i}].description": n.description}
        if n.sriov_support is None:
            if n.name in bound and not collect_failed:
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    "not listed by Get-NetAdapterSriov: the NIC or its driver has no SR-IOV (or it is hidden)",
                    ev,
                    missing=[f"nics[{i}].sriov_support"],
                    fix=f"Get-NetAdapterSriov -Name {ps(n.name)} -IncludeHidden",
                )
            else:
                yield unknown(
                    rid,
                    _nic_scope(n),
                    [f"nics[{i}].sriov_support"],
                    collect=f"Get-NetAdapterSriov -Name {ps(n.name)} -IncludeHidden | Format-List *",
                )
            continue
        info = SRIOV_SUPPORT.get(n.sriov_support)
        if info is None:
            yield Finding(
                rid,
                "fail" if n.name in bound else "warn",
                _nic_scope(n),
                f"SriovSupport {n.sriov_support!r} (not a documented value)",
                ev,
                fix=f"Get-NetAdapterSriov -Name {ps(n.name)} | Format-List *",
            )
        elif info.ok:
            yield Finding(rid, "pass", _nic_scope(n), f"SriovSupport Supported ({n.description or n.name})", ev)
        else:
            yield Finding(
                rid,
                "fail" if n.name in bound else "warn",
                _nic_scope(n),
                f"SriovSupport {n.sriov_support}: {info.meaning}"
                + (
                    ""
                    if n.name in bound
                    else " (NIC not under an external switch in scope)"
                    if snap.has("switches")
                    else " (switches not collected: whether one uses this NIC is unknown)"
                ),
                ev,
                fix=info.fix.format(nic=ps(n.name)),
            )
    if (
        not any(n.sriov_support == "Supported" for n in snap.nics)
        and not collect_failed
        and any(n.sriov_support is not None for n in snap.nics)
    ):
        # A NIC Get-NetAdapterSriov lists is SR-IOV hardware: only NotSupported calls for another NIC.
        blocked = [n for n in snap.nics if n.sriov_support not in (None, "Supported", "NotSupported")]
        fixes = dict.fromkeys(
            SRIOV_SUPPORT[n.sriov_support].fix.format(nic=ps(n.name))
            for n in blocked
            if n.sriov_support in SRIOV_SUPPORT
        )
        yield Finding(
            rid,
            "fail",
            host_scope(snap),
            "no NIC on this host can offer VFs now: " + ", ".join(f"{n.name} {n.sriov_support}" for n in blocked)
            if blocked
            else "no NIC on this host supports SR-IOV",
            {"nics": {n.name: n.sriov_support for n in snap.nics}},
            fix=" ".join(fixes)
            if blocked
            else "Hardware: install an SR-IOV capable NIC (e.g. Intel X710/E810, I350, Mellanox ConnectX-4+).",
        )


@rule(
    "HV-NIC-ENABLED",
    "SR-IOV enabled on the NIC, with VFs",
    platform="hyperv",
    severity="high",
    rationale="A capable NIC offers VFs only when SR-IOV is enabled on it (Enable-NetAdapterSriov); NumVFs is "
    "how many VMs it can serve.",
    remediation="PowerShell: `Enable-NetAdapterSriov -Name <nic>`, `Set-NetAdapterSriov -Name <nic> -NumVFs N`.",
    impact=(
        "An IOV switch on this port gets no VFs to hand out: adapters asking for one fall back to the synthetic path."
    ),
)
def nic_enabled(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    capable = [(i, n) for i, n in enumerate(snap.nics) if n.sriov_support == "Supported"]
    if not capable:
        if not any(n.sriov_support is not None for n in snap.nics):
            yield unknown(rid, host_scope(snap), ["nics[].sriov_support"], collect=COLLECT_SRIOV)
            return
        yield not_applicable(rid, host_scope(snap), "no NIC reports SriovSupport Supported (see HV-NIC-SRIOV)")
        return
    bound = bound_nic_names(snap, policy)
    for i, n in capable:
        ev: Ev = {
            f"nics[{i}].sriov_enabled": n.sriov_enabled,
            f"nics[{i}].vfs_total": n.vfs_total,
            f"nics[{i}].vfs_allocated": n.vfs_allocated,
        }
        if n.sriov_enabled is None:
            yield unknown(
                rid, _nic_scope(n), [f"nics[{i}].sriov_enabled"], collect=f"Get-NetAdapterSriov -Name {ps(n.name)}"
            )
        elif not n.sriov_enabled:
            yield Finding(
                rid,
                "fail" if n.name in bound else "warn",
                _nic_scope(n),
                "SR-IOV is disabled on this NIC (enabling restarts the adapter: a brief link drop)",
                ev,
                fix=f"Enable-NetAdapterSriov -Name {ps(n.name)}",
            )
        elif n.vfs_total is None:
            yield Finding(
                rid,
                "warn",
                _nic_scope(n),
                "SR-IOV enabled; VF count (NumVFs) not collected",
                ev,
                missing=[f"nics[{i}].vfs_total"],
                collect=f"Get-NetAdapterSriov -Name {ps(n.name)} | Format-List NumVFs, NumAllocatedVFs",
            )
        elif n.vfs_total == 0:
            yield Finding(
                rid,
                "fail" if n.name in bound else "warn",
                _nic_scope(n),
                "SR-IOV enabled but NumVFs is 0",
                ev,
                fix=f"Set-NetAdapterSriov -Name {ps(n.name)} -NumVFs 8",
            )
        else:
            yield Finding(
                rid,
                "pass",
                _nic_scope(n),
                f"SR-IOV enabled, {n.vfs_total} VFs"
                + (f" ({n.vfs_allocated} allocated)" if n.vfs_allocated is not None else ""),
                ev,
            )
