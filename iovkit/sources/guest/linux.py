"""Inside a Linux VM: read every interface's pairing, counters (twice), kernel-log switch lines and tuning facts.

All I/O goes through the Linux collector's Reader, so a live guest, a test tree and an `collect --archive`
tarball answer the same questions. The two counter reads: the first is the file itself (proc/net/dev,
proc/stat) or the capture `ethtool_-S_<if>`; the second is a capture named `<first>.after`, taken
`sample_seconds` later on a live host (the interval itself is saved as the capture `guest_sample_seconds`).
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iovkit.snapshot import CounterDelta, GuestFacts, GuestInterface, KernelEvent
from iovkit.sources.guest import ethtool
from iovkit.sources.guest.verdict import VF_COUNTERS, judge
from iovkit.sources.linux.reader import CaptureError, Reader

NET_DIR = "sys/class/net"
IFF_SLAVE = 0x800
SAMPLE_CAPTURE = "guest_sample_seconds"
DMESG_CAPTURE = "dmesg_datapath"
IRQBALANCE_CAPTURE = "irqbalance_running"
NETFILTER_CAPTURES = {
    "iptables_-t_raw_-S": ["iptables", "-t", "raw", "-S"],
    "nft_list_ruleset": ["nft", "list", "ruleset"],
}
SYSCTLS = (
    "net/core/rmem_max",
    "net/core/rmem_default",
    "net/core/wmem_max",
    "net/core/wmem_default",
    "net/core/netdev_max_backlog",
    "net/core/rps_sock_flow_entries",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_count",
)

# VF drivers by module, and where the module file sits under /lib/modules/<release>/ (guest.md §1.7, §2.1)
VF_MODULES = {
    "mlx4_core": "kernel/drivers/net/ethernet/mellanox/mlx4/mlx4_core.ko",
    "mlx5_core": "kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko",
    "mana": "kernel/drivers/net/ethernet/microsoft/mana/mana.ko",
    "ixgbevf": "kernel/drivers/net/ethernet/intel/ixgbevf/ixgbevf.ko",
    "iavf": "kernel/drivers/net/ethernet/intel/iavf/iavf.ko",
    "igbvf": "kernel/drivers/net/ethernet/intel/igbvf/igbvf.ko",
}
MODULE_SUFFIXES = ("", ".xz", ".zst", ".gz")
SYNTHETIC_DRIVERS = {"hv_netvsc"}
PARAVIRTUAL_DRIVERS = {"virtio_net", "vmxnet3", "xen-netfront"}
EMULATED_DRIVERS = {"e1000", "e1000e", "8139cp", "8139too", "pcnet32", "ne2k-pci", "tulip", "rtl8139"}
VF_ONLY_DRIVERS = {"igbvf", "ixgbevf", "iavf", "i40evf", "mana"}
# VF PCI ids of drivers that also drive PFs (guest.md §2.1, vendor:device, lower case)
VF_PCI_IDS = {
    "15b3:1002", "15b3:1004", "15b3:1012", "15b3:1014", "15b3:1016", "15b3:1018", "15b3:101a", "15b3:101c",
    "15b3:101e", "15b3:a2d3", "1414:00ba",
}  # fmt: skip
DATAPATH_LINE = re.compile(
    r"Data path|VF slot|VF registering|VF unregistering|joined to|sw datapath|VF association|vf serial|"
    r"failover \S+ slave:|VF moved to namespace"
)
ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[,.]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+(.*)$")
MONO_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]\s*(.*)$")
NETVSC_SUBJECT = re.compile(r"(\S+): (?:Data path|VF slot|VF registering|VF unregistering|Unable to send sw|Retry)")


# -- pure parsers ------------------------------------------------------------------------------------------------
def parse_proc_net_dev(text: str) -> dict[str, tuple[int, int]]:
    """/proc/net/dev: interface -> (rx packets, tx packets)."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        f = rest.split()
        if sep and len(f) >= 10 and f[1].isdigit() and f[9].isdigit():
            out[name.strip()] = (int(f[1]), int(f[9]))
    return out


def parse_proc_stat_cpu(text: str) -> tuple[int, int] | None:
    """/proc/stat's aggregate `cpu` line: (total jiffies, steal jiffies); steal is the 8th field."""
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "cpu" and len(f) >= 9:
            vals = [int(x) for x in f[1:] if x.isdigit()]
            return sum(vals[:8]), vals[7]  # guest/guest_nice are already inside user/nice
    return None


def boot_time(text: str | None) -> datetime | None:
    for line in (text or "").splitlines():
        if line.startswith("btime "):
            return datetime.fromtimestamp(int(line.split()[1]), UTC)
    return None


def cpu_count(cpulist: str | None) -> int | None:
    """'0-3,6' -> 5."""
    if not cpulist:
        return None
    n = 0
    for part in cpulist.strip().split(","):
        a, _, b = part.partition("-")
        if not a.isdigit() or (b and not b.isdigit()):
            return None
        n += (int(b) - int(a) + 1) if b else 1
    return n


def parse_kernel_events(text: str, booted: datetime | None) -> list[KernelEvent]:
    """Data-path lines of dmesg (`--time-format iso`, or the `[ secs]` default) or `journalctl -k -o short-iso`."""
    out: list[KernelEvent] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or not DATAPATH_LINE.search(line):
            continue
        when: str | None = None
        utc: datetime | None = None
        m = ISO_TIME.match(line)
        if m:
            when, line = m.group(1), m.group(2)
            try:
                utc = datetime.fromisoformat(when.replace(",", ".")).astimezone(UTC)
            except ValueError:
                utc = None
        elif (m2 := MONO_TIME.match(line)) is not None:
            when, line = f"[{m2.group(1)}]", m2.group(2)
            if booted is not None:
                utc = booted + timedelta(seconds=float(m2.group(1)))
        if " kernel: " in line:  # journalctl: "<host> kernel: <message>"
            line = line.split(" kernel: ", 1)[1]
        out.append(KernelEvent(time=when, utc=utc, message=line, **_classify(line)))
    return out[-50:]


def _classify(msg: str) -> dict[str, str | None]:
    subject = NETVSC_SUBJECT.search(msg)
    iface = subject.group(1) if subject else None
    if "Data path switched to VF" in msg:
        return {"kind": "to-vf", "interface": iface}
    if "Data path switched from VF" in msg:
        return {"kind": "from-vf", "interface": iface}
    if "Data path failed to switch" in msg or "sw datapath msg" in msg:
        return {"kind": "switch-failed", "interface": iface}
    if re.search(r"VF slot \d+ added", msg):
        return {"kind": "vf-added", "interface": iface}
    if re.search(r"VF slot \d+ removed", msg):
        return {"kind": "vf-removed", "interface": iface}
    if (j := re.search(r"joined to (\S+)", msg)) is not None:
        return {"kind": "vf-joined", "interface": j.group(1)}
    if (f := re.search(r"failover (\S+) slave:(\S+)", msg)) is not None:
        return {"kind": "leg", "interface": f.group(1)}
    return {"kind": "other", "interface": iface}


def parse_interrupts(text: str) -> dict[str, str]:
    """/proc/interrupts: IRQ number -> its name column (last field)."""
    out: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        head, sep, rest = line.partition(":")
        if sep and head.strip().isdigit() and rest.split():
            out[head.strip()] = rest.split()[-1]
    return out


def notrack_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if "NOTRACK" in ln or "notrack" in ln]


# -- live producers ------------------------------------------------------------------------------------------------
def _live_file(path: str) -> Callable[[], str | None]:
    def read() -> str | None:
        try:
            return Path("/", path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CaptureError(f"/{path}: {err.strerror}") from err

    return read


def _live_dmesg() -> str | None:
    import shutil
    import subprocess

    for argv in (
        ["dmesg", "--time-format", "iso"],
        ["dmesg"],
        ["journalctl", "-k", "-b", "-o", "short-iso", "--no-pager"],
    ):
        if shutil.which(argv[0]) is None:
            continue
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            # only the data-path lines are kept: the archive carries what the verdict read, nothing else
            return "".join(ln + "\n" for ln in proc.stdout.splitlines() if DATAPATH_LINE.search(ln))
    raise CaptureError("kernel log not readable (dmesg needs root, or run: journalctl -k -b)")


def _live_irqbalance() -> str:
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                if (pid / "comm").read_text().strip() == "irqbalance":
                    return f"running (pid {pid.name})\n"
            except OSError:
                continue
    return "not running\n"


def _live_cmd(argv: list[str]) -> Callable[[], str | None]:
    def run() -> str | None:
        import shutil
        import subprocess

        if shutil.which(argv[0]) is None:
            return None
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
        if proc.returncode != 0:
            raise CaptureError(f"{' '.join(argv)}: {(proc.stderr.strip() or 'failed')[:160]}")
        return proc.stdout

    return run


# -- the reader ----------------------------------------------------------------------------------------------------
class GuestReader:
    """One guest reading through a collector Reader."""

    def __init__(self, reader: Reader, sample_seconds: float = 1.0) -> None:
        self.r = reader
        self.sample_seconds = sample_seconds

    def _int(self, path: str) -> int | None:
        t = self.r.text(path)
        try:
            return int(t, 0) if t is not None else None
        except ValueError:
            return None

    def interface(self, name: str) -> GuestInterface | None:
        r, base = self.r, f"{NET_DIR}/{name}"
        has_device = r.link(f"{base}/device") is not None
        lower = [e[6:] for e in r.listdir(base) if e.startswith("lower_")]
        if not has_device and not lower:
            return None  # lo, bridges, veth, ifb: no path of their own
        driver = r.link_name(f"{base}/device/driver")
        vendor, device = r.text(f"{base}/device/vendor"), r.text(f"{base}/device/device")
        pci_id = f"{vendor.removeprefix('0x')}:{device.removeprefix('0x')}".lower() if vendor and device else None
        flags = self._int(f"{base}/flags")
        dev = self._device_path(name)
        parent = posixpath.dirname(dev) if dev else None
        numa = self._int(f"{base}/device/numa_node")
        if numa is None and parent:
            numa = self._int(f"{parent}/numa_node")  # virtio: the node is on the PCI parent
        queues = r.listdir(f"{base}/queues")
        rx = [q for q in queues if q.startswith("rx-")]
        tx = [q for q in queues if q.startswith("tx-")]
        i = GuestInterface(
            name=name,
            driver=driver,
            mac=r.text(f"{base}/address"),
            pci_id=pci_id,
            master=r.link_name(f"{base}/master"),
            lower=lower,
            slave_flag=None if flags is None else bool(flags & IFF_SLAVE),
            operstate=r.text(f"{base}/operstate"),
            numa_node=None if numa is None or numa < 0 else numa,
            local_cpus=r.text(f"{base}/device/local_cpulist")
            or (r.text(f"{parent}/local_cpulist") if parent else None),
            rx_queues=len(rx) if queues else None,
        )
        if queues:
            i.rps_queues = sum(1 for q in rx if (r.text(f"{base}/queues/{q}/rps_cpus") or "0").strip("0,") != "")
            i.xps_queues = sum(1 for q in tx if (r.text(f"{base}/queues/{q}/xps_cpus") or "0").strip("0,") != "")
        if driver in SYNTHETIC_DRIVERS:
            i.kind = "synthetic"
        elif driver in VF_ONLY_DRIVERS or pci_id in VF_PCI_IDS:
            i.kind = "vf"
        elif driver in PARAVIRTUAL_DRIVERS:
            i.kind = "paravirtual"
        elif driver in EMULATED_DRIVERS:
            i.kind = "emulated"
        elif driver in ("mlx4_core", "mlx5_core", "ixgbe", "i40e", "ice", "igb"):
            i.kind = "physical"
        else:
            i.kind = "other"
        return i

    def read(self) -> GuestFacts:
        r = self.r
        names = [n for n in r.listdir(NET_DIR) if n != "lo"]
        found = [i for i in (self.interface(n) for n in names) if i is not None]
        devices = {i.name for i in found if i.driver is not None}
        # A deviceless master (bond, team, a failover master without a device link) counts when a leg is a
        # device; a bridge of veths (docker0) carries no path of its own.
        ifaces = [i for i in found if i.driver is not None or any(n in devices for n in i.lower)]
        by_name = {i.name: i for i in ifaces}
        self._failover(ifaces, by_name)
        for i in ifaces:  # a netvsc's VF: the enslaved lower device (master link, or lower_ on the netvsc side)
            if i.kind == "synthetic":
                i.paired_vf = next((n for n in i.lower if n in by_name), None) or next(
                    (v.name for v in ifaces if v.master == i.name), None
                )

        # -- first reads, the pause, second reads --------------------------------------------------------------
        dev0 = r.read("proc/net/dev")
        stat0 = r.read("proc/stat")
        netvsc = [i for i in ifaces if i.kind == "synthetic"]
        ethS0 = {i.name: self._ethtool_stats(f"ethtool_-S_{i.name}", i.name) for i in netvsc}
        seconds: float | None
        if r.live:
            time.sleep(self.sample_seconds)
        recorded = r.capture(SAMPLE_CAPTURE, "sample interval", lambda: f"{self.sample_seconds:g}\n")
        try:
            seconds = float(recorded) if recorded else None
        except ValueError:
            seconds = None
        dev1 = r.capture("proc_net_dev.after", "/proc/net/dev (second read)", _live_file("proc/net/dev"))
        stat1 = r.capture("proc_stat.after", "/proc/stat (second read)", _live_file("proc/stat"))
        ethS1 = {i.name: self._ethtool_stats(f"ethtool_-S_{i.name}.after", i.name) for i in netvsc}

        before, after = parse_proc_net_dev(dev0 or ""), parse_proc_net_dev(dev1 or "")
        for i in ifaces:
            if i.kind == "synthetic":  # netvsc's own totals include the VF's (guest.md §1.1): only ethtool -S tells
                s0, s1 = ethS0.get(i.name), ethS1.get(i.name)
                for key in sorted(s0 or {}):
                    if key in VF_COUNTERS or (key.startswith(("rx_queue_", "tx_queue_")) and key.endswith("_packets")):
                        i.counters.append(
                            CounterDelta(
                                interface=i.name,
                                counter=key,
                                before=(s0 or {}).get(key),
                                after=(s1 or {}).get(key) if s1 else None,
                                seconds=seconds if s1 else None,
                                source=f"ethtool -S {i.name}",
                            )
                        )
            elif i.name in before:
                for idx, counter in enumerate(("rx_packets", "tx_packets")):
                    b = before[i.name][idx]
                    a = after[i.name][idx] if i.name in after else None
                    i.counters.append(
                        CounterDelta(
                            interface=i.name,
                            counter=counter,
                            before=b,
                            after=a,
                            seconds=seconds if a is not None else None,
                            source="/proc/net/dev",
                        )
                    )

        booted = boot_time(stat0)
        log = r.capture(DMESG_CAPTURE, "dmesg (data-path lines)", _live_dmesg)
        facts = GuestFacts(
            os="linux",
            sample_seconds=seconds if dev1 is not None or any(ethS1.values()) else None,
            interfaces=ifaces,
            kernel_events=parse_kernel_events(log, booted) if log else [],
        )
        self._evidence(facts)
        self._tuning(facts, stat0, stat1)
        return judge(facts)

    def _ethtool_stats(self, capture: str, ifname: str) -> dict[str, int] | None:
        from iovkit.sources.linux import netlink
        from iovkit.sources.linux.parsers import parse_ethtool_stats

        text = self.r.capture(capture, f"ethtool -S {ifname}", lambda: netlink.ethtool_stats_text(ifname))
        return parse_ethtool_stats(text) if text else None

    @staticmethod
    def _failover(ifaces: list[GuestInterface], by_name: dict[str, GuestInterface]) -> None:
        """net_failover: a master whose lower legs are a virtio standby and (maybe) a VF primary."""
        for m in ifaces:
            legs = [by_name[n] for n in m.lower if n in by_name]
            standby = [g for g in legs if g.driver == "virtio_net"]
            if m.kind == "synthetic" or not standby:
                continue
            m.kind, m.failover_role, m.driver = "failover", "master", "net_failover"
            for g in legs:
                g.failover_role = "standby" if g in standby else "primary"

    @staticmethod
    def _evidence(facts: GuestFacts) -> None:
        for i in facts.interfaces:
            base = f"/sys/class/net/{i.name}"
            if i.driver:
                i.evidence.append(f"{base}/device/driver -> {i.driver}" + (f" (PCI {i.pci_id})" if i.pci_id else ""))
            if i.master:
                flag = {True: "SLAVE flag set", False: "SLAVE flag not set", None: "flags not read"}[i.slave_flag]
                i.evidence.append(f"{base}/master -> {i.master}; {flag}")
            for leg in i.lower:
                i.evidence.append(f"{base}/lower_{leg}")
            if i.failover_role:
                i.evidence.append(f"net_failover {i.failover_role}")
            if i.kind in ("synthetic", "paravirtual", "emulated") and not i.paired_vf and not i.master:
                i.evidence.append(f"no lower_* link under {base} and no interface with master -> {i.name}")
            if i.kind in ("paravirtual", "emulated") and not i.master:
                vfs = [v.name for v in facts.interfaces if v.kind == "vf"]
                i.evidence.append("VF-driven interfaces in this VM: " + (", ".join(vfs) if vfs else "none"))

    def _tuning(self, facts: GuestFacts, stat0: str | None, stat1: str | None) -> None:
        r = self.r
        facts.vcpus = cpu_count(r.text("sys/devices/system/cpu/online"))
        release = r.text("proc/sys/kernel/osrelease")
        builtin = r.read(f"lib/modules/{release}/modules.builtin") if release else None
        for mod, rel in VF_MODULES.items():
            if r.exists(f"sys/module/{mod}"):
                facts.vf_drivers[mod] = "loaded"
            elif release and (
                (builtin is not None and rel in builtin)
                or any(r.exists(f"lib/modules/{release}/{rel}{sfx}") for sfx in MODULE_SUFFIXES)
            ):
                facts.vf_drivers[mod] = "available"
            elif release and r.exists(f"lib/modules/{release}"):
                facts.vf_drivers[mod] = "missing"
        nodes = [n for n in r.listdir("sys/devices/system/node") if n.startswith("node") and n[4:].isdigit()]
        facts.numa_nodes = len(nodes) or None
        a, b = parse_proc_stat_cpu(stat0 or ""), parse_proc_stat_cpu(stat1 or "")
        if a and b and b[0] > a[0]:
            facts.steal_percent = round(100.0 * (b[1] - a[1]) / (b[0] - a[0]), 2)
        irqb = r.capture(IRQBALANCE_CAPTURE, "irqbalance process", _live_irqbalance)
        facts.irqbalance_running = None if irqb is None else irqb.startswith("running")
        for key in SYSCTLS:
            v = r.text(f"proc/sys/{key}")
            if v is not None:
                facts.sysctl[key.replace("/", ".")] = v
        facts.conntrack_loaded = r.exists("sys/module/nf_conntrack") or "net.netfilter.nf_conntrack_max" in facts.sysctl
        rules: list[str] | None = None
        for cap, argv in NETFILTER_CAPTURES.items():
            text = r.capture(cap, " ".join(argv), _live_cmd(argv))
            if text is not None:
                rules = (rules or []) + notrack_lines(text)
        facts.notrack_rules = rules
        irq_names = parse_interrupts(r.read("proc/interrupts") or "")
        for i in facts.interfaces:
            if i.failover_role == "standby":
                continue
            self._ethtool_tuning(i)
            dev = self._device_name(i.name)
            for irq, label in irq_names.items():
                if (
                    dev and (label.startswith(f"{dev}-") or f"@pci:{dev}" in label or label.endswith(dev))
                ) or label.startswith((f"{i.name}-", f"iavf-{i.name}-")):  # ixgbevf/igbvf, iavf IRQ names
                    i.irqs[irq] = r.text(f"proc/irq/{irq}/smp_affinity_list") or "?"

    def _device_path(self, name: str) -> str | None:
        """The netdev's device directory (relative, no '..'): both sysfs links resolved as paths."""
        cls = self.r.link(f"{NET_DIR}/{name}")
        real = posixpath.normpath(posixpath.join(NET_DIR, cls)) if cls else f"{NET_DIR}/{name}"
        target = self.r.link(f"{real}/device")
        return posixpath.normpath(posixpath.join(real, target)) if target else None

    def _device_name(self, name: str) -> str | None:
        """Basename of the netdev's device: a PCI address or virtioN (IRQ names carry it)."""
        dev = self._device_path(name)
        return posixpath.basename(dev) if dev else None

    def _ethtool_tuning(self, i: GuestInterface) -> None:
        r, n = self.r, i.name
        try:
            text = r.capture(f"ethtool_-l_{n}", f"ethtool -l {n}", lambda: ethtool.channels_text(n))
            if text:
                i.channels_max, i.channels = ethtool.parse_channels(text)
            text = r.capture(f"ethtool_-x_{n}", f"ethtool -x {n}", lambda: ethtool.indirection_text(n))
            if text:
                _rings, used = ethtool.parse_indirection(text)
                i.rss_queues_used = used
                i.rss_enabled = bool(used) if used is not None else (False if "not supported" in text else None)
            elif text is None and i.channels is not None and i.channels <= 1:
                i.rss_enabled = False
            text = r.capture(
                f"ethtool_-n_{n}_rx-flow-hash_udp4",
                f"ethtool -n {n} rx-flow-hash udp4",
                lambda: ethtool.udp4_hash_text(n),
            )
            if text:
                i.udp4_hash_fields = ethtool.parse_rx_flow_hash(text)
            text = r.capture(f"ethtool_-k_{n}", f"ethtool -k {n}", lambda: ethtool.features_text(n))
            if text:
                i.features = ethtool.parse_features(text)
        except CaptureError:
            return
