"""VMware ESXi rules about the VMs (reference esxi.md §1.4-§1.5, §3.9-§3.10): adapter type and PF, hardware
version, the memory reservation, and what a VM with an SR-IOV adapter loses. Pure functions of the snapshot; the
host rules and the shared helpers are in `iovkit.checks.esxi`.
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    Scope,
    adapter_key,
    current_rule,
    host_scope,
    not_applicable,
    rule,
    unknown,
)
from iovkit.checks.esxi import (
    CMD_NICS,
    CMD_SRIOV_NICS,
    CMD_VMS,
    LOST,
    MIN_HW,
    VMS_UNREAD,
    ascope,
    esx_info,
    pf_nic,
    plan_line,
    vm_adapters,
    vmi,
    vms_unread,
    vmx_cmd,
)
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot


@rule(
    "ESX-VM-ADAPTER",
    "The VM's adapter is SR-IOV passthrough on an existing PF, in a VM of hardware version 10+",
    platform="esxi",
    severity="high",
    rationale="Only an SR-IOV passthrough adapter (VirtualSriovEthernetCard) gets a VF; it needs VM compatibility "
    "ESXi 5.5+ (vmx-10), and its PF must still be the port it names (max_vfs order shifts with cards).",
    remediation=(
        "`iovkit plan` with a policy (adds an SR-IOV passthrough adapter); `vim-cmd vmsvc/upgrade` for the "
        "hardware version; re-pick the physical function when its PCI id moved."
    ),
    impact="The VM's traffic stays on vmxnet3 through the vSwitch, or the VM does not power on with a stale PF.",
)
def vm_adapter(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if vms_unread(snap):
        yield unknown(rid, host_scope(snap), ["vm_adapters"], VMS_UNREAD, collect=CMD_VMS)
        return
    pairs = vm_adapters(snap, policy)
    if not pairs:
        yield not_applicable(rid, host_scope(snap), "no VM adapter in scope (SR-IOV adapters, or a policy's)")
        return
    for vm, a in pairs:
        j = vmi(snap, vm)
        k = vm.adapters.index(a)
        ev: Ev = {
            f"esxi.vms[{j}].adapters[{k}].type": a.type,
            f"esxi.vms[{j}].adapters[{k}].pf": a.pf,
            f"esxi.vms[{j}].hw_version": vm.hw_version,
        }
        scope = ascope(vm, a)
        if a.type != "sriov":
            yield Finding(
                rid,
                "fail",
                scope,
                f"adapter type {a.type}, not SR-IOV passthrough",
                ev,
                fix=f"{plan_line(snap)} --policy <a policy naming {vm.name}>   # adds an SR-IOV adapter, keeps "
                "this one disconnected for rollback",
            )
            continue
        if a.pf_raw and a.pf is None and not a.pf_raw.lower().startswith("automatic"):
            yield Finding(
                rid,
                "fail",
                scope,
                f"pfId {a.pf_raw!r} is not a decimal PCI id (ESXi: `AH No device hints found`)",
                ev,
                fix=f"Edit the VM: choose the physical function again (.vmx {a.name}.pfId in decimal "
                "%05d:%03d:%02d.%d)",
            )
            continue
        if not snap.has("nics"):  # the pass names a PF that exists on this host: the host's NICs are needed
            yield unknown(
                rid,
                scope,
                ["nics"],
                f"not collected: the host's NICs, so whether its PF {a.pf or '(automatic)'} exists and can carry VFs",
                collect=CMD_NICS,
            )
            continue
        nic = pf_nic(snap, a)
        carriers = [nic] if nic is not None else ([] if a.pf is not None else snap.nics)
        if carriers and not any(n.sriov_support == "Supported" for n in carriers):
            unread = [snap.nics.index(n) for n in carriers if n.sriov_support is None]
            if unread:  # "SR-IOV passthrough on X" also says X can carry VFs: seen, or not claimed
                yield unknown(
                    rid,
                    scope,
                    [f"nics[{i}].sriov_support" for i in unread],
                    f"not collected: whether {', '.join(snap.nics[i].name for i in unread)} can carry VFs",
                    collect=CMD_SRIOV_NICS,
                )
                continue
        unaddressed = [i for i, n in enumerate(snap.nics) if n.pci_address is None]
        if a.pf is not None and snap.nics and pf_nic(snap, a) is None and unaddressed:
            yield unknown(
                rid,
                scope,
                [f"nics[{i}].pci_address" for i in unaddressed],
                f"its PF {a.pf}: the PCI address of {', '.join(snap.nics[i].name for i in unaddressed)} "
                "was not collected",
                collect=CMD_NICS,
            )
            continue
        if a.pf is not None and snap.nics and pf_nic(snap, a) is None:
            yield Finding(
                rid,
                "fail",
                scope,
                f"its PF {a.pf} is no vmnic on this host (moved card? KB 309346)",
                ev,
                fix=f"Edit {vm.name}: Network adapter > Physical function: pick the vmnic again",
            )
            continue
        if vm.hw_version is None:
            yield unknown(
                rid,
                scope,
                [f"esxi.vms[{j}].hw_version"],
                f"not collected: the VM's hardware version (virtualHW.version in {vm.name}.vmx)",
                collect=vmx_cmd(vm),
            )
        elif vm.hw_version < MIN_HW:
            yield Finding(
                rid,
                "fail",
                scope,
                f"hardware version vmx-{vm.hw_version}: SR-IOV passthrough needs vmx-{MIN_HW}+",
                ev,
                fix=f"Power off {vm.name}, then: vim-cmd vmsvc/upgrade <vmid of {vm.name}> vmx-{max(MIN_HW, 19)}",
            )
        else:
            yield Finding(
                rid, "pass", scope, f"SR-IOV passthrough on {a.pf or 'an automatic PF'}, vmx-{vm.hw_version}", ev
            )


@rule(
    "ESX-VM-MEMORY",
    "All guest memory reserved for a VM with an SR-IOV adapter",
    platform="esxi",
    severity="high",
    rationale="The IOMMU must map all VM memory for DMA: ESXi refuses to power on a passthrough VM without a full "
    "reservation (`memory reservation (sched.mem.min) should be equal to memsize`).",
    remediation="Reserve all guest memory (All locked): `iovkit plan`, or the .vmx `sched.mem.pin`/`sched.mem.min`.",
    impact="A VM with an SR-IOV adapter and unreserved memory does not power on.",
)
def vm_memory(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if vms_unread(snap):
        yield unknown(rid, host_scope(snap), ["vm_adapters"], VMS_UNREAD, collect=CMD_VMS)
        return
    vms = list(dict.fromkeys(vm.name for vm, _ in vm_adapters(snap, policy)))
    if not vms:
        yield not_applicable(rid, host_scope(snap), "no VM adapter in scope")
        return
    for name in vms:
        vm = next(v for v in esx_info(snap).vms if v.name == name)
        j = vmi(snap, vm)
        ev: Ev = {
            f"esxi.vms[{j}].memory_mb": vm.memory_mb,
            f"esxi.vms[{j}].reservation_mb": vm.reservation_mb,
            f"esxi.vms[{j}].reserve_all": vm.reserve_all,
        }
        units = [adapter_key(vm.name, a.name) for v, a in vm_adapters(snap, policy) if v is vm]
        scope = Scope("vm-adapter", units[0])
        if vm.reserve_all or (vm.memory_mb is not None and vm.reservation_mb == vm.memory_mb):
            yield Finding(rid, "pass", scope, f"{vm.name}: all {vm.memory_mb} MB reserved", ev, affects=units)
        elif vm.reserve_all is None and vm.reservation_mb is None:
            yield unknown(
                rid,
                scope,
                [f"esxi.vms[{j}].reservation_mb"],
                f"not collected: {vm.name}'s memory reservation (.vmx: memSize, sched.mem.min, sched.mem.pin)",
                collect=vmx_cmd(vm),
            )
        else:
            f = Finding(
                rid,
                "fail",
                scope,
                f"{vm.name}: {vm.reservation_mb or 0} of {vm.memory_mb} MB reserved",
                ev,
                fix=f"Power off {vm.name}; Edit Settings > Memory > Reserve all guest memory (All locked) "
                f'(.vmx: sched.mem.pin = "TRUE", sched.mem.min = "{vm.memory_mb}"), '
                + (
                    "or let the plan do it: " + plan_line(snap)
                    if any(n.sriov_support == "Supported" for n in snap.nics)
                    else "or let `iovkit plan` do it once the input shows the host's SR-IOV ports (esxcli network "
                    "nic list, esxcli network sriovnic list)"
                ),
                affects=units,
            )
            yield f


@rule(
    "ESX-VM-FEATURES",
    "Features a VM with an SR-IOV adapter loses (the operator must accept them)",
    platform="esxi",
    severity="low",
    rationale="vSphere disables vMotion, Storage vMotion, snapshots, suspend/resume, HA, DRS, FT, DPM and hot-add "
    "for a VM with an SR-IOV passthrough adapter (vSphere 6.5 list, esxi.md §1.5).",
    remediation="None: accept the loss of vMotion, snapshots, HA/DRS/FT and hot-add, or keep the VM on vmxnet3.",
    impact="The VM loses vMotion, snapshots, HA/DRS/FT and hot-add while it has an SR-IOV adapter.",
)
def vm_features(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if vms_unread(snap):
        yield unknown(rid, host_scope(snap), ["vm_adapters"], VMS_UNREAD, collect=CMD_VMS)
        return
    vms = list(dict.fromkeys(vm.name for vm, _ in vm_adapters(snap, policy)))
    if not vms:
        yield not_applicable(rid, host_scope(snap), "no VM adapter in scope")
        return
    for name in vms:
        adapters = [a for v, a in vm_adapters(snap, policy) if v.name == name]
        yield Finding(
            rid,
            "warn",
            Scope("vm-adapter", adapter_key(name, adapters[0].name)),
            f"{name} loses {LOST}; VF traffic has no rate control and stops when the port loses link",
            {
                f"esxi.vms[{vmi(snap, v)}].adapters[{v.adapters.index(a)}].type": a.type
                for v, a in vm_adapters(snap, policy)
                if v.name == name
            },
            fix=f"Accept it for {name}, or keep it on vmxnet3 (leave it out of the policy)",
        )
