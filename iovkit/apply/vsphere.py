"""The vSphere executor: ESXi steps through pyVmomi (imported only here, when this executor is chosen).

Each step maps to one API call (esxi.md §2, §4, §5): UpdatePassthruConfig with a vim.host.SriovConfig, or
HostKernelModuleSystem.UpdateModuleOptionString with the whole option string; Enter/ExitMaintenanceMode_Task;
RebootHost_Task, then reconnecting until the host answers; ReconfigVM_Task for the memory reservation and the
adapters; PowerOn/ShutdownGuest/PowerOff. The spec builders are pure (tested offline with pyVmomi's own
objects); the calls themselves were not run against a real host (see docs/howto-esxi.md).
"""

from __future__ import annotations

import time
from typing import Any

from iovkit.apply.executors import Outcome, _compare
from iovkit.errors import UnreachableError
from iovkit.plan.model import (
    EsxAddSriovStep,
    EsxDisconnectStep,
    EsxEnableVfsStep,
    EsxMaintenanceStep,
    EsxMemoryStep,
    EsxPowerStep,
    EsxRebootStep,
    EsxVerifyVfStep,
    Plan,
    Step,
)
from iovkit.plan.render import Phase
from iovkit.plan.render_esxi import REBOOT_REASON, esx_phase
from iovkit.sources.esxi.target import VsphereTarget

TASK_TIMEOUT = 1800  # a reboot of a large host takes many minutes
POLL = 5.0


# -- pure spec builders ----------------------------------------------------------------------------------------


def sriov_config(pci: str, enabled: bool, num: int) -> Any:
    """`vim.host.SriovConfig` as Ansible's vmware_host_sriov builds it (passthruEnabled left False)."""
    from pyVmomi import vim

    return vim.host.SriovConfig(id=pci, sriovEnabled=enabled, numVirtualFunction=num, passthruEnabled=False)


def memory_spec(reservation_mb: int, locked: bool) -> Any:
    """Reserve all guest memory (All locked): memoryReservationLockedToMax + reservation = memoryMB."""
    from pyVmomi import vim

    return vim.vm.ConfigSpec(
        memoryReservationLockedToMax=locked, memoryAllocation=vim.ResourceAllocationInfo(reservation=reservation_mb)
    )


def add_sriov_spec(pf: str, backing: Any) -> Any:
    """A new VirtualSriovEthernetCard on physical function `pf`, network from `backing` (port group)."""
    from pyVmomi import vim

    card = vim.vm.device.VirtualSriovEthernetCard(
        key=-1,
        backing=backing,
        allowGuestOSMtuChange=False,
        sriovBacking=vim.vm.device.VirtualSriovEthernetCard.SriovBackingInfo(
            physicalFunctionBacking=vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
                id=pf, deviceId="0", systemId="BYPASS", vendorId=0, deviceName=""
            )
        ),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=True, allowGuestControl=False
        ),
    )
    change = vim.vm.device.VirtualDeviceSpec(operation=vim.vm.device.VirtualDeviceSpec.Operation.add, device=card)
    return vim.vm.ConfigSpec(deviceChange=[change])


def edit_connect_spec(device: Any, connected: bool) -> Any:
    from pyVmomi import vim

    device.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=connected, connected=connected, allowGuestControl=True
    )
    change = vim.vm.device.VirtualDeviceSpec(operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=device)
    return vim.vm.ConfigSpec(deviceChange=[change])


def remove_spec(devices: list[Any]) -> Any:
    from pyVmomi import vim

    op = vim.vm.device.VirtualDeviceSpec.Operation.remove
    return vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation=op, device=d) for d in devices])


def sriov_cards(vm: Any, pf: str) -> list[Any]:
    from pyVmomi import vim

    out = []
    for d in vm.config.hardware.device:
        if isinstance(d, vim.vm.device.VirtualSriovEthernetCard):
            bk = d.sriovBacking.physicalFunctionBacking if d.sriovBacking else None
            if bk is not None and (bk.id or "").lower() == pf.lower():
                out.append(d)
    return out


def paste_plan_stale(plan: Plan, live: Any) -> str | None:
    """For a plan made from pasted output: the live host still holds what the steps expect to find."""
    from iovkit.snapshot import esxi_max_vfs_vector

    if (live.host.name or "").split(".")[0].lower() != (plan.host or "").split(".")[0].lower():
        return f"plan is for host {plan.host!r}, but the live host is {live.host.name!r}"
    info = live.esxi
    assert info is not None
    vms = {v.name: v for v in info.vms}
    for step in plan.steps:
        match step:
            case EsxEnableVfsStep(method="module", driver=drv, old_options=old):
                mod = info.module(drv)
                now = esxi_max_vfs_vector(mod) if mod else None
                was = [int(x) for p in (old or "").split() if p.startswith("max_vfs=") for x in p[8:].split(",") if x]
                if (now or []) != was:
                    return f"stale snapshot: {drv} max_vfs is {now}, the plan expected {was}; re-collect and re-plan"
            case EsxMemoryStep(vm=name, old_reservation_mb=old):
                vm = vms.get(name)
                if vm is None:
                    return f"stale snapshot: no VM {name!r} on the live host"
                if (vm.reservation_mb or 0) != old and not vm.reserve_all:
                    return f"stale snapshot: {name} reserves {vm.reservation_mb} MB, the plan expected {old}"
            case EsxAddSriovStep(vm=name, pf=pf, existing=n):
                vm = vms.get(name)
                have = sum(1 for a in vm.adapters if a.type == "sriov" and a.pf == pf) if vm else None
                if have != n:
                    return f"stale snapshot: {name} has {have} SR-IOV adapter(s) on {pf}, the plan expected {n}"
    return None


# -- the executor ----------------------------------------------------------------------------------------------


class VsphereExecutor:
    """Runs ESXi steps against vCenter or an ESXi host; reconnects after the host reboots."""

    name = "vsphere"

    def __init__(self, target: VsphereTarget, password: str) -> None:
        self.target = target
        self._password = password
        self._si: Any = None
        self._host: Any = None

    def _connect(self) -> Any:
        if self._host is None:
            from iovkit.sources.esxi.live import connect, find_host

            self._si = connect(self.target, self._password)
            self._host = find_host(self._si, self.target.esxi_host)
        return self._host

    def host_name(self) -> str | None:
        """The host's own name from the API (the target may be an IP address or a vCenter)."""
        return str(self._connect().name)

    def command(self, step: Step, phase: Phase) -> str:
        return esx_phase(step, phase)

    def stale_reason(self, plan: Plan) -> str | None:
        from iovkit.sources.esxi.live import read_host

        live = read_host(self._connect(), self.target.host)
        if plan.snapshot.source.kind == "esxi-live":
            return _compare(plan, live)
        # A plan made from a paste: the API shows other facts (no VF owners, .vmx keys vs device labels), so only
        # what the steps restore is compared.
        return paste_plan_stale(plan, live)

    def run(self, step: Step, phase: Phase) -> Outcome:
        from pyVmomi import vim, vmodl

        try:
            return Outcome(True, self._run(step, phase) or "")
        except (vim.fault.VimFault, vmodl.MethodFault) as err:
            return Outcome(False, f"{type(err).__name__}: {getattr(err, 'msg', '') or err}")
        except AssertionError as err:
            return Outcome(False, str(err))
        except OSError as err:
            raise UnreachableError(f"{self.target.host}: {err}") from None

    # -- helpers ---------------------------------------------------------------------------------------------
    def _wait(self, task: Any) -> Any:
        from pyVmomi import vim

        end = time.monotonic() + TASK_TIMEOUT
        while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
            if time.monotonic() > end:
                raise AssertionError(f"task {task.info.descriptionId} did not finish in {TASK_TIMEOUT} s")
            time.sleep(1.0)
        if task.info.state == vim.TaskInfo.State.error:
            raise task.info.error
        return task.info.result

    def _vm(self, name: str) -> Any:
        vm = next((v for v in self._connect().vm if v.name == name), None)
        assert vm is not None, f"no VM named {name!r} on {self.host_name()}"
        return vm

    def _device(self, vm: Any, label: str, mac: str | None = None) -> Any:
        """By label ("Network adapter 2"), else by MAC: a plan made from a paste names the .vmx key ("ethernet1")."""
        devs = vm.config.hardware.device
        dev = next((d for d in devs if d.deviceInfo and d.deviceInfo.label == label), None)
        if dev is None and mac:
            dev = next((d for d in devs if (getattr(d, "macAddress", None) or "").lower() == mac.lower()), None)
        assert dev is not None, f"{vm.name} has no device {label!r}" + (f" or with MAC {mac}" if mac else "")
        return dev

    def _backing(self, network: str | None) -> Any:
        from pyVmomi import vim

        for net in self._connect().network:
            if net.name != network:
                continue
            if isinstance(net, vim.dvs.DistributedVirtualPortgroup):
                dvs = net.config.distributedVirtualSwitch
                assert dvs is not None, f"port group {network!r} has no switch"
                conn = vim.dvs.PortConnection(portgroupKey=net.key, switchUuid=dvs.uuid)
                return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=conn)
            return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=net.name, network=net)
        raise AssertionError(f"no port group named {network!r} on {self.host_name()}")

    def _passthru(self, pci: str) -> Any:
        info = self._connect().configManager.pciPassthruSystem.pciPassthruInfo
        return next((p for p in info if p.id.lower() == pci.lower()), None)

    def _reboot(self) -> str:
        """RebootHost_Task in maintenance mode, then wait until the host reports a later boot time (works for a
        direct connection, which drops, and through vCenter, which keeps answering while the host is down)."""
        host = self._connect()
        assert host.runtime.inMaintenanceMode, "the host is not in maintenance mode: refusing to reboot"
        booted = host.runtime.bootTime
        self._wait(host.RebootHost_Task(force=False))
        self._host = None
        end = time.monotonic() + TASK_TIMEOUT
        while True:
            time.sleep(POLL)
            try:
                h = self._connect()
                if h.runtime.connectionState == "connected" and h.runtime.bootTime != booted:
                    return f"rebooted ({REBOOT_REASON})"
            except Exception:  # while the host boots, any transport or API error means "not yet"
                self._host = None
            if time.monotonic() > end:
                raise AssertionError(f"{self.target.host} did not come back within {TASK_TIMEOUT} s")

    def _restore_vfs_then_reboot(self) -> str:
        host = self._connect()
        if host.summary.rebootRequired:
            assert host.runtime.inMaintenanceMode, (
                "restored VF settings need a reboot; the host is not in maintenance mode"
            )
            return self._reboot()
        return ""

    # -- one phase of one step ---------------------------------------------------------------------------------
    def _run(self, step: Step, phase: Phase) -> str | None:
        host = self._connect()
        match step:
            case EsxEnableVfsStep(method="api", pcis=pcis, num_vfs=nums, old_num_vfs=old, old_enabled=was):
                pps = host.configManager.pciPassthruSystem
                if phase == "verify":
                    for pci, n in zip(pcis, nums, strict=True):
                        p = self._passthru(pci)
                        assert p is not None and p.sriovEnabled and p.numVirtualFunctionRequested == n, (
                            f"{pci}: SR-IOV not configured with {n} VFs"
                        )
                    return None
                if phase == "action":
                    pps.UpdatePassthruConfig([sriov_config(p, True, n) for p, n in zip(pcis, nums, strict=True)])
                    pps.Refresh()
                    return None
                flags = was or [False] * len(pcis)
                pps.UpdatePassthruConfig([sriov_config(p, w, o) for p, o, w in zip(pcis, old, flags, strict=True)])
                pps.Refresh()
                return self._restore_vfs_then_reboot()
            case EsxEnableVfsStep(method="module", driver=drv, options=opts, old_options=old_opts):
                kms = host.configManager.kernelModuleSystem
                if phase == "verify":
                    now = kms.QueryConfiguredModuleOptionString(drv)
                    assert now == opts, f"{drv} options are {now!r}, not {opts!r}"
                    return None
                kms.UpdateModuleOptionString(drv, opts if phase == "action" else (old_opts or ""))
                return None if phase == "action" else self._restore_vfs_then_reboot()
            case EsxMaintenanceStep(enter=enter, was_in=was):
                want = enter if phase != "undo" else (was if enter else True)
                if phase == "verify":
                    assert host.runtime.inMaintenanceMode == enter, f"inMaintenanceMode is not {enter}"
                    return None
                if host.runtime.inMaintenanceMode != want:
                    task = host.EnterMaintenanceMode_Task(timeout=0) if want else host.ExitMaintenanceMode_Task(0)
                    self._wait(task)
                return None
            case EsxRebootStep(expect=exp):
                if phase == "action":
                    return self._reboot()
                if phase == "verify":
                    pnics = {p.device: p.pci for p in host.config.network.pnic}
                    for nic, n in exp.items():
                        p = self._passthru(pnics.get(nic, ""))
                        assert p is not None and hasattr(p, "numVirtualFunction"), (
                            f"{nic}: the API reports no SR-IOV state; check `esxcli network sriovnic vf list -n {nic}`"
                        )
                        assert p.numVirtualFunction >= n, (
                            f"{nic} has {p.numVirtualFunction} VFs after the reboot, {n} needed"
                        )
                return None
            case EsxPowerStep(vm=name, on=on):
                vm = self._vm(name)
                want = on if phase != "undo" else not on
                if phase == "verify":
                    assert (vm.runtime.powerState == "poweredOn") == on, f"{name} is {vm.runtime.powerState}"
                    return None
                if (vm.runtime.powerState == "poweredOn") == want:
                    return None
                if want:
                    self._wait(vm.PowerOnVM_Task())
                elif vm.guest and vm.guest.toolsRunningStatus == "guestToolsRunning":
                    vm.ShutdownGuest()
                    end = time.monotonic() + 600
                    while vm.runtime.powerState != "poweredOff" and time.monotonic() < end:
                        time.sleep(POLL)
                    if vm.runtime.powerState != "poweredOff":
                        self._wait(vm.PowerOffVM_Task())
                else:
                    self._wait(vm.PowerOffVM_Task())
                return None
            case EsxMemoryStep(vm=name, memory_mb=mb, old_reservation_mb=old, old_locked=lk):
                vm = self._vm(name)
                if phase == "verify":
                    cfg = vm.config
                    assert cfg.memoryReservationLockedToMax and cfg.memoryAllocation.reservation == mb, (
                        f"{name}: reservation {cfg.memoryAllocation.reservation} MB"
                    )
                    return None
                spec = memory_spec(mb, True) if phase == "action" else memory_spec(old, lk)
                self._wait(vm.ReconfigVM_Task(spec=spec))
                return None
            case EsxDisconnectStep(vm=name, adapter=label, mac=mac):
                vm = self._vm(name)
                dev = self._device(vm, label, mac)
                if phase == "verify":
                    assert dev.connectable is not None and not dev.connectable.startConnected, (
                        f"{name}/{label} connected"
                    )
                    return None
                self._wait(vm.ReconfigVM_Task(spec=edit_connect_spec(dev, phase == "undo")))
                return None
            case EsxAddSriovStep(vm=name, pf=pf, network=net, existing=n):
                vm = self._vm(name)
                have = sriov_cards(vm, pf)
                if phase == "verify":
                    assert len(have) == n + 1, f"{name} has {len(have)} SR-IOV adapter(s) on {pf}"
                    return None
                if phase == "action":
                    self._wait(vm.ReconfigVM_Task(spec=add_sriov_spec(pf, self._backing(net))))
                elif len(have) > n:
                    self._wait(vm.ReconfigVM_Task(spec=remove_spec(have[n:])))
                return None
            case EsxVerifyVfStep(vm=name, pf_nic=nic):
                if phase != "verify":
                    return None
                vm = self._vm(name)
                # ESXi maps a free VF at power-on and refuses power-on without one (esxi.md §1.4); the API does not
                # show which VF (virtualFunctionBacking stays unset, §3.10), so a running VM with a connected SR-IOV
                # card on this PF is the evidence here.
                pci = next((p.pci for p in host.config.network.pnic if p.device == nic), "")
                cards = [c for c in sriov_cards(vm, pci) if c.connectable is None or c.connectable.connected]
                assert vm.runtime.powerState == "poweredOn" and cards, f"{name} has no connected VF of {nic}"
                return None
        raise AssertionError(f"step {step.id} ({step.kind}) is not an ESXi step")
