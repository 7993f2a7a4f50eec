"""Snapshots in the documented shapes (hyperv.md §1, linux.md §1), built with the pydantic models.

Each builder returns a *ready* host; a test changes the one fact it is about, so a failing assertion points
at that fact.
"""

from __future__ import annotations

from iovkit.snapshot import (
    VM,
    CpuInfo,
    GuestNic,
    HostInfo,
    HostIov,
    HostSnapshot,
    HostVmq,
    IommuInfo,
    PhysicalNic,
    SourceInfo,
    Team,
    VirtualFunction,
    VmAdapter,
    VmqQueue,
    VSwitch,
)

# Verbatim IovSupportReasons (Microsoft KB 2762297, hyperv.md §2)
REASONS = {
    "NO_SLAT": "SR-IOV cannot be used on this computer because the processor does not support second level "
    "address translation (SLAT). For Intel processors, this feature might be referred to as Extended Page Tables "
    "(EPT). For AMD processors, this feature might be referred to as Rapid Virtualization Indexing (RVI) or Nested "
    "Page Tables (NPT).",
    "NO_INTERRUPT_REMAP": "The chipset on the system does not do interrupt remapping, without which SR-IOV cannot "
    "be supported.",
    "NO_DMA_REMAP": "The chipset on the system does not do DMA remapping, without which SR-IOV cannot be supported.",
    "IOMMU_DISABLED_BY_OS": "SR-IOV cannot be used on this system as it has been configured to disable the use of "
    "I/O remapping hardware.",
    "BIOS_IOV_OFF": "Ensure that the system has chipset support for SR-IOV and that I/O virtualization is enabled "
    "in the BIOS.",
    "BAD_ACPI_TABLES": "To use SR-IOV on this computer, the BIOS must be updated because it contains incorrect "
    "information describing the hardware capabilities. Contact your computer manufacturer for an update.",
    "NO_PCIE": "SR-IOV cannot be used on this system as it is reporting that there is no PCI Express Bus. Contact "
    "your system manufacturer for further information.",
    "NO_OSC_CONTROL": "To use SR-IOV on this system, the system BIOS must be updated to allow Windows to control PCI "
    "Express. Contact your system manufacturer for an update.",
    "NO_ACS": "SR-IOV cannot be used on this system as the PCI Express hardware does not support Access Control "
    "Services (ACS) at any root port. Contact your system vendor for further information.",
}


def hv_ready(n_vms: int = 2, vfs: int = 6) -> HostSnapshot:
    """Server 2019, IOV switch 'External' on I350 port 'Ethernet', VMs relay-NN with active VFs."""
    vms = [VM(name=f"relay-{i:02d}", state="Running", operational_status=["Ok"], vcpus=4) for i in range(1, n_vms + 1)]
    adapters = [
        VmAdapter(
            vm_name=v.name,
            name="Network Adapter",
            kind="synthetic",
            switch_name="External",
            connected=True,
            iov_weight=100,
            iov_usage=1,
            iov_queue_pairs_requested=1,
            iov_queue_pairs_assigned=1,
            vf_data_path_active=True,
            vmq_weight=100,
            status=["Ok"],
        )
        for v in vms
    ]
    adapters.append(
        VmAdapter(
            vm_name=None,
            name="External",
            is_management_os=True,
            switch_name="External",
            vmq_weight=100,
            mac="00155D010A00",
        )
    )
    return HostSnapshot(
        source=SourceInfo(kind="example", origin="hyperv-test"),
        host=HostInfo(
            name="HV-RELAY-01",
            platform="hyperv",
            os_caption="Microsoft Windows Server 2019 Datacenter",
            os_version="10.0.17763",
            os_build="17763",
            edition="server",
            hypervisor_present=True,
        ),
        cpu=CpuInfo(model="Intel(R) Xeon(R) Silver 4214", vendor="GenuineIntel", slat=None),
        iov=HostIov(supported=True, reasons=[]),
        vmq=HostVmq(below_ten_gig_vmq_enabled=1, ten_gig_vmq_enabled=0),
        vmq_queues=[VmqQueue(nic="Ethernet", queue_id=1, mac="00155D010A00", vm="HV-RELAY-01", processor="0:2")],
        nics=[
            PhysicalNic(
                name="Ethernet",
                description="Intel(R) Ethernet Server Adapter I350-T2",
                status="Up",
                sriov_support="Supported",
                sriov_enabled=True,
                vfs_total=vfs,
                vfs_allocated=n_vms,
                vmq_enabled=True,
                link_speed_bps=1_000_000_000,
            ),
            PhysicalNic(
                name="Ethernet 2",
                description="Intel(R) Ethernet Server Adapter I350-T2 #2",
                status="Up",
                sriov_support="Supported",
                sriov_enabled=True,
                vfs_total=vfs,
                vfs_allocated=0,
                vmq_enabled=True,
            ),
        ],
        switches=[
            VSwitch(
                name="External",
                switch_type="External",
                net_adapters=["Intel(R) Ethernet Server Adapter I350-T2"],
                net_adapter_names=["Ethernet"],
                iov_enabled=True,
                iov_support=True,
                vf_count=vfs,
                vfs_in_use=n_vms,
                allow_management_os=True,
                embedded_teaming=False,
            )
        ],
        vms=vms,
        vm_adapters=adapters,
    )


def lx_ready() -> HostSnapshot:
    """Ubuntu KVM host, Xeon vmx, intel_iommu=on iommu=pt, ConnectX-5 PF with 2 VFs given to a domain."""
    return HostSnapshot(
        source=SourceInfo(kind="linux-archive", origin="/tmp/x.tar.gz"),
        host=HostInfo(
            name="kvm-01", platform="linux", os_caption="Ubuntu 22.04.4 LTS", os_version="5.15.0-105", is_vm_guest=False
        ),
        cpu=CpuInfo(
            model="Intel(R) Xeon(R) Gold 6338", vendor="GenuineIntel", virtualization_extensions=True, slat=True
        ),
        iommu=IommuInfo(
            active=True,
            kind="dmar",
            groups=60,
            kernel_cmdline="BOOT_IMAGE=/vmlinuz ro intel_iommu=on iommu=pt",
            cmdline_options={"intel_iommu": "on", "iommu": "pt"},
            kvm_device=True,
        ),
        nics=[
            PhysicalNic(
                name="enp59s0f0",
                driver="mlx5_core",
                pci_address="0000:3b:00.0",
                sriov_support="Supported",
                sriov_enabled=True,
                vfs_total=8,
                vfs_configured=2,
            )
        ],
        vfs=[
            VirtualFunction(
                pf="enp59s0f0",
                index=i,
                mac=f"52:54:00:00:00:0{i + 1}",
                vm="vm-a",
                vlan=100,
                spoof_check=True,
                trust=False,
                link_state="auto",
                pci_address=f"0000:3b:00.{i + 2}",
                driver="vfio-pci",
            )
            for i in range(2)
        ],
        vms=[VM(name="vm-a", state="running")],
        vm_adapters=[
            VmAdapter(
                vm_name="vm-a",
                name=f"hostdev{i}",
                kind="hostdev",
                mac=f"52:54:00:00:00:0{i + 1}",
                vf_pci_address=f"0000:3b:00.{i + 2}",
            )
            for i in range(2)
        ],
    )


def guest(vf: bool = True, rx: int | None = 1200, tx: int | None = 900) -> HostSnapshot:
    """A Linux VM on Hyper-V: eth0 (hv_netvsc), paired with VF enP1s1 (mlx5_core) when vf=True."""
    nics = [
        GuestNic(
            name="eth0",
            driver="hv_netvsc",
            paired_with="enP1s1" if vf else None,
            vf_rx_packets=rx if vf else None,
            vf_tx_packets=tx if vf else None,
        )
    ]
    if vf:
        nics.append(GuestNic(name="enP1s1", driver="mlx5_core", is_vf=True, paired_with="eth0"))
    return HostSnapshot(
        source=SourceInfo(kind="linux-archive", origin="/tmp/g.tar.gz"),
        host=HostInfo(
            name="relay-01", platform="linux", os_caption="Ubuntu 24.04 LTS", is_vm_guest=True, guest_of="Hyper-V"
        ),
        cpu=CpuInfo(vendor="GenuineIntel", virtualization_extensions=False),
        iommu=IommuInfo(active=False, groups=0, kernel_cmdline="ro", kvm_device=False),
        guest_nics=nics,
    )


__all__ = ["REASONS", "Team", "guest", "hv_ready", "lx_ready"]
