"""A one-screen summary of a snapshot: what was found and what could not be read."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from iovkit.snapshot import HostSnapshot


def _b(v: bool | None) -> str:
    return "?" if v is None else ("yes" if v else "no")


def absent_facts(snap: HostSnapshot) -> list[str]:
    """Hyper-V fact groups a partial input (a paste, a Get-NetView capture) did not contain, named by cmdlet."""
    if snap.host.platform != "hyperv" or snap.host.is_vm_guest:
        return []
    failed = {e.source for e in snap.errors}
    if snap.source.sources_read is not None:  # the reader recorded which cmdlets the input held
        wanted = (
            "Get-VMHost",
            "Win32_OperatingSystem",
            "Get-VMSwitch",
            "Get-VMNetworkAdapter",
            "Get-NetAdapter",
            "Get-NetAdapterSriov",
            "Get-NetAdapterVmq",
            "Get-NetAdapterVmqQueue",
            "VMSMP-Parameters",
        )
        return [c for c in wanted if snap.read(c) is False and c not in failed]
    checks = [
        ("Get-VMHost", snap.iov.supported is None),
        ("Win32_OperatingSystem", snap.host.os_caption is None),
        ("Get-NetAdapterSriov", not any(n.sriov_support for n in snap.nics)),
        ("Get-VMSwitch", not snap.switches),
        ("Get-VMNetworkAdapter", not snap.vm_adapters),
    ]
    return [name for name, missing in checks if missing and name not in failed]


def render_summary(snap: HostSnapshot, console: Console) -> None:
    h = snap.host
    console.print(
        f"[bold]{h.name or '?'}[/] ({h.platform}) {h.os_caption or ''} {h.os_version or ''}".rstrip()
        + f"  source: {snap.source.kind} {snap.source.origin or ''}".rstrip()
    )
    console.print(
        f"  guest VM: {_b(h.is_vm_guest)}{' (' + h.guest_of + ')' if h.guest_of else ''}"
        f"  hypervisor: {_b(h.hypervisor_present)}  CPU: {snap.cpu.model or '?'}"
        f"  SLAT: {_b(snap.cpu.slat)}  VT: {_b(snap.cpu.virtualization_extensions)}"
    )
    if h.platform == "hyperv":
        console.print(
            f"  host IOV support: {_b(snap.iov.supported)}"
            + (f" ({len(snap.iov.reasons)} reason(s))" if snap.iov.reasons else "")
        )
    elif h.platform == "esxi" and snap.esxi is not None:
        esx = snap.esxi
        console.print(
            f"  ESXi {esx.version or '?'} build {esx.build or '?'}  reboot pending: {_b(esx.reboot_required)}"
            f"  maintenance mode: {_b(esx.in_maintenance_mode)}  VMs read: {len(esx.vms)}"
        )
    elif snap.iommu is not None:
        console.print(
            f"  IOMMU: {_b(snap.iommu.active)} {snap.iommu.kind or ''} groups: {snap.iommu.groups}"
            f"  /dev/kvm: {_b(snap.iommu.kvm_device)}"
        )
    if snap.guest is not None:  # inside a VM: each interface's data path (iovkit doctor shows the evidence)
        for i in snap.guest.routable():
            vf = f", VF {i.paired_vf}" if i.paired_vf else ""
            console.print(f"  data path: {i.name} {i.path} ({i.driver or '?'}{vf}): {i.summary}")
    if snap.nics:
        t = Table(title="Physical NICs", title_justify="left", show_edge=False)
        for col in ("name", "driver", "SR-IOV", "enabled", "VFs total/conf/alloc", "team"):
            t.add_column(col)
        for n in snap.nics:
            vfs = "/".join("?" if x is None else str(x) for x in (n.vfs_total, n.vfs_configured, n.vfs_allocated))
            t.add_row(
                n.name, n.driver or n.description or "?", n.sriov_support or "?", _b(n.sriov_enabled), vfs, n.team or ""
            )
        console.print(t)
    else:
        console.print("  no physical NICs found" if snap.has("nics") else "  physical NICs: not in this input")
    if snap.switches:
        t = Table(title="Virtual switches", title_justify="left", show_edge=False)
        for col in ("name", "type", "IOV enabled", "IOV support", "VFs in use/count", "mgmt OS"):
            t.add_column(col)
        for s in snap.switches:
            t.add_row(
                s.name,
                s.switch_type or "?",
                _b(s.iov_enabled),
                _b(s.iov_support),
                f"{s.vfs_in_use if s.vfs_in_use is not None else '?'}/{s.vf_count if s.vf_count is not None else '?'}",
                _b(s.allow_management_os),
            )
        console.print(t)
    vm_adapters = [a for a in snap.vm_adapters if not a.is_management_os]
    if snap.vms or vm_adapters:
        # A count of facts the input did not hold is "?", never 0 (unknown is not false).
        def count(n: int, known: bool) -> str:
            return str(n) if known else "?"

        active = sum(1 for a in vm_adapters if a.vf_data_path_active)
        weighted = sum(1 for a in vm_adapters if (a.iov_weight or 0) > 0)
        console.print(
            f"  VMs: {count(len(snap.vms), snap.has('vms'))}  adapters: {len(vm_adapters)}"
            f"  IOV weight > 0: {count(weighted, all(a.iov_weight is not None for a in vm_adapters))}"
            f"  VF data path active: {count(active, all(a.vf_data_path_active is not None for a in vm_adapters))}"
            f"  VFs: {count(len(snap.vfs), snap.has('vfs'))}"
        )
    absent = absent_facts(snap)
    if absent:
        console.print(f"[yellow]  not in this input:[/] {', '.join(absent)}")
    if snap.errors:
        console.print(f"[yellow]  {len(snap.errors)} source(s) not read, or read in part:[/]")
        for e in snap.errors:
            console.print(f"    {e.source}: {e.error}")
    elif not absent:
        console.print("  every source was read")
