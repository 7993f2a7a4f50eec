"""Hyper-V VF allocation: which adapters get a VF on which port, what does not fit, and what to do about it.

Pure function of a snapshot and a policy. Capacity comes from the host (the IOV switch's
IovVirtualFunctionCount, else the NIC's NumVFs); the NIC catalog is only a fallback and marked an estimate.
Adapters are served in policy priority order, so the first N get the port's N VFs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from iovkit.plan import catalog
from iovkit.plan.model import Allocation, Alternative, PlanParts, PortCapacity, SwitchSpec, Unfit
from iovkit.policy import Policy, adapters_in_scope
from iovkit.snapshot import HostSnapshot, PhysicalNic, VmAdapter, VSwitch


@dataclass
class HypervAllocation(PlanParts):
    requires_console: bool = False
    rebuild: list[tuple[SwitchSpec, SwitchSpec]] = field(default_factory=list)  # (old, new)
    create: list[SwitchSpec] = field(default_factory=list)  # second switches
    enable_nics: list[tuple[PhysicalNic, int | None]] = field(default_factory=list)
    moves: dict[tuple[str, str], str] = field(default_factory=dict)  # (vm, adapter) -> new switch


def port_capacity(nic: PhysicalNic, switch: str | None) -> PortCapacity | None:
    """VFs a port can give: the host's NumVFs, else the catalog (estimate); None when unknown."""
    if nic.vfs_total:
        return PortCapacity(nic=nic.name, switch=switch, vfs=nic.vfs_total, source="NumVFs")
    model = catalog.lookup(nic.description)
    if model is None:
        return None
    return PortCapacity(
        nic=nic.name, switch=switch, vfs=model.vfs_per_port, estimate=True, source=f"catalog:{model.model}"
    )


def _nics_by_description(snap: HostSnapshot, sw: VSwitch) -> tuple[list[PhysicalNic], str | None]:
    """A switch whose NICs are known only by the description it recorded: usable when Get-NetAdapter was not in
    the input (the plan then binds with -NetAdapterInterfaceDescription); a blocker when the NICs are known but
    none matches safely (a stale `#2` after a driver reinstall, field-notes)."""
    descs = [d for d in sw.net_adapters or [] if "multiplexor" not in d.lower()]
    if not descs:
        return [], None
    if snap.has("nics") and snap.read("Get-NetAdapter") is not False and snap.nics:
        return [], (
            f"switch {sw.name!r} names its NIC {', '.join(map(repr, descs))}, which no NIC of the input matches "
            "safely (a description left from before a driver reinstall?): paste `Get-NetAdapter | Format-List "
            "Name, InterfaceDescription, InterfaceGuid` and `Get-VMSwitch | Format-List Name, "
            "NetAdapterInterfaceGuid`, then plan again"
        )
    return [PhysicalNic(name=d, description=d) for d in descs], None


def switch_spec(snap: HostSnapshot, sw: VSwitch) -> SwitchSpec:
    nics = snap.switch_nics(sw)
    names = [n.name for n in nics] or list(sw.net_adapter_names)
    by_description = False
    if not names and sw.net_adapters:
        names, by_description = list(sw.net_adapters), True
    return SwitchSpec(
        name=sw.name,
        nics=names,
        by_description=by_description,
        iov=bool(sw.iov_enabled),
        allow_management_os=bool(sw.allow_management_os),
        embedded_teaming=bool(sw.embedded_teaming),
    )


def _allocation(
    snap: HostSnapshot, a: VmAdapter, switch: str, nic_name: str, weight: int, qp: int | None, prio: int
) -> Allocation:
    """One adapter's VF; queue pairs from the policy, else min(the VM's vCPUs, the NIC's per-VF limit)."""
    vm = snap.vm(a.vm_name) if a.vm_name else None
    vcpus = vm.vcpus if vm else None
    if qp is not None:
        why = "policy"
    else:
        nic = snap.nic(nic_name)
        qp, why = catalog.default_queue_pairs(vcpus, nic.description if nic else nic_name)
    return Allocation(
        vm=a.vm_name or "",
        adapter=a.name,
        switch=switch,
        nic=nic_name,
        iov_weight=weight,
        queue_pairs=qp,
        priority=prio,
        vcpus=vcpus,
        queue_pairs_why=why,
    )


def allocate_hyperv(snap: HostSnapshot, policy: Policy | None) -> HypervAllocation:
    res = HypervAllocation()
    pol = policy or Policy()
    host = snap.host.name or "the host"
    if snap.iov.supported is False:
        reasons = "; ".join(snap.iov.reasons or []) or "no reason given"
        res.blockers.append(f"host IovSupport is False ({reasons})")
    adapters = adapters_in_scope(snap, policy)
    if not adapters and not snap.has("vm_adapters"):
        res.warnings.append(
            "the VM adapters are not in the input (paste `Get-VMNetworkAdapter -All | Format-List *`): no VF is "
            "allocated"
        )
    elif not adapters:
        res.warnings.append("no VM adapter is in scope (check the policy's adapters and switches)")
    priority = {a.identity: i + 1 for i, a in enumerate(adapters)}

    def selector(a: VmAdapter) -> tuple[int, int | None]:
        sel = pol.selector_for(a) if policy is not None else None
        return (sel.iov_weight, sel.queue_pairs) if sel else (100, None)

    targets: list[str] = list(pol.switches)
    for a in adapters:
        if a.switch_name is None:
            res.unfit.append(Unfit(vm=a.vm_name or "", adapter=a.name, reason="not connected to a switch"))
        elif a.switch_name not in targets:
            targets.append(a.switch_name)
    if not adapters:
        # HV-SWITCH-IOV's fix: an external switch without IOV is recreated with IOV, VM adapters or not.
        targets += [s.name for s in snap.external_switches() if s.iov_enabled is False and s.name not in targets]

    overflow: list[VmAdapter] = []
    enable_seen: set[str] = set()
    for name in targets:
        sw = snap.switch(name)
        if sw is None:
            if not snap.has("switches"):
                res.blockers.append(
                    f"switch {name!r} is not in the input: paste `Get-VMSwitch | Format-List *` (or run the "
                    "collector script) and plan again"
                )
            else:
                res.blockers.append(f"switch {name!r} named by the policy is not on {host}")
            continue
        nics = snap.switch_nics(sw)
        if not nics and snap.is_external(sw):
            nics, why = _nics_by_description(snap, sw)
            if why:
                res.blockers.append(why)
                continue
        if snap.is_external(sw) is False or not nics:
            res.blockers.append(f"switch {name!r} is not bound to a physical NIC (type {sw.switch_type})")
            continue
        if not sw.iov_enabled and not snap.has("vm_adapters"):
            res.blockers.append(
                f"switch {name!r} is rebuilt, but the VM adapters on it are not in the input, so the plan cannot "
                "disconnect and reconnect them: paste `Get-VMNetworkAdapter -All | Format-List *` and plan again"
            )
            continue
        if not sw.iov_enabled and sw.allow_management_os is None:
            res.blockers.append(
                f"switch {name!r} is rebuilt, but whether it carries the management OS is not in the input: "
                f"paste `Get-VMSwitch -Name {name!r} | Format-List AllowManagementOS` and plan again"
            )
            continue
        team = snap.lbfo_team(sw)
        if team:
            res.blockers.append(
                f"switch {name!r} is bound to LBFO team {team!r}, which blocks SR-IOV: recreate it as a SET "
                "switch (New-VMSwitch -EnableEmbeddedTeaming $true) first"
            )
            continue
        caps: list[PortCapacity] = []
        for nic in nics:
            if nic.sriov_support not in (None, "Supported"):
                res.blockers.append(f"NIC {nic.name!r} under switch {name!r} has SriovSupport {nic.sriov_support}")
                continue
            cap = port_capacity(nic, name)
            if cap is None:
                res.blockers.append(
                    f"VF count of NIC {nic.name!r} ({nic.description}) is unknown and not in the "
                    "catalog; enable SR-IOV on it and re-collect"
                )
                continue
            if cap.vfs == 0:
                res.blockers.append(f"NIC {nic.name!r} ({nic.description}) has no SR-IOV ({cap.source})")
                continue
            caps.append(cap)
            if nic.sriov_enabled is False and nic.name not in enable_seen:
                enable_seen.add(nic.name)
                res.enable_nics.append((nic, nic.vfs_total or cap.vfs))
        if sw.iov_enabled and sw.vf_count:
            caps = [
                PortCapacity(
                    nic=caps[0].nic if caps else nics[0].name,
                    switch=name,
                    vfs=sw.vf_count,
                    source="IovVirtualFunctionCount",
                )
            ]
        if not caps:
            continue
        res.capacity.extend(caps)
        total = sum(c.vfs for c in caps)
        on_switch = [a for a in adapters if a.switch_name == name]
        fit, rest = on_switch[:total], on_switch[total:]
        for i, a in enumerate(fit):
            w, qp = selector(a)
            nic_name = caps[min(i // max(caps[0].vfs, 1), len(caps) - 1)].nic
            res.allocations.append(_allocation(snap, a, name, nic_name, w, qp, priority[a.identity]))
        for a in rest:
            ports = ", ".join(f"{c.nic!r} ({c.vfs} VFs{', estimate' if c.estimate else ''})" for c in caps)
            res.unfit.append(
                Unfit(
                    vm=a.vm_name or "",
                    adapter=a.name,
                    reason=f"no free VF: {ports} under {name!r} serve {total} adapters by priority",
                )
            )
            overflow.append(a)
        if not sw.iov_enabled:
            old = switch_spec(snap, sw)
            new = old.model_copy(update={"iov": True})
            if pol.management_os == "drop" or (pol.management_os == "move" and pol.allow_second_switch):
                new.allow_management_os = False
            res.rebuild.append((old, new))
            if old.allow_management_os:
                mgmt = [a.name for a in snap.vm_adapters if a.is_management_os and a.switch_name == name]
                shown = ", ".join(repr(m) for m in mgmt) or repr(name)
                res.requires_console = True
                res.warnings.append(
                    f"the management OS (adapter {shown}) is on switch {name!r}, which is removed and recreated: "
                    f"remote access to {host} through it drops during the switch-over; run apply from a console "
                    "(--console)"
                )
    if overflow:
        _second_switch(snap, pol, res, overflow, selector, priority)
    one = [a for a in res.allocations if a.queue_pairs == 1 and (a.vcpus or 0) > 1]
    if one:
        names = ", ".join(f"{a.vm}/{a.adapter}" for a in one)
        res.warnings.append(
            f"{names}: one VF queue pair each, so once the VF carries the traffic every receive interrupt lands on "
            "one guest vCPU (vRSS is off with a VF): watch that vCPU after the switch-over (iovkit bench), or use "
            "a NIC with more queue pairs per VF"
        )
    return res


def _second_switch(
    snap: HostSnapshot,
    pol: Policy,
    res: HypervAllocation,
    overflow: list[VmAdapter],
    selector: Callable[[VmAdapter], tuple[int, int | None]],
    priority: dict[tuple[str, str], int],
) -> None:
    """Offer (and with allow_second_switch, plan) an IOV switch on a spare SR-IOV port for what did not fit."""
    bound = {n.name for n in snap.bound_nics()}
    names = ", ".join(f"{a.vm_name}/{a.name}" for a in overflow)
    spare: list[tuple[PhysicalNic, PortCapacity]] = []
    for nic in snap.nics:
        if nic.name in bound or nic.team or nic.sriov_support not in (None, "Supported"):
            continue
        if pol.nics and nic.name not in pol.nics:
            continue
        cap = port_capacity(nic, pol.second_switch_name)
        if cap and cap.vfs > 0:
            spare.append((nic, cap))
    placed: list[VmAdapter] = []
    if spare:
        nic, cap = spare[0]
        text = (
            f"create a second IOV switch {pol.second_switch_name!r} on spare port {nic.name!r} "
            f"({cap.vfs} VFs{', estimate' if cap.estimate else ''}) and move {names} to it"
        )
        if snap.switch(pol.second_switch_name) is not None:
            res.blockers.append(f"second_switch_name {pol.second_switch_name!r} already exists; pick another name")
        elif pol.allow_second_switch:
            res.alternatives.append(Alternative(kind="second-switch", text=text, planned=True))
            res.capacity.append(cap)
            if nic.sriov_enabled is False:
                res.enable_nics.append((nic, nic.vfs_total or cap.vfs))
            mgmt = pol.management_os == "move"
            res.create.append(
                SwitchSpec(name=pol.second_switch_name, nics=[nic.name], iov=True, allow_management_os=mgmt)
            )
            for a in overflow[: cap.vfs]:
                w, qp = selector(a)
                res.allocations.append(
                    _allocation(snap, a, pol.second_switch_name, nic.name, w, qp, priority[a.identity])
                )
                res.moves[a.identity] = pol.second_switch_name
                placed.append(a)
            for u in res.unfit:
                if (u.vm, u.adapter) in res.moves:
                    u.moved_to = pol.second_switch_name
        else:
            res.alternatives.append(
                Alternative(
                    kind="second-switch", text=text + " (set allow_second_switch: true in the policy to plan it)"
                )
            )
    else:
        res.alternatives.append(
            Alternative(kind="more-vfs", text=f"no spare SR-IOV port for {names}: add a NIC port or raise NumVFs")
        )
    left = [a for a in overflow if a not in placed]
    if left:
        rest = ", ".join(f"{a.vm_name}/{a.name}" for a in left)
        res.alternatives.append(
            Alternative(
                kind="vmq-vrss",
                text=f"keep {rest} on the synthetic path with VMQ and vRSS "
                "(Set-VMNetworkAdapter -VmqWeight 100 -VrssEnabled $true)",
            )
        )
