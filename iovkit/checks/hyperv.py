"""Hyper-V rules (reference: hyperv.md §1, §2, §3, §6). Pure functions of the snapshot and the policy."""

from __future__ import annotations

import re
from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    Scope,
    host_scope,
    not_applicable,
    plan_command,
    ps,
    rule,
    unknown,
)
from iovkit.checks.reasons import SRIOV_SUPPORT, classify_reason
from iovkit.policy import Policy, adapters_in_scope
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


def _lbfo_fix(snap: HostSnapshot, sw: VSwitch, team: str) -> str:
    """By hand: the switch, then the team, then a SET switch with IOV over the team's members."""
    members = next((t.members for t in snap.teams if t.name == team), [])
    nics = ", ".join(ps(m) for m in members) or "<member NICs>"
    return (
        f"Remove-VMSwitch -Name {ps(sw.name)} -Force; Remove-NetLbfoTeam -Name {ps(team)} -Confirm:$false; "
        f"New-VMSwitch -Name {ps(sw.name)} -NetAdapterName {nics} -EnableEmbeddedTeaming $true -EnableIov $true"
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
    rid, scope, h = "HV-OS-EDITION", host_scope(snap), snap.host
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
    rid, scope = "HV-HOST-IOV", host_scope(snap)
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
    rid, scope = "HV-SLAT", host_scope(snap)
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
    rid = "HV-NIC-SRIOV"
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
                + ("" if n.name in bound else " (NIC not under an external switch in scope)"),
                ev,
                fix=info.fix.format(nic=ps(n.name)),
            )
    if (
        not any(n.sriov_support == "Supported" for n in snap.nics)
        and not collect_failed
        and any(n.sriov_support is not None for n in snap.nics)
    ):
        yield Finding(
            rid,
            "fail",
            host_scope(snap),
            "no NIC on this host supports SR-IOV",
            {"nics": {n.name: n.sriov_support for n in snap.nics}},
            fix="Hardware: install an SR-IOV capable NIC (e.g. Intel X710/E810, I350, Mellanox ConnectX-4+).",
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
    rid = "HV-NIC-ENABLED"
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


@rule(
    "HV-TEAM",
    "No LBFO team under the switch (SET is fine on 2016+)",
    platform="hyperv",
    severity="high",
    rationale="SR-IOV traffic bypasses the host stack, so an LBFO team cannot carry it; Switch Embedded "
    "Teaming (Server 2016+) is compatible with SR-IOV.",
    remediation="By hand, from the console: remove the switch and the LBFO team, then `New-VMSwitch ... "
    "-EnableEmbeddedTeaming $true -EnableIov $true` over the members. SET needs Windows Server 2016 or newer.",
    impact="A switch on an LBFO team cannot pass VFs: every VM on it stays on the synthetic path.",
)
def team(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-TEAM"
    switches = external_switches(snap, policy)
    if not switches:
        yield _no_switch(snap, rid)
        return
    for i, sw in indexed(snap.switches, switches):
        ev: Ev = {
            f"switches[{i}].net_adapters": sw.net_adapters,
            f"switches[{i}].embedded_teaming": sw.embedded_teaming,
        }
        lbfo = snap.lbfo_team(sw)
        if lbfo:
            ev["teams"] = [t.name for t in snap.teams if t.kind == "lbfo"]
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                f"switch is bound to LBFO team {lbfo!r}: SR-IOV is not "
                "supported on LBFO; rebuild it as a SET switch over the team's members (iovkit plan does not "
                "dissolve a team: do it by hand, from the console, then plan the rest)",
                ev,
                fix=_lbfo_fix(snap, sw, lbfo),
            )
        elif _set_team(snap, sw):
            build = _build(snap)
            ev["host.os_build"] = build
            if build is None:
                yield unknown(
                    rid,
                    _sw_scope(sw),
                    ["host.os_version"],
                    "SET switch; OS build not collected (SET with SR-IOV needs Server 2016, build 14393, or newer)",
                    collect=COLLECT_OS,
                )
            elif build >= BUILD_2016:
                yield Finding(rid, "pass", _sw_scope(sw), f"Switch Embedded Teaming on build {build}", ev)
            else:
                yield Finding(
                    rid,
                    "fail",
                    _sw_scope(sw),
                    f"SET reported on build {build} (< 14393)",
                    ev,
                    fix="Upgrade the host to Windows Server 2016 or newer.",
                )
        elif not sw.net_adapters and not sw.net_adapter_names:
            yield unknown(
                rid,
                _sw_scope(sw),
                [f"switches[{i}].net_adapters"],
                collect=f"Get-VMSwitch -Name {ps(sw.name)} | Format-List Name, NetAdapterInterfaceDescriptions",
            )
        else:
            yield Finding(rid, "pass", _sw_scope(sw), "no team under the switch", ev)


@rule(
    "HV-SWITCH-IOV",
    "External switch created in IOV mode",
    platform="hyperv",
    severity="high",
    rationale="IOV can only be chosen when a switch is created; a switch without it must be rebuilt.",
    remediation=(
        "Recreate the switch with `-EnableIov $true`: `iovkit plan` (IOV cannot be turned on later) once the VM "
        "adapters are in the input, else the commands by hand; an LBFO switch first loses its team (HV-TEAM). With "
        "no external switch at all: the `New-VMSwitch ... -EnableIov $true` command."
    ),
    impact=(
        "A switch created without IOV never gives a VF (it cannot be turned on later): its VMs stay on the "
        "synthetic path."
    ),
)
def switch_iov(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-SWITCH-IOV"
    switches = external_switches(snap, policy)
    if not switches:
        undecided = [s.name for s in snap.switches if snap.is_external(s) is None]
        failed = any(e.source == "Get-VMSwitch" for e in snap.errors)
        if not snap.has("switches") or failed:
            yield unknown(rid, host_scope(snap), ["switches"], collect=COLLECT_SWITCH)
        elif undecided:
            yield unknown(
                rid,
                host_scope(snap),
                [f"switches[{snap.switches.index(s)}].switch_type" for s in snap.switches if s.name in undecided],
                f"switch type of {', '.join(map(repr, undecided))} not in the input",
                collect="Get-VMSwitch | Format-List Name, SwitchType, NetAdapterInterfaceDescriptions, IovEnabled",
            )
        else:
            nic = next((n.name for n in snap.nics if n.sriov_support == "Supported"), None)
            yield Finding(
                rid,
                "fail",
                host_scope(snap),
                "no external virtual switch" + (" named by the policy" if policy and policy.switches else ""),
                {"switches": [s.name for s in snap.switches]},
                fix=f"New-VMSwitch -Name 'SRIOV' -NetAdapterName {ps(nic or '<SR-IOV NIC>')} -EnableIov $true "
                "-AllowManagementOS $false",
            )
        return
    for i, sw in indexed(snap.switches, switches):
        ev: Ev = {
            f"switches[{i}].iov_enabled": sw.iov_enabled,
            f"switches[{i}].iov_support": sw.iov_support,
            f"switches[{i}].vf_count": sw.vf_count,
        }
        if sw.iov_enabled is None:
            yield unknown(
                rid,
                _sw_scope(sw),
                [f"switches[{i}].iov_enabled"],
                collect=f"Get-VMSwitch -Name {ps(sw.name)} | Format-List *iov*",
            )
        elif not sw.iov_enabled:
            members = snap.switch_nics(sw)
            by = "-NetAdapterName"
            nics = ", ".join(ps(n.name) for n in members)
            if not nics and sw.net_adapters:  # the input names the NIC only by its description
                by, nics = "-NetAdapterInterfaceDescription", ", ".join(ps(d) for d in sw.net_adapters)
            nics = nics or "<nic>"
            if len(members) > 1:  # an LBFO or SET switch: rebuilt as SET, which works with SR-IOV
                nics += " -EnableEmbeddedTeaming $true"
            lbfo = snap.lbfo_team(sw)
            by_hand = (
                f"Remove-VMSwitch -Name {ps(sw.name)} -Force; "
                f"New-VMSwitch -Name {ps(sw.name)} {by} {nics} -EnableIov $true"
            )
            if lbfo:  # iovkit plan does not dissolve a team (HV-TEAM)
                msg, fix = (
                    "it must be recreated as a SET switch, after the LBFO team is removed",
                    _lbfo_fix(snap, sw, lbfo),
                )
            elif not snap.has("vm_adapters") or sw.allow_management_os is None:
                need, cmd = (
                    ("the VM adapters are", COLLECT_ADAPTERS)
                    if not snap.has("vm_adapters")
                    else ("AllowManagementOS is", COLLECT_SWITCH)
                )
                msg = (
                    f"it must be recreated; `iovkit plan` builds the journaled switch-over once {need} in the "
                    f"input (`{cmd}`); by hand, from the console: {by_hand}"
                )
                fix = by_hand
            else:
                msg = f"it must be recreated (`iovkit plan` builds the journaled switch-over; by hand: {by_hand})"
                fix = plan_command(snap)
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                "switch is not in IOV mode; IOV can only be chosen when a switch is created, so " + msg,
                ev,
                fix=fix,
            )
        elif sw.iov_support is False:
            ev[f"switches[{i}].iov_support_reasons"] = sw.iov_support_reasons
            cls = [classify_reason(r) for r in sw.iov_support_reasons or []]
            text = "; ".join(sw.iov_support_reasons or []) or (
                "reasons not in the input" if sw.iov_support_reasons is None else "no reason given"
            )
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                f"IovEnabled but IovSupport False: {text}",
                ev,
                fix=cls[0].fix if cls else "Get-VMSwitch | Format-List *iov*",
            )
        elif sw.vf_count == 0:
            yield Finding(
                rid,
                "warn",
                _sw_scope(sw),
                "IOV switch offers 0 VFs (SR-IOV off on its NIC?)",
                ev,
                fix="Get-NetAdapterSriov",
            )
        else:
            yield Finding(
                rid,
                "pass",
                _sw_scope(sw),
                "IovEnabled True" + (f", {sw.vf_count} VFs" if sw.vf_count is not None else ""),
                ev,
            )


@rule(
    "HV-VNIC-WEIGHT",
    "Adapters meant for SR-IOV have IovWeight > 0",
    platform="hyperv",
    severity="high",
    rationale="IovWeight 0 turns SR-IOV off for a VM adapter; 1..100 asks for a VF.",
    remediation="PowerShell: `Set-VMNetworkAdapter -VMName <vm> -Name <adapter> -IovWeight 100`.",
    impact="An adapter with IovWeight 0 never asks for a VF: its traffic stays on the virtual switch.",
)
def vnic_weight(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-VNIC-WEIGHT"
    adapters = adapters_in_scope(snap, policy)
    if not adapters:
        yield _no_adapter(snap, policy, rid, "no VM adapter in scope (policy, or none on an external switch)")
        return
    for a in adapters:
        i = _idx(snap, a)
        ev: Ev = {f"vm_adapters[{i}].iov_weight": a.iov_weight, f"vm_adapters[{i}].switch_name": a.switch_name}
        if a.iov_weight is None:
            yield unknown(rid, _a_scope(a), [f"vm_adapters[{i}].iov_weight"], collect=_get_adapter(a, "*Iov*"))
        elif a.iov_weight == 0:
            sel = policy.selector_for(a) if policy else None
            weight = sel.iov_weight if sel else 100
            yield Finding(
                rid,
                "fail",
                _a_scope(a),
                "IovWeight 0: SR-IOV is off for this adapter",
                ev,
                fix=_set_adapter(a, f"-IovWeight {weight}"),
            )
        else:
            yield Finding(rid, "pass", _a_scope(a), f"IovWeight {a.iov_weight}", ev)


def _wanting(snap: HostSnapshot, policy: Policy | None, sw: VSwitch) -> list[VmAdapter]:
    """Adapters on this switch that ask (or are meant to ask) for a VF, in policy priority order."""
    out = [a for a in adapters_in_scope(snap, policy) if a.switch_name == sw.name]
    out += [a for a in snap.vm_adapters if a.switch_name == sw.name and (a.iov_weight or 0) > 0 and a not in out]
    return out


@rule(
    "HV-VF-CAPACITY",
    "Enough VFs on the switch for the adapters asking",
    platform="hyperv",
    severity="medium",
    rationale="Each SR-IOV adapter takes one VF; a port offers a fixed number (an I350 port gave 6). Adapters "
    "beyond that stay on the switch.",
    remediation="`iovkit plan`: a second port and IOV switch for the rest, or VMQ/vRSS for them.",
    impact="Adapters beyond the port's VFs get none and silently stay on the synthetic path.",
)
def vf_capacity(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-VF-CAPACITY"
    switches = external_switches(snap, policy)
    if not switches:
        yield _no_switch(snap, rid)
        return
    for i, sw in indexed(snap.switches, switches):
        want = _wanting(snap, policy, sw)
        if not want:
            if not snap.has("vm_adapters"):
                yield unknown(rid, _sw_scope(sw), ["vm_adapters"], collect=COLLECT_ADAPTERS)
            else:
                yield not_applicable(rid, _sw_scope(sw), "no adapter on this switch asks for a VF")
            continue
        ev: Ev = {"adapters_asking": len(want)}
        if sw.iov_enabled and sw.vf_count is not None:
            cap, src = sw.vf_count, f"switches[{i}].vf_count"
            ev[src] = cap
        else:
            nics = snap.switch_nics(sw)
            totals = [n.vfs_total for n in nics]
            if not nics or any(t is None for t in totals):
                yield unknown(
                    rid,
                    _sw_scope(sw),
                    [f"switches[{i}].vf_count"]
                    + [f"nics[{snap.nics.index(n)}].vfs_total" for n in nics if n.vfs_total is None],
                    collect=COLLECT_SRIOV,
                )
                continue
            cap, src = sum(t or 0 for t in totals), "NumVFs of the switch's NICs"
            ev.update({f"nics[{snap.nics.index(n)}].vfs_total": n.vfs_total for n in nics})
        if cap == 0:
            yield not_applicable(
                rid,
                _sw_scope(sw),
                f"{src} is 0: the switch offers no VF at all (HV-SWITCH-IOV, HV-NIC-ENABLED say why)",
            )
            continue
        if len(want) <= cap:
            yield Finding(
                rid, "pass", _sw_scope(sw), f"{len(want)} adapter(s) ask for VFs; {cap} available ({src})", ev
            )
        else:
            left = want[cap:]
            names = ", ".join(a.key for a in left)
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                f"{len(want)} adapter(s) ask for VFs but {src} is {cap}: "
                f"{names} will stay on the switch (second port/switch or VMQ/vRSS for them)",
                ev,
                fix=plan_command(snap),
                affects=[a.key for a in left],
            )


_STATUS_CAUSES: dict[str, str] = {
    "IovGuestDriversNeeded": "guest driver missing",
    "NoIommu": "host has no usable IOMMU",
    "NoIovSupportInNic": "the NIC has no SR-IOV",
    "SwitchNotInIovMode": "switch not in IOV mode",
    "IovBlockedByPolicy": "SR-IOV blocked by policy",
    "IovNoAvailResources": "no free VF",
}


@rule(
    "HV-VF-ACTIVE",
    "Adapters asking for a VF have an active VF data path",
    platform="hyperv",
    severity="high",
    rationale="IovWeight > 0 only asks; traffic leaves the switch only when VFDataPathActive is True.",
    remediation=(
        "The cause the facts point to: rebuild the switch (`iovkit plan`), free a VF, enable SR-IOV on the "
        "NIC, start the VM, or install the VF driver in the guest and check there (GUEST-VF)."
    ),
    impact=(
        "The adapter asks for a VF but its traffic still crosses the virtual switch: the bottleneck is still there."
    ),
)
def vf_active(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-VF-ACTIVE"
    asking = [a for a in snap.vm_adapters if not a.is_management_os and (a.iov_weight or 0) > 0]
    if not asking:
        if not snap.has("vm_adapters"):
            yield unknown(rid, host_scope(snap), ["vm_adapters"], collect=COLLECT_ADAPTERS)
        elif any(a.iov_weight is None for a in snap.vm_adapters if not a.is_management_os):
            yield unknown(
                rid,
                host_scope(snap),
                ["vm_adapters[].iov_weight"],
                collect="Get-VMNetworkAdapter -VMName * | Format-List VMName, Name, IovWeight, VFDataPathActive",
            )
        else:
            yield not_applicable(rid, host_scope(snap), "no VM adapter has IovWeight > 0 (see HV-VNIC-WEIGHT)")
        return
    for a in asking:
        i = _idx(snap, a)
        ev: Ev = {
            f"vm_adapters[{i}].iov_weight": a.iov_weight,
            f"vm_adapters[{i}].vf_data_path_active": a.vf_data_path_active,
            f"vm_adapters[{i}].iov_usage": a.iov_usage,
        }
        if a.vf_data_path_active is None:
            yield unknown(
                rid,
                _a_scope(a),
                [f"vm_adapters[{i}].vf_data_path_active"],
                collect=_get_adapter(a, "VFDataPathActive, Iov*"),
            )
            continue
        if a.vf_data_path_active:
            yield Finding(rid, "pass", _a_scope(a), "VF data path active", ev)
            continue
        cause, fix = _vf_cause(snap, a, ev)
        yield Finding(rid, "fail", _a_scope(a), f"no VF data path: {cause}", ev, fix=fix)


def _vf_cause(snap: HostSnapshot, a: VmAdapter, ev: Ev) -> tuple[str, str]:
    sw = snap.switch(a.switch_name) if a.switch_name else None
    vm = snap.vm(a.vm_name) if a.vm_name else None
    statuses = (
        set(a.status or []) | set(a.status_description or []) | set((vm.operational_status if vm else None) or [])
    )
    ev["switch_name"] = a.switch_name
    if sw is None and a.switch_name:  # connected to a switch the input does not show
        return f"switch {a.switch_name!r} is not in the input, so the cause cannot be told", (
            f"Get-VMSwitch -Name {ps(a.switch_name)} | Format-List *"
        )
    if sw is None:
        return "adapter is not connected to a switch", (
            f"Connect-VMNetworkAdapter -VMName {ps(a.vm_name or '')} -Name {ps(a.name)} -SwitchName <IOV switch>"
        )
    ev["switch.iov_enabled"] = sw.iov_enabled
    if sw.iov_enabled is False or "SwitchNotInIovMode" in statuses:
        return f"switch {sw.name!r} is not in IOV mode", plan_command(snap)
    if snap.iov.supported is False:
        cls = [classify_reason(r) for r in snap.iov.reasons or []]
        return "the host cannot do SR-IOV (IovSupport False, see HV-HOST-IOV)", (
            cls[0].fix if cls else "Get-VMHost | Format-List IovSupport, IovSupportReasons"
        )
    if sw.iov_support is False:
        ev["switch.iov_support_reasons"] = sw.iov_support_reasons
        cls = [classify_reason(r) for r in sw.iov_support_reasons or []]
        return f"switch {sw.name!r} reports IovSupport False", (
            cls[0].fix if cls else "Get-VMSwitch | Format-List *iov*"
        )
    if sw.vf_count == 0:
        nic = next(iter(snap.switch_nics(sw)), None)
        ev["switch.vf_count"] = 0
        return f"switch {sw.name!r} offers no VFs (SR-IOV off on its NIC?)", (
            f"Enable-NetAdapterSriov -Name {ps(nic.name)}" if nic else "Get-NetAdapterSriov"
        )
    if vm is not None:
        ev["vm.state"] = vm.state
        if vm.state and vm.state.lower() not in ("running",):
            return f"VM is {vm.state}", f"Start-VM -Name {ps(vm.name)}"
    ev["status"] = sorted(statuses)
    for st, cause in _STATUS_CAUSES.items():
        if st in statuses and st != "IovGuestDriversNeeded" and st != "SwitchNotInIovMode":
            if st == "IovNoAvailResources":
                return cause + " (VM status IovNoAvailResources)", plan_command(snap)
            return f"{cause} (VM status {st})", "Get-VMHost | Format-List IovSupport, IovSupportReasons"
    ev["switch.vf_count"], ev["switch.vfs_in_use"] = sw.vf_count, sw.vfs_in_use
    if not a.iov_usage and sw.vf_count is not None and sw.vfs_in_use is not None and sw.vfs_in_use >= sw.vf_count:
        return (f"no free VF on {sw.name!r} ({sw.vfs_in_use} of {sw.vf_count} in use)", plan_command(snap))
    if "IovGuestDriversNeeded" in statuses or (a.iov_usage or 0) > 0:
        why = "VM status IovGuestDriversNeeded" if "IovGuestDriversNeeded" in statuses else "a VF is allocated"
        return (
            f"guest driver missing ({why}, but the guest does not use it)",
            f"Install the NIC vendor's VF driver in VM {a.vm_name!r}, then run `iovkit check` inside it (GUEST-VF)",
        )
    return (
        "cause not evident from the facts (no VF allocated, switch has free VFs)",
        f"Get-VMNetworkAdapter -VMName {ps(a.vm_name or '')} -Name {ps(a.name)} | Format-List *Iov*, "
        "VFDataPathActive, Status*",
    )


@rule(
    "HV-MGMT-OS",
    "Rebuilding the switch does not cut off the management OS",
    platform="hyperv",
    severity="medium",
    rationale="A switch that carries the management OS drops remote access while it is "
    "rebuilt; run the switch-over from a console.",
    remediation=(
        "Procedure: run `iovkit apply plan.json --console --yes` at the server console (or iLO/iDRAC), not "
        "over the network through that switch."
    ),
    impact=(
        "Rebuilding the switch drops the management OS's address on it: a remote session through it is cut mid-change."
    ),
)
def mgmt_os(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-MGMT-OS"
    switches = external_switches(snap, policy)
    if not switches:
        yield _no_switch(snap, rid)
        return
    for i, sw in indexed(snap.switches, switches):
        mgmt = [a.name for a in snap.vm_adapters if a.is_management_os and a.switch_name == sw.name]
        ev: Ev = {f"switches[{i}].allow_management_os": sw.allow_management_os, "management_os_adapters": mgmt}
        rebuild = _needs_rebuild(snap, sw)
        if rebuild is None:
            yield unknown(
                rid,
                _sw_scope(sw),
                [f"switches[{i}].iov_enabled"],
                collect=f"Get-VMSwitch -Name {ps(sw.name)} | Format-List *iov*",
            )
        elif not rebuild:
            yield Finding(rid, "pass", _sw_scope(sw), "switch needs no rebuild", ev)
        elif sw.allow_management_os or mgmt:
            yield Finding(
                rid,
                "warn",
                _sw_scope(sw),
                "the switch to rebuild carries the management OS"
                + (f" (adapter {', '.join(map(repr, mgmt))})" if mgmt else "")
                + ": remote access through it drops during the rebuild; use a console (BMC/iLO/iDRAC)",
                ev,
                fix="iovkit apply plan.json --console --yes   # run from the server console",
            )
        elif sw.allow_management_os is None:
            yield unknown(
                rid,
                _sw_scope(sw),
                [f"switches[{i}].allow_management_os"],
                collect=f"Get-VMSwitch -Name {ps(sw.name)} | Format-List AllowManagementOS",
            )
        else:
            yield Finding(rid, "pass", _sw_scope(sw), "switch to rebuild does not carry the management OS", ev)


TEN_GIG = 10_000_000_000
SET_BELOW_TEN_GIG = (
    "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Services\\VMSMP\\Parameters "
    "-Name BelowTenGigVmqEnabled -Value 1 -Type DWord"
)


def _speed(bps: int) -> str:
    return f"{bps / 1e9:g} Gbps" if bps >= 1_000_000_000 else f"{bps / 1e6:g} Mbps"


def _vm_queues(snap: HostSnapshot, nic: PhysicalNic, staying: list[VmAdapter]) -> list[str]:
    """Get-NetAdapterVmqQueue rows of this NIC that serve an adapter staying on the switch (a queue other than
    the default queue 0, matched by MAC, else by VmFriendlyName: a VM's name, or the host's for its vNICs)."""
    macs = {a.mac for a in staying if a.mac}
    names = {a.vm_name for a in staying if a.vm_name}
    if any(a.is_management_os for a in staying) and snap.host.name:
        names.add(snap.host.name)
    out = []
    for q in snap.vmq_queues:
        if q.nic != nic.name or q.queue_id == 0:
            continue
        if (q.mac and q.mac in macs) or (q.vm and q.vm in names):
            out.append(f"queue {q.queue_id} -> {q.vm or q.mac} on processor {q.processor or '?'}")
    return out


def _below_ten_gig(snap: HostSnapshot, nic: PhysicalNic) -> str:
    value = snap.vmq.below_ten_gig_vmq_enabled
    state = {0: "0, the system default", 2: "2, explicitly off"}.get(value or 0, str(value))
    return (
        f"its link is {_speed(nic.link_speed_bps or 0)} and the Hyper-V switch uses VMQ below 10 Gbps only when "
        f"BelowTenGigVmqEnabled is 1 (here {state}), whatever Get-NetAdapterVmq says. To use VMQ anyway: "
        f"{SET_BELOW_TEN_GIG}, then restart the host; on some 1 GbE drivers VMQ made things slower, so measure "
        "(iovkit bench) before and after. SR-IOV takes the relay VMs off the switch instead"
    )


@rule(
    "HV-VMQ",
    "VMQ really in use for traffic that stays on the switch",
    platform="hyperv",
    severity="low",
    rationale="Without VMQ every receive interrupt of a port lands on one core that does all switching. "
    "Get-NetAdapterVmq's Enabled is not proof: below 10 Gbps the switch does not use VMQ unless "
    "BelowTenGigVmqEnabled is set; Get-NetAdapterVmqQueue shows whether VM adapters got queues.",
    remediation="PowerShell: `Enable-NetAdapterVmq -Name <nic>`, `Set-VMNetworkAdapter ... -VmqWeight 100`; below "
    "10 Gbps the VMSMP registry value `BelowTenGigVmqEnabled` = 1 and a restart.",
    impact="Without VMQ the traffic that stays on the switch is handled on one core: that core saturates first.",
)
def vmq(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = "HV-VMQ"
    switches = external_switches(snap, policy)
    if not switches:
        yield _no_switch(snap, rid)
        return
    for sw in switches:
        on_switch = [a for a in snap.vm_adapters if a.switch_name == sw.name]
        staying = [a for a in on_switch if a.vf_data_path_active is not True]
        if not snap.has("vm_adapters"):
            yield unknown(rid, _sw_scope(sw), ["vm_adapters"], collect=COLLECT_ADAPTERS)
            continue
        if not on_switch:
            yield not_applicable(rid, _sw_scope(sw), "the input lists no adapter on this switch")
            continue
        if not staying:
            yield not_applicable(rid, _sw_scope(sw), f"all {len(on_switch)} adapter(s) listed on this switch use a VF")
            continue
        nics = snap.switch_nics(sw)
        if not nics:
            yield unknown(rid, _sw_scope(sw), ["nics"], collect=COLLECT_NETADAPTER)
        for n in nics:
            j = snap.nics.index(n)
            ev: Ev = {
                f"nics[{j}].vmq_enabled": n.vmq_enabled,
                f"nics[{j}].link_speed_bps": n.link_speed_bps,
                "vmq.below_ten_gig_vmq_enabled": snap.vmq.below_ten_gig_vmq_enabled,
                "adapters_on_switch": len(staying),
            }
            slow = n.link_speed_bps is not None and n.link_speed_bps < TEN_GIG
            if n.vmq_enabled is None:
                yield unknown(
                    rid,
                    _nic_scope(n),
                    [f"nics[{j}].vmq_enabled"],
                    collect=f"Get-NetAdapterVmq -Name {ps(n.name)} | Format-List *",
                )
            elif not n.vmq_enabled:
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    f"VMQ off on a NIC of {sw.name!r} while {len(staying)} adapter(s) stay on the switch",
                    ev,
                    fix=f"Enable-NetAdapterVmq -Name {ps(n.name)}",
                )
            elif snap.has("vmq_queues"):
                used = _vm_queues(snap, n, staying)
                ev["vmq_queues"] = used
                if used:
                    yield Finding(
                        rid, "pass", _nic_scope(n), f"VMQ in use: {len(used)} queue(s) serve adapters on the switch", ev
                    )
                else:
                    why = _below_ten_gig(snap, n) if slow else "check the NIC's VMQ processors and queue count"
                    yield Finding(
                        rid,
                        "warn",
                        _nic_scope(n),
                        "VMQ is enabled but not in use: Get-NetAdapterVmqQueue shows no queue for an adapter on the "
                        "switch; " + why,
                        ev,
                        fix=SET_BELOW_TEN_GIG if slow else f"Get-NetAdapterVmq -Name {ps(n.name)} | Format-List *",
                    )
            elif slow and snap.vmq.below_ten_gig_vmq_enabled in (0, 2):
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    "VMQ is enabled but not in use: " + _below_ten_gig(snap, n),
                    ev,
                    fix=SET_BELOW_TEN_GIG,
                )
            elif not slow and n.link_speed_bps is not None and snap.vmq.ten_gig_vmq_enabled == 2:
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    "VMQ is enabled on the NIC but TenGigVmqEnabled is 2 (explicitly off): the switch does not use it",
                    ev,
                    fix=SET_BELOW_TEN_GIG.replace("BelowTenGigVmqEnabled", "TenGigVmqEnabled"),
                )
            else:
                missing = ["vmq_queues"] + ([f"nics[{j}].link_speed_bps"] if n.link_speed_bps is None else [])
                if slow:
                    missing.append("vmq.below_ten_gig_vmq_enabled")
                yield unknown(
                    rid,
                    _nic_scope(n),
                    missing,
                    "VMQ is enabled on the NIC; whether the switch gives VM adapters queues is not in the input",
                    collect=f"Get-NetAdapterVmqQueue -Name {ps(n.name)} | Format-List *",
                )
        for a in staying:
            if a.vmq_weight == 0:
                i = _idx(snap, a)
                yield Finding(
                    rid,
                    "warn",
                    _a_scope(a),
                    "VMQWeight 0: VMQ off for an adapter on the switch",
                    {f"vm_adapters[{i}].vmq_weight": 0},
                    fix=_set_adapter(a, "-VmqWeight 100"),
                )
