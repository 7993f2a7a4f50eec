"""The host snapshot: one typed, versioned record of a host's virtualization and network facts.

Every stage reads this and nothing else (checks, diagnose, plan, apply's staleness test). Sources fill it;
they never invent their own shapes. A fact that was not collected stays None: it is never guessed, so a
rule can tell "absent" (None) from "false".

Bump SCHEMA_VERSION's minor for added optional fields, its major for anything a reader must handle.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
)

from iovkit.errors import InputError
from iovkit.fileio import validation_line
from iovkit.snapshot_base import NullableLists
from iovkit.snapshot_base import StrictModel as _Model
from iovkit.snapshot_esxi import (  # ESXi's own records, kept beside this module; re-exported here
    EsxiInfo as EsxiInfo,
)
from iovkit.snapshot_esxi import (
    EsxiModule as EsxiModule,
)
from iovkit.snapshot_esxi import (
    EsxiPassthru as EsxiPassthru,
)
from iovkit.snapshot_esxi import (
    EsxiPciDevice as EsxiPciDevice,
)
from iovkit.snapshot_esxi import (
    EsxiVf as EsxiVf,
)
from iovkit.snapshot_esxi import (
    EsxiVm as EsxiVm,
)
from iovkit.snapshot_esxi import (
    EsxiVmAdapter as EsxiVmAdapter,
)
from iovkit.snapshot_esxi import (
    EsxiWorld as EsxiWorld,
)
from iovkit.snapshot_esxi import (
    esxi_max_vfs_vector as esxi_max_vfs_vector,
)
from iovkit.snapshot_esxi import (
    esxi_options_with_max_vfs as esxi_options_with_max_vfs,
)
from iovkit.snapshot_guest import (  # the in-guest data path records, kept beside this module; re-exported here
    CounterDelta as CounterDelta,
)
from iovkit.snapshot_guest import (
    DataPath as DataPath,
)
from iovkit.snapshot_guest import (
    GuestFacts as GuestFacts,
)
from iovkit.snapshot_guest import (
    GuestInterface as GuestInterface,
)
from iovkit.snapshot_guest import (
    KernelEvent as KernelEvent,
)

# 1.1: platform esxi, `esxi`; 1.2: `guest`; 1.3: lists may be null (not collected), vmq, vmq_queues,
# sources_read, VM vcpus, interface GUIDs
SCHEMA_VERSION = "1.3"

Platform = Literal["hyperv", "linux", "esxi"]


class SourceInfo(_Model):
    """Where the snapshot came from."""

    kind: Literal[
        "hyperv-bundle",  # the collector script's raw JSON bundle (local, WinRM or offline)
        "hyperv-formatlist",  # pasted `| Format-List` text
        "hyperv-netview",  # a Get-NetView folder or .zip
        "linux-live",  # this Linux host, read from / or --root
        "linux-archive",  # an `iovkit collect --archive` tarball
        "esxi-paste",  # pasted esxcli / vim-cmd / lspci output and .vmx files
        "esxi-live",  # pyVmomi against vCenter or an ESXi host
        "example",  # an example shipped in the package
        "snapshot",  # a snapshot JSON file read back
    ]
    origin: str | None = Field(None, description="Path, host name or example name")
    collector_version: str | None = None
    powershell_version: str | None = Field(None, description="e.g. '5.1.20348.2400' or '7.4.6'")
    sources_read: list[str] | None = Field(
        None,
        description="The cmdlets (or files) whose output the input held; a partial paste holds few. "
        "None where the source kind reads everything it can (a live host, a Linux archive).",
    )


class HostInfo(_Model):
    name: str | None = None
    platform: Platform
    os_caption: str | None = Field(None, description="e.g. 'Microsoft Windows Server 2022 Datacenter'")
    os_version: str | None = Field(None, description="e.g. '10.0.20348' or a kernel release")
    os_build: str | None = None
    edition: Literal["server", "client"] | None = Field(
        None, description="Win32_OperatingSystem.ProductType 1 = client, 2/3 = server"
    )
    hypervisor_present: bool | None = Field(None, description="A hypervisor runs under this OS")
    is_vm_guest: bool | None = Field(None, description="This host is itself a virtual machine")
    guest_of: str | None = Field(None, description="The hypervisor this host runs under, when a guest")


class CpuInfo(_Model):
    model: str | None = None
    vendor: str | None = None
    sockets: int | None = None
    cores: int | None = None
    logical_processors: int | None = None
    slat: bool | None = Field(None, description="EPT/NPT (RVI); None when it cannot be read")
    virtualization_extensions: bool | None = Field(None, description="VT-x/AMD-V (vmx/svm)")
    firmware_virtualization: bool | None = Field(None, description="Virtualization enabled in firmware")


class HostIov(_Model):
    """Host-wide IOV support as the hypervisor reports it (Get-VMHost IovSupport)."""

    supported: bool | None = None
    reasons: list[str] | None = Field(
        None, description="Verbatim IovSupportReasons strings; [] when IovSupport is True, null when not collected"
    )


class HostVmq(_Model):
    """Whether the Hyper-V switch uses VMQ at all on this host's NICs (field-notes: below 10 Gbps it does not,
    unless the VMSMP registry override is set, even though Get-NetAdapterVmq says Enabled)."""

    below_ten_gig_vmq_enabled: int | None = Field(
        None, description="VMSMP\\Parameters BelowTenGigVmqEnabled: 0 system default (off), 1 on, 2 explicitly off"
    )
    ten_gig_vmq_enabled: int | None = Field(
        None, description="VMSMP\\Parameters TenGigVmqEnabled: 0 system default (on), 1 on, 2 explicitly off"
    )


class IommuInfo(_Model):
    """Linux IOMMU facts (on Hyper-V these surface as IovSupportReasons instead)."""

    active: bool | None = Field(None, description="IOMMU groups exist")
    kind: Literal["dmar", "amd-vi", "other"] | None = None
    groups: int | None = None
    kernel_cmdline: str | None = None
    cmdline_options: dict[str, str] = Field(
        default_factory=dict, description="intel_iommu=, amd_iommu=, iommu= options from the kernel command line"
    )
    kvm_device: bool | None = Field(None, description="/dev/kvm exists")


class PhysicalNic(_Model):
    name: str
    description: str | None = None
    driver: str | None = None
    pci_address: str | None = None
    mac: str | None = None
    interface_guid: str | None = Field(None, description="Get-NetAdapter InterfaceGuid, '{...}'")
    link_speed_bps: int | None = None
    status: str | None = Field(None, description="Up, Down, Disconnected, ...")
    sriov_support: str | None = Field(
        None,
        description="Hyper-V SriovSupport name (Supported, MissingAcs, ...); on Linux 'Supported' when "
        "sriov_totalvfs > 0, 'NotSupported' when the device has no SR-IOV capability",
    )
    sriov_enabled: bool | None = None
    vfs_total: int | None = Field(None, description="VFs the device offers (NumVFs / sriov_totalvfs)")
    vfs_configured: int | None = Field(None, description="VFs created (sriov_numvfs)")
    vfs_allocated: int | None = Field(None, description="VFs in use by VMs (NumAllocatedVFs)")
    team: str | None = Field(None, description="Team or bond this NIC is a member of")
    vmq_enabled: bool | None = None
    rss_enabled: bool | None = None
    rss_base_processor: int | None = None
    rss_queues: int | None = None
    numa_node: int | None = None
    iommu_group: int | None = None


class Team(_Model):
    name: str
    kind: Literal["lbfo", "set", "bond"]
    members: list[str] = Field(default_factory=list)
    mode: str | None = None
    load_balancing: str | None = None
    status: str | None = None


class VSwitch(_Model):
    name: str
    id: str | None = None
    switch_type: Literal["External", "Internal", "Private"] | None = None
    net_adapters: list[str] | None = Field(
        None, description="Bound NICs' interface descriptions ([] for a private/internal switch; null: not collected)"
    )
    net_adapter_names: list[str] = Field(default_factory=list, description="Bound NICs' names, when resolved")
    net_adapter_guids: list[str] | None = Field(None, description="NetAdapterInterfaceGuid (a Guid array)")
    iov_enabled: bool | None = None
    iov_support: bool | None = None
    iov_support_reasons: list[str] | None = None
    vf_count: int | None = Field(None, description="IovVirtualFunctionCount (0 when not IOV)")
    vfs_in_use: int | None = None
    queue_pairs: int | None = None
    queue_pairs_in_use: int | None = None
    allow_management_os: bool | None = None
    embedded_teaming: bool | None = None
    allow_lbfo_teams: bool | None = None
    bandwidth_mode: str | None = None


class VM(_Model):
    name: str
    id: str | None = None
    state: str | None = Field(None, description="Running, Off, Saved, ...; libvirt: running, shut off")
    operational_status: list[str] | None = None
    generation: int | None = None
    vcpus: int | None = Field(None, description="Virtual processors (Get-VM ProcessorCount)")


class VmAdapter(_Model):
    """A VM's (or the management OS's) virtual network adapter."""

    vm_name: str | None = Field(None, description="None for management-OS adapters")
    name: str
    is_management_os: bool = False
    kind: (
        Literal["synthetic", "legacy", "hostdev", "bridge", "network", "direct", "sriov", "vmxnet3", "e1000", "other"]
        | None
    ) = Field(None, description="ESXi: sriov (SR-IOV passthrough), vmxnet3 or e1000 (emulated, any e1000/e1000e)")
    switch_name: str | None = None
    connected: bool | None = None
    mac: str | None = None
    # Iov* members: None means "not applicable" (management-OS adapters have none) or not collected.
    iov_weight: int | None = None
    iov_queue_pairs_requested: int | None = None
    iov_queue_pairs_assigned: int | None = None
    iov_usage: int | None = None
    vf_data_path_active: bool | None = None
    vmq_weight: int | None = None
    vrss_enabled: bool | None = None
    status: list[str] | None = None
    status_description: list[str] | None = None
    vf_pci_address: str | None = Field(None, description="libvirt hostdev: the VF's PCI address")

    @property
    def identity(self) -> tuple[str, str]:
        """(VM name, adapter name); the VM name is "" for a management-OS adapter. Plans key moves by it."""
        return (self.vm_name or "", self.name)

    @property
    def key(self) -> str:
        """`vm/adapter` (`ManagementOS/adapter` for the host's own vNICs): the one spelling in output and evidence."""
        return adapter_key(self.vm_name, self.name)


class VirtualFunction(_Model):
    pf: str = Field(description="Physical function's NIC name")
    index: int
    mac: str | None = None
    vm: str | None = Field(None, description="VM the VF is assigned to, when known")
    vm_nic_id: str | None = None
    vlan: int | None = None
    qos: int | None = None
    spoof_check: bool | None = None
    trust: bool | None = None
    link_state: Literal["auto", "enable", "disable"] | None = None
    pci_address: str | None = None
    driver: str | None = Field(None, description="Host driver the VF is bound to (iavf, mlx5_core, vfio-pci)")
    netdev: str | None = None


class GuestNic(_Model):
    """Inside a VM: a synthetic adapter and the VF paired with it (hv_netvsc + VF, or Windows VF adapter)."""

    name: str
    driver: str | None = None
    is_vf: bool = False
    paired_with: str | None = Field(None, description="Synthetic NIC <-> VF netdev name")
    vf_rx_packets: int | None = None
    vf_tx_packets: int | None = None


class VmqQueue(_Model):
    """One row of Get-NetAdapterVmqQueue: a receive queue of a NIC, whom it serves and on which processor."""

    nic: str
    queue_id: int
    mac: str | None = None
    vlan: int | None = None
    processor: str | None = Field(None, description="group:number, e.g. '0:2'")
    vm: str | None = Field(None, description="VmFriendlyName: a VM, or the host's own name for host vNICs")


class CollectionError(_Model):
    """A source that could not be read: recorded, never fatal to the whole snapshot."""

    source: str = Field(description="Cmdlet, file or command, e.g. 'Get-NetAdapterSriov'")
    error: str


# The record lists of a snapshot that may be "not collected" (null in the JSON) as a whole.
COLLECTIONS: tuple[str, ...] = ("nics", "teams", "switches", "vms", "vm_adapters", "vfs", "vmq_queues", "guest_nics")


class HostSnapshot(NullableLists):
    """The snapshot. A record list the input did not contain (a paste without Get-VMSwitch) is null in the JSON
    and `has(name)` is False; in Python it still reads as an empty list, so iteration needs no guard, and a
    rule that would conclude from the absence asks `has()` first."""

    schema_version: str = SCHEMA_VERSION
    collected_at: datetime | None = None
    source: SourceInfo
    host: HostInfo
    cpu: CpuInfo = Field(default_factory=CpuInfo)
    iov: HostIov = Field(default_factory=HostIov)
    vmq: HostVmq = Field(default_factory=HostVmq)
    iommu: IommuInfo | None = None
    nics: list[PhysicalNic] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    switches: list[VSwitch] = Field(default_factory=list)
    vms: list[VM] = Field(default_factory=list)
    vm_adapters: list[VmAdapter] = Field(default_factory=list)
    vfs: list[VirtualFunction] = Field(default_factory=list)
    vmq_queues: list[VmqQueue] = Field(default_factory=list)
    guest_nics: list[GuestNic] = Field(default_factory=list)
    guest: GuestFacts | None = Field(None, description="Inside a VM: the data-path verdict and guest tuning facts")
    errors: list[CollectionError] = Field(default_factory=list)
    esxi: EsxiInfo | None = Field(None, description="ESXi only (platform esxi)")

    COLLECTIONS = COLLECTIONS

    def read(self, source: str) -> bool | None:
        """Was this cmdlet's output in the input? None when the input does not say (a full collection)."""
        if self.source.sources_read is None:
            return None
        return source.lower() in {s.lower() for s in self.source.sources_read}

    # -- small lookups every stage needs -----------------------------------------------------------
    def switch(self, name: str) -> VSwitch | None:
        return next((s for s in self.switches if s.name == name), None)

    def nic(self, name_or_description: str) -> PhysicalNic | None:
        return next(
            (n for n in self.nics if name_or_description in (n.name, n.description)),
            None,
        )

    def vm(self, name: str) -> VM | None:
        return next((v for v in self.vms if v.name == name), None)

    def switch_nics(self, switch: VSwitch) -> list[PhysicalNic]:
        """The physical NICs bound to a switch: by interface GUID when both sides have it, else by name, else by
        interface description. A description the switch recorded before a driver reinstall (`... #2` against
        `... #40` now) matches only when exactly one NIC has that description without its `#N`
        (field-notes: never match by description alone when it can be ambiguous)."""
        return self._resolve(switch)[0]

    def unresolved_nics(self, switch: VSwitch) -> list[str]:
        """The switch's interface descriptions that match no NIC of this snapshot (a stale description that is
        ambiguous, or Get-NetAdapter not in the input). LBFO team NICs and SET teams are not physical NICs."""
        return self._resolve(switch)[1]

    def _resolve(self, switch: VSwitch) -> tuple[list[PhysicalNic], list[str]]:
        guids = {g.strip("{}").lower() for g in switch.net_adapter_guids or []}
        if guids and any(n.interface_guid for n in self.nics):
            by_guid = [n for n in self.nics if n.interface_guid and n.interface_guid.strip("{}").lower() in guids]
            if by_guid:
                return by_guid, []
        names = set(switch.net_adapter_names)
        found = [n for n in self.nics if n.name in names]
        unresolved: list[str] = []
        team_names = {t.name for t in self.teams}
        for d in switch.net_adapters or []:
            exact = [n for n in self.nics if n.description == d]
            if not exact:
                base = _STALE.sub("", d)
                same = [n for n in self.nics if n.description and _STALE.sub("", n.description) == base]
                exact = same if len(same) == 1 else []
            if exact:
                found.extend(n for n in exact if n not in found)
            elif d not in team_names and "multiplexor" not in d.lower():
                unresolved.append(d)
        # A SET switch reports members through its team; an LBFO switch binds the team's virtual NIC.
        keys = names | set(switch.net_adapters or [])
        for team in self.teams:
            if team.name in keys:
                found.extend(n for n in self.nics if n.name in team.members and n not in found)
        if names and len(found) >= len(switch.net_adapters or []):
            unresolved = []
        return found, unresolved

    def is_external(self, switch: VSwitch) -> bool | None:
        """External when SwitchType says so, or when the switch shows a bound NIC or IOV (both need an external
        port); not external when its NIC list was read and is empty; None when nothing says."""
        if switch.switch_type is not None:
            return switch.switch_type == "External"
        if switch.net_adapters or switch.net_adapter_names or switch.net_adapter_guids:
            return True
        if switch.iov_enabled or switch.iov_support:
            return True
        if switch.net_adapters == []:
            return False
        return None

    def external_switches(self) -> list[VSwitch]:
        """Every switch known to be external (see is_external)."""
        return [s for s in self.switches if self.is_external(s)]

    def bound_nics(self, switches: list[VSwitch] | None = None) -> list[PhysicalNic]:
        """The physical NICs under the given switches (default: every switch), each once, in NIC order."""
        names = {n.name for sw in (self.switches if switches is None else switches) for n in self.switch_nics(sw)}
        return [n for n in self.nics if n.name in names]

    def lbfo_team(self, switch: VSwitch) -> str | None:
        """The LBFO team a switch is bound to (SR-IOV cannot pass one), or None.

        Bound through the team's virtual NIC, or through NICs that are members of an LBFO team; a bare
        "Microsoft Network Adapter Multiplexor Driver" binding names the team when no team was collected.
        """
        keys = set(switch.net_adapters or []) | set(switch.net_adapter_names)
        nics = self.switch_nics(switch)
        for t in self.teams:
            if t.kind != "lbfo":
                continue
            if t.name in keys or any(n.team == t.name or n.name in t.members for n in nics):
                return t.name
        return next((d for d in switch.net_adapters or [] if "multiplexor" in d.lower()), None)

    def vf_counts(self) -> tuple[int | None, int | None]:
        """(VFs offered, VFs in use): an IOV switch's own counts on Hyper-V, else the SR-IOV NICs'; None if unknown."""
        if self.host.platform == "hyperv":
            iov = [s for s in self.switches if s.iov_enabled]
            if iov:
                return _sum([s.vf_count for s in iov]), _sum([s.vfs_in_use for s in iov])
        nics = [n for n in self.nics if n.sriov_support == "Supported" or (n.vfs_total or 0) > 0]
        if not nics:
            known = any(n.sriov_support is not None for n in self.nics)
            return (0, 0) if known else (None, None)
        total = _sum([n.vfs_total for n in nics])
        used = _sum([n.vfs_allocated for n in nics])
        if used is None and self.vfs:
            used = sum(1 for v in self.vfs if v.vm)
        return total, used

    def adapters_on(self, switch_name: str) -> list[VmAdapter]:
        """The VM (and management-OS) adapters connected to a switch."""
        return [a for a in self.vm_adapters if a.switch_name == switch_name]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=False)


_STALE = re.compile(r"\s+#\d+$")


def adapter_key(vm_name: str | None, name: str) -> str:
    """The one spelling of an adapter's identity in output: `vm/adapter`, `ManagementOS/adapter` for the host's."""
    return f"{vm_name or 'ManagementOS'}/{name}"


def _sum(values: list[int | None]) -> int | None:
    """The sum, or None when any part is unknown (or there is none)."""
    return None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of HostSnapshot, as printed by `iovkit schema`."""
    schema = HostSnapshot.model_json_schema()
    for name in COLLECTIONS:  # null: not collected (see HostSnapshot)
        prop = schema["properties"][name]
        schema["properties"][name] = {"anyOf": [{k: v for k, v in prop.items() if k != "title"}, {"type": "null"}]}
        schema["properties"][name]["title"] = prop.get("title", name)
    schema["$id"] = f"https://iovkit.invalid/schema/host-snapshot-{SCHEMA_VERSION}.json"
    schema["title"] = "iovkit HostSnapshot"
    return schema


def snapshot_from_dict(data: Any, origin: str) -> HostSnapshot:
    """Validate a decoded snapshot; the error names the file, the field path and the offending value."""
    if not isinstance(data, dict):
        raise InputError("a snapshot must be a JSON object", path=origin)
    version = str(data.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:  # 1.0 files read as 1.1 (only fields added)
        raise InputError(
            f"schema_version {version!r} is not supported (this iovkit reads {SCHEMA_VERSION})",
            path=origin,
            field="schema_version",
        )
    try:
        return HostSnapshot.model_validate(data)
    except ValidationError as err:
        loc, msg = validation_line(err)
        raise InputError(msg, path=origin, field=loc) from err


def load_snapshot(path: Path) -> HostSnapshot:
    """Read a snapshot JSON file written by `iovkit collect`."""
    from iovkit.fileio import read_json

    return snapshot_from_dict(read_json(path), str(path))


# -- ESXi queries several stages share (checks read them, plan writes the new vector) -----------------------


def esxi_driver_ports(snap: HostSnapshot, driver: str) -> list[PhysicalNic]:
    """The driver's ports in PCI s:b:d:f order: the order max_vfs entries apply in (KB 309346, esxi.md §2.1)."""
    return sorted((n for n in snap.nics if n.driver == driver and n.pci_address), key=lambda n: n.pci_address or "")


def esxi_port_max_vfs(snap: HostSnapshot, nic: PhysicalNic) -> int | None:
    """VFs the driver's max_vfs asks for on this port (0 past the end of the list); None when not collected."""
    if snap.esxi is None or nic.driver is None:
        return None
    mod = snap.esxi.module(nic.driver)
    vec = esxi_max_vfs_vector(mod) if mod else None
    if vec is None:
        return None
    ports = esxi_driver_ports(snap, nic.driver)
    if nic not in ports:
        return None
    i = ports.index(nic)
    return vec[i] if i < len(vec) else 0
