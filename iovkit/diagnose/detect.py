"""Findings over a Recording: the single-core switch bottleneck, missing spread, and the drop counters.

First a per-core view is built from whichever counters the recording has (Windows: root VP run time, Processor
interrupt+DPC time, Virtual Switch Processor packets; Linux: /proc/stat busy, irq+softirq, softnet processed).
Then each rule is a small pure function over that view that yields Findings with their evidence numbers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from iovkit.diagnose.model import Recording, Values, key, mean

Verdict = Literal["bottleneck", "ok", "insufficient-data"]

HOT_PCT = 90.0  # a core this busy in network work (interrupt/DPC/softirq) is saturated
ROOM_PCT = 75.0  # "the others have room": their mean busy is below this
CLOSE_SHARE = 0.6  # interrupt+DPC "close to" root VP run time: at least this share of it
MOST_SHARE = 0.5  # "handles most of the packets"
SPREAD_SHARE = 0.8  # missing spread: one core handles at least this share of the packets
SPREAD_MIN_PPS = 1000.0  # below this rate where packets land says nothing

# Counter keys (lower-case; see model.key)
ROOT_VP_RUN = key("hyper-v hypervisor root virtual processor", "% total run time")
LP_RUN = key("hyper-v hypervisor logical processor", "% total run time")
PROC_TIME = key("processor", "% processor time")
PROC_INTR = key("processor", "% interrupt time")
PROC_DPC = key("processor", "% dpc time")
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
class Core:
    """One core's means over the recording; busy/net in %, pps = packets handled per second."""

    name: str
    busy: float | None = None
    net: float | None = None
    pps: float | None = None
    busy_series: Values = field(default_factory=list)
    net_series: Values = field(default_factory=list)

    @property
    def load(self) -> float | None:
        """The network work on this core: interrupt+DPC/softirq when known, else total busy."""
        return self.net if self.net is not None else self.busy


@dataclass
class View:
    platform: Literal["windows", "linux"]
    cores: list[Core]
    total_pps: float | None = None
    rx_pps: float | None = None
    tx_pps: float | None = None
    percore_pps: bool = False
    missing: list[str] = field(default_factory=list)


@dataclass
class Finding:
    id: str
    severity: Literal["critical", "warning", "info"]
    summary: str
    core: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "summary": self.summary,
            "core": self.core,
            "evidence": self.evidence,
        }


@dataclass
class Recommendation:
    rank: int
    id: str
    title: str
    why: str
    commands: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "title": self.title, "why": self.why, "commands": self.commands}


@dataclass
class DiagnoseReport:
    """The whole answer: verdict, findings with numbers, ranked remedies, and the per-core view for rendering."""

    verdict: Verdict
    findings: list[Finding]
    recommendations: list[Recommendation]
    platform: str
    cores: list[Core]
    missing: list[str]
    source: str
    samples: int
    host: str | None = None
    total_pps: float | None = None

    def finding(self, fid: str) -> Finding | None:
        return next((f for f in self.findings if f.id == fid), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "findings": [f.to_json() for f in self.findings],
            "recommendations": [r.to_json() for r in self.recommendations],
            "platform": self.platform,
            "source": self.source,
            "host": self.host,
            "samples": self.samples,
            "total_pps": _r(self.total_pps),
            "missing": self.missing,
            "cores": [
                {"core": c.name, "busy_pct": _r(c.busy), "net_pct": _r(c.net), "pps": _r(c.pps)} for c in self.cores
            ],
        }


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


def _core_no(instance: str) -> str | None:
    """`root vp 3` / `hv lp 3` / `3` / `0,3` (Processor Information) -> "3"; `_total` -> None."""
    m = re.fullmatch(r"(?:root vp |hv lp |\d+,)?(\d+)", instance.strip().lower())
    return m.group(1) if m else None


def _per_core(series: dict[str, Values]) -> dict[str, Values]:
    out: dict[str, Values] = {}
    for inst, vals in series.items():
        c = _core_no(inst)
        if c is not None:
            out[c] = vals
    return out


def _add(a: Values, b: Values) -> Values:
    return [None if x is None and y is None else (x or 0.0) + (y or 0.0) for x, y in zip(a, b, strict=False)]


def _is_cumulative(counter_key: str, insts: dict[str, Values]) -> bool:
    """A counter without `/sec` in its name is a running count when no instance ever goes down and one goes up."""
    if counter_key in KNOWN_COUNTS:
        return True
    if counter_key.endswith("/sec") or counter_key.startswith(("linux cpu", "vhost")):
        return False
    rising = False
    for values in insts.values():
        got = [v for v in values if v is not None]
        if any(b < a for a, b in itertools.pairwise(got)):
            return False
        rising = rising or (len(got) >= 2 and got[-1] > got[0])
    return rising


def _rates(rec: Recording, values: Values) -> Values:
    """Per-second rates from a running count."""
    out: Values = [None]
    for i in range(1, len(values)):
        a, b = values[i - 1], values[i]
        dt = rec.timestamps[i] - rec.timestamps[i - 1]
        out.append(None if a is None or b is None or dt <= 0 else (b - a) / dt)
    return out


def _first_rates(rec: Recording, keys: tuple[str, ...]) -> dict[str, Values]:
    hit = rec.first(*keys)
    if hit is None:
        return {}
    k, insts = hit
    if not _is_cumulative(k, insts):
        return insts
    return {i: _rates(rec, v) for i, v in insts.items()}


def _nic_instances(series: dict[str, Values]) -> dict[str, Values]:
    """Physical NICs: skip _total, host vNICs (vEthernet), loopback/tunnel pseudo interfaces when others exist."""
    skip = ("_total", "vethernet", "hyper-v virtual ethernet", "isatap", "teredo", "loopback", "6to4")
    keep = {i: v for i, v in series.items() if not i.startswith(skip)}
    return keep or {i: v for i, v in series.items() if i != "_total"}


def build_view(rec: Recording) -> View:
    """Per-core busy/net/pps means and the total packet rate, from whatever counters are present."""
    if rec.series(L_BUSY) or rec.series(L_PROCESSED):
        return _linux_view(rec)
    return _windows_view(rec)


def _windows_view(rec: Recording) -> View:
    missing: list[str] = []
    busy = _per_core(rec.series(ROOT_VP_RUN)) or _per_core(rec.series(PROC_TIME)) or _per_core(rec.series(LP_RUN))
    intr, dpc = _per_core(rec.series(PROC_INTR)), _per_core(rec.series(PROC_DPC))
    net = {c: _add(intr[c], dpc.get(c, [None] * len(intr[c]))) for c in intr}
    ext, inte = _per_core(_first_rates(rec, VSP_EXT)), _per_core(_first_rates(rec, VSP_INT))
    pkts = {
        c: _add(ext.get(c, []) or [None] * len(rec.timestamps), inte.get(c, []) or [None] * len(rec.timestamps))
        for c in set(ext) | set(inte)
    }
    if not busy and not net:
        missing.append(WINDOWS_NEEDED["cpu"])
    if not net:
        missing.append(WINDOWS_NEEDED["net"])
    if not pkts:
        missing.append(WINDOWS_NEEDED["percore"])
    names = sorted(set(busy) | set(net), key=int)
    cores = [
        Core(
            name=c,
            busy=mean(busy.get(c, [])),
            net=mean(net.get(c, [])),
            pps=mean(pkts[c]) if c in pkts else None,
            busy_series=busy.get(c, []),
            net_series=net.get(c, []),
        )
        for c in names
    ]
    rx_s, tx_s = _nic_instances(rec.series(NIC_RX)), _nic_instances(rec.series(NIC_TX))
    if not rx_s and not tx_s:
        rx_s, tx_s = rec.series(VSW_RX), rec.series(VSW_TX)
    rx = sum(mean(v) or 0.0 for v in rx_s.values()) if rx_s else None
    tx = sum(mean(v) or 0.0 for v in tx_s.values()) if tx_s else None
    tot = (rx or 0.0) + (tx or 0.0) if rx is not None or tx is not None else None
    if tot is None:
        if pkts:
            tot = sum(c.pps or 0.0 for c in cores)
        else:
            missing.append(WINDOWS_NEEDED["pps"])
    return View("windows", cores, tot, rx, tx, bool(pkts), missing)


def _linux_view(rec: Recording) -> View:
    missing: list[str] = []
    busy = rec.series(L_BUSY)
    irq, soft = rec.series(L_IRQ), rec.series(L_SOFTIRQ)
    net = {c: _add(soft[c], irq.get(c, [None] * len(soft[c]))) for c in soft}
    pkts = rec.series(L_PROCESSED)
    if not busy:
        missing.append(LINUX_NEEDED["cpu"])
    if not pkts:
        missing.append(LINUX_NEEDED["pps"])
    names = sorted(set(busy) | set(net), key=lambda c: int(c) if c.isdigit() else 0)
    cores = [
        Core(
            name=c,
            busy=mean(busy.get(c, [])),
            net=mean(net.get(c, [])),
            pps=mean(pkts[c]) if c in pkts else None,
            busy_series=busy.get(c, []),
            net_series=net.get(c, []),
        )
        for c in names
    ]
    tot = sum(mean(v) or 0.0 for v in pkts.values()) if pkts else None
    rx = sum(mean(v) or 0.0 for v in rec.series(NIC_RX).values()) if rec.series(NIC_RX) else None
    tx = sum(mean(v) or 0.0 for v in rec.series(NIC_TX).values()) if rec.series(NIC_TX) else None
    return View("linux", cores, tot, rx, tx, bool(pkts), missing)


def single_core_switch(view: View) -> Finding | None:
    """One core >= 90% in network work (or run time with interrupt+DPC close to it), others with room, most packets."""
    cand = [c for c in view.cores if c.load is not None]
    if len(cand) < 2:
        return None
    hot = max(cand, key=lambda c: (c.load or 0.0, c.busy or 0.0))
    net, busy = hot.net, hot.busy
    saturated = (net is not None and net >= HOT_PCT) or (
        busy is not None and busy >= HOT_PCT and (net is None or net >= CLOSE_SHARE * busy)
    )
    if not saturated:
        return None
    others = [c for c in cand if c is not hot]
    other_busy = [c.busy if c.busy is not None else c.load for c in others]
    others_mean = sum(v for v in other_busy if v is not None) / len(others)
    if others_mean >= ROOM_PCT:
        return None
    share: float | None = None
    if view.percore_pps:
        all_pps = sum(c.pps or 0.0 for c in view.cores)
        share = (hot.pps or 0.0) / all_pps if all_pps > 0 else None
        basis = "per-processor packet counters"
    elif all(c.net is not None for c in cand):
        all_net = sum(c.net or 0.0 for c in cand)
        share = (hot.net or 0.0) / all_net if all_net > 0 else None
        basis = "share of interrupt/DPC/softirq time (no per-processor packet counters)"
    else:
        basis = "unknown (no per-processor packet or interrupt counters)"
    if share is not None and share < MOST_SHARE:
        return None
    frac = (net if net is not None and net >= CLOSE_SHARE * (busy or 0.0) else busy) or 0.0
    frac = min(frac, 100.0) / 100.0
    if view.percore_pps and hot.pps:
        hot_pps: float | None = hot.pps
        pps_basis = "packets counted on this processor"
    elif view.total_pps:
        hot_pps = view.total_pps * (share if share is not None else 1.0)
        pps_basis = "NIC packets/s attributed to this core"
    else:
        hot_pps = None
        pps_basis = "no packet counters"
    ev: dict[str, Any] = {
        "busy_pct": _r(busy),
        "net_pct": _r(net),
        "others_mean_busy_pct": _r(others_mean),
        "packet_share": _r(share, 3),
        "share_basis": basis,
        "hot_core_pps": _r(hot_pps, 0),
        "pps_basis": pps_basis,
        "nic_pps": _r(view.total_pps, 0),
        "nic_rx_pps": _r(view.rx_pps, 0),
        "nic_tx_pps": _r(view.tx_pps, 0),
    }
    if hot_pps:
        cost = frac / hot_pps
        sat = hot_pps / frac
        ev.update(
            cost_us_per_packet=_r(cost * 1e6, 3),
            saturation_pps=_r(sat, 0),
            headroom_pps=_r(max(sat - hot_pps, 0.0), 0),
            headroom_pct=_r(100.0 * max(1.0 - frac, 0.0), 1),
        )
        summary = (
            f"core {hot.name} is {frac * 100:.0f}% busy switching packets while the others average "
            f"{others_mean:.0f}%: {hot_pps:,.0f} pkt/s at {cost * 1e6:.2f} µs each saturates near "
            f"{sat:,.0f} pkt/s ({max(sat - hot_pps, 0):,.0f} pkt/s headroom)"
        )
    else:
        summary = (
            f"core {hot.name} is {frac * 100:.0f}% busy in network work while the others average "
            f"{others_mean:.0f}% (no packet counters: saturation rate unknown)"
        )
    return Finding("SINGLE-CORE-SWITCH", "critical", summary, hot.name, ev)


def missing_spread(view: View) -> Finding | None:
    """Most packets on one processor: VMQ/RSS/RPS off or a single queue."""
    if not view.percore_pps or len(view.cores) < 2:
        return None
    all_pps = sum(c.pps or 0.0 for c in view.cores)
    if all_pps < SPREAD_MIN_PPS:
        return None
    top = max(view.cores, key=lambda c: c.pps or 0.0)
    share = (top.pps or 0.0) / all_pps
    if share < SPREAD_SHARE:
        return None
    what = "VMQ/vRSS" if view.platform == "windows" else "RSS/RPS"
    return Finding(
        "MISSING-SPREAD",
        "warning",
        f"{share * 100:.0f}% of {all_pps:,.0f} pkt/s are handled on core {top.name}: no {what} spread "
        "(off, or a single queue / single flow hash)",
        top.name,
        {"share": _r(share, 3), "core_pps": _r(top.pps, 0), "all_pps": _r(all_pps, 0)},
    )


def _rate_findings(rec: Recording, view: View) -> Iterator[Finding]:
    """Drop counters: any non-zero rate is worth a line with its numbers."""

    def per_inst(keys: tuple[str, ...]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k in keys:
            for inst, vals in _first_rates(rec, (k,)).items():
                m = mean(vals)
                name = k.split("\\")[1].removesuffix("/sec")
                if m and inst != "_total":
                    out[f"{name} [{inst}]" if inst else name] = m
        return out

    udp = per_inst((L_UDP_RCVBUF, L_UDP_SNDBUF, *UDP_WIN_ERR))
    if udp:
        yield Finding(
            "UDP-BUFFER-DROPS",
            "warning",
            "UDP socket buffers overflow: "
            + ", ".join(f"{k} {v:,.1f}/s" for k, v in udp.items())
            + " (receiver too slow or rmem/wmem too small)",
            None,
            {k: _r(v) for k, v in udp.items()},
        )
    for fid, k, what in (
        ("SOFTNET-DROPS", L_DROPPED, "backlog drops (netdev_max_backlog full)"),
        ("SOFTNET-SQUEEZE", L_SQUEEZE, "time squeezes (NET_RX ran out of budget)"),
    ):
        per = {c: m for c, v in rec.series(k).items() if (m := mean(v))}
        if per:
            worst = max(per, key=lambda c: per[c])
            yield Finding(
                fid,
                "warning",
                f"softnet {what}: "
                + ", ".join(f"cpu {c} {v:,.1f}/s" for c, v in sorted(per.items(), key=lambda x: -x[1])),
                worst,
                {f"cpu{c}": _r(v) for c, v in per.items()},
            )
    vsw = per_inst(VSW_DROP + VNIC_DROP)
    if vsw:
        yield Finding(
            "VSWITCH-DROPS",
            "warning",
            "virtual switch drops packets: " + ", ".join(f"{k} {v:,.1f}/s" for k, v in vsw.items()),
            None,
            {k: _r(v) for k, v in vsw.items()},
        )
    disc = per_inst(NIC_DISC)
    if disc:
        yield Finding(
            "NIC-DISCARDS",
            "warning",
            "NICs discard received packets: " + ", ".join(f"{k} {v:,.1f}/s" for k, v in disc.items()),
            None,
            {k: _r(v) for k, v in disc.items()},
        )
    vh = {i: m for i, v in rec.series(VHOST_CPU).items() if (m := mean(v)) is not None and m >= HOT_PCT}
    if vh:
        yield Finding(
            "VHOST-SATURATED",
            "critical",
            "vhost-net worker(s) at "
            + ", ".join(f"{i} {v:.0f}%" for i, v in vh.items())
            + ": the virtio data path is CPU-bound",
            None,
            {i: _r(v) for i, v in vh.items()},
        )
    busy = [c.busy for c in view.cores if c.busy is not None]
    if len(busy) >= 2 and min(busy) >= HOT_PCT:
        yield Finding(
            "HOST-CPU-SATURATED",
            "warning",
            f"all {len(busy)} cores are >= {HOT_PCT:.0f}% busy: the host is overloaded, not one core",
            None,
            {"min_busy_pct": _r(min(busy))},
        )


def analyse(rec: Recording) -> tuple[Verdict, list[Finding], View]:
    """Run every rule; the verdict is `bottleneck` when SINGLE-CORE-SWITCH or a saturated vhost worker holds."""
    view = build_view(rec)
    findings: list[Finding] = []
    if (f := single_core_switch(view)) is not None:
        findings.append(f)
    if (f := missing_spread(view)) is not None:
        findings.append(f)
    findings.extend(_rate_findings(rec, view))
    if any(f.id in ("SINGLE-CORE-SWITCH", "VHOST-SATURATED") for f in findings):
        verdict: Verdict = "bottleneck"
    elif not any(c.load is not None for c in view.cores) or not rec.timestamps:
        verdict = "insufficient-data"
    else:
        verdict = "ok"
    return verdict, findings, view


def diagnose(rec: Recording) -> DiagnoseReport:
    """The full report for a recording: findings, verdict and remedies ranked for the case."""
    from iovkit.diagnose.remedies import rank

    verdict, findings, view = analyse(rec)
    return DiagnoseReport(
        verdict=verdict,
        findings=findings,
        recommendations=rank(view.platform, findings, view),
        platform=view.platform,
        cores=view.cores,
        missing=view.missing,
        source=rec.source,
        samples=len(rec.timestamps),
        host=rec.host,
        total_pps=view.total_pps,
    )


__all__ = ["DiagnoseReport", "Finding", "Recommendation", "analyse", "build_view", "diagnose"]
