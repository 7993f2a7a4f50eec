"""Build a HostSnapshot from a Linux host through a Reader (live `/`, a root tree, or an archive's record).

What is read is declared below as data (paths relative to the root, per-device attributes, commands); the
Reader does all I/O and records it. Nothing here touches the filesystem directly, so a live host, a test tree
and an archive go through the same code.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from iovkit.snapshot import (
    VM,
    CollectionError,
    CpuInfo,
    GuestNic,
    HostInfo,
    HostSnapshot,
    IommuInfo,
    PhysicalNic,
    SourceInfo,
    Team,
    VirtualFunction,
    VmAdapter,
)
from iovkit.sources.linux import netlink
from iovkit.sources.linux.parsers import (
    DomainFacts,
    VfFacts,
    capture_name,
    guest_of,
    parse_cmdline_iommu,
    parse_cpuinfo,
    parse_domain_xml,
    parse_ethtool_stats,
    parse_ip_vfinfo,
    parse_os_release,
    parse_virsh_list,
)
from iovkit.sources.linux.reader import CaptureError, Reader

# -- what is read, declared ------------------------------------------------------------------------------
HOST_FILES = {
    "cpuinfo": "proc/cpuinfo",
    "cmdline": "proc/cmdline",
    "osrelease": "proc/sys/kernel/osrelease",
    "kversion": "proc/sys/kernel/version",
    "hostname": "proc/sys/kernel/hostname",
    "os_release": "etc/os-release",
    "os_release_fallback": "usr/lib/os-release",
    "dmi_vendor": "sys/class/dmi/id/sys_vendor",
    "dmi_product": "sys/class/dmi/id/product_name",
    "hypervisor_type": "sys/hypervisor/type",
    "kvm_intel_ept": "sys/module/kvm_intel/parameters/ept",
    "kvm_amd_npt": "sys/module/kvm_amd/parameters/npt",
}
KVM_DEVICE = "dev/kvm"
IOMMU_GROUPS_DIR = "sys/kernel/iommu_groups"
IOMMU_CLASS_DIR = "sys/class/iommu"
PCI_DIR = "sys/bus/pci/devices"
NET_DIR = "sys/class/net"

VIRSH = "virsh"
VIRSH_LIST = (VIRSH, "-r", "list", "--all")
VIRSH_DUMPXML = (VIRSH, "-r", "dumpxml")  # + domain name
NETLINK_CAPTURE = "netlink_vfinfo.json"  # `ip -j link show` shape, PFs with VFs only
ETHTOOL_CAPTURE = "ethtool_-S_{ifname}"  # `ethtool -S` text
COMMAND_TIMEOUT_S = 15.0

# Virtual NICs are never physical NICs: virtio (Red Hat/QEMU 1af4), VMware (15ad) and friends.
VIRTUAL_PCI_VENDORS = {"0x1af4", "0x15ad", "0x1ab8", "0x5853"}
VIRTUAL_DRIVERS = {"virtio-pci", "virtio_net", "vmxnet3", "hv_netvsc", "xen-netfront", "veth"}
GUEST_SYNTHETIC_DRIVERS = {"hv_netvsc"}

# vendor:device -> description, for the NICs iovkit meets most (pci.ids is not read: too big to archive).
PCI_NAMES = {
    "15b3:1013": "Mellanox ConnectX-4",
    "15b3:1015": "Mellanox ConnectX-4 Lx",
    "15b3:1016": "Mellanox ConnectX-4 Lx Virtual Function",
    "15b3:1017": "Mellanox ConnectX-5",
    "15b3:1018": "Mellanox ConnectX-5 Virtual Function",
    "15b3:1019": "Mellanox ConnectX-5 Ex",
    "15b3:101b": "Mellanox ConnectX-6",
    "15b3:101d": "Mellanox ConnectX-6 Dx",
    "15b3:101f": "Mellanox ConnectX-6 Lx",
    "15b3:1021": "Mellanox ConnectX-7",
    "8086:1521": "Intel I350 Gigabit Network Connection",
    "8086:1520": "Intel I350 Ethernet Controller Virtual Function",
    "8086:10fb": "Intel 82599ES 10-Gigabit SFI/SFP+",
    "8086:10ed": "Intel 82599 Ethernet Controller Virtual Function",
    "8086:1572": "Intel Ethernet Controller X710 for 10GbE SFP+",
    "8086:1583": "Intel Ethernet Controller XL710 for 40GbE QSFP+",
    "8086:154c": "Intel Ethernet Virtual Function 700 Series",
    "8086:1592": "Intel Ethernet Controller E810-C for QSFP",
    "8086:159b": "Intel Ethernet Controller E810-XXV for SFP",
    "8086:1889": "Intel Ethernet Adaptive Virtual Function",
}


# -- small helpers ---------------------------------------------------------------------------------------
def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def run_command(argv: tuple[str, ...] | list[str]) -> str | None:
    """Run a read-only command with a timeout; None when the program does not exist here."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise CaptureError(f"timed out after {COMMAND_TIMEOUT_S:.0f} s") from err
    except OSError as err:
        raise CaptureError(err.strerror or str(err)) from err
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise CaptureError(msg[:200])
    return proc.stdout


@dataclass
class _Pci:
    address: str
    vendor: str | None
    device: str | None
    driver: str | None
    netdevs: list[str]
    totalvfs: int | None
    numvfs: int | None
    numa: int | None
    iommu_group: int | None
    is_vf: bool
    virtfns: dict[int, str] = field(default_factory=dict)  # index -> VF PCI address


class LinuxCollector:
    """One collection: asks the reader what the declarations above say, fills a snapshot."""

    def __init__(self, reader: Reader, guest_sample_seconds: float = 1.0) -> None:
        self.r = reader
        self.guest_sample_seconds = guest_sample_seconds
        self.errors: list[CollectionError] = []

    def _err(self, source: str, error: str) -> None:
        self.errors.append(CollectionError(source=source, error=error))

    # -- host, CPU, IOMMU --------------------------------------------------------------------------------
    def host_cpu(self) -> tuple[HostInfo, CpuInfo, bool]:
        r = self.r
        cpu = CpuInfo()
        guest: bool | None = None
        text = r.read(HOST_FILES["cpuinfo"])
        if text is None:
            self._err("/proc/cpuinfo", "not readable")
        else:
            f = parse_cpuinfo(text)
            cpu = CpuInfo(
                model=f.model, vendor=f.vendor, sockets=f.sockets, cores=f.cores, logical_processors=f.logical
            )
            if f.has_flags:
                vt = bool({"vmx", "svm"} & f.flags)
                cpu.virtualization_extensions = vt
                guest = "hypervisor" in f.flags
                if {"ept", "npt"} & f.flags:
                    cpu.slat = True
                elif vt:  # vmx/svm shown: the SLAT flag would be shown too, unless KVM says otherwise
                    param = r.text(HOST_FILES["kvm_intel_ept"]) or r.text(HOST_FILES["kvm_amd_npt"])
                    cpu.slat = None if param is None else param in ("Y", "1")
        osr = r.read(HOST_FILES["os_release"]) or r.read(HOST_FILES["os_release_fallback"])
        osinfo = parse_os_release(osr) if osr else {}
        kvm = r.exists(KVM_DEVICE)
        host = HostInfo(
            name=r.text(HOST_FILES["hostname"]),
            platform="linux",
            os_caption=osinfo.get("PRETTY_NAME") or osinfo.get("NAME"),
            os_version=r.text(HOST_FILES["osrelease"]),
            os_build=r.text(HOST_FILES["kversion"]),
            hypervisor_present=kvm,
            is_vm_guest=guest,
        )
        if guest:
            host.guest_of = guest_of(
                r.text(HOST_FILES["dmi_vendor"]),
                r.text(HOST_FILES["dmi_product"]),
                r.text(HOST_FILES["hypervisor_type"]),
            )
        return host, cpu, kvm

    def iommu(self, kvm: bool) -> IommuInfo:
        r = self.r
        cmdline = r.text(HOST_FILES["cmdline"])
        groups: int | None = None
        if r.exists(IOMMU_GROUPS_DIR):
            groups = len([g for g in r.listdir(IOMMU_GROUPS_DIR) if g.isdigit()])
        units = r.listdir(IOMMU_CLASS_DIR)
        kind = None
        if any(u.startswith("dmar") for u in units):
            kind = "dmar"
        elif any(u.startswith("ivhd") for u in units):
            kind = "amd-vi"
        elif units:
            kind = "other"
        return IommuInfo(
            active=None if groups is None else groups > 0,
            kind=kind,
            groups=groups,
            kernel_cmdline=cmdline,
            cmdline_options=parse_cmdline_iommu(cmdline or ""),
            kvm_device=kvm,
        )

    # -- PCI network functions ---------------------------------------------------------------------------
    def pci_functions(self) -> dict[str, _Pci]:
        r = self.r
        found: dict[str, _Pci] = {}
        for addr in r.listdir(PCI_DIR):
            base = f"{PCI_DIR}/{addr}"
            cls = r.text(f"{base}/class")
            if not cls or not cls.lower().startswith("0x02"):
                continue
            vendor, sub_vendor = r.text(f"{base}/vendor"), r.text(f"{base}/subsystem_vendor")
            driver = r.link_name(f"{base}/driver")
            if vendor in VIRTUAL_PCI_VENDORS or sub_vendor in VIRTUAL_PCI_VENDORS or driver in VIRTUAL_DRIVERS:
                continue
            group = r.link_name(f"{base}/iommu_group")
            numa = _int(r.text(f"{base}/numa_node"))
            pci = _Pci(
                address=addr,
                vendor=vendor,
                device=r.text(f"{base}/device"),
                driver=driver,
                netdevs=r.listdir(f"{base}/net"),
                totalvfs=_int(r.text(f"{base}/sriov_totalvfs")),
                numvfs=_int(r.text(f"{base}/sriov_numvfs")),
                numa=None if numa is None or numa < 0 else numa,
                iommu_group=_int(group),
                is_vf=r.link(f"{base}/physfn") is not None,
            )
            for entry in r.listdir(base):
                if entry.startswith("virtfn") and entry[6:].isdigit():
                    target = r.link_name(f"{base}/{entry}")
                    if target:
                        pci.virtfns[int(entry[6:])] = target
            found[addr] = pci
        return found

    def _describe(self, pci: _Pci) -> str | None:
        if not pci.vendor or not pci.device:
            return None
        key = f"{pci.vendor.removeprefix('0x')}:{pci.device.removeprefix('0x')}".lower()
        return PCI_NAMES.get(key, f"PCI {key}")

    def netdev_facts(self, name: str) -> tuple[str | None, int | None, str | None]:
        r = self.r
        base = f"{NET_DIR}/{name}"
        mac = r.text(f"{base}/address")
        speed = _int(r.text(f"{base}/speed"))
        oper = r.text(f"{base}/operstate")
        status = None if oper in (None, "unknown") else oper.capitalize()
        return mac, (speed * 1_000_000 if speed and speed > 0 else None), status

    def bonds(self, netdevs: list[str]) -> list[Team]:
        teams: list[Team] = []
        for name in netdevs:
            slaves = self.r.text(f"{NET_DIR}/{name}/bonding/slaves")
            mode = self.r.text(f"{NET_DIR}/{name}/bonding/mode")
            if slaves is None and mode is None:
                continue
            oper = self.r.text(f"{NET_DIR}/{name}/operstate")
            teams.append(
                Team(
                    name=name,
                    kind="bond",
                    members=(slaves or "").split(),
                    mode=mode.split()[0] if mode else None,
                    status=None if oper in (None, "unknown") else oper.capitalize(),
                )
            )
        return teams

    # -- VF details over netlink -------------------------------------------------------------------------
    def vf_details(self, pf_netdevs: list[str]) -> dict[str, dict[int, VfFacts]]:
        if not pf_netdevs:
            return {}
        text = self.r.capture(NETLINK_CAPTURE, "netlink IFLA_VFINFO_LIST", lambda: netlink.vf_dump(pf_netdevs))
        if text is None:
            return {}
        try:
            parsed = parse_ip_vfinfo(text)
        except ValueError as err:
            self._err(f"capture {NETLINK_CAPTURE}", f"not `ip -j link show` JSON: {err}")
            return {}
        return {name: {v.index: v for v in vfs} for name, vfs in parsed.items()}

    # -- libvirt -----------------------------------------------------------------------------------------
    def libvirt(self) -> list[tuple[DomainFacts, str | None]]:
        r = self.r
        listing = r.capture(capture_name(VIRSH_LIST), " ".join(VIRSH_LIST), lambda: run_command(VIRSH_LIST))
        if listing is None:
            return []
        out: list[tuple[DomainFacts, str | None]] = []
        for name, state in parse_virsh_list(listing):
            argv = (*VIRSH_DUMPXML, name)
            xml = r.capture(capture_name(argv), " ".join(argv), lambda argv=argv: run_command(argv))  # type: ignore[misc]
            if xml is None:
                out.append((DomainFacts(name=name), state))
                continue
            try:
                dom = parse_domain_xml(xml)
            except ValueError as err:
                self._err(" ".join(argv), str(err))
                dom = DomainFacts(name=name)
            dom.name = dom.name or name
            out.append((dom, state))
        return out

    # -- guest side (Hyper-V netvsc + VF) ----------------------------------------------------------------
    def guest_nics(self, netdevs: list[str]) -> list[GuestNic]:
        r = self.r
        drivers = {n: r.link_name(f"{NET_DIR}/{n}/device/driver") for n in netdevs}
        synthetic = [n for n in netdevs if drivers[n] in GUEST_SYNTHETIC_DRIVERS]
        if not synthetic:
            return []
        pairs: dict[str, str] = {}  # synthetic -> VF
        for n in netdevs:
            master = r.link_name(f"{NET_DIR}/{n}/master")
            if master in synthetic and n not in synthetic:
                pairs.setdefault(master, n)
        for s in synthetic:
            for entry in r.listdir(f"{NET_DIR}/{s}"):
                if entry.startswith("lower_") and entry[6:] in netdevs:
                    pairs.setdefault(s, entry[6:])
        out: list[GuestNic] = []
        for s in synthetic:
            name = ETHTOOL_CAPTURE.format(ifname=s)
            text = r.capture(name, f"ethtool -S {s}", lambda s=s: netlink.ethtool_stats_text(s))  # type: ignore[misc]
            stats = parse_ethtool_stats(text) if text else {}
            vf = pairs.get(s)
            out.append(
                GuestNic(
                    name=s,
                    driver=drivers[s],
                    paired_with=vf,
                    vf_rx_packets=stats.get("vf_rx_packets"),
                    vf_tx_packets=stats.get("vf_tx_packets"),
                )
            )
            if vf:
                out.append(GuestNic(name=vf, driver=drivers.get(vf), is_vf=True, paired_with=s))
        return out

    # -- everything --------------------------------------------------------------------------------------
    def snapshot(self, source: SourceInfo) -> HostSnapshot:
        host, cpu, kvm = self.host_cpu()
        snap = HostSnapshot(source=source, host=host, cpu=cpu, iommu=self.iommu(kvm))
        netdevs = self.r.listdir(NET_DIR)
        snap.teams = self.bonds(netdevs)
        member_of = {m: t.name for t in snap.teams for m in t.members}

        pcis = self.pci_functions()
        pfs = [p for p in pcis.values() if not p.is_vf]
        nic_name = {p.address: (p.netdevs[0] if p.netdevs else p.address) for p in pfs}
        details = self.vf_details([nic_name[p.address] for p in pfs if p.netdevs and (p.numvfs or 0) > 0])

        domains = self.libvirt()
        vf_owner: dict[str, str] = {}
        for dom, state in domains:
            snap.vms.append(VM(name=dom.name, id=dom.uuid, state=state))
            for i, iface in enumerate(dom.interfaces):
                kind = iface.kind if iface.kind in ("hostdev", "bridge", "network", "direct") else "other"
                snap.vm_adapters.append(
                    VmAdapter(
                        vm_name=dom.name,
                        name=iface.name or f"{dom.name}-nic{i}",
                        kind=kind,
                        switch_name=iface.source,
                        mac=iface.mac,
                        connected=iface.link_up,
                        vf_pci_address=iface.pci_address,
                    )
                )
                if iface.pci_address:
                    vf_owner[iface.pci_address] = dom.name

        snap.guest_nics = self.guest_nics(netdevs)
        if host.is_vm_guest or snap.guest_nics:
            from iovkit.sources.guest.linux import GuestReader

            snap.guest = GuestReader(self.r, self.guest_sample_seconds).read()
        paired_vfs = {g.name for g in snap.guest_nics if g.is_vf}
        for p in pfs:
            name = nic_name[p.address]
            if name in paired_vfs:  # a VF inside a Hyper-V guest (no physfn there): a guest NIC, not a PF
                continue
            mac, speed, status = self.netdev_facts(name) if p.netdevs else (None, None, None)
            capable = p.totalvfs is not None and p.totalvfs > 0
            vfs: list[VirtualFunction] = []
            for index, vf_addr in sorted(p.virtfns.items()):
                vf_pci = pcis.get(vf_addr)
                d = details.get(name, {}).get(index)
                vfs.append(
                    VirtualFunction(
                        pf=name,
                        index=index,
                        pci_address=vf_addr,
                        driver=vf_pci.driver if vf_pci else self.r.link_name(f"{PCI_DIR}/{vf_addr}/driver"),
                        netdev=(vf_pci.netdevs[0] if vf_pci and vf_pci.netdevs else None),
                        vm=vf_owner.get(vf_addr),
                        mac=d.mac if d else None,
                        vlan=d.vlan if d else None,
                        qos=d.qos if d else None,
                        spoof_check=d.spoof_check if d else None,
                        trust=d.trust if d else None,
                        link_state=d.link_state if d else None,
                    )
                )
            snap.vfs.extend(vfs)
            allocated: int | None = sum(1 for v in vfs if v.vm) if (domains or not vfs) else None
            snap.nics.append(
                PhysicalNic(
                    name=name,
                    description=self._describe(p),
                    driver=p.driver,
                    pci_address=p.address,
                    mac=mac,
                    link_speed_bps=speed,
                    status=status,
                    sriov_support="Supported" if capable else "NotSupported",
                    sriov_enabled=(p.numvfs or 0) > 0,
                    vfs_total=p.totalvfs,
                    vfs_configured=p.numvfs if capable else None,
                    vfs_allocated=allocated if capable else None,
                    team=member_of.get(name),
                    numa_node=p.numa,
                    iommu_group=p.iommu_group,
                )
            )

        snap.errors = [*(CollectionError(source=s, error=e) for s, e in self.r.problems), *self.errors]
        return snap
