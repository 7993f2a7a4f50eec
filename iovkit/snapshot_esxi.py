"""ESXi's records in the host snapshot (platform "esxi"): facts with no Hyper-V/Linux equivalent (esxi.md).

`iovkit.snapshot` re-exports them; `HostSnapshot.esxi` holds an EsxiInfo. None means "not collected", as
everywhere in the snapshot. Kept apart only for size: it imports only snapshot_base.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from iovkit.snapshot_base import NullableLists
from iovkit.snapshot_base import StrictModel as _Model

__all__ = [
    "ESXI_COLLECTIONS",
    "EsxiInfo",
    "EsxiModule",
    "EsxiPassthru",
    "EsxiPciDevice",
    "EsxiVf",
    "EsxiVm",
    "EsxiVmAdapter",
    "EsxiWorld",
    "esxi_max_vfs_vector",
    "esxi_options_with_max_vfs",
]


class EsxiModule(_Model):
    """A PF driver module: its parameters (`esxcli system module parameters list -m M`) and stored options."""

    name: str
    params: dict[str, str | None] = Field(
        default_factory=dict, description="Parameter name -> current value (None when empty)"
    )
    has_max_vfs: bool | None = Field(None, description="The module declares a max_vfs parameter (igbn does not)")
    max_vfs_range: str | None = Field(None, description="e.g. '0..128', from the parameter's description")
    options: str | None = Field(
        None, description="The configured option string (esxcfg-module -g, QueryConfiguredModuleOptionString)"
    )


class EsxiPassthru(_Model):
    """One PCI function as HostPciPassthruInfo / HostSriovInfo (or `esxcli hardware pci pcipassthru list`)."""

    id: str = Field(description="0000:bb:dd.f, hex")
    passthru_capable: bool | None = None
    passthru_enabled: bool | None = None
    passthru_active: bool | None = None
    sriov_capable: bool | None = Field(None, description="None: a plain PciPassthruInfo or not collected")
    sriov_enabled: bool | None = None
    sriov_active: bool | None = Field(None, description="enabled + rebooted")
    vfs_requested: int | None = Field(None, description="numVirtualFunctionRequested")
    vfs_present: int | None = Field(None, description="numVirtualFunction")
    vfs_max: int | None = Field(None, description="maxVirtualFunctionSupported")


class EsxiPciDevice(_Model):
    """hardware.pciDevice / `esxcli hardware pci list`; vendor/device ids unsigned (the API's xsd:short masked)."""

    id: str
    vendor_id: int | None = None
    device_id: int | None = None
    class_id: int | None = None
    vendor_name: str | None = None
    device_name: str | None = None
    vmkernel_name: str | None = None
    module_name: str | None = None
    current_owner: str | None = None


class EsxiVf(_Model):
    """A row of `esxcli network sriovnic vf list -n vmnicN`."""

    pf: str
    index: int
    active: bool | None = None
    pci_address: str | None = Field(None, description="Normalised to hex 0000:bb:dd.f")
    pci_address_raw: str | None = Field(None, description="As printed: decimal before 8.0 U3, hex from 8.0 U3")
    owner_world_id: int | None = None
    vm: str | None = Field(None, description="The VM owning it, from `esxcli vm process list`")


class EsxiWorld(_Model):
    """A running VM in `esxcli vm process list`."""

    display_name: str
    world_id: int | None = None
    vmx_cartel_id: int | None = None
    config_file: str | None = None


class EsxiVmAdapter(_Model):
    """A VM network adapter: VirtualSriovEthernetCard / vmxnet3 / e1000(e), from the API or the .vmx."""

    name: str = Field(description="Device label ('Network adapter 2') or .vmx key ('pciPassthru31', 'ethernet0')")
    type: Literal["sriov", "vmxnet3", "e1000", "other"]
    pf: str | None = Field(None, description="SR-IOV: the physical function, hex 0000:bb:dd.f (None = automatic)")
    pf_raw: str | None = Field(None, description="The PF id as written (.vmx: decimal '00000:026:00.1')")
    network: str | None = Field(None, description="Port group name, or the DVS port group key")
    mac: str | None = None
    present: bool | None = None
    allow_guest_mtu_change: bool | None = None


class EsxiVm(_Model):
    name: str
    moref: str | None = None
    vmx_path: str | None = None
    hw_version: int | None = Field(None, description="virtualHW.version / config.version 'vmx-21' -> 21")
    memory_mb: int | None = None
    reservation_mb: int | None = Field(None, description="sched.mem.min / memoryAllocation.reservation")
    reserve_all: bool | None = Field(
        None, description="Reserve all guest memory: sched.mem.pin / memoryReservationLockedToMax"
    )
    power_state: str | None = Field(None, description="poweredOn, poweredOff, suspended")
    adapters: list[EsxiVmAdapter] = Field(default_factory=list)


# EsxiInfo's lists that may be "not collected" (null in the JSON) as a whole, like HostSnapshot's COLLECTIONS.
ESXI_COLLECTIONS: tuple[str, ...] = ("modules", "vf_lists", "vfs", "vms")


class EsxiInfo(NullableLists):
    """ESXi facts a rule or a step reads that have no place in the shared fields. None = not collected.

    The lists in ESXI_COLLECTIONS work like the snapshot's record lists: null in the JSON when the input did not
    contain them (`has(name)` False), an empty list in Python so iteration needs no guard."""

    product: str | None = None
    version: str | None = Field(None, description="e.g. '8.0.3'")
    update: str | None = None
    build: str | None = None
    cpu_vendor: Literal["intel", "amd"] | None = Field(
        None, description="From the CPU package or the host bridge's PCI vendor"
    )
    reboot_required: bool | None = None
    in_maintenance_mode: bool | None = None
    rebind_without_reboot: bool | None = Field(None, description="capability.deviceRebindWithoutRebootSupported")
    boot_log: list[str] | None = Field(None, description="DMAR/IOV lines of vmkernel.log; [] = read, none found")
    modules: list[EsxiModule] = Field(default_factory=list)
    passthru: list[EsxiPassthru] | None = None
    pci_devices: list[EsxiPciDevice] | None = None
    sriov_nics: list[str] | None = Field(None, description="`esxcli network sriovnic list` names")
    vf_lists: list[str] = Field(default_factory=list, description="vmnics whose VF list was read")
    vfs: list[EsxiVf] = Field(default_factory=list)
    worlds: list[EsxiWorld] | None = None
    vms: list[EsxiVm] = Field(default_factory=list)

    COLLECTIONS = ESXI_COLLECTIONS

    def version_tuple(self) -> tuple[int, ...] | None:
        """(8, 0, 3) from '8.0.3'; None when the version was not collected or does not parse."""
        if not self.version:
            return None
        try:
            return tuple(int(p) for p in self.version.split(".")[:3])
        except ValueError:
            return None

    def passthru_for(self, pci: str | None) -> EsxiPassthru | None:
        return next((p for p in self.passthru or [] if pci and p.id.lower() == pci.lower()), None)

    def module(self, name: str | None) -> EsxiModule | None:
        return next((m for m in self.modules if name and m.name == name), None)


def esxi_max_vfs_vector(module: EsxiModule) -> list[int] | None:
    """The driver's max_vfs as a list (`max_vfs=0,10,10,10`), from the stored option string or the parameter
    list; None when neither was collected or the value is empty."""
    raw: str | None = None
    if module.options is not None:
        for part in module.options.split():
            key, _, val = part.partition("=")
            if key == "max_vfs":
                raw = val
    if raw is None:
        raw = module.params.get("max_vfs")
    if not raw:
        return None
    try:
        return [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        return None


def esxi_options_with_max_vfs(module: EsxiModule, vector: list[int]) -> str:
    """The module's whole option string with max_vfs replaced: `esxcli system module parameters set -p` replaces
    the stored string, so every other option must be restated (esxi.md §2.1)."""
    parts = [p for p in (module.options or "").split() if p.partition("=")[0] != "max_vfs"]
    if module.options is None:  # only the parameter list was read: restate the parameters that have a value
        parts = [f"{k}={v}" for k, v in module.params.items() if v and k != "max_vfs"]
    return " ".join([*parts, "max_vfs=" + ",".join(str(v) for v in vector)])
