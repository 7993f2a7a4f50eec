"""An ESXi host simulator keeping the documented behaviour the SR-IOV runbook depends on (esxi.md §1-§3, §6).

- VFs per port are configured two ways: the driver's max_vfs (one entry per port in PCI order; `set -p` replaces
  the whole option string) or the API's SriovConfig (which wins when enabled). Configuration takes effect at a
  reboot: running VFs = min(configured, the port's maximum), 0 without the IOMMU or on a port that is not capable.
- `esxcli system shutdown reboot` refuses outside maintenance mode; a standalone host enters maintenance mode only
  with every VM powered off; no VM powers on in maintenance mode.
- Power-on of a VM with a connected SR-IOV adapter needs all memory reserved (`Invalid memory setting: memory
  reservation (sched.mem.min) should be equal to memsize(N).`) and a free VF on the PF (`No SR-IOV virtual
  function (VF) is available for given physical function (PF) (pci).`); VFs go to VMs in power-on order and are
  freed at power-off. An SR-IOV adapter cannot be hot-added (`msg.pciPassthru.noMigration ... PCI hot-plug cannot
  be used`) nor added below hardware version 10.
- Removing an emulated adapter is counted (`deleted_adapters`): the runbook only disconnects it.

It runs the same typed steps the vSphere executor does and exports a HostSnapshot (through the ESXi source's own
`finish`), so apply's staleness check reads it like a real host. Fault injection: `fail_step`/`fail_phase`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iovkit.errors import InputError
from iovkit.plan.model import (
    EsxAddSriovStep,
    EsxDisconnectStep,
    EsxEnableVfsStep,
    EsxMaintenanceStep,
    EsxMemoryStep,
    EsxPowerStep,
    EsxRebootStep,
    EsxVerifyVfStep,
    Step,
)
from iovkit.snapshot import EsxiVf, EsxiVm, EsxiVmAdapter, EsxiWorld, HostSnapshot


class SimError(Exception):
    """An operation failed (the message is what ESXi would say, roughly)."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimPort(_M):
    name: str
    pci: str
    driver: str
    capable: bool
    max_vfs: int | None = None
    api_enabled: bool | None = Field(None, description="SriovConfig.sriovEnabled; None = never set via the API")
    api_num: int = 0
    running: int = 0


class SimVm(_M):
    name: str
    on: bool
    memory_mb: int | None
    reservation_mb: int
    locked: bool
    hw_version: int | None
    adapters: list[EsxiVmAdapter]
    vfs: list[tuple[str, int]] = Field(default_factory=list, description="(vmnic, VF index) held while on")
    seq: int = 0


class EsxiSimState(_M):
    format: Literal["iovkit-esxi-sim"] = "iovkit-esxi-sim"
    host: str | None
    in_maintenance: bool = False
    iommu: bool = True
    modules: dict[str, str] = Field(default_factory=dict, description="driver -> configured option string")
    ports: list[SimPort]
    vms: list[SimVm]
    seq: int = 0
    reboots: int = 0
    deleted_adapters: int = 0
    fail_step: int | None = None
    fail_phase: Literal["action", "verify"] = "action"
    base: HostSnapshot


def _vector(options: str | None) -> list[int]:
    for part in (options or "").split():
        k, _, v = part.partition("=")
        if k == "max_vfs" and v:
            return [int(x) for x in v.split(",") if x.strip()]
    return []


class EsxiSimulator:
    def __init__(self, state: EsxiSimState) -> None:
        self.s = state

    # -- construction and persistence -------------------------------------------------------------------------
    @classmethod
    def from_snapshot(cls, snap: HostSnapshot) -> EsxiSimulator:
        if snap.esxi is None:
            raise InputError("the snapshot has no ESXi facts (platform esxi)")
        info = snap.esxi
        modules: dict[str, str] = {}
        for m in info.modules:
            if m.options is not None:
                modules[m.name] = m.options
            elif m.params.get("max_vfs"):
                modules[m.name] = f"max_vfs={m.params['max_vfs']}"
        ports = []
        for n in snap.nics:
            if not n.pci_address or not n.driver:
                continue
            pt = info.passthru_for(n.pci_address)
            mod = info.module(n.driver)
            top = pt.vfs_max if pt and pt.vfs_max else None
            if top is None and mod and mod.max_vfs_range:
                top = int(mod.max_vfs_range.split("..")[1])
            ports.append(
                SimPort(
                    name=n.name,
                    pci=n.pci_address,
                    driver=n.driver,
                    capable=n.sriov_support == "Supported",
                    max_vfs=top,
                    api_enabled=pt.sriov_enabled if pt and pt.sriov_capable is not None else None,
                    api_num=(pt.vfs_requested or 0) if pt else 0,
                    running=n.vfs_configured or 0,
                )
            )
        boot_bad = any("DMAR table not found" in ln for ln in info.boot_log or [])
        vms = []
        for i, vm in enumerate(info.vms):
            held = [(v.pf, v.index) for v in info.vfs if v.vm == vm.name and v.active]
            vms.append(
                SimVm(
                    name=vm.name,
                    on=vm.power_state == "poweredOn",
                    memory_mb=vm.memory_mb,
                    reservation_mb=vm.reservation_mb or 0,
                    locked=bool(vm.reserve_all),
                    hw_version=vm.hw_version,
                    adapters=[a.model_copy() for a in vm.adapters],
                    vfs=held,
                    seq=i,
                )
            )
        # A running VM with a connected SR-IOV adapter holds a VF (ESXi maps one at power-on); when the source did
        # not say which (the API has no VF list), it is given the first free one of its PF, as power-on would.
        taken = {vf for v in vms for vf in v.vfs}
        for v in vms:
            if not v.on or v.vfs:
                continue
            for a in v.adapters:
                port = next((p for p in ports if a.type == "sriov" and a.present is not False and p.pci == a.pf), None)
                free = [i for i in range(port.running) if (port.name, i) not in taken] if port else []
                if port and free:
                    v.vfs.append((port.name, free[0]))
                    taken.add((port.name, free[0]))
        return cls(
            EsxiSimState(
                host=snap.host.name,
                in_maintenance=bool(info.in_maintenance_mode),
                iommu=not boot_bad,
                modules=modules,
                ports=ports,
                vms=vms,
                seq=len(vms),
                base=snap,
            )
        )

    def save(self, path: Path) -> None:
        from iovkit.fileio import write_text

        write_text(path, self.s.model_dump_json(indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> EsxiSimulator:
        from iovkit.fileio import read_json, validation_line

        try:
            return cls(EsxiSimState.model_validate(read_json(path)))
        except ValidationError as err:
            loc, msg = validation_line(err)
            raise InputError(f"not an ESXi simulator state: {msg}", path=str(path), field=loc) from err

    # -- lookups ----------------------------------------------------------------------------------------------
    def port(self, name: str) -> SimPort:
        p = next((p for p in self.s.ports if p.name == name), None)
        if p is None:
            raise SimError(f"no vmnic {name!r}")
        return p

    def vm(self, name: str) -> SimVm:
        v = next((v for v in self.s.vms if v.name == name), None)
        if v is None:
            raise SimError(f"no VM named {name!r}")
        return v

    def requested(self, p: SimPort) -> int:
        """VFs the configuration asks for on a port (API config first, then max_vfs by PCI order)."""
        if p.api_enabled is not None:
            return p.api_num if p.api_enabled else 0
        vec = _vector(self.s.modules.get(p.driver))
        ports = sorted((q for q in self.s.ports if q.driver == p.driver), key=lambda q: q.pci)
        i = ports.index(p)
        return vec[i] if i < len(vec) else 0

    def _boot_vfs(self, p: SimPort) -> int:
        if not (p.capable and self.s.iommu):
            return 0
        want = self.requested(p)
        return min(want, p.max_vfs) if p.max_vfs is not None else want

    def reboot_required(self) -> bool:
        return any(self._boot_vfs(p) != p.running for p in self.s.ports)

    # -- documented behaviour ---------------------------------------------------------------------------------
    def reboot(self) -> None:
        if not self.s.in_maintenance:
            raise SimError("esxcli system shutdown reboot: the host is not in maintenance mode")
        for p in self.s.ports:
            p.running = self._boot_vfs(p)
        self.s.reboots += 1

    def enter_maintenance(self) -> None:
        on = [v.name for v in self.s.vms if v.on]
        if on:
            raise SimError(f"EnterMaintenanceMode: {len(on)} VM(s) still powered on ({', '.join(on)})")
        self.s.in_maintenance = True

    def exit_maintenance(self) -> None:
        self.s.in_maintenance = False

    def power_on(self, name: str) -> None:
        vm = self.vm(name)
        if vm.on:
            return
        if self.s.in_maintenance:
            raise SimError(f"PowerOnVM_Task {name}: the host is in maintenance mode")
        sriov = [a for a in vm.adapters if a.type == "sriov" and a.present is not False]
        if sriov and not (vm.locked or vm.reservation_mb == vm.memory_mb):
            raise SimError(
                "Invalid memory setting: memory reservation (sched.mem.min) should be equal to "
                f"memsize({vm.memory_mb})."
            )
        taken = {vf for v in self.s.vms if v.on for vf in v.vfs}
        got: list[tuple[str, int]] = []
        for a in sriov:
            p = next((p for p in self.s.ports if p.pci == a.pf), None)
            free = [i for i in range(p.running)] if p else []
            free = [i for i in free if p and (p.name, i) not in taken and (p.name, i) not in got]
            if p is None or not free:
                raise SimError(
                    f"Failed to power on virtual machine {name}, {a.name}: No SR-IOV virtual function (VF) is "
                    f"available for given physical function (PF) ({a.pf})."
                )
            got.append((p.name, free[0]))
        self.s.seq += 1
        vm.on, vm.vfs, vm.seq = True, got, self.s.seq

    def power_off(self, name: str) -> None:
        vm = self.vm(name)
        vm.on, vm.vfs = False, []

    # -- the typed steps --------------------------------------------------------------------------------------
    def execute(self, step: Step, phase: Literal["action", "verify", "undo"]) -> str:
        if self.s.fail_step == step.id and phase == self.s.fail_phase:
            raise SimError(f"injected failure at step {step.id} ({phase})")
        if phase == "action":
            return self._action(step)
        if phase == "verify":
            self._verify(step)
            return "verified"
        return self._undo(step)

    def _set_vfs(
        self, step: EsxEnableVfsStep, nums: list[int], enabled: list[bool] | None, options: str | None
    ) -> None:
        if step.method == "module":
            if options:
                self.s.modules[step.driver] = options
            else:
                self.s.modules.pop(step.driver, None)
            return
        for i, name in enumerate(step.ports):
            p = self.port(name)
            if not p.capable:
                raise SimError(f"HostConfigFault: sriov not supported on host= {self.s.host}, nic= {name}")
            if p.max_vfs is not None and nums[i] > p.max_vfs:
                raise SimError(f"maxVirtualFunctionSupported= {p.max_vfs} on {name}")
            p.api_enabled = enabled[i] if enabled is not None else nums[i] > 0
            p.api_num = nums[i]

    def _action(self, step: Step) -> str:
        match step:
            case EsxEnableVfsStep(num_vfs=n, options=opts):
                self._set_vfs(step, n, None, opts)
            case EsxMaintenanceStep(enter=True):
                self.enter_maintenance()
            case EsxMaintenanceStep(enter=False):
                self.exit_maintenance()
            case EsxRebootStep():
                self.reboot()
            case EsxPowerStep(vm=vm, on=True):
                self.power_on(vm)
            case EsxPowerStep(vm=vm, on=False):
                self.power_off(vm)
            case EsxMemoryStep(vm=vm, memory_mb=mb):
                v = self.vm(vm)
                v.reservation_mb, v.locked = mb, True
            case EsxDisconnectStep(vm=vm, adapter=a):
                self._adapter(vm, a).present = False
            case EsxAddSriovStep(vm=vm, pf=pf, network=net):
                v = self.vm(vm)
                if v.on:
                    raise SimError(
                        "The hot-plug operation failed. msg.pciPassthru.noMigration: vMotion, Storage vMotion, "
                        "Fault Tolerance, and PCI hot-plug cannot be used for a virtual machine with PCI DirectPath "
                        "I/O device."
                    )
                if v.hw_version is not None and v.hw_version < 10:
                    raise SimError(f"{vm}: SR-IOV passthrough needs hardware version 10 or later")
                slot = 31 - sum(1 for a in v.adapters if a.type == "sriov")
                v.adapters.append(
                    EsxiVmAdapter(name=f"pciPassthru{slot}", type="sriov", pf=pf, network=net, present=True)
                )
            case EsxVerifyVfStep():
                pass
            case _:
                raise SimError(f"the ESXi simulator cannot run a {step.kind} step")
        return ""

    def _adapter(self, vm: str, name: str) -> EsxiVmAdapter:
        a = next((a for a in self.vm(vm).adapters if a.name == name), None)
        if a is None:
            raise SimError(f"{vm} has no adapter {name!r}")
        return a

    def _verify(self, step: Step) -> None:
        match step:
            case EsxEnableVfsStep(ports=ports, num_vfs=nums):
                for name, n in zip(ports, nums, strict=True):
                    if self.requested(self.port(name)) != n:
                        raise SimError(f"{name}: {self.requested(self.port(name))} VFs configured, not {n}")
            case EsxMaintenanceStep(enter=e):
                if self.s.in_maintenance != e:
                    raise SimError(f"inMaintenanceMode is {self.s.in_maintenance}")
            case EsxRebootStep(expect=exp):
                for name, n in exp.items():
                    if self.port(name).running < n:
                        raise SimError(f"after the reboot {name} has {self.port(name).running} VFs, {n} needed")
            case EsxPowerStep(vm=vm, on=on):
                if self.vm(vm).on != on:
                    raise SimError(f"{vm} is not powered {'on' if on else 'off'}")
            case EsxMemoryStep(vm=vm, memory_mb=mb):
                v = self.vm(vm)
                if not (v.locked and v.reservation_mb == mb):
                    raise SimError(f"{vm}: reservation {v.reservation_mb} MB, locked {v.locked}")
            case EsxDisconnectStep(vm=vm, adapter=a):
                if self._adapter(vm, a).present is not False:
                    raise SimError(f"{vm}/{a} is still connected")
            case EsxAddSriovStep(vm=vm, pf=pf, existing=n):
                have = sum(1 for a in self.vm(vm).adapters if a.type == "sriov" and a.pf == pf)
                if have != n + 1:
                    raise SimError(f"{vm} has {have} SR-IOV adapter(s) on {pf}")
            case EsxVerifyVfStep(vm=vm, pf_nic=nic):
                if not any(p == nic for p, _ in self.vm(vm).vfs):
                    raise SimError(f"esxcli network sriovnic vf list -n {nic}: no active VF owned by {vm}")

    def _undo(self, step: Step) -> str:
        """Idempotent undo: look first, change only what is still different."""
        match step:
            case EsxEnableVfsStep(old_num_vfs=old, old_enabled=was, old_options=opts):
                self._set_vfs(step, old, was or None, opts)
                if self.reboot_required():
                    if not self.s.in_maintenance:
                        raise SimError(
                            "the restored VF settings need a reboot, and the host is not in maintenance mode"
                        )
                    self.reboot()
                    return "rebooted to restore the running VFs"
            case EsxMaintenanceStep(enter=True, was_in=was):
                if self.s.in_maintenance and not was:
                    self.exit_maintenance()
            case EsxMaintenanceStep(enter=False):
                if not self.s.in_maintenance:
                    self.enter_maintenance()
            case EsxPowerStep(vm=vm, on=True):
                self.power_off(vm)
            case EsxPowerStep(vm=vm, on=False):
                if not self.vm(vm).on:
                    self.power_on(vm)
            case EsxMemoryStep(vm=vm, old_reservation_mb=r, old_locked=lk):
                v = self.vm(vm)
                v.reservation_mb, v.locked = r, lk
            case EsxDisconnectStep(vm=vm, adapter=a):
                self._adapter(vm, a).present = True
            case EsxAddSriovStep(vm=vm, pf=pf, existing=n):
                v = self.vm(vm)
                mine = [x for x in v.adapters if x.type == "sriov" and x.pf == pf]
                for extra in mine[n:]:
                    if v.on:
                        raise SimError(f"{vm} is powered on: the SR-IOV adapter cannot be removed")
                    v.adapters.remove(extra)
        return ""

    # -- export -----------------------------------------------------------------------------------------------
    def to_snapshot(self) -> HostSnapshot:
        """The simulated host as `iovkit collect` would see it now (through the ESXi source's `finish`)."""
        from iovkit.sources.esxi.build import NicRow, finish

        base = self.s.base
        assert base.esxi is not None
        info = base.esxi.model_copy(deep=True)
        info.in_maintenance_mode = self.s.in_maintenance
        info.reboot_required = self.reboot_required() if base.esxi.reboot_required is not None else None
        for m in info.modules:
            opts = self.s.modules.get(m.name)
            if m.options is not None or opts is not None:
                m.options = opts or ""
            if "max_vfs" in m.params:
                m.params["max_vfs"] = ",".join(map(str, _vector(opts))) or None
        old_vfs = {(v.pf, v.index): v for v in base.esxi.vfs}
        owners = {vf: v.name for v in self.s.vms if v.on for vf in v.vfs}
        info.vfs = []
        lists = set(info.vf_lists)
        for p in self.s.ports:
            pt = info.passthru_for(p.pci)
            if pt is not None and pt.sriov_capable is not None:
                pt.sriov_enabled = self.requested(p) > 0
                pt.vfs_requested = self.requested(p)
                pt.vfs_present = p.running
                pt.sriov_active = p.running > 0 and p.running == self._boot_vfs(p)
            if p.name not in lists:
                continue  # the source never listed this port's VFs (the API has no VF list): neither does the copy
            for i in range(p.running):
                old = old_vfs.get((p.name, i))
                info.vfs.append(
                    EsxiVf(
                        pf=p.name,
                        index=i,
                        active=(p.name, i) in owners,
                        pci_address=old.pci_address if old else None,
                        pci_address_raw=old.pci_address_raw if old else None,
                        vm=owners.get((p.name, i)),
                    )
                )
        info.vf_lists = [n.name for n in base.nics if n.name in lists]
        if info.worlds is not None:
            ids = {w.display_name: w for w in info.worlds}
            info.worlds = [
                ids.get(v.name) or EsxiWorld(display_name=v.name, world_id=3_000_000 + v.seq)
                for v in sorted(self.s.vms, key=lambda v: v.seq)
                if v.on
            ]
        vms: list[EsxiVm] = []
        for v in self.s.vms:
            old_vm = next((x for x in base.esxi.vms if x.name == v.name), None)
            vm = old_vm.model_copy(deep=True) if old_vm else EsxiVm(name=v.name)
            vm.power_state = "poweredOn" if v.on else "poweredOff"
            vm.reservation_mb, vm.reserve_all = v.reservation_mb, v.locked
            vm.adapters = [a.model_copy() for a in v.adapters]
            vms.append(vm)
        info.vms = vms
        for vm in info.vms:
            old_vm = next((x for x in base.esxi.vms if x.name == vm.name), None)
            if old_vm is not None and old_vm.power_state is None:
                vm.power_state = None  # the paste did not say (no vm process list): keep unknown unknown
        rows = [
            NicRow(
                name=n.name,
                pci=n.pci_address,
                driver=n.driver,
                mac=n.mac,
                speed_mbps=n.link_speed_bps // 1_000_000 if n.link_speed_bps else None,
                link=n.status,
                description=n.description,
            )
            for n in base.nics
        ]
        snap = finish(
            info, rows, host=self.s.host, kind=base.source.kind, origin=base.source.origin, errors=base.errors
        )
        snap.source = base.source.model_copy()
        snap.cpu = base.cpu.model_copy()
        return snap

    def signature(self) -> dict[str, Any]:
        """What rollback must restore: configuration, running VFs, maintenance mode, every VM's settings and power,
        and how many VFs each running VM holds."""
        return {
            "modules": dict(sorted(self.s.modules.items())),
            "ports": sorted((p.name, p.api_enabled, p.api_num, p.running) for p in self.s.ports),
            "maintenance": self.s.in_maintenance,
            "vms": sorted(
                (
                    v.name,
                    v.on,
                    v.reservation_mb,
                    v.locked,
                    tuple((a.name, a.type, a.pf, a.network, a.present) for a in v.adapters),
                    len(v.vfs),
                )
                for v in self.s.vms
            ),
            "deleted_adapters": self.s.deleted_adapters,
        }
