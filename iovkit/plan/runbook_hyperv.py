"""Hyper-V runbook: the ordered steps that move VM adapters onto IOV switches.

Order (hyperv.md §3): record; enable NIC SR-IOV where off; disconnect every VM adapter on a switch being
rebuilt (never delete one); Remove-VMSwitch; New-VMSwitch -EnableIov $true with the same name, NICs, SET
and management-OS setting (IOV is fixed at creation, so there is no Set to change it); create the second
switch; reconnect; Set-VMNetworkAdapter -IovWeight; verify the VF is active.
"""

from __future__ import annotations

from iovkit.plan.allocate import HypervAllocation
from iovkit.plan.model import (
    ConnectStep,
    CreateSwitchStep,
    DisconnectStep,
    EnableSriovStep,
    RecordStep,
    RemoveSwitchStep,
    SetIovStep,
    Step,
    VerifyVfStep,
)
from iovkit.snapshot import HostSnapshot


def hyperv_steps(snap: HostSnapshot, alloc: HypervAllocation) -> list[Step]:
    steps: list[Step] = [
        RecordStep(
            precondition="Hyper-V module and NetAdapter module present",
            verification="the record lists every VM adapter with its switch",
        )
    ]
    for nic, num in alloc.enable_nics:
        steps.append(
            EnableSriovStep(
                nic=nic.name,
                num_vfs=num,
                was_enabled=bool(nic.sriov_enabled),
                old_num_vfs=nic.vfs_total,
                precondition=f"NIC {nic.name!r} exists and reports SriovSupport Supported",
                verification=f"Get-NetAdapterSriov {nic.name!r} shows Enabled True"
                + (f", NumVFs >= {num}" if num else ""),
            )
        )
    rebuilt = {old.name for old, _ in alloc.rebuild}
    vm_adapters = sorted(
        (a for a in snap.vm_adapters if not a.is_management_os and a.vm_name),
        key=lambda a: a.identity,
    )
    moving = [a for a in vm_adapters if a.identity in alloc.moves]
    to_disconnect = [a for a in vm_adapters if a.switch_name in rebuilt or a in moving]
    for a in to_disconnect:
        assert a.vm_name is not None and a.switch_name is not None
        steps.append(
            DisconnectStep(
                vm=a.vm_name,
                adapter=a.name,
                switch=a.switch_name,
                precondition=f"{a.vm_name}/{a.name} is connected to {a.switch_name!r}",
                verification=f"{a.vm_name}/{a.name} has no switch (Connected False); the adapter still exists",
            )
        )
    for old, new in alloc.rebuild:
        steps.append(
            RemoveSwitchStep(
                switch=old,
                precondition=f"no VM adapter is connected to {old.name!r}",
                verification=f"Get-VMSwitch {old.name!r} finds nothing",
            )
        )
        steps.append(
            CreateSwitchStep(
                switch=new,
                precondition=f"no switch named {new.name!r}; NICs {', '.join(new.nics)} are unbound",
                verification=(
                    f"{new.name!r} exists with IovEnabled True, IovSupport True and IovVirtualFunctionCount > 0"
                ),
            )
        )
    for spec in alloc.create:
        steps.append(
            CreateSwitchStep(
                switch=spec,
                precondition=f"no switch named {spec.name!r}; NIC {', '.join(spec.nics)} is unbound",
                verification=(
                    f"{spec.name!r} exists with IovEnabled True, IovSupport True and IovVirtualFunctionCount > 0"
                ),
            )
        )
    for a in to_disconnect:
        assert a.vm_name is not None and a.switch_name is not None
        dest = alloc.moves.get((a.vm_name, a.name), a.switch_name)
        steps.append(
            ConnectStep(
                vm=a.vm_name,
                adapter=a.name,
                switch=dest,
                precondition=f"switch {dest!r} exists",
                verification=f"{a.vm_name}/{a.name} SwitchName is {dest!r}",
            )
        )
    by_key = {(a.vm_name, a.name): a for a in vm_adapters}
    verify: list[Step] = []
    for al in alloc.allocations:
        cur = by_key.get((al.vm, al.adapter))
        old_w = (cur.iov_weight if cur else None) or 0
        old_qp = (cur.iov_queue_pairs_requested if cur else None) or 1
        if (old_w, old_qp) != (al.iov_weight, al.queue_pairs):
            steps.append(
                SetIovStep(
                    vm=al.vm,
                    adapter=al.adapter,
                    iov_weight=al.iov_weight,
                    queue_pairs=al.queue_pairs,
                    old_iov_weight=old_w,
                    old_queue_pairs=old_qp,
                    precondition=f"{al.vm}/{al.adapter} is on IOV switch {al.switch!r}",
                    verification=f"IovWeight {al.iov_weight}, IovQueuePairsRequested {al.queue_pairs}",
                )
            )
        vm = snap.vm(al.vm)
        if vm is not None and vm.state not in (None, "Running"):
            continue  # a VF is allocated only to a running VM; the summary says so
        verify.append(
            VerifyVfStep(
                vm=al.vm,
                adapter=al.adapter,
                switch=al.switch or "",
                precondition=f"VM {al.vm!r} is running with a VF driver in the guest",
                verification=f"{al.vm}/{al.adapter} VFDataPathActive True and Get-NetAdapterSriovVf lists VM {al.vm!r}",
            )
        )
    steps.extend(verify)
    return steps


def not_running(snap: HostSnapshot, alloc: HypervAllocation) -> list[str]:
    """Allocated VMs that are not running: their VF cannot be verified now."""
    out = []
    for al in alloc.allocations:
        vm = snap.vm(al.vm)
        if vm is not None and vm.state not in (None, "Running"):
            out.append(f"VM {al.vm!r} is {vm.state}: its VF is allocated when it starts (not verified by apply)")
    return out
