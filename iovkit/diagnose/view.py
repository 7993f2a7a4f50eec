"""The per-core, per-sample view of a Recording that every rule reads.

Whatever counters the recording has become, per core: busy % (root VP run time, Processor time or logical
processor run time), network work % (interrupt+DPC on Windows, irq+softirq on Linux) and packets handled per
second (Hyper-V Virtual Switch Processor, per-CPU softnet); and for the host: the packet rate the NICs (or the
virtual switch) pass, per sample. Each sample also gets the length of time it covers, so a clock jump or DST
change never stretches a window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from iovkit.diagnose.model import Recording, Series, arr, key, median

# Counter keys (lower-case English; see model.key)
ROOT_VP_RUN = key("hyper-v hypervisor root virtual processor", "% total run time")
LP_RUN = key("hyper-v hypervisor logical processor", "% total run time")
PROC_TIME = key("processor", "% processor time")
PROC_INTR = key("processor", "% interrupt time")
PROC_DPC = key("processor", "% dpc time")
PINFO_TIME = key("processor information", "% processor time")
PINFO_INTR = key("processor information", "% interrupt time")
PINFO_DPC = key("processor information", "% dpc time")
VSP_EXT = (
    key("hyper-v virtual switch processor", "packets from external/sec"),
    key("hyper-v virtual switch processor", "packets from external"),
)
VSP_INT = (
    key("hyper-v virtual switch processor", "packets from internal/sec"),
    key("hyper-v virtual switch processor", "packets from internal"),
)
NIC_RX = key("network interface", "packets received/sec")
NIC_TX = key("network interface", "packets sent/sec")
NIC_DISC = (
    key("network interface", "packets received discarded/sec"),
    key("network interface", "packets received discarded"),
)
VSW_RX = key("hyper-v virtual switch", "packets received/sec")
VSW_TX = key("hyper-v virtual switch", "packets sent/sec")
VSW_DROP = (
    key("hyper-v virtual switch", "dropped packets incoming/sec"),
    key("hyper-v virtual switch", "dropped packets outgoing/sec"),
)
VNIC_DROP = (
    key("hyper-v virtual network adapter", "dropped packets incoming/sec"),
    key("hyper-v virtual network adapter", "dropped packets outgoing/sec"),
)
UDP_WIN_ERR = (key("udpv4", "datagrams received errors"), key("udpv6", "datagrams received errors"))
# PDH raw counts (running totals, no /sec): always differentiated
KNOWN_COUNTS = frozenset(
    {
        *UDP_WIN_ERR,
        key("network interface", "packets received discarded"),
        key("network interface", "packets outbound discarded"),
    }
)
L_BUSY = key("linux cpu", "% busy")
L_IRQ = key("linux cpu", "% irq")
L_SOFTIRQ = key("linux cpu", "% softirq")
L_PROCESSED = key("softnet", "processed/sec")
L_DROPPED = key("softnet", "dropped/sec")
L_SQUEEZE = key("softnet", "time_squeeze/sec")
L_UDP_RCVBUF = key("udp", "rcvbuferrors/sec")
L_UDP_SNDBUF = key("udp", "sndbuferrors/sec")
L_UDP_INERR = key("udp", "inerrors/sec")
VHOST_CPU = key("vhost", "% cpu")

WINDOWS_NEEDED = {
    "cpu": "\\Hyper-V Hypervisor Root Virtual Processor(*)\\% Total Run Time (or \\Processor(*)\\% Processor Time)",
    "net": "\\Processor(*)\\% Interrupt Time and \\Processor(*)\\% DPC Time",
    "pps": "\\Network Interface(*)\\Packets Received/sec and Packets Sent/sec",
    "percore": "\\Hyper-V Virtual Switch Processor(*)\\Packets from External and Packets from Internal",
}
LINUX_NEEDED = {
    "cpu": "/proc/stat per-CPU lines",
    "net": "/proc/stat irq and softirq columns",
    "pps": "/proc/net/softnet_stat",
    "percore": "/proc/net/softnet_stat",
}


@dataclass
class CoreSeries:
    """One core's samples; None where the recording has no such counter."""

    name: str  # the root's processor number ("0", "17"), unique across processor groups
    label: str  # as the recording names it ("Root VP 0", "0,3", "cpu3")
    busy: np.ndarray | None = None
    net: np.ndarray | None = None
    pkts: np.ndarray | None = None

    def load(self) -> np.ndarray | None:
        """Network work when known (interrupt+DPC / softirq), else run time."""
        return self.net if self.net is not None else self.busy


@dataclass
class View:
    platform: Literal["windows", "linux"]
    cores: list[CoreSeries]
    times: np.ndarray  # UTC seconds of each sample's end
    intervals: np.ndarray  # seconds each sample covers
    host_pps: np.ndarray | None = None
    rx_pps: np.ndarray | None = None
    tx_pps: np.ndarray | None = None
    host_basis: str = ""  # where host_pps comes from, in the operator's words
    net_kind: str = ""  # "interrupt+DPC" | "irq+softirq"
    percore_pps: bool = False
    missing: list[str] = field(default_factory=list)

    @property
    def span(self) -> float:
        return float(self.intervals.sum()) if len(self.intervals) else 0.0


def intervals_of(times: np.ndarray) -> np.ndarray:
    """Seconds each sample covers: the step before it; the first sample, and steps across a clock jump, get the
    median step (a sample's value is the average over the interval that ends at its timestamp)."""
    n = len(times)
    if n == 0:
        return np.empty(0)
    if n == 1:
        return np.ones(1)
    steps = np.diff(times)
    pos = steps[steps > 0]
    step = median(pos) if len(pos) else 1.0
    out = np.empty(n)
    out[0] = step
    bad = (steps <= 0) | (np.abs(steps - step) > max(5.0 * step, 10.0))
    out[1:] = np.where(bad, step, steps)
    return out


_CORE_RE = re.compile(r"(?:root vp |hv lp |cpu)?(\d+)")
_GROUP_RE = re.compile(r"(\d+),(\d+)")


def per_core(series: Mapping[str, Series]) -> dict[str, tuple[str, np.ndarray]]:
    """Instance -> (core number, label, values); `_Total`, `g,_Total` and non-core instances are left out.

    `Processor Information` names cores `<group>,<number>`: they are numbered across groups in group order,
    which is the root's processor numbering, so `0,3` and `1,3` never collide.
    """
    grouped = {i: m for i in series if (m := _GROUP_RE.fullmatch(i.strip()))}
    out: dict[str, tuple[str, np.ndarray]] = {}
    if grouped:
        order = sorted(grouped, key=lambda i: (int(grouped[i].group(1)), int(grouped[i].group(2))))
        for n, inst in enumerate(order):
            out[str(n)] = (inst, arr(series[inst]))
        return out
    for inst, vals in series.items():
        m = _CORE_RE.fullmatch(inst.strip().lower())
        if m:
            out[m.group(1)] = (inst, arr(vals))
    return out


def _sum(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Element sum where NaN + value = value and NaN + NaN = NaN."""
    if a is None or b is None:
        return a if b is None else b
    both = np.isnan(a) & np.isnan(b)
    out = np.nan_to_num(a) + np.nan_to_num(b)
    out[both] = np.nan
    return out


def is_cumulative(counter_key: str, insts: dict[str, Series]) -> bool:
    """A counter without `/sec` in its name is a running count when no instance ever goes down and one goes up."""
    if counter_key in KNOWN_COUNTS:
        return True
    if counter_key.endswith("/sec") or counter_key.startswith(("linux cpu", "vhost")):
        return False
    rising = False
    for values in insts.values():
        a = arr(values)
        got = a[~np.isnan(a)]
        if len(got) >= 2 and (np.diff(got) < 0).any():
            return False
        rising = rising or (len(got) >= 2 and got[-1] > got[0])
    return rising


def rates(times: np.ndarray, values: Series) -> np.ndarray:
    """Per-second rates from a running count (NaN for the first sample and across gaps)."""
    a = arr(values)
    out = np.full(len(a), np.nan)
    if len(a) > 1:
        dt = np.diff(times)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[1:] = np.where(dt > 0, np.diff(a) / dt, np.nan)
    return out


def first_rates(rec: Recording, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    hit = rec.first(*keys)
    if hit is None:
        return {}
    k, insts = hit
    times = arr(rec.timestamps)
    if not is_cumulative(k, insts):
        return {i: arr(v) for i, v in insts.items()}
    return {i: rates(times, v) for i, v in insts.items()}


def nic_instances(series: Mapping[str, Series]) -> dict[str, Series]:
    """Physical NICs: skip _total, host vNICs (vEthernet), loopback/tunnel pseudo interfaces when others exist."""
    skip = ("_total", "vethernet", "hyper-v virtual ethernet", "isatap", "teredo", "loopback", "6to4")
    keep = {i: v for i, v in series.items() if not i.startswith(skip)}
    return keep or {i: v for i, v in series.items() if i != "_total"}


def _total(series: Mapping[str, Series]) -> np.ndarray | None:
    out: np.ndarray | None = None
    for v in series.values():
        out = _sum(out, arr(v))
    return out


def build_view(rec: Recording) -> View:
    """Per-core busy/net/packets and the host packet rate, from whatever counters are present."""
    times = arr(rec.timestamps)
    if rec.series(L_BUSY) or rec.series(L_PROCESSED):
        return _linux_view(rec, times)
    return _windows_view(rec, times)


def _windows_view(rec: Recording, times: np.ndarray) -> View:
    missing: list[str] = []
    busy = (
        per_core(rec.series(ROOT_VP_RUN))
        or per_core(rec.series(PROC_TIME))
        or per_core(rec.series(PINFO_TIME))
        or per_core(rec.series(LP_RUN))
    )
    intr, dpc = per_core(rec.series(PROC_INTR)), per_core(rec.series(PROC_DPC))
    if not intr and not dpc:
        intr, dpc = per_core(rec.series(PINFO_INTR)), per_core(rec.series(PINFO_DPC))
    ext, inte = per_core(first_rates(rec, VSP_EXT)), per_core(first_rates(rec, VSP_INT))
    names = sorted(set(busy) | set(intr) | set(dpc), key=int)
    cores: list[CoreSeries] = []
    for c in names:
        label = (busy.get(c) or intr.get(c) or dpc.get(c) or ("", None))[0]
        net = _sum(intr[c][1] if c in intr else None, dpc[c][1] if c in dpc else None)
        pk = _sum(ext[c][1] if c in ext else None, inte[c][1] if c in inte else None)
        cores.append(CoreSeries(c, label, busy[c][1] if c in busy else None, net, pk))
    percore = bool(ext or inte)
    if not busy and not intr:
        missing.append(WINDOWS_NEEDED["cpu"])
    if not intr and not dpc:
        missing.append(WINDOWS_NEEDED["net"])
    if not percore:
        missing.append(WINDOWS_NEEDED["percore"])
    rx_s, tx_s = nic_instances(rec.series(NIC_RX)), nic_instances(rec.series(NIC_TX))
    basis = "physical NICs (\\Network Interface)"
    if not rx_s and not tx_s:
        rx_s, tx_s = rec.series(VSW_RX), rec.series(VSW_TX)
        basis = "virtual switch (\\Hyper-V Virtual Switch)"
    rx, tx = _total(rx_s), _total(tx_s)
    host = _sum(rx, tx)
    if host is None and percore:
        host = _total({c.name: c.pkts for c in cores if c.pkts is not None})
        basis = "sum of per-processor switch packets"
    if host is None:
        missing.append(WINDOWS_NEEDED["pps"])
        basis = ""
    return View(
        "windows", cores, times, intervals_of(times), host, rx, tx, basis,
        "interrupt+DPC" if intr or dpc else "", percore, missing,
    )  # fmt: skip


def _linux_view(rec: Recording, times: np.ndarray) -> View:
    missing: list[str] = []
    busy = {c: arr(v) for c, v in rec.series(L_BUSY).items()}
    irq, soft = rec.series(L_IRQ), rec.series(L_SOFTIRQ)
    pkts = {c: arr(v) for c, v in rec.series(L_PROCESSED).items()}
    if not busy:
        missing.append(LINUX_NEEDED["cpu"])
    if not pkts:
        missing.append(LINUX_NEEDED["pps"])
    names = sorted(set(busy) | set(soft), key=lambda c: int(c) if c.isdigit() else 0)
    cores = [
        CoreSeries(
            c,
            f"cpu{c}",
            busy.get(c),
            _sum(arr(soft[c]), arr(irq[c]) if c in irq else None) if c in soft else None,
            pkts.get(c),
        )
        for c in names
    ]
    host = _total(pkts) if pkts else None
    rx_s, tx_s = rec.series(NIC_RX), rec.series(NIC_TX)
    return View(
        "linux", cores, times, intervals_of(times), host,
        _total(nic_instances(rx_s)) if rx_s else None, _total(nic_instances(tx_s)) if tx_s else None,
        "packets through NET_RX (softnet)" if pkts else "", "irq+softirq" if soft else "", bool(pkts), missing,
    )  # fmt: skip
