"""Hyper-V VM adapter rules: IovWeight (HV-VNIC-WEIGHT), VF capacity (HV-VF-CAPACITY), the VF data path and its
cause (HV-VF-ACTIVE), and the management OS on a switch to rebuild (HV-MGMT-OS).

Reference: hyperv.md §1.4, §3.3, §6. Shared helpers live in checks.hyperv."""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    current_rule,
    host_scope,
    not_applicable,
    plan_command,
    ps,
    rule,
    unknown,
)
from iovkit.checks.hyperv import (
    COLLECT_ADAPTERS,
    COLLECT_SRIOV,
    _a_scope,
    _get_adapter,
    _idx,
    _needs_rebuild,
    _no_adapter,
    _no_switch,
    _set_adapter,
    _sw_scope,
    external_switches,
    indexed,
)
from iovkit.checks.reasons import classify_reason
from iovkit.policy import Policy, adapters_in_scope
from iovkit.snapshot import HostSnapshot, VmAdapter, VSwitch


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
    rid = current_rule()
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
    rid = current_rule()
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
    rid = current_rule()
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
    rid = current_rule()
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
