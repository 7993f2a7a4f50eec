"""Host snapshots for plan/apply tests, built with the pydantic models in the documented shapes.

`i350_host()` is the case iovkit was built for (the shipped example `hyperv-i350-no-iov` describes the
same host): HV-RELAY-01, an I350 with two ports, "External" without IOV carrying the management OS,
8 relay VMs on it with IovWeight 0, "Ethernet 2" unbound.
"""

from __future__ import annotations

from datetime import UTC, datetime

from iovkit.snapshot import (
    VM,
    HostInfo,
    HostIov,
    HostSnapshot,
    PhysicalNic,
    SourceInfo,
    Team,
    VmAdapter,
    VSwitch,
)

I350 = "Intel(R) Ethernet Server Adapter I350-T2"


def i350_host(vms: int = 8, name: str = "HV-RELAY-01") -> HostSnapshot:
    nics = [
        PhysicalNic(
            name="Ethernet",
            description=I350,
            driver="e1r68x64.sys",
            status="Up",
            sriov_support="Supported",
            sriov_enabled=True,
            vfs_total=6,
            vfs_allocated=0,
        ),
        PhysicalNic(
            name="Ethernet 2",
            description=f"{I350} #2",
            driver="e1r68x64.sys",
            status="Up",
            sriov_support="Supported",
            sriov_enabled=True,
            vfs_total=6,
            vfs_allocated=0,
        ),
    ]
    switch = VSwitch(
        name="External",
        switch_type="External",
        net_adapters=[I350],
        net_adapter_names=["Ethernet"],
        iov_enabled=False,
        iov_support=True,
        vf_count=0,
        vfs_in_use=0,
        allow_management_os=True,
        embedded_teaming=False,
    )
    vm_list = [VM(name=f"relay-{i:02d}", state="Running", generation=2) for i in range(1, vms + 1)]
    adapters = [VmAdapter(name="External", is_management_os=True, switch_name="External", connected=True)]
    adapters += [
        VmAdapter(
            vm_name=v.name,
            name="Network Adapter",
            kind="synthetic",
            switch_name="External",
            connected=True,
            mac=f"00155D0101{i:02X}",
            iov_weight=0,
            iov_queue_pairs_requested=1,
            iov_queue_pairs_assigned=0,
            iov_usage=0,
            vf_data_path_active=False,
            vmq_weight=100,
        )
        for i, v in enumerate(vm_list, start=1)
    ]
    return HostSnapshot(
        collected_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        source=SourceInfo(kind="snapshot", origin="test"),
        host=HostInfo(
            name=name,
            platform="hyperv",
            os_caption="Microsoft Windows Server 2019 Datacenter",
            os_version="10.0.17763",
            edition="server",
            hypervisor_present=True,
        ),
        iov=HostIov(supported=True),
        nics=nics,
        switches=[switch],
        vms=vm_list,
        vm_adapters=adapters,
    )


def lbfo_host() -> HostSnapshot:
    """The I350 host with "External" bound to an LBFO team of both ports (SR-IOV is not supported there)."""
    snap = i350_host(vms=2)
    snap.teams = [Team(name="Team1", kind="lbfo", members=["Ethernet", "Ethernet 2"])]
    for n in snap.nics:
        n.team = "Team1"
    snap.switches[0].net_adapters = ["Microsoft Network Adapter Multiplexor Driver"]
    snap.switches[0].net_adapter_names = ["Team1"]
    return snap


def linux_host() -> HostSnapshot:
    """A KVM host: one PF with 8 VFs possible and none created; three libvirt domains on a bridge."""
    return HostSnapshot(
        source=SourceInfo(kind="snapshot", origin="test"),
        host=HostInfo(name="kvm-01", platform="linux"),
        iov=HostIov(supported=True),
        nics=[
            PhysicalNic(
                name="enp3s0f0",
                driver="ixgbe",
                pci_address="0000:03:00.0",
                sriov_support="Supported",
                vfs_total=8,
                vfs_configured=0,
            )
        ],
        vms=[VM(name=f"relay-{i}", state="running") for i in (1, 2, 3)],
        vm_adapters=[
            VmAdapter(vm_name=f"relay-{i}", name="vnet{i}", kind="bridge", mac=f"52:54:00:00:00:0{i}")
            for i in (1, 2, 3)
        ],
    )
