"""ESXi facts (from a paste or from pyVmomi) -> the shared snapshot fields every stage reads.

Both sources fill an `EsxiInfo` and a list of NIC rows; `finish()` then derives the shared fields once:
physical NICs with their SR-IOV state (the API's HostSriovInfo first, then the VF list, the driver's max_vfs
and lspci), VFs with their owning VM (Owner World ID matched against `esxcli vm process list`), VMs and their
adapters. Nothing is guessed: a NIC nobody reported on keeps None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from iovkit import __version__
from iovkit.snapshot import (
    VM,
    CollectionError,
    CpuInfo,
    EsxiInfo,
    EsxiVf,
    HostInfo,
    HostSnapshot,
    PhysicalNic,
    SourceInfo,
    VirtualFunction,
    VmAdapter,
    esxi_port_max_vfs,
)

if TYPE_CHECKING:
    from iovkit.sources.esxi.parsers import LspciLine

INTEL, AMD = 0x8086, 0x1022


@dataclass
class NicRow:
    """One vmnic as `esxcli network nic list` or `config.network.pnic` reports it."""

    name: str
    pci: str | None = None
    driver: str | None = None
    mac: str | None = None
    speed_mbps: int | None = None
    link: str | None = None
    description: str | None = None

    @classmethod
    def from_esxcli(cls, row: Mapping[str, str]) -> NicRow:
        from iovkit.sources.esxi.parsers import normalize_bdf

        speed = row.get("Speed", "").strip()
        return cls(
            name=row.get("Name", "").strip(),
            pci=normalize_bdf(row.get("PCI Device")),
            driver=row.get("Driver") or None,
            mac=row.get("MAC Address") or None,
            speed_mbps=int(speed) if speed.isdigit() else None,
            link=row.get("Link Status") or row.get("Link") or None,
            description=row.get("Description") or None,
        )


def owner_id_field(version: tuple[int, ...] | None) -> str:
    """Which `vm process list` id the VF list's Owner World ID means: VMX Cartel ID before 7.0 and from 9.0,
    World ID in between (Intel's mfd-esxi, esxi.md §3.2)."""
    if version is None:
        return "world_id"
    return "vmx_cartel_id" if version < (7, 0) or version >= (9, 0) else "world_id"


def _resolve_owners(info: EsxiInfo) -> None:
    if not info.worlds:
        return
    first = owner_id_field(info.version_tuple())
    other = "vmx_cartel_id" if first == "world_id" else "world_id"
    for vf in info.vfs:
        if vf.owner_world_id is None or vf.vm:
            continue
        for attr in (first, other):  # the version picks the field; the other catches a wrong or missing version
            w = next((w for w in info.worlds if getattr(w, attr) == vf.owner_world_id), None)
            if w is not None:
                vf.vm = w.display_name
                break


def _cpu_vendor(info: EsxiInfo) -> None:
    if info.cpu_vendor is not None or not info.pci_devices:
        return
    bridges = [d for d in info.pci_devices if d.class_id == 0x0600 and d.vendor_id in (INTEL, AMD)]
    if bridges:
        info.cpu_vendor = "intel" if bridges[0].vendor_id == INTEL else "amd"


def _lspci_vfs(lspci: list[LspciLine], nics: list[NicRow]) -> dict[str, int]:
    """VFs per vmnic from lspci's `[PF_<seg>.<bus decimal>.<func>_VF_<n>]` tags."""
    counts: dict[str, int] = {}
    for line in lspci:
        if line.vf_of is None:
            continue
        seg, bus, func = line.vf_of
        pfs = [
            n
            for n in nics
            if n.pci and int(n.pci[:4], 16) == seg and int(n.pci[5:7], 16) == bus and int(n.pci[-1], 16) == func
        ]
        if len(pfs) == 1:
            counts[pfs[0].name] = counts.get(pfs[0].name, 0) + 1
    return counts


def finish(
    info: EsxiInfo,
    rows: list[NicRow],
    *,
    host: str | None,
    kind: str,
    origin: str | None,
    errors: list[CollectionError] | None = None,
    lspci: list[LspciLine] | None = None,
    lspci_filtered: bool = False,
    collected_at: datetime | None = None,
) -> HostSnapshot:
    _resolve_owners(info)
    _cpu_vendor(info)
    lspci_counts = _lspci_vfs(lspci or [], rows)
    snap = HostSnapshot(
        collected_at=collected_at or datetime.now(UTC).replace(microsecond=0),
        source=SourceInfo(kind=kind, origin=origin, collector_version=__version__),
        host=HostInfo(
            name=host,
            platform="esxi",
            os_caption=info.product,
            os_version=info.version,
            os_build=info.build,
            hypervisor_present=True,
        ),
        cpu=CpuInfo(vendor=info.cpu_vendor),
        errors=list(errors or []),
        esxi=info,
    )
    for r in rows:
        pt = info.passthru_for(r.pci)
        vfs = [v for v in info.vfs if v.pf == r.name]
        nic = PhysicalNic(
            name=r.name,
            description=r.description,
            driver=r.driver,
            pci_address=r.pci,
            mac=r.mac,
            link_speed_bps=r.speed_mbps * 1_000_000 if r.speed_mbps else None,
            status=r.link,
        )
        mod = info.module(r.driver)
        if pt is not None and pt.sriov_capable is not None:  # the API's HostSriovInfo says it all
            nic.sriov_support = "Supported" if pt.sriov_capable else "NotSupported"
            nic.sriov_enabled = pt.sriov_enabled
            nic.vfs_total = pt.vfs_max
            nic.vfs_configured = pt.vfs_present
        elif (info.sriov_nics is not None and r.name in info.sriov_nics) or (mod is not None and mod.has_max_vfs):
            nic.sriov_support = "Supported"  # listed by `sriovnic list`, or its driver takes max_vfs
        if r.name in info.vf_lists:
            if nic.vfs_configured is None:
                nic.vfs_configured = len(vfs)  # "There is no SRIOV Nic with name ..." = no VF on this port now
            nic.vfs_allocated = sum(1 for v in vfs if v.active)
        snap.nics.append(nic)
    for n in snap.nics:
        if n.vfs_configured is None and n.name not in info.vf_lists and n.name in lspci_counts:
            # A filtered lspci (`lspci | grep ...`) shows at least these VFs: a count only when it is all asked for.
            want = esxi_port_max_vfs(snap, n) if lspci_filtered else None
            if not lspci_filtered or (want is not None and lspci_counts[n.name] >= want):
                n.vfs_configured = lspci_counts[n.name]
    for n in snap.nics:
        if n.sriov_support is None and (n.vfs_configured or 0) > 0:
            n.sriov_support = "Supported"  # VFs seen on the port (VF list or lspci)
        if n.sriov_enabled is None:
            want = esxi_port_max_vfs(snap, n)
            if want is not None:
                n.sriov_enabled = want > 0  # what max_vfs asks for; whether it is active is a separate fact
            elif (info.sriov_nics is not None and n.name in info.sriov_nics) or (n.vfs_configured or 0) > 0:
                n.sriov_enabled = True
    for v in info.vfs:
        snap.vfs.append(VirtualFunction(pf=v.pf, index=v.index, vm=v.vm, pci_address=v.pci_address))
    running = {w.display_name for w in info.worlds or []}
    # "This adapter has no VF" needs every VF list read and every owner resolved to a VM (`vm process list`).
    owners_known = (
        info.worlds is not None
        and bool(snap.nics)
        and all(n.name in info.vf_lists for n in snap.nics if n.sriov_enabled is not False)
        and all(v.vm is not None for v in info.vfs if v.owner_world_id is not None)
    )
    for vm in info.vms:
        if vm.power_state is None and info.worlds is not None:
            vm.power_state = "poweredOn" if vm.name in running else "poweredOff"
        snap.vms.append(VM(name=vm.name, id=vm.moref, state=vm.power_state))
        for a in vm.adapters:
            vf = next((v for v in info.vfs if v.vm == vm.name and a.type == "sriov"), None)
            snap.vm_adapters.append(
                VmAdapter(
                    vm_name=vm.name,
                    name=a.name,
                    kind=a.type,
                    switch_name=a.network,
                    connected=a.present,
                    mac=a.mac,
                    vf_data_path_active=_vf_active(vf, a.type == "sriov" and owners_known),
                    vf_pci_address=vf.pci_address if vf else None,
                )
            )
    # iovkit reads no vSwitch or NIC team on ESXi (the rules need none): never collected, not "none".
    snap.mark_absent("switches", "teams")
    if kind != "esxi-live":
        # A paste holds only what was pasted: a list nobody pasted is "not collected", not "none".
        absent = [] if rows else ["nics"]
        absent += [] if info.vms else ["vms", "vm_adapters"]
        absent += [] if info.vf_lists else ["vfs"]
        snap.mark_absent(*absent)
        # The same for ESXi's own lists (a VF list read and empty is "no VF": `vfs` follows `vf_lists`).
        info.mark_absent(*(n for n in ("modules", "vms") if not getattr(info, n)))
        info.mark_absent(*([] if info.vf_lists else ["vf_lists", "vfs"]))
    return snap


def _vf_active(vf: EsxiVf | None, none_means_no_vf: bool) -> bool | None:
    """An SR-IOV adapter's VF in use: its VF's Active column; no VF owned by its VM is False only when every VF
    list was read and every owner resolved, else not collected."""
    if vf is not None:
        return vf.active
    return False if none_means_no_vf else None
