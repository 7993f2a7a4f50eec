"""Remedies ranked for the case at hand, each with why (the numbers of the finding it answers).

A declarative catalog: each remedy names the findings it answers, a base rank per platform, and the commands.
`rank` keeps the remedies whose findings are present and orders them by that base rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from iovkit.diagnose.findings import Finding, Recommendation
from iovkit.diagnose.view import View


@dataclass(frozen=True)
class Remedy:
    id: str
    platform: str  # "windows" | "linux"
    answers: tuple[str, ...]  # finding ids
    order: int  # lower = better fit when its findings are present
    title: str
    why: str
    commands: tuple[str, ...] = ()


CATALOG: tuple[Remedy, ...] = (
    Remedy(
        "SRIOV",
        "windows",
        ("SINGLE-CORE-SWITCH", "VSWITCH-DROPS"),
        1,
        "Move the VM's vNIC to an SR-IOV virtual function",
        "the VF bypasses the virtual switch entirely, so the {core_txt} no longer carries the VM's packets; "
        "`iovkit check` and `iovkit plan` prepare the switch-over",
        ("iovkit check host.json", "iovkit plan host.json --policy policy.yaml -o plan.json"),
    ),
    Remedy(
        "VMQ",
        "windows",
        ("SINGLE-CORE-SWITCH", "MISSING-SPREAD"),
        2,
        "Enable VMQ (dVMQ on 2012 R2, VMMQ on 2016+) on the physical NICs",
        "without VMQ every receive interrupt of a NIC port lands on one core of the management OS, which does all "
        "the switching ({share_txt}); VMQ gives each vNIC its own queue and core, VMMQ several. Below 10 Gbps the "
        "switch does not use VMQ even when Get-NetAdapterVmq says Enabled, unless BelowTenGigVmqEnabled is 1 (then "
        "restart the host); Get-NetAdapterVmqQueue shows whether the VM adapters have queues",
        (
            "Get-NetAdapterVmqQueue",
            "Get-NetAdapterVmq",
            "Enable-NetAdapterVmq -Name <NIC>",
            "Set-NetAdapterVmq -Name <NIC> -BaseProcessorNumber 2",
            "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Services\\VMSMP\\Parameters "
            "-Name BelowTenGigVmqEnabled -Value 1 -Type DWord",
            "Set-VMNetworkAdapter -VMName <VM> -VmmqEnabled $true -VmmqQueuePairs 4",
        ),
    ),
    Remedy(
        "VRSS",
        "windows",
        ("SINGLE-CORE-SWITCH", "MISSING-SPREAD"),
        3,
        "Enable vRSS for the VM's vNIC (and RSS inside the guest)",
        "spreads one vNIC's processing over several host logical processors once a core passes ~80%; helps "
        "receive-heavy VMs whose load sits on one core",
        ("Set-VMNetworkAdapter -VMName <VM> -VrssEnabled $true", "Enable-NetAdapterRss -Name <guest NIC>"),
    ),
    Remedy(
        "RSS-BASE",
        "windows",
        ("SINGLE-CORE-SWITCH",),
        4,
        "Keep queue processing off core 0",
        "core 0 also serves the management OS; set the RSS/VMQ base processor to 2 or more, and give team members "
        "non-overlapping processor ranges",
        ("Set-NetAdapterRss -Name <NIC> -BaseProcessorNumber 2",),
    ),
    Remedy(
        "VSWITCH-DROPS",
        "windows",
        ("VSWITCH-DROPS", "NIC-DISCARDS"),
        5,
        "Find why the virtual switch / NIC drops packets",
        "dropped packets while a core is saturated are queue overflows; otherwise check the drop reasons",
        ('typeperf "\\Hyper-V Virtual Network Adapter Drop Reasons(*)\\*" -sc 5',),
    ),
    Remedy(
        "SRIOV",
        "linux",
        ("VHOST-SATURATED",),
        1,
        "Give the VM an SR-IOV virtual function instead of virtio/vhost-net",
        "the vhost-net worker is CPU-bound; a VF takes the host out of the data path",
        ("iovkit check", "iovkit plan --from host.json --policy policy.yaml -o plan.json"),
    ),
    Remedy(
        "RSS",
        "linux",
        ("SINGLE-CORE-SWITCH", "MISSING-SPREAD", "SOFTNET-SQUEEZE"),
        2,
        "Spread receive work over more NIC queues (RSS) and hash UDP on ports",
        "{share_txt}; more combined channels and an L4 UDP hash put flows on several cores",
        ("ethtool -l <if>", "ethtool -L <if> combined <N>", "ethtool -N <if> rx-flow-hash udp4 sdfn"),
    ),
    Remedy(
        "RPS-RFS",
        "linux",
        ("SINGLE-CORE-SWITCH", "MISSING-SPREAD", "SOFTNET-SQUEEZE", "SOFTNET-DROPS"),
        3,
        "Enable RPS/RFS where the NIC has a single queue (virtio without multiqueue, loopback, tunnels)",
        "RPS moves protocol processing off the interrupted core in software; RFS steers it to the core of the "
        "reading thread",
        (
            "echo <cpu mask> > /sys/class/net/<if>/queues/rx-0/rps_cpus",
            "sysctl -w net.core.rps_sock_flow_entries=32768",
            "echo 32768 > /sys/class/net/<if>/queues/rx-0/rps_flow_cnt",
        ),
    ),
    Remedy(
        "SRIOV-GUEST",
        "linux",
        ("SINGLE-CORE-SWITCH",),
        4,
        "If this is a KVM host switching for VMs, move the VM to an SR-IOV VF",
        "the VF bypasses the host's bridge/OVS and vhost path, so the {core_txt} stops carrying those packets",
        ("iovkit check", "iovkit plan --from host.json --policy policy.yaml -o plan.json"),
    ),
    Remedy(
        "BACKLOG",
        "linux",
        ("SOFTNET-DROPS", "SOFTNET-SQUEEZE"),
        5,
        "Raise the softnet backlog and NAPI budget",
        "backlog drops mean netdev_max_backlog (default 1000) fills; squeezes mean net_rx_action stops with work left",
        (
            "sysctl -w net.core.netdev_max_backlog=16384",
            "sysctl -w net.core.netdev_budget=600",
            "sysctl -w net.core.netdev_budget_usecs=4000",
        ),
    ),
    Remedy(
        "UDP-BUFFERS",
        "linux",
        ("UDP-BUFFER-DROPS",),
        6,
        "Give UDP sockets bigger buffers and more reader threads",
        "RcvbufErrors count datagrams dropped because the socket queue was full: the reader (or its CPU) is too "
        "slow or SO_RCVBUF is capped by rmem_max; SO_REUSEPORT spreads one port over several readers",
        (
            "sysctl -w net.core.rmem_max=33554432",
            "sysctl -w net.core.rmem_default=8388608",
            "setsockopt(SO_RCVBUF) / SO_REUSEPORT in the application",
        ),
    ),
    Remedy(
        "UDP-BUFFERS",
        "windows",
        ("UDP-BUFFER-DROPS",),
        6,
        "Give UDP sockets bigger buffers and more reader threads",
        "the socket queue overflows: the reader is too slow or its buffer too small",
        (),
    ),
)


def rank(platform: str, findings: list[Finding], view: View) -> list[Recommendation]:
    """The remedies that answer a present finding, best fit first, with the finding's numbers filled in."""
    ids = {f.id for f in findings}
    hot = next((f for f in findings if f.id == "SINGLE-CORE-SWITCH"), None)
    spread = next((f for f in findings if f.id == "MISSING-SPREAD"), None)
    core_txt = f"hot core {hot.core}" if hot else "switching core"
    if hot and hot.evidence.get("packet_share") is not None:
        share_txt = f"core {hot.core} handles {hot.evidence['packet_share'] * 100:.0f}% of the packets"
    elif spread:
        share_txt = f"core {spread.core} handles {spread.evidence['share'] * 100:.0f}% of the packets"
    else:
        share_txt = "one core handles the packets"
    out: list[Recommendation] = []
    seen: set[str] = set()
    for r in sorted((r for r in CATALOG if r.platform == platform and ids & set(r.answers)), key=lambda r: r.order):
        if r.id in seen or (r.id == "RSS-BASE" and (hot is None or hot.core != "0")):
            continue
        seen.add(r.id)
        why = r.why.format(core_txt=core_txt, share_txt=share_txt)
        if r.id in ("SRIOV", "SRIOV-GUEST") and hot and hot.evidence.get("saturation_pps"):
            why += (
                f" (today the core saturates near {hot.evidence['saturation_pps']:,.0f} pkt/s, "
                f"{hot.evidence.get('headroom_pps', 0):,.0f} pkt/s above the current rate)"
            )
        out.append(Recommendation(len(out) + 1, r.id, r.title, why, list(r.commands)))
    return out
