"""Live ESXi collection through the vSphere API with pyVmomi (imported here only, never at start-up).

`from_api()` is pure: it turns pyVmomi data objects (AboutInfo, HostPciPassthruInfo/HostSriovInfo,
HostPciDevice, PhysicalNic, CpuPackage, VirtualMachineConfigInfo) into the same EsxiInfo a paste gives, so tests
build those objects offline. `collect_vsphere()` is the thin I/O around it: connect (certificate verification on
unless --insecure), find the host, read its properties, query the PF drivers' option strings, disconnect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iovkit.errors import InputError, UnreachableError
from iovkit.snapshot import (
    CollectionError,
    EsxiInfo,
    EsxiModule,
    EsxiPassthru,
    EsxiPciDevice,
    EsxiVm,
    EsxiVmAdapter,
    HostSnapshot,
)
from iovkit.sources.esxi.build import NicRow, finish
from iovkit.sources.esxi.parsers import normalize_bdf
from iovkit.sources.esxi.target import VsphereTarget


@dataclass
class VmApi:
    """What the collector reads per VM: name, moref, config (VirtualMachineConfigInfo) and power state."""

    name: str
    moref: str | None
    config: Any
    power_state: str | None


def _u16(v: int | None) -> int | None:
    """HostPciDevice ids are xsd:short: 0x8086 arrives as -32634 (esxi.md §4)."""
    return None if v is None else v & 0xFFFF


def passthru_from_api(items: Iterable[Any]) -> list[EsxiPassthru]:
    """HostPciPassthruInfo / HostSriovInfo -> EsxiPassthru; a plain PciPassthruInfo has no sriov* fields."""
    out = []
    for p in items or []:
        bdf = normalize_bdf(getattr(p, "id", None))
        if not bdf:
            continue
        sriov = hasattr(p, "sriovCapable")  # how Ansible tells SriovInfo apart (esxi.md §4)
        out.append(
            EsxiPassthru(
                id=bdf,
                passthru_capable=p.passthruCapable,
                passthru_enabled=p.passthruEnabled,
                passthru_active=p.passthruActive,
                sriov_capable=p.sriovCapable if sriov else None,
                sriov_enabled=p.sriovEnabled if sriov else None,
                sriov_active=p.sriovActive if sriov else None,
                vfs_requested=p.numVirtualFunctionRequested if sriov else None,
                vfs_present=p.numVirtualFunction if sriov else None,
                vfs_max=p.maxVirtualFunctionSupported if sriov else None,
            )
        )
    return out


def _vm_from_api(v: VmApi) -> EsxiVm:
    from pyVmomi import vim

    cfg = v.config
    vm = EsxiVm(name=v.name, moref=v.moref, power_state=str(v.power_state) if v.power_state else None)
    if cfg is None:
        return vm
    ver = str(cfg.version or "")
    vm.hw_version = int(ver.split("-")[1]) if ver.startswith("vmx-") and ver[4:].isdigit() else None
    vm.vmx_path = cfg.files.vmPathName if cfg.files else None
    vm.memory_mb = cfg.hardware.memoryMB if cfg.hardware else None
    alloc = cfg.memoryAllocation
    vm.reservation_mb = alloc.reservation if alloc is not None and alloc.reservation is not None else None
    vm.reserve_all = cfg.memoryReservationLockedToMax
    for dev in cfg.hardware.device if cfg.hardware else []:
        if not isinstance(dev, vim.vm.device.VirtualEthernetCard):
            continue
        label = dev.deviceInfo.label if dev.deviceInfo else f"device {dev.key}"
        net = None
        bk = dev.backing
        if isinstance(bk, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            net = bk.deviceName
        elif isinstance(bk, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo) and bk.port:
            net = bk.port.portgroupKey
        conn = dev.connectable
        present = conn.startConnected if conn is not None else None
        if isinstance(dev, vim.vm.device.VirtualSriovEthernetCard):
            pf_raw = None
            sb = dev.sriovBacking
            if sb is not None and sb.physicalFunctionBacking is not None:
                pf_raw = sb.physicalFunctionBacking.id
            vm.adapters.append(
                EsxiVmAdapter(
                    name=label,
                    type="sriov",
                    pf=normalize_bdf(pf_raw),  # the API's id is hex (`0000:3b:00.0`) or `Automatic-...`
                    pf_raw=pf_raw,
                    network=net,
                    mac=dev.macAddress,
                    present=present,
                    allow_guest_mtu_change=dev.allowGuestOSMtuChange,
                )
            )
        else:
            kind = (
                "vmxnet3"
                if isinstance(dev, vim.vm.device.VirtualVmxnet3)
                else "e1000"
                if isinstance(dev, vim.vm.device.VirtualE1000 | vim.vm.device.VirtualE1000e)
                else "other"
            )
            vm.adapters.append(EsxiVmAdapter(name=label, type=kind, network=net, mac=dev.macAddress, present=present))
    return vm


def from_api(
    *,
    name: str | None,
    product: Any,
    passthru: Iterable[Any] | None,
    pci_devices: Iterable[Any] | None,
    pnics: Iterable[Any],
    cpu_pkgs: Iterable[Any] | None,
    reboot_required: bool | None,
    in_maintenance: bool | None,
    rebind: bool | None,
    vms: Iterable[VmApi],
    module_options: dict[str, str],
    origin: str | None,
    errors: list[CollectionError] | None = None,
) -> HostSnapshot:
    """pyVmomi data objects -> the ESXi snapshot (the same shape a paste gives)."""
    info = EsxiInfo(
        product=getattr(product, "name", None),
        version=getattr(product, "version", None),
        build=getattr(product, "build", None),
        reboot_required=reboot_required,
        in_maintenance_mode=in_maintenance,
        rebind_without_reboot=rebind,
        passthru=passthru_from_api(passthru or []) if passthru is not None else None,
    )
    vendors = {str(getattr(c, "vendor", "")).lower() for c in cpu_pkgs or []}
    info.cpu_vendor = "intel" if "intel" in vendors else "amd" if "amd" in vendors else None
    if pci_devices is not None:
        info.pci_devices = [
            EsxiPciDevice(
                id=normalize_bdf(d.id) or d.id,
                vendor_id=_u16(d.vendorId),
                device_id=_u16(d.deviceId),
                class_id=_u16(d.classId),
                vendor_name=d.vendorName,
                device_name=d.deviceName,
            )
            for d in pci_devices
        ]
    rows = []
    for p in pnics:
        speed = p.linkSpeed.speedMb if p.linkSpeed is not None else None
        rows.append(
            NicRow(
                name=p.device,
                pci=normalize_bdf(p.pci),
                driver=p.driver,
                mac=p.mac,
                speed_mbps=speed,
                link="Up" if speed else "Down",
            )
        )
        dev = next((d for d in info.pci_devices or [] if d.id == normalize_bdf(p.pci)), None)
        if dev is not None:
            dev.vmkernel_name, dev.module_name = p.device, p.driver
            rows[-1].description = " ".join(x for x in (dev.vendor_name, dev.device_name) if x) or None
    for drv, opts in sorted(module_options.items()):
        params = {}
        for part in opts.split():
            k, _, val = part.partition("=")
            params[k] = val or None
        info.modules.append(EsxiModule(name=drv, options=opts, params=params))
    info.vms = [_vm_from_api(v) for v in vms]
    return finish(info, rows, host=name, kind="esxi-live", origin=origin, errors=errors)


# -- I/O: connect, read, disconnect -------------------------------------------------------------------------------


def connect(target: VsphereTarget, password: str) -> Any:
    """SmartConnect with certificate verification unless --insecure; failures become one line (exit 3)."""
    import ssl

    try:
        from pyVim.connect import SmartConnect
        from pyVmomi import vim
    except ImportError as err:  # pragma: no cover - pyvmomi is a dependency
        raise UnreachableError("pyvmomi is not installed (pip install pyvmomi)") from err
    # An explicit verifying context: pyVim skips verification by itself for localhost/127.0.0.1 otherwise.
    context = None if target.insecure or target.protocol != "https" else ssl.create_default_context()
    try:
        return SmartConnect(
            protocol=target.protocol,
            host=target.host,
            port=target.port,
            user=target.user,
            pwd=password,
            sslContext=context,
            disableSslCertValidation=target.insecure,
            connectionPoolTimeout=-1,
        )
    except vim.fault.InvalidLogin:
        raise UnreachableError(f"{target.host}: login failed for {target.user}") from None
    except ssl.SSLCertVerificationError as err:
        raise UnreachableError(
            f"{target.host}: certificate not trusted ({err.verify_message}); install the CA or pass --insecure"
        ) from None
    except (OSError, vim.fault.HostConnectFault) as err:
        raise UnreachableError(f"{target.host}:{target.port}: {err}") from None


def find_host(si: Any, name: str | None) -> Any:
    """The HostSystem to read: the only one, or the one named by --esxi-host (through vCenter)."""
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        hosts = list(view.view)
    finally:
        view.Destroy()
    names = [h.name for h in hosts]
    if name is not None:
        match = [h for h, n in zip(hosts, names, strict=True) if n == name or n.split(".")[0] == name]
        if not match:
            raise InputError(f"no ESXi host {name!r} here; hosts: {', '.join(names) or 'none'}", field="--esxi-host")
        return match[0]
    if len(hosts) != 1:
        raise InputError(
            f"{len(hosts)} hosts here ({', '.join(names)}): name one with --esxi-host", field="--esxi-host"
        )
    return hosts[0]


def read_host(host: Any, origin: str | None) -> HostSnapshot:
    """Read one HostSystem (each attribute is one property fetch) and build the snapshot."""
    from pyVmomi import vim

    errors: list[CollectionError] = []
    cfg = host.config
    hw = host.hardware
    pnics = list(cfg.network.pnic) if cfg and cfg.network else []
    options: dict[str, str] = {}
    kms = host.configManager.kernelModuleSystem
    for drv in sorted({p.driver for p in pnics if p.driver}):
        try:
            options[drv] = kms.QueryConfiguredModuleOptionString(drv)
        except vim.fault.NotFound:
            continue
        except vim.fault.VimFault as err:
            errors.append(
                CollectionError(source=f"QueryConfiguredModuleOptionString({drv})", error=str(getattr(err, "msg", err)))
            )
    vms = [VmApi(v.name, v._moId, v.config, v.runtime.powerState) for v in host.vm]
    cap = host.capability
    return from_api(
        name=host.name,
        product=cfg.product if cfg else None,
        passthru=cfg.pciPassthruInfo if cfg else None,
        pci_devices=hw.pciDevice if hw else None,
        pnics=pnics,
        cpu_pkgs=hw.cpuPkg if hw else None,
        reboot_required=host.summary.rebootRequired,
        in_maintenance=host.runtime.inMaintenanceMode,
        rebind=getattr(cap, "deviceRebindWithoutRebootSupported", None) if cap else None,
        vms=vms,
        module_options=options,
        origin=origin,
        errors=errors,
    )


def collect_vsphere(target: VsphereTarget, password: str) -> HostSnapshot:
    """`iovkit collect --vsphere HOST`: one ESXi host's snapshot over the vSphere API."""
    from pyVim.connect import Disconnect

    si = connect(target, password)
    try:
        host = find_host(si, target.esxi_host)
        return read_host(host, f"{target.protocol}://{target.host}:{target.port}")
    finally:
        Disconnect(si)
