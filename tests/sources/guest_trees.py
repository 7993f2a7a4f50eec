"""Linux guest root trees in the shapes guest.md records: netvsc + mlx5 / + MANA / alone after a VF removal,
KVM virtio-net, net_failover (virtio standby + VF primary) and a passed-through iavf VF.

Counters are read twice: the first read is the file (proc/net/dev, proc/stat) or the capture
`ethtool_-S_<if>`, the second the capture `<name>.after` (what a live guest records one second later).
"""

from __future__ import annotations

from pathlib import Path

from tests.sources.linux_tree import Tree

VMBUS = "sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00"
NETVSC_GUID = "000d3a6e-1c2b-000d-3a6e-1c2b000d3a6e"
NETDEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
    "carrier compressed\n"
)
FLAGS_UP = 0x1003  # IFF_UP | IFF_BROADCAST | IFF_MULTICAST
IFF_SLAVE = 0x800


def net_dev(rows: dict[str, tuple[int, int]]) -> str:
    """/proc/net/dev with (rx packets, tx packets) per interface."""
    out = NETDEV_HEADER
    for name, (rx, tx) in rows.items():
        out += f"{name:>6}: {rx * 900} {rx} 0 0 0 0 0 0 {tx * 900} {tx} 0 0 0 0 0 0\n"
    return out


def proc_stat(user: int, system: int, idle: int, steal: int, btime: int = 1795944000) -> str:
    return (
        f"cpu  {user} 0 {system} {idle} 10 0 5 {steal} 0 0\n"
        f"cpu0 {user // 2} 0 {system // 2} {idle // 2} 5 0 2 {steal // 2} 0 0\n"
        f"intr 12345\nctxt 67890\nbtime {btime}\nprocesses 999\n"
    )


def netvsc_stats(vf_rx: int, vf_tx: int, q_rx: int, q_tx: int, channels: int = 2) -> str:
    """`ethtool -S eth0` of hv_netvsc, in netvsc_drv.c's order (guest.md §1.3)."""
    lines = ["NIC statistics:"]
    for k in ("tx_scattered", "tx_no_memory", "tx_no_space", "tx_too_big", "tx_busy", "tx_send_full"):
        lines.append(f"     {k}: 0")
    for k in ("rx_comp_busy", "rx_no_memory", "stop_queue", "wake_queue"):
        lines.append(f"     {k}: 0")
    lines += [
        f"     vf_rx_packets: {vf_rx}",
        f"     vf_rx_bytes: {vf_rx * 900}",
        f"     vf_tx_packets: {vf_tx}",
        f"     vf_tx_bytes: {vf_tx * 900}",
        "     vf_tx_dropped: 0",
    ]
    for q in range(channels):
        lines += [
            f"     tx_queue_{q}_packets: {q_tx // channels}",
            f"     tx_queue_{q}_bytes: {q_tx // channels * 900}",
            f"     rx_queue_{q}_packets: {q_rx // channels}",
            f"     rx_queue_{q}_bytes: {q_rx // channels * 900}",
            f"     rx_queue_{q}_xdp_drop: 0",
        ]
    return "\n".join(lines) + "\n"


def channels(ifname: str, maximum: int, current: int) -> str:
    return (
        f"Channel parameters for {ifname}:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\n"
        f"Combined:\t{maximum}\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\n"
        f"Combined:\t{current}\n"
    )


def indirection(ifname: str, rings: int, table: list[int]) -> str:
    rows = "".join(f"{i:5}: " + " ".join(f"{q:5}" for q in table[i : i + 8]) + "\n" for i in range(0, len(table), 8))
    return (
        f"RX flow hash indirection table for {ifname} with {rings} RX ring(s):\n{rows}"
        "RSS hash key:\n6d:5a:56:da:25:5a:ec:40\nRSS hash function:\n    toeplitz: on\n    xor: off\n"
    )


def udp4_hash(l4: bool) -> str:
    text = "UDP over IPV4 flows use these fields for computing Hash flow key:\nIP SA\nIP DA\n"
    if l4:
        text += "L4 bytes 0 & 1 [TCP/UDP src port]\nL4 bytes 2 & 3 [TCP/UDP dst port]\n"
    return text


def features(ifname: str, gro: bool = True, gro_list: bool = False) -> str:
    on = {True: "on", False: "off"}
    return (
        f"Features for {ifname}:\nrx-checksumming: on\ntx-checksumming: on\nscatter-gather: on\n"
        f"tcp-segmentation-offload: on\ngeneric-segmentation-offload: on\ngeneric-receive-offload: {on[gro]}\n"
        "large-receive-offload: off [fixed]\ntx-udp-segmentation: off [fixed]\n"
        f"rx-gro-list: {on[gro_list]}\nrx-udp-gro-forwarding: off\n"
    )


def _guest_host(t: Tree, *, vendor: str, product: str, kernel: str, vcpus: int = 4) -> None:
    t.host(
        hostname="relay-vm",
        pretty="Ubuntu 22.04.4 LTS",
        os_id="ubuntu",
        version_id="22.04",
        kernel=kernel,
        cmdline="BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro console=ttyS0",
        cpu_model="Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz",
        vendor="GenuineIntel",
        cores=vcpus,
        threads=vcpus,
        flags=["fpu", "sse2", "hypervisor", "avx2"],
        kvm=False,
    )
    t.dmi(vendor, product)
    t.write("sys/devices/system/cpu/online", f"0-{vcpus - 1}\n")
    (t.root / "sys/devices/system/node/node0").mkdir(parents=True, exist_ok=True)
    for key, value in (("rmem_max", 212992), ("rmem_default", 212992), ("wmem_max", 212992)):
        t.write(f"proc/sys/net/core/{key}", f"{value}\n")
    t.write("proc/sys/net/netfilter/nf_conntrack_max", "262144\n")
    (t.root / "sys/module/nf_conntrack").mkdir(parents=True, exist_ok=True)
    t.capture("iptables_-t_raw_-S", "-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n")
    t.capture("irqbalance_running", "running (pid 712)\n")
    t.capture("guest_sample_seconds", "1\n")
    mods = f"lib/modules/{kernel}"
    for rel in (
        "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_core.ko.zst",
        "kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko.zst",
    ):
        t.write(f"{mods}/{rel}", "")
    t.write(f"{mods}/modules.builtin", "kernel/drivers/net/hyperv/hv_netvsc.ko\n")


def _flags(t: Tree, base: str, value: int) -> None:
    t.write(f"{base}/flags", f"0x{value:x}\n")


def _queues(t: Tree, base: str, n: int, rps: str = "0") -> None:
    for q in range(n):
        t.write(f"{base}/queues/rx-{q}/rps_cpus", rps + "\n")
        t.write(f"{base}/queues/tx-{q}/xps_cpus", "0\n")


def _stats(t: Tree, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], steal: int = 0) -> None:
    t.write("proc/net/dev", net_dev(before))
    t.capture("proc_net_dev.after", net_dev(after))
    t.write("proc/stat", proc_stat(1000, 500, 8000, 0))
    t.capture("proc_stat.after", proc_stat(1100, 550, 8330, steal))


def _netvsc(t: Tree) -> str:
    nvsc = f"{VMBUS}/{NETVSC_GUID}"
    t.write(f"{nvsc}/class_id", "{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n")
    t.link(f"{nvsc}/driver", "sys/bus/vmbus/drivers/hv_netvsc")
    eth0 = t.netdev("eth0", nvsc, mac="00:22:48:71:c2:8c", speed=50000)
    _flags(t, eth0, FLAGS_UP)
    _queues(t, eth0, 4)
    t.capture("ethtool_-l_eth0", channels("eth0", 4, 4))
    t.capture("ethtool_-k_eth0", features("eth0"))
    return eth0


BOOT_LOG = (
    "2026-11-20T08:00:01,100000+00:00 hv_netvsc {guid} eth0: VF slot 1 added\n"
    "2026-11-20T08:00:02,200000+00:00 hv_netvsc {guid} eth0: VF registering: eth1\n"
    "2026-11-20T08:00:02,210000+00:00 {drv} {bdf} eth1: joined to eth0\n"
    "2026-11-20T08:00:03,300000+00:00 hv_netvsc {guid} eth0: Data path switched to VF: {vf}\n"
)


def build_netvsc_vf(root: Path, *, mana: bool = False, vf_moving: bool = True) -> Tree:
    """Azure/Hyper-V: eth0 (hv_netvsc) with a VF enslaved (mlx5 ConnectX-4 Lx, or MANA), same MAC, SLAVE flag."""
    t = Tree(root)
    _guest_host(t, vendor="Microsoft Corporation", product="Virtual Machine", kernel="5.15.0-1064-azure")
    eth0 = _netvsc(t)
    if mana:
        bdf, vendor, device, drv, vf_name = "7870:00:00.0", "0x1414", "0x00ba", "mana", "enP30832p0s0"
    else:
        bdf, vendor, device, drv, vf_name = "cf63:00:02.0", "0x15b3", "0x1016", "mlx5_core", "enP53091s1np0"
    parent = f"{VMBUS}/f8615163-0000-1000-2000-00224871c28c/pci{bdf[:4]}:00"
    dev = t.pci(bdf, cls="0x020000", vendor=vendor, device=device, driver=drv, parent=parent, numa=0)
    t.write(f"{dev}/local_cpulist", "0-3\n")
    vf = t.netdev(vf_name, dev, mac="00:22:48:71:c2:8c", speed=50000)
    _flags(t, vf, FLAGS_UP | IFF_SLAVE)
    _queues(t, vf, 4)
    t.link(f"{vf}/master", eth0)
    t.link(f"{vf}/upper_eth0", eth0)
    t.link(f"{eth0}/lower_{vf_name}", vf)
    step = 5000 if vf_moving else 0
    t.capture("ethtool_-S_eth0", netvsc_stats(111180, 98000, 4000, 3000))
    t.capture(
        "ethtool_-S_eth0.after", netvsc_stats(111180 + step, 98000 + step, 4000 + (0 if vf_moving else 800), 3000)
    )
    _stats(
        t,
        {"eth0": (200000, 150000), vf_name: (111180, 98000)},
        {"eth0": (200000 + 2 * step, 150000 + 2 * step), vf_name: (111180 + step, 98000 + step)},
    )
    t.capture("ethtool_-l_" + vf_name, channels(vf_name, 8, 4))
    t.capture("ethtool_-x_" + vf_name, indirection(vf_name, 4, [0, 1, 2, 3] * 32))
    t.capture(f"ethtool_-n_{vf_name}_rx-flow-hash_udp4", udp4_hash(l4=True))
    t.capture("ethtool_-k_" + vf_name, features(vf_name))
    irq = "mana_q{q}@pci:" + bdf if mana else "mlx5_comp{q}@pci:" + bdf
    t.write(
        "proc/interrupts",
        "           CPU0       CPU1       CPU2       CPU3\n"
        + "".join(f" {40 + q}:  10  10  10  10  PCI-MSIX-{bdf} {q}-edge  {irq.format(q=q)}\n" for q in range(4)),
    )
    for q in range(4):
        t.write(f"proc/irq/{40 + q}/smp_affinity_list", f"{q}\n")
    t.capture("dmesg_datapath", BOOT_LOG.format(guid=NETVSC_GUID, drv=drv, bdf=bdf, vf=vf_name))
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t


def build_netvsc_after_removal(root: Path) -> Tree:
    """Host servicing took the VF away: eth0 alone, its vf_* counters flat, its VMBus channels moving."""
    t = Tree(root)
    _guest_host(t, vendor="Microsoft Corporation", product="Virtual Machine", kernel="5.15.0-1064-azure")
    _netvsc(t)
    t.capture("ethtool_-S_eth0", netvsc_stats(111180, 98000, 4000, 3000))
    t.capture("ethtool_-S_eth0.after", netvsc_stats(111180, 98000, 9000, 7000))
    _stats(t, {"eth0": (200000, 150000)}, {"eth0": (205000, 154000)})
    t.capture(
        "dmesg_datapath",
        BOOT_LOG.format(guid=NETVSC_GUID, drv="mlx5_core", bdf="cf63:00:02.0", vf="enP53091s1np0")
        + f"2026-11-28T03:12:45,000000+00:00 hv_netvsc {NETVSC_GUID} eth0: Data path switched from VF: enP53091s1np0\n"
        f"2026-11-28T03:12:45,100000+00:00 hv_netvsc {NETVSC_GUID} eth0: VF unregistering: enP53091s1np0\n"
        f"2026-11-28T03:12:46,000000+00:00 hv_netvsc {NETVSC_GUID} eth0: VF slot 1 removed\n",
    )
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t


def _virtio(t: Tree, bdf: str, virtio: str, name: str, mac: str) -> str:
    pci = t.pci(bdf, cls="0x020000", vendor="0x1af4", device="0x1041", driver="virtio-pci")
    t.write(f"{pci}/local_cpulist", "0-3\n")
    vdev = f"{pci}/{virtio}"
    t.write(f"{vdev}/vendor", "0x1af4\n")
    t.write(f"{vdev}/device", "0x0001\n")
    t.link(f"{vdev}/driver", "sys/bus/virtio/drivers/virtio_net")
    base = t.netdev(name, vdev, mac=mac)
    _flags(t, base, FLAGS_UP)
    return base


def build_kvm_virtio(root: Path, *, queues: int = 1) -> Tree:
    """A KVM guest with one virtio-net NIC, like the machines iovkit is built on."""
    t = Tree(root)
    _guest_host(t, vendor="QEMU", product="Standard PC (Q35 + ICH9, 2009)", kernel="6.8.0-45-generic")
    base = _virtio(t, "0000:00:03.0", "virtio2", "eth0", "52:54:00:12:34:56")
    _queues(t, base, queues)
    _stats(t, {"eth0": (3941, 2471)}, {"eth0": (4941, 3471)})
    t.capture("ethtool_-l_eth0", channels("eth0", queues, queues))
    t.capture("ethtool_-k_eth0", features("eth0"))
    t.write(
        "proc/interrupts",
        "           CPU0       CPU1\n 37:   0   0  PCI-MSIX-0000:00:03.0 0-edge  virtio2-config\n"
        " 38: 100 200  PCI-MSIX-0000:00:03.0 1-edge  virtio2-input.0\n"
        " 39:  50  60  PCI-MSIX-0000:00:03.0 2-edge  virtio2-output.0\n",
    )
    for irq in (37, 38, 39):
        t.write(f"proc/irq/{irq}/smp_affinity_list", "0-3\n")
    t.capture("dmesg_datapath", "")
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t


def build_net_failover(root: Path, *, primary: bool = True) -> Tree:
    """virtio-net failover (kernel net_failover.rst sample): ens10 master, ens10nsby standby, ens11 VF primary."""
    t = Tree(root)
    _guest_host(t, vendor="QEMU", product="Standard PC (Q35 + ICH9, 2009)", kernel="6.8.0-45-generic")
    mac = "52:54:00:00:12:53"
    standby = _virtio(t, "0000:00:0a.0", "virtio3", "ens10nsby", mac)
    vdev = "sys/devices/pci0000:00/0000:00:0a.0/virtio3"
    master = t.netdev("ens10", vdev, mac=mac)  # net_failover_create: SET_NETDEV_DEV(failover, standby's parent)
    _flags(t, master, FLAGS_UP | 0x400)  # IFF_MASTER
    _flags(t, standby, FLAGS_UP | IFF_SLAVE)
    t.link(f"{standby}/master", master)
    t.link(f"{master}/lower_ens10nsby", standby)
    rows_before = {"ens10": (10000, 9000), "ens10nsby": (50, 40)}
    rows_after = {"ens10": (15000, 14000), "ens10nsby": (50, 40)}
    if primary:
        dev = t.pci("0000:00:0b.0", cls="0x020000", vendor="0x15b3", device="0x1018", driver="mlx5_core", numa=0)
        vf = t.netdev("ens11", dev, mac=mac)
        _flags(t, vf, FLAGS_UP | IFF_SLAVE)
        _queues(t, vf, 2)
        t.link(f"{vf}/master", master)
        t.link(f"{master}/lower_ens11", vf)
        rows_before["ens11"] = (9950, 8960)
        rows_after["ens11"] = (14950, 13960)
        t.capture("ethtool_-l_ens11", channels("ens11", 4, 2))
    else:
        rows_after["ens10nsby"] = (5050, 5040)
    _stats(t, rows_before, rows_after)
    t.capture(
        "dmesg_datapath",
        "[    2.101000] virtio_net virtio3 ens10: failover standby slave:ens10nsby registered\n"
        + ("[    2.402000] virtio_net virtio3 ens10: failover primary slave:ens11 registered\n" if primary else ""),
    )
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t


def build_iavf_guest(root: Path) -> Tree:
    """A KVM guest with an E810/X710 VF passed through (hostdev): iavf drives it; no pairing, no physfn."""
    t = Tree(root)
    _guest_host(t, vendor="QEMU", product="Standard PC (Q35 + ICH9, 2009)", kernel="6.8.0-45-generic", vcpus=8)
    dev = t.pci("0000:06:00.0", cls="0x020000", vendor="0x8086", device="0x1889", driver="iavf", numa=0)
    t.write(f"{dev}/local_cpulist", "0-7\n")
    base = t.netdev("enp6s0", dev, mac="52:54:00:6d:90:02", speed=25000)
    _flags(t, base, FLAGS_UP)
    _queues(t, base, 4)
    _stats(t, {"enp6s0": (500000, 480000)}, {"enp6s0": (620000, 600000)})
    t.capture("ethtool_-l_enp6s0", channels("enp6s0", 4, 4))
    t.capture("ethtool_-x_enp6s0", indirection("enp6s0", 4, [0, 1, 2, 3] * 16))
    t.capture("ethtool_-n_enp6s0_rx-flow-hash_udp4", udp4_hash(l4=False))
    t.capture("ethtool_-k_enp6s0", features("enp6s0", gro_list=True))
    t.write(
        "proc/interrupts",
        "           CPU0       CPU1\n"
        + "".join(f" {50 + q}:  9  9  PCI-MSIX-0000:06:00.0 {q + 1}-edge  iavf-enp6s0-TxRx-{q}\n" for q in range(4)),
    )
    for q in range(4):
        t.write(f"proc/irq/{50 + q}/smp_affinity_list", "0\n")
    t.capture("dmesg_datapath", "")
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t


def build_esxi_guest(root: Path) -> Tree:
    """An ESXi VM: vmxnet3 for management, and an 82599 VF (SR-IOV passthrough adapter, ixgbevf) for the traffic."""
    t = Tree(root)
    _guest_host(t, vendor="VMware, Inc.", product="VMware Virtual Platform", kernel="6.8.0-45-generic")
    mgmt = t.pci("0000:03:00.0", cls="0x020000", vendor="0x15ad", device="0x07b0", driver="vmxnet3")
    m = t.netdev("ens160", mgmt, mac="00:50:56:a1:00:01", speed=10000)
    _flags(t, m, FLAGS_UP)
    _queues(t, m, 2)
    dev = t.pci("0000:0b:00.0", cls="0x020000", vendor="0x8086", device="0x10ed", driver="ixgbevf", numa=0)
    vf = t.netdev("ens224", dev, mac="00:50:56:a1:00:02", speed=10000)
    _flags(t, vf, FLAGS_UP)
    _queues(t, vf, 2)
    _stats(
        t, {"ens160": (9000, 8000), "ens224": (700000, 690000)}, {"ens160": (9010, 8008), "ens224": (820000, 810000)}
    )
    t.capture("ethtool_-l_ens224", channels("ens224", 2, 2))
    t.capture("dmesg_datapath", "")
    t.netdev("lo", None, mac="00:00:00:00:00:00", operstate="unknown")
    return t
