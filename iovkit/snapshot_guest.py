"""The in-guest data-path records of the snapshot (which path a VM's traffic takes, and the facts behind it).

Part of the one snapshot model (iovkit.snapshot re-exports them); kept apart only for size. Imports nothing
from iovkit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from iovkit.snapshot_base import StrictModel as _Model

DataPath = Literal["vf", "synthetic", "paravirtual", "emulated", "unknown"]


class CounterDelta(_Model):
    """One counter read twice, `seconds` apart: the evidence that a path carries traffic now."""

    interface: str
    counter: str = Field(description="e.g. vf_rx_packets (ethtool -S), rx_packets, ReceivedUnicastPackets")
    before: int | None = None
    after: int | None = None
    seconds: float | None = None
    source: str = Field(description="The command or file read, e.g. 'ethtool -S eth0'")

    @property
    def delta(self) -> int | None:
        return None if self.before is None or self.after is None else self.after - self.before


class KernelEvent(_Model):
    """A data-path message of the kernel log (netvsc VF switch, VF slot, net_failover leg), with its time."""

    time: str | None = Field(None, description="As the log printed it: ISO time, or '[  12.345678]' since boot")
    utc: datetime | None = Field(None, description="The same instant in UTC, when it could be derived")
    interface: str | None = Field(None, description="The interface the message is about")
    kind: Literal["to-vf", "from-vf", "switch-failed", "vf-added", "vf-removed", "vf-joined", "leg", "other"] = "other"
    message: str


class GuestInterface(_Model):
    """One network interface inside a VM, with the path its traffic takes now and why iovkit says so."""

    name: str
    driver: str | None = None
    kind: Literal["synthetic", "vf", "paravirtual", "emulated", "failover", "physical", "other"] | None = None
    path: DataPath = "unknown"
    basis: Literal["counters", "topology", "kernel-log", "driver", "none"] = Field(
        "none", description="What decided `path`: rising counters, the pairing, the last switch message, the driver"
    )
    summary: str = Field("", description="One line: the verdict in words")
    mac: str | None = None
    pci_id: str | None = Field(None, description="vendor:device, e.g. 15b3:1016")
    master: str | None = Field(None, description="The netvsc or failover interface this one is enslaved to")
    lower: list[str] = Field(default_factory=list, description="lower_* links: the legs under this interface")
    paired_vf: str | None = None
    slave_flag: bool | None = Field(None, description="IFF_SLAVE (0x800) in /sys/class/net/<if>/flags")
    failover_role: Literal["master", "primary", "standby"] | None = None
    operstate: str | None = None
    numa_node: int | None = None
    local_cpus: str | None = Field(None, description="device/local_cpulist")
    counters: list[CounterDelta] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="Each fact behind the verdict, with its source")
    # tuning facts (None = not collected)
    channels_max: int | None = Field(None, description="ethtool -l: pre-set maximum combined (or RX) channels")
    channels: int | None = Field(None, description="ethtool -l: current combined (or RX) channels")
    rx_queues: int | None = Field(None, description="queues/rx-* directories in sysfs")
    rss_enabled: bool | None = None
    rss_queues_used: list[int] | None = Field(None, description="Distinct queues in the RSS indirection table")
    udp4_hash_fields: list[str] | None = Field(None, description="ethtool -n rx-flow-hash udp4: sd / sdfn letters")
    features: dict[str, bool] = Field(default_factory=dict, description="ethtool -k: gro, gso, rx-udp-gro-forwarding…")
    rps_queues: int | None = Field(None, description="RX queues whose rps_cpus is not 0")
    xps_queues: int | None = Field(None, description="TX queues whose xps_cpus is not 0")
    irqs: dict[str, str] = Field(default_factory=dict, description="IRQ number -> smp_affinity_list")


class GuestFacts(_Model):
    """Inside a VM: every interface's data path and the guest-wide facts the GUEST-* tuning rules read."""

    os: Literal["linux", "windows"]
    sample_seconds: float | None = Field(None, description="Time between the two counter reads; None = one read")
    interfaces: list[GuestInterface] = Field(default_factory=list)
    kernel_events: list[KernelEvent] = Field(default_factory=list)
    vcpus: int | None = None
    numa_nodes: int | None = None
    steal_percent: float | None = Field(None, description="Steal time over the sample, % of all CPU time")
    irqbalance_running: bool | None = None
    sysctl: dict[str, str] = Field(default_factory=dict, description="net.core.rmem_max and friends, as read")
    conntrack_loaded: bool | None = None
    notrack_rules: list[str] | None = Field(None, description="raw-table NOTRACK/notrack rules, as printed")
    vf_drivers: dict[str, Literal["loaded", "available", "missing"]] = Field(
        default_factory=dict, description="mlx4_core, mlx5_core, mana, ixgbevf, iavf, igbvf: loaded, on disk or missing"
    )
    rss_windows: dict[str, bool] = Field(
        default_factory=dict, description="Windows: adapter -> Get-NetAdapterRss Enabled"
    )

    def routable(self) -> list[GuestInterface]:
        """The interfaces applications use: not a leg enslaved to a netvsc or failover master."""
        return [i for i in self.interfaces if i.master is None]

    def on_vf(self) -> bool:
        """Some interface applications use has its traffic on a VF now."""
        return any(i.path == "vf" for i in self.routable())

    def interface(self, name: str) -> GuestInterface | None:
        return next((i for i in self.interfaces if i.name == name), None)
