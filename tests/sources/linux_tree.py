"""Build Linux root trees in the real sysfs/procfs layout, for tests and for the shipped linux-cx5 example.

The layout follows the kernel (linux.md §1.1): PCI functions live under sys/devices/pci<dom>:<bus>/..., and
sys/bus/pci/devices/<bdf>, sys/class/net/<if>, iommu_group, driver, virtfnN and physfn are *relative* symlinks,
as on a real host, so the collector resolves them exactly as it does under `/`. Command captures (virsh,
the netlink VF dump in `ip -j link show` shape, ethtool -S) go to <root>/.iovkit/commands/<name>.

Rebuild the example:  python3 tests/sources/linux_tree.py --example iovkit/examples/linux-cx5.tar.gz
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT_CAPTURES = ".iovkit/commands"


@dataclass
class Tree:
    """A root directory being filled; every helper writes the same files the kernel would show."""

    root: Path
    netdevs: dict[str, str] = field(default_factory=dict)  # name -> its sysfs directory (relative)

    def write(self, rel: str, text: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p

    def link(self, rel: str, target_rel: str) -> None:
        """A relative symlink at `rel` pointing to `target_rel` (both relative to the root), like sysfs."""
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not (self.root / target_rel).exists():
            (self.root / target_rel).mkdir(parents=True)
        if p.is_symlink():
            p.unlink()
        os.symlink(os.path.relpath(self.root / target_rel, p.parent), p)

    def capture(self, name: str, text: str) -> None:
        self.write(f"{ROOT_CAPTURES}/{name}", text)

    # -- host files ----------------------------------------------------------------------------------------
    def host(
        self,
        *,
        hostname: str,
        pretty: str,
        os_id: str,
        version_id: str,
        kernel: str,
        cmdline: str,
        cpu_model: str,
        vendor: str,
        cores: int,
        threads: int,
        flags: list[str],
        vmx_flags: list[str] | None = None,
        kvm: bool = True,
    ) -> None:
        self.write("proc/sys/kernel/hostname", hostname + "\n")
        self.write("proc/sys/kernel/osrelease", kernel + "\n")
        self.write("proc/sys/kernel/version", "#115-Ubuntu SMP Mon Apr 15 09:52:04 UTC 2024\n")
        self.write("proc/cmdline", cmdline + "\n")
        self.write(
            "etc/os-release",
            f'PRETTY_NAME="{pretty}"\nNAME="{pretty.split()[0]}"\nVERSION_ID="{version_id}"\nID={os_id}\n',
        )
        blocks = []
        for cpu in range(threads):
            lines = [
                f"processor\t: {cpu}",
                f"vendor_id\t: {vendor}",
                "cpu family\t: 6",
                "model\t\t: 106",
                f"model name\t: {cpu_model}",
                "physical id\t: 0",
                f"siblings\t: {threads}",
                f"core id\t\t: {cpu % cores}",
                f"cpu cores\t: {cores}",
                f"flags\t\t: {' '.join(flags)}",
            ]
            if vmx_flags:
                lines.append(f"vmx flags\t: {' '.join(vmx_flags)}")
            lines.append("bogomips\t: 4800.00")
            blocks.append("\n".join(lines))
        self.write("proc/cpuinfo", "\n\n".join(blocks) + "\n\n")
        if kvm:
            self.write("dev/kvm", "")

    def dmi(self, vendor: str, product: str) -> None:
        self.write("sys/devices/virtual/dmi/id/sys_vendor", vendor + "\n")
        self.write("sys/devices/virtual/dmi/id/product_name", product + "\n")
        self.link("sys/class/dmi/id", "sys/devices/virtual/dmi/id")

    def iommu(self, units: list[str], groups: int) -> None:
        for u in units:
            self.link(f"sys/class/iommu/{u}", f"sys/devices/virtual/iommu/{u}")
        for g in range(groups):
            (self.root / f"sys/kernel/iommu_groups/{g}/devices").mkdir(parents=True, exist_ok=True)
            self.write(f"sys/kernel/iommu_groups/{g}/type", "identity\n")
        (self.root / "sys/kernel/iommu_groups").mkdir(parents=True, exist_ok=True)

    # -- PCI functions and netdevs ----------------------------------------------------------------------------
    def pci(
        self,
        bdf: str,
        *,
        cls: str,
        vendor: str,
        device: str,
        driver: str | None,
        parent: str = "pci0000:00",
        iommu_group: int | None = None,
        numa: int = -1,
        totalvfs: int | None = None,
        numvfs: int | None = None,
        subsystem_vendor: str | None = None,
    ) -> str:
        """A PCI function; returns its sysfs directory (relative)."""
        dev = f"sys/devices/{parent}/{bdf}"
        self.write(f"{dev}/class", cls + "\n")
        self.write(f"{dev}/vendor", vendor + "\n")
        self.write(f"{dev}/device", device + "\n")
        self.write(f"{dev}/subsystem_vendor", (subsystem_vendor or vendor) + "\n")
        self.write(f"{dev}/numa_node", f"{numa}\n")
        if totalvfs is not None:
            for name, value in (
                ("sriov_totalvfs", totalvfs),
                ("sriov_numvfs", numvfs or 0),
                ("sriov_offset", 2),
                ("sriov_stride", 1),
                ("sriov_drivers_autoprobe", 1),
            ):
                self.write(f"{dev}/{name}", f"{value}\n")
        self.link(f"sys/bus/pci/devices/{bdf}", dev)
        if driver:
            self.link(f"{dev}/driver", f"sys/bus/pci/drivers/{driver}")
            self.link(f"sys/bus/pci/drivers/{driver}/{bdf}", dev)
        if iommu_group is not None:
            self.link(f"{dev}/iommu_group", f"sys/kernel/iommu_groups/{iommu_group}")
            self.link(f"sys/kernel/iommu_groups/{iommu_group}/devices/{bdf}", dev)
        return dev

    def vf(
        self,
        pf_bdf: str,
        index: int,
        bdf: str,
        *,
        driver: str | None,
        device: str,
        vendor: str,
        parent: str = "pci0000:00",
        iommu_group: int | None = None,
    ) -> str:
        """A VF: its own PCI function, with physfn -> PF and the PF's virtfnN -> it."""
        dev = self.pci(
            bdf, cls="0x020000", vendor=vendor, device=device, driver=driver, parent=parent, iommu_group=iommu_group
        )
        pf_dev = f"sys/devices/{parent}/{pf_bdf}"
        self.link(f"{dev}/physfn", pf_dev)
        self.link(f"{pf_dev}/virtfn{index}", dev)
        return dev

    def netdev(
        self, name: str, device_dir: str | None, *, mac: str, operstate: str = "up", speed: int | None = None
    ) -> str:
        """A netdev under a device (PCI or VMBus) or under devices/virtual/net; sys/class/net/<name> links to it."""
        base = f"{device_dir}/net/{name}" if device_dir else f"sys/devices/virtual/net/{name}"
        self.write(f"{base}/address", mac + "\n")
        self.write(f"{base}/operstate", operstate + "\n")
        if speed is not None:
            self.write(f"{base}/speed", f"{speed}\n")
        if device_dir:
            self.link(f"{base}/device", device_dir)
        self.link(f"sys/class/net/{name}", base)
        self.netdevs[name] = base
        return base

    def bond(self, name: str, members: list[str], mode: str, mac: str) -> None:
        base = self.netdev(name, None, mac=mac)
        self.write(f"{base}/bonding/slaves", " ".join(members) + "\n")
        self.write(f"{base}/bonding/mode", mode + "\n")
        for m in members:
            self.link(f"{self.netdevs[m]}/master", base)


# -- the linux-cx5 example ---------------------------------------------------------------------------------
CX5_PF0, CX5_PF1 = "0000:3b:00.0", "0000:3b:00.1"
CX5_VFS = ["0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4", "0000:3b:00.5"]
CX5_VF_MACS = ["52:54:00:6d:90:02", "52:54:00:6d:90:03", "00:00:00:00:00:00", "00:00:00:00:00:00"]
_XEON_FLAGS_TEXT = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse "
    "sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl "
    "xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 "
    "sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx "
    "f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb cat_l3 invpcid_single intel_ppin ssbd mba "
    "ibrs ibpb stibp ibrs_enhanced tpr_shadow vnmi flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 "
    "avx2 smep bmi2 erms invpcid cqm rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb "
    "intel_pt avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves wbnoinvd dtherm ida arat "
    "pln pts avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg "
    "tme avx512_vpopcntdq la57 rdpid fsrm md_clear pconfig flush_l1d arch_capabilities"
)
XEON_FLAGS = _XEON_FLAGS_TEXT.split()


def domain_xml(name: str, uuid: str, running: bool, interfaces: str) -> str:
    dom_id = " id='3'" if running else ""
    return (
        f"<domain type='kvm'{dom_id}>\n  <name>{name}</name>\n  <uuid>{uuid}</uuid>\n"
        "  <memory unit='KiB'>4194304</memory>\n  <vcpu placement='static'>4</vcpu>\n"
        "  <os>\n    <type arch='x86_64' machine='pc-q35-6.2'>hvm</type>\n  </os>\n"
        f"  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n{interfaces}  </devices>\n"
        "</domain>\n"
    )


def hostdev_iface(mac: str, bus: int, slot: int, fn: int, vlan: int | None, alias: str) -> str:
    vl = f"      <vlan>\n        <tag id='{vlan}'/>\n      </vlan>\n" if vlan else ""
    return (
        "    <interface type='hostdev' managed='yes'>\n"
        f"      <mac address='{mac}'/>\n      <driver name='vfio'/>\n      <source>\n"
        f"        <address type='pci' domain='0x0000' bus='0x{bus:02x}' slot='0x{slot:02x}' function='0x{fn:x}'/>\n"
        f"      </source>\n{vl}      <alias name='{alias}'/>\n"
        "      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
        "    </interface>\n"
    )


def bridge_iface(mac: str, bridge: str, target: str) -> str:
    return (
        f"    <interface type='bridge'>\n      <mac address='{mac}'/>\n      <source bridge='{bridge}'/>\n"
        f"      <target dev='{target}'/>\n      <model type='virtio'/>\n    </interface>\n"
    )


def build_cx5_host(root: Path) -> Tree:
    """Ubuntu 22.04 KVM host: Xeon (vmx+ept), intel_iommu=on iommu=pt, DMAR, 60 IOMMU groups, a ConnectX-5
    dual port (8 VFs per port possible, 4 on port 0: two to vfio-pci for libvirt domains, two on mlx5_core),
    an I350 pair in an active-backup bond for management, and libvirt domains with hostdev interfaces."""
    t = Tree(root)
    t.host(
        hostname="kvm-edge-01",
        pretty="Ubuntu 22.04.4 LTS",
        os_id="ubuntu",
        version_id="22.04",
        kernel="5.15.0-105-generic",
        cmdline="BOOT_IMAGE=/vmlinuz-5.15.0-105-generic root=/dev/mapper/vg0-root ro intel_iommu=on iommu=pt",
        cpu_model="Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz",
        vendor="GenuineIntel",
        cores=16,
        threads=32,
        flags=XEON_FLAGS,
        vmx_flags=[
            "vnmi",
            "preemption_timer",
            "posted_intr",
            "invvpid",
            "ept_x_only",
            "ept_ad",
            "ept_1gb",
            "flexpriority",
            "apicv",
            "tsc_offset",
            "vtpr",
            "mtf",
            "vapic",
            "ept",
            "vpid",
            "unrestricted_guest",
            "vapic_reg",
            "vid",
            "ple",
            "shadow_vmcs",
            "pml",
            "ept_mode_based_exec",
            "tsc_scaling",
        ],
    )
    t.dmi("Supermicro", "SYS-120U-TNR")
    t.write("sys/module/kvm_intel/parameters/ept", "Y\n")
    t.iommu(["dmar0", "dmar1", "dmar2"], groups=60)
    # Non-network PCI functions the collector must skip.
    t.pci("0000:00:00.0", cls="0x060000", vendor="0x8086", device="0x09a2", driver=None, iommu_group=0)
    t.pci(
        "0000:3a:00.0",
        cls="0x060400",
        vendor="0x8086",
        device="0x347a",
        driver="pcieport",
        parent="pci0000:3a",
        iommu_group=30,
        numa=0,
    )
    cx5 = "pci0000:3a/0000:3a:00.0"
    pf0 = t.pci(
        CX5_PF0,
        cls="0x020000",
        vendor="0x15b3",
        device="0x1017",
        driver="mlx5_core",
        parent=cx5,
        iommu_group=31,
        numa=0,
        totalvfs=8,
        numvfs=4,
    )
    pf1 = t.pci(
        CX5_PF1,
        cls="0x020000",
        vendor="0x15b3",
        device="0x1017",
        driver="mlx5_core",
        parent=cx5,
        iommu_group=32,
        numa=0,
        totalvfs=8,
        numvfs=0,
    )
    t.netdev("ens1f0np0", pf0, mac="b8:ce:f6:12:34:50", speed=25000)
    t.netdev("ens1f1np1", pf1, mac="b8:ce:f6:12:34:51", operstate="down")
    for i, bdf in enumerate(CX5_VFS):
        drv = "vfio-pci" if i < 2 else "mlx5_core"
        dev = t.vf(CX5_PF0, i, bdf, driver=drv, vendor="0x15b3", device="0x1018", parent=cx5, iommu_group=33 + i)
        if drv == "mlx5_core":
            t.netdev(f"ens1f0v{i}", dev, mac=f"aa:1b:2c:3d:4e:{i:02x}", speed=25000)
    i350 = []
    for fn, name in ((0, "eno1"), (1, "eno2")):
        bdf = f"0000:18:00.{fn}"
        dev = t.pci(
            bdf,
            cls="0x020000",
            vendor="0x8086",
            device="0x1521",
            driver="igb",
            parent="pci0000:17",
            iommu_group=20 + fn,
            numa=0,
            totalvfs=7,
            numvfs=0,
        )
        t.netdev(name, dev, mac=f"3c:ec:ef:00:11:0{fn}", speed=1000)
        i350.append(name)
    t.bond("bond0", i350, "active-backup 1", mac="3c:ec:ef:00:11:00")
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    t.netdev("virbr0", None, mac="52:54:00:aa:00:01")
    # The netlink VF dump, as `ip -j link show` prints it.
    vfinfo = [
        {
            "vf": 0,
            "link_type": "ether",
            "address": CX5_VF_MACS[0],
            "broadcast": "ff:ff:ff:ff:ff:ff",
            "vlan_list": [{"vlan": 100, "qos": 0}],
            "spoofchk": True,
            "link_state": "auto",
            "trust": False,
        },
        {
            "vf": 1,
            "link_type": "ether",
            "address": CX5_VF_MACS[1],
            "broadcast": "ff:ff:ff:ff:ff:ff",
            "vlan_list": [{"vlan": 100, "qos": 0}],
            "spoofchk": False,
            "link_state": "enable",
            "trust": True,
        },
        {
            "vf": 2,
            "link_type": "ether",
            "address": CX5_VF_MACS[2],
            "broadcast": "ff:ff:ff:ff:ff:ff",
            "spoofchk": True,
            "link_state": "auto",
            "trust": False,
        },
        {
            "vf": 3,
            "link_type": "ether",
            "address": CX5_VF_MACS[3],
            "broadcast": "ff:ff:ff:ff:ff:ff",
            "spoofchk": True,
            "link_state": "disable",
            "trust": False,
        },
    ]
    t.capture(
        "netlink_vfinfo.json",
        json.dumps(
            [
                {
                    "ifindex": 4,
                    "ifname": "ens1f0np0",
                    "flags": ["UP"],
                    "mtu": 9000,
                    "operstate": "UP",
                    "vfinfo_list": vfinfo,
                }
            ],
            indent=1,
        ),
    )
    t.capture(
        "virsh_-r_list_--all",
        " Id   Name       State\n---------------------------\n 3    relay1     running\n"
        " 4    relay2     running\n -    build-vm   shut off\n\n",
    )
    t.capture(
        "virsh_-r_dumpxml_relay1",
        domain_xml(
            "relay1",
            "5c1c7c4e-0d0a-4b6e-9a8f-3e2b1d000001",
            True,
            hostdev_iface(CX5_VF_MACS[0], 0x3B, 0, 2, 100, "hostdev0")
            + bridge_iface("52:54:00:10:00:01", "virbr0", "vnet0"),
        ),
    )
    t.capture(
        "virsh_-r_dumpxml_relay2",
        domain_xml(
            "relay2",
            "5c1c7c4e-0d0a-4b6e-9a8f-3e2b1d000002",
            True,
            hostdev_iface(CX5_VF_MACS[1], 0x3B, 0, 3, 100, "hostdev0"),
        ),
    )
    t.capture(
        "virsh_-r_dumpxml_build-vm",
        domain_xml(
            "build-vm",
            "5c1c7c4e-0d0a-4b6e-9a8f-3e2b1d000003",
            False,
            bridge_iface("52:54:00:10:00:03", "virbr0", "vnet9"),
        ),
    )
    return t


def build_hyperv_guest(root: Path, *, with_vf: bool = True, vf_rx: int = 123456, vf_tx: int = 654321) -> Tree:
    """A Linux VM on Hyper-V: hv_netvsc eth0 on VMBus, and (optionally) a ConnectX-5 VF paired with it."""
    t = Tree(root)
    t.host(
        hostname="relay-vm",
        pretty="Ubuntu 22.04.4 LTS",
        os_id="ubuntu",
        version_id="22.04",
        kernel="5.15.0-1064-azure",
        cmdline="BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro console=ttyS0",
        cpu_model="Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz",
        vendor="GenuineIntel",
        cores=4,
        threads=8,
        flags=["fpu", "sse2", "ht", "hypervisor", "avx2"],
        kvm=False,
    )
    t.dmi("Microsoft Corporation", "Virtual Machine")
    vmbus = "sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00"
    nvsc = f"{vmbus}/000d3a6e-1c2b-000d-3a6e-1c2b000d3a6e"
    t.write(f"{nvsc}/class_id", "{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n")
    t.link(f"{nvsc}/driver", "sys/bus/vmbus/drivers/hv_netvsc")
    eth0 = t.netdev("eth0", nvsc, mac="00:0d:3a:6e:1c:2b", speed=50000)
    t.capture(
        "ethtool_-S_eth0",
        "NIC statistics:\n     tx_scattered: 0\n     tx_no_memory: 0\n"
        f"     vf_rx_packets: {vf_rx if with_vf else 0}\n     vf_rx_bytes: 987654\n"
        f"     vf_tx_packets: {vf_tx if with_vf else 0}\n     vf_tx_bytes: 876543\n     vf_tx_dropped: 0\n",
    )
    if with_vf:
        parent = f"{vmbus}/f8615163-0000-1000-2000-000d3a6e1c2b/pci1c2b:00"
        dev = t.pci("1c2b:00:02.0", cls="0x020000", vendor="0x15b3", device="0x1018", driver="mlx5_core", parent=parent)
        vf = t.netdev("enP7211s1", dev, mac="00:0d:3a:6e:1c:2b", speed=50000)
        t.link(f"{vf}/master", eth0)
        t.link(f"{eth0}/lower_enP7211s1", vf)
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t


EXAMPLE_TIME = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def build_example(out: Path) -> None:
    """Write iovkit/examples/linux-cx5.tar.gz through the real collector and archive writer."""
    import tempfile

    from iovkit.snapshot import SourceInfo
    from iovkit.sources.linux.archive import write_archive
    from iovkit.sources.linux.collector import LinuxCollector
    from iovkit.sources.linux.reader import FsReader

    with tempfile.TemporaryDirectory() as tmp:
        build_cx5_host(Path(tmp))
        reader = FsReader(Path(tmp))
        LinuxCollector(reader).snapshot(SourceInfo(kind="linux-live", origin=tmp))
        write_archive(out, reader.record, EXAMPLE_TIME, "kvm-edge-01:/ (built by tests/sources/linux_tree.py)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--example":
        build_example(Path(sys.argv[2]))
        print(f"wrote {sys.argv[2]}")
    else:
        print(__doc__)
        sys.exit(2)
