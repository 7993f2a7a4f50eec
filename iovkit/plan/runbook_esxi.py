"""ESXi allocation and runbook: VFs on the ports, the guarded reboot, then each VM's memory and adapter.

Order (esxi.md §1-§2), chosen so that undoing in reverse order restores the start:
  power off the running VMs (only when the host must reboot: a standalone host enters maintenance mode only
  with every VM off) -> enter maintenance mode -> VFs (API or max_vfs) -> reboot -> exit maintenance mode ->
  per VM: reserve all memory, disconnect the emulated adapter (kept), add the SR-IOV adapter (a VM must be off:
  hot-add fails) -> power the VMs back on -> verify each owns an active VF.
The VF step's undo restores the configuration and, when the running VFs then differ, reboots (maintenance mode
is on again by then, because the exit step's undo re-enters it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iovkit.plan.model import (
    Allocation,
    Alternative,
    EsxAddSriovStep,
    EsxDisconnectStep,
    EsxEnableVfsStep,
    EsxMaintenanceStep,
    EsxMemoryStep,
    EsxPowerStep,
    EsxRebootStep,
    EsxVerifyVfStep,
    PlanParts,
    PortCapacity,
    Step,
    Unfit,
)
from iovkit.policy import Policy, adapters_in_scope
from iovkit.snapshot import (
    EsxiInfo,
    EsxiVm,
    HostSnapshot,
    PhysicalNic,
    esxi_driver_ports,
    esxi_max_vfs_vector,
    esxi_options_with_max_vfs,
    esxi_port_max_vfs,
)

MIN_HW = 10


@dataclass
class EsxiPlanParts(PlanParts):
    steps: list[Step] = field(default_factory=list)
    reboots: bool = False


def _requested(snap: HostSnapshot, n: PhysicalNic) -> int:
    pt = snap.esxi.passthru_for(n.pci_address) if snap.esxi else None
    if pt is not None and pt.sriov_capable is not None:
        return (pt.vfs_requested or 0) if pt.sriov_enabled else 0
    want = esxi_port_max_vfs(snap, n)
    return want if want is not None else n.vfs_configured or 0  # max_vfs not read: the VFs seen were asked for


def _max(snap: HostSnapshot, n: PhysicalNic) -> tuple[int | None, str]:
    info = snap.esxi or EsxiInfo()
    pt = info.passthru_for(n.pci_address)
    if pt is not None and pt.vfs_max:
        return pt.vfs_max, "maxVirtualFunctionSupported"
    mod = info.module(n.driver)
    if mod and mod.max_vfs_range:
        return int(mod.max_vfs_range.split("..")[1]), f"{n.driver} max_vfs range {mod.max_vfs_range}"
    return None, "unknown"


def _not_a_port(snap: HostSnapshot, nic: PhysicalNic | None, pf: str | None) -> str:
    """Why an SR-IOV adapter's PF cannot be planned, saying only what the input showed."""
    if nic is None:
        if any(n.pci_address is None for n in snap.nics) or not snap.has("nics"):
            return f"its PF {pf}: the vmnics' PCI addresses were not collected (esxcli network nic list)"
        return f"its PF {pf} is no vmnic on this host"
    if nic.sriov_support is None:
        return f"its PF {pf} ({nic.name}): whether it can carry VFs was not collected (esxcli network sriovnic list)"
    return f"its PF {pf} is not an SR-IOV port"


def _api(snap: HostSnapshot, n: PhysicalNic) -> bool:
    pt = snap.esxi.passthru_for(n.pci_address) if snap.esxi else None
    return pt is not None and pt.sriov_capable is not None


def _blockers(snap: HostSnapshot, info: EsxiInfo) -> list[str]:
    out: list[str] = []
    v = info.version_tuple()
    if v is not None and v < (5, 5):
        out.append(f"ESXi {info.version} has no SR-IOV passthrough adapter type (5.5+): upgrade first")
    if any("DMAR table not found" in ln or "IOV initialization failed" in ln for ln in info.boot_log or []):
        out.append("vmkernel.log: the IOMMU (DMAR) is missing: enable VT-d/AMD-Vi and SR-IOV in the firmware first")
    if not any(n.sriov_support == "Supported" for n in snap.nics):
        out.append("no SR-IOV capable port is known (run `esxcli network nic list` and the drivers' parameter lists)")
    return out


def plan_esxi(snap: HostSnapshot, policy: Policy | None) -> EsxiPlanParts:
    res = EsxiPlanParts()
    info = snap.esxi or EsxiInfo()
    pol = policy or Policy()
    res.blockers = _blockers(snap, info)
    adapters = adapters_in_scope(snap, policy)
    if not adapters:
        res.warnings.append(
            "no VM adapter in scope: without a policy only SR-IOV adapters are; name VMs in a policy to convert them"
        )
    vms = {vm.name: vm for vm in info.vms}
    pfs = [n for n in snap.nics if n.sriov_support == "Supported" and (not pol.nics or n.name in pol.nics)]
    pfs.sort(key=lambda n: (pol.nics.index(n.name) if n.name in pol.nics else 0, -_requested(snap, n), n.name))
    users: dict[str, list[tuple[EsxiVm, str]]] = {n.name: [] for n in pfs}
    converts: list[tuple[EsxiVm, str, PhysicalNic, str | None]] = []  # (vm, old adapter, pf, network)
    macs: dict[tuple[str, str], str | None] = {}
    for pri, a in enumerate(adapters, start=1):
        vm = vms.get(a.vm_name or "")
        rec = next((x for x in vm.adapters if x.name == a.name), None) if vm else None
        if vm is None or rec is None:
            continue
        if vm.hw_version is not None and vm.hw_version < MIN_HW:
            res.unfit.append(Unfit(vm=vm.name, adapter=a.name, reason=f"hardware version vmx-{vm.hw_version} < 10"))
            continue
        if rec.type == "sriov":
            nic = next((n for n in snap.nics if rec.pf and n.pci_address == rec.pf), None)
            if nic is None or nic.name not in users:
                res.unfit.append(Unfit(vm=vm.name, adapter=a.name, reason=_not_a_port(snap, nic, rec.pf)))
                continue
        else:
            if any(x.type == "sriov" for x in vm.adapters):
                continue  # the VM already has a VF adapter; a second one is not planned
            nic = _pick(snap, pfs, users)
            if nic is None:
                res.unfit.append(Unfit(vm=vm.name, adapter=a.name, reason="no SR-IOV port with room for a VF"))
                continue
            converts.append((vm, a.name, nic, rec.network))
            macs[(vm.name, a.name)] = rec.mac
        users[nic.name].append((vm, a.name))
        res.allocations.append(
            Allocation(vm=vm.name, adapter=a.name, nic=nic.name, iov_weight=100, queue_pairs=1, priority=pri)
        )
    # -- VFs per port ---------------------------------------------------------------------------------------------
    enable: list[Step] = []
    need_reboot = False
    module_changes: dict[str, dict[str, int]] = {}
    for n in pfs:
        cap, src = _max(snap, n)
        want_now = _requested(snap, n)
        target = max(want_now, len(users[n.name]))
        res.capacity.append(PortCapacity(nic=n.name, vfs=cap or target, estimate=cap is None, source=src))
        if cap is not None and target > cap:
            for vm, ad in users[n.name][cap:]:
                res.unfit.append(Unfit(vm=vm.name, adapter=ad, reason=f"{n.name} offers at most {cap} VFs"))
                res.allocations = [x for x in res.allocations if (x.vm, x.adapter) != (vm.name, ad)]
            target = cap
        if target > want_now:
            if _api(snap, n):
                pt = info.passthru_for(n.pci_address)
                enable.append(
                    EsxEnableVfsStep(
                        method="api",
                        driver=n.driver or "",
                        ports=[n.name],
                        pcis=[n.pci_address or ""],
                        num_vfs=[target],
                        old_num_vfs=[want_now],
                        old_enabled=[bool(pt and pt.sriov_enabled)],
                        precondition=f"{n.name} is SR-IOV capable (HostSriovInfo), at most {cap} VFs",
                        verification=f"pciPassthruInfo[{n.pci_address}] sriovEnabled, numVirtualFunctionRequested "
                        f"{target}",
                    )
                )
            else:
                module_changes.setdefault(n.driver or "", {})[n.name] = target
        if users[n.name] and target > want_now:
            need_reboot = True  # a new max_vfs / SR-IOV config takes effect at the next boot
        elif users[n.name] and n.vfs_configured is None:
            res.warnings.append(
                f"whether {n.name}'s VFs exist (active, or waiting for a reboot) was not collected, so the plan does "
                f"not reboot for them: run `esxcli network sriovnic vf list -n {n.name}` and plan again with it"
            )
        elif users[n.name] and target > (n.vfs_configured or 0):
            need_reboot = True  # asked for before, not yet created: the reboot is still pending
    for driver, change in module_changes.items():
        mod = info.module(driver)
        if mod is None or (mod.options is None and not mod.params):
            res.blockers.append(
                f"{driver}: its stored options were not collected; run `esxcli system module parameters list -m "
                f"{driver}` (set -p replaces the whole string)"
            )
            continue
        ports = esxi_driver_ports(snap, driver)
        old = list(esxi_max_vfs_vector(mod) or [])
        new = old + [0] * (len(ports) - len(old))
        for i, p in enumerate(ports):
            if p.name in change:
                new[i] = change[p.name]
        enable.append(
            EsxEnableVfsStep(
                method="module",
                driver=driver,
                ports=[p.name for p in ports if p.name in change],
                pcis=[p.pci_address or "" for p in ports if p.name in change],
                num_vfs=[change[p.name] for p in ports if p.name in change],
                old_num_vfs=[old[i] if i < len(old) else 0 for i, p in enumerate(ports) if p.name in change],
                options=esxi_options_with_max_vfs(mod, new),
                old_options=mod.options
                if mod.options is not None
                else esxi_options_with_max_vfs(mod, old)
                if old
                else "",
                precondition=f"{driver}'s ports in PCI order: {', '.join(p.name for p in ports)}",
                verification=f"esxcli system module parameters list -m {driver} shows max_vfs "
                + ",".join(map(str, new)),
            )
        )
    if (
        need_reboot
        and info.rebind_without_reboot
        and all(isinstance(s, EsxEnableVfsStep) and s.method == "api" for s in enable)
    ):
        need_reboot = False  # deviceRebindWithoutRebootSupported: UpdatePassthruConfig applies now
    res.steps = _steps(snap, info, enable, need_reboot, converts, users, macs)
    res.reboots = any(isinstance(s, EsxRebootStep) for s in res.steps)
    if res.reboots:
        running = [vm.name for vm in info.vms if vm.power_state == "poweredOn"]
        res.warnings.append(
            f"the host {snap.host.name or ''} reboots in maintenance mode; every running VM is powered off first"
            + (f" ({', '.join(running)})" if running else "")
            + " and back on after: apply needs --reboot"
        )
    for name in dict.fromkeys(a.vm for a in res.allocations):
        if vms[name].power_state != "poweredOn":
            res.warnings.append(
                f"{name} is {vms[name].power_state or 'in an unknown power state'}: apply leaves it so; power it on "
                f"after (vim-cmd vmsvc/power.on <vmid of {name}>) and check its VF"
            )
        res.warnings.append(f"{name} loses vMotion, snapshots, suspend, HA/DRS/FT and hot-add with an SR-IOV adapter")
    if any(u.reason.startswith("no SR-IOV port") or "at most" in u.reason for u in res.unfit):
        res.alternatives.append(
            Alternative(kind="more-vfs", text="add a port to the policy's nics, or keep the rest on vmxnet3")
        )
    return res


def _pick(snap: HostSnapshot, pfs: list[PhysicalNic], users: dict[str, list[tuple[EsxiVm, str]]]) -> PhysicalNic | None:
    for n in pfs:
        cap, _ = _max(snap, n)
        if cap is None or len(users[n.name]) < cap:
            return n
    return None


def _steps(
    snap: HostSnapshot,
    info: EsxiInfo,
    enable: list[Step],
    reboot: bool,
    converts: list[tuple[EsxiVm, str, PhysicalNic, str | None]],
    users: dict[str, list[tuple[EsxiVm, str]]],
    macs: dict[tuple[str, str], str | None],
) -> list[Step]:
    host = snap.host.name or "this host"
    changed: list[EsxiVm] = []
    vm_steps: list[Step] = []
    converting = {vm.name for vm, *_ in converts}
    for nic_users in users.values():
        for vm, _ in nic_users:
            if vm in changed:
                continue
            full = bool(vm.reserve_all) or (vm.memory_mb is not None and vm.reservation_mb == vm.memory_mb)
            if not full and vm.memory_mb is not None:
                vm_steps.append(
                    EsxMemoryStep(
                        vm=vm.name,
                        memory_mb=vm.memory_mb,
                        old_reservation_mb=vm.reservation_mb or 0,
                        old_locked=bool(vm.reserve_all),
                        precondition=f"{vm.name} is powered off",
                        verification=f"memoryAllocation.reservation {vm.memory_mb}, memoryReservationLockedToMax",
                    )
                )
                changed.append(vm)
            elif vm.name in converting:
                changed.append(vm)
    for vm, adapter, nic, network in converts:
        existing = sum(1 for a in vm.adapters if a.type == "sriov" and a.pf == nic.pci_address)
        vm_steps.append(
            EsxDisconnectStep(
                vm=vm.name,
                adapter=adapter,
                mac=macs.get((vm.name, adapter)),
                precondition=f"{vm.name} is powered off",
                verification=f"{vm.name}/{adapter} is not connected at power-on",
            )
        )
        vm_steps.append(
            EsxAddSriovStep(
                vm=vm.name,
                pf=nic.pci_address or "",
                pf_nic=nic.name,
                network=network,
                existing=existing,
                precondition=f"{vm.name} is powered off (SR-IOV adapters cannot be hot-added)",
                verification=f"{vm.name} has {existing + 1} SR-IOV adapter(s) on {nic.pci_address}",
            )
        )
    running = [vm for vm in info.vms if vm.power_state == "poweredOn"]
    off = running if reboot else [vm for vm in running if vm in changed]
    steps: list[Step] = [
        EsxPowerStep(vm=vm.name, on=False, precondition="guest shutdown or power-off", verification="powered off")
        for vm in off
    ]
    entered = reboot and not info.in_maintenance_mode
    if entered:
        steps.append(
            EsxMaintenanceStep(enter=True, precondition="no VM is powered on", verification="inMaintenanceMode")
        )
    steps.extend(enable)
    if reboot:
        expect = {n: len(u) for n, u in users.items() if u}
        steps.append(
            EsxRebootStep(
                host=host,
                expect=expect,
                precondition="the host is in maintenance mode (esxcli system shutdown reboot refuses otherwise)",
                verification="the host answers again and " + ", ".join(f"{k} has {v}+ VFs" for k, v in expect.items()),
            )
        )
    if entered:
        steps.append(EsxMaintenanceStep(enter=False, precondition="", verification="not inMaintenanceMode"))
    steps.extend(vm_steps)
    steps.extend(
        EsxPowerStep(vm=vm.name, on=True, precondition="not in maintenance mode", verification="powered on")
        for vm in off
    )
    on_after = {vm.name for vm in running}
    for n, us in users.items():
        for vm, _ in us:
            if vm.name in on_after:
                steps.append(
                    EsxVerifyVfStep(
                        vm=vm.name,
                        pf_nic=n,
                        verification=f"esxcli network sriovnic vf list -n {n} shows an active VF owned by {vm.name}",
                    )
                )
    return steps
