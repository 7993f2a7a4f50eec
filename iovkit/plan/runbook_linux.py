"""Linux/libvirt allocation and runbook: sriov_numvfs, `ip link set <pf> vf N ...`, hostdev interfaces.

linux.md §1.2: a change of sriov_numvfs always goes through 0, which destroys every existing VF, so
the plan refuses to change it while a VF is in use by a domain. §1.3: VF MAC/spoofchk/trust/state are
set on the PF before the VF is passed through. §3.1: <interface type='hostdev' managed='yes'> keeps the
guest's MAC stable across host reboots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iovkit.plan.model import (
    Allocation,
    Alternative,
    AttachHostdevStep,
    PlanParts,
    PortCapacity,
    SetNumVfsStep,
    Step,
    Unfit,
)
from iovkit.plan.model import VfSettingsStep as VfStep
from iovkit.policy import Policy, adapters_in_scope
from iovkit.snapshot import HostSnapshot, PhysicalNic


@dataclass
class LinuxPlanParts(PlanParts):
    steps: list[Step] = field(default_factory=list)


def plan_linux(snap: HostSnapshot, policy: Policy | None) -> LinuxPlanParts:
    res = LinuxPlanParts()
    pol = policy or Policy()
    # A domain that already has a VF keeps it; its other (bridge/virtio) interfaces are not given a second one.
    has_vf = {a.vm_name for a in snap.vm_adapters if a.kind == "hostdev"}
    adapters = [a for a in adapters_in_scope(snap, pol) if a.kind != "hostdev" and a.vm_name not in has_vf]
    if not adapters:
        res.warnings.append("no VM interface is in scope (check the policy's adapters)")
    if snap.iommu is not None and snap.iommu.active is False:
        res.blockers.append("the IOMMU is not active (no IOMMU groups): VFs cannot be passed to guests")
    pfs = [n for n in snap.nics if (n.vfs_total or 0) > 0 and (not pol.nics or n.name in pol.nics)]
    assigned = {(v.pf, v.index) for v in snap.vfs if v.vm}

    def preference(n: PhysicalNic) -> tuple[int, bool, int, int, int, str]:
        """Policy order first; then PFs outside a bond, with VFs already created and free (no sriov_numvfs
        change, which would destroy the VFs in use), on the fastest link, with the most VFs."""
        free_now = (n.vfs_configured or 0) - sum(1 for pf, _ in assigned if pf == n.name)
        return (
            pol.nics.index(n.name) if n.name in pol.nics else len(pol.nics),
            n.team is not None,
            -free_now,
            -(n.link_speed_bps or 0),
            -(n.vfs_total or 0),
            n.name,
        )

    pfs.sort(key=preference)
    if not pfs:
        res.blockers.append("no SR-IOV physical function (sriov_totalvfs > 0) is in scope")
    queue = list(adapters)
    priority = {(a.vm_name, a.name): i + 1 for i, a in enumerate(adapters)}
    set_steps: list[Step] = []
    vf_steps: list[Step] = []
    attach: list[Step] = []
    for pf in pfs:
        total = pf.vfs_total or 0
        current = pf.vfs_configured or 0
        res.capacity.append(PortCapacity(nic=pf.name, vfs=total, source="sriov_totalvfs"))
        in_use = {v.index: v.vm for v in snap.vfs if v.pf == pf.name and v.vm}
        free = [i for i in range(total) if i not in in_use]
        take = queue[: len(free)]
        queue = queue[len(free) :]
        if not take:
            continue
        used = free[: len(take)]
        target = max(current, max(used) + 1)
        if target != current:
            if in_use:
                doms = ", ".join(sorted({d for d in in_use.values() if d}))
                res.blockers.append(
                    f"{pf.name}: sriov_numvfs must go {current} -> 0 -> {target}, which destroys VFs in use by "
                    f"{doms}; stop those domains or free VFs first"
                )
                continue
            set_steps.append(
                SetNumVfsStep(
                    pf=pf.name,
                    num_vfs=target,
                    old_num_vfs=current,
                    precondition=f"no VF of {pf.name} is assigned to a domain; {target} <= sriov_totalvfs {total}",
                    verification=f"sriov_numvfs reads {target}",
                )
            )
        for a, vf in zip(take, used, strict=True):
            vm = a.vm_name or ""
            res.allocations.append(
                Allocation(
                    vm=vm,
                    adapter=a.name,
                    nic=pf.name,
                    vf=vf,
                    iov_weight=100,
                    queue_pairs=1,
                    priority=priority[(a.vm_name, a.name)],
                )
            )
            vf_steps.append(
                VfStep(
                    pf=pf.name,
                    vf=vf,
                    mac=a.mac,
                    precondition=f"{pf.name} has VF {vf}",
                    verification=f"ip -j link show {pf.name} lists vf {vf} with the MAC, spoofchk on, trust off",
                )
            )
            if a.mac:
                attach.append(
                    AttachHostdevStep(
                        domain=vm,
                        pf=pf.name,
                        vf=vf,
                        mac=a.mac,
                        precondition=f"domain {vm!r} is defined; VF {vf} of {pf.name} is not assigned",
                        verification=f"virsh domiflist {vm!r} lists a hostdev interface with MAC {a.mac}",
                    )
                )
                res.warnings.append(
                    f"{vm}/{a.name} keeps MAC {a.mac} on the VF: detach its old interface after checking the guest "
                    f"(virsh detach-interface {vm} {a.kind or 'bridge'} --mac {a.mac} --config)"
                )
            else:
                res.warnings.append(f"{vm}/{a.name} has no known MAC: attach VF {vf} of {pf.name} by hand")
    for a in queue:
        res.unfit.append(Unfit(vm=a.vm_name or "", adapter=a.name, reason="no free VF on the PFs in scope"))
    if queue:
        res.alternatives.append(
            Alternative(kind="more-vfs", text="add a PF to policy nics, or keep the rest on virtio with multiqueue")
        )
    res.steps = set_steps + vf_steps + attach
    return res
