"""Findings over a Recording: sustained single-core windows, missing spread, the drop counters, and the verdict.

First a per-core, per-sample view is built from whichever counters the recording has (view.py). Then the
recording is read as a time series: every sustained window in which one core is saturated while the others have
room (windows.py), each with its times and its saturation estimate (estimate.py). Each rule is a small function
over that view that yields Findings with their evidence numbers.

Verdicts: bottleneck (a sustained window with network evidence, or a saturated vhost worker), ok (packets flowed,
no window), idle (the host passed almost no packets: nothing to judge), insufficient-data (counters missing, or
a core saturated on run time alone, which does not show network work).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from iovkit.diagnose import windows as win
from iovkit.diagnose.estimate import estimate
from iovkit.diagnose.findings import Finding, Recommendation
from iovkit.diagnose.model import Recording, arr, mean
from iovkit.diagnose.remedies import rank
from iovkit.diagnose.view import (
    L_DROPPED,
    L_SQUEEZE,
    L_UDP_RCVBUF,
    L_UDP_SNDBUF,
    LINUX_NEEDED,
    NIC_DISC,
    UDP_WIN_ERR,
    VHOST_CPU,
    VNIC_DROP,
    VSW_DROP,
    WINDOWS_NEEDED,
    View,
    build_view,
    first_rates,
)

Verdict = Literal["bottleneck", "ok", "idle", "insufficient-data"]

HOT_PCT = win.HOT_PCT
MOST_SHARE = 0.5  # "handles most of the packets"
SPREAD_SHARE = 0.8  # missing spread: one core handles at least this share of the packets
SPREAD_MIN_PPS = 1000.0  # below this rate where packets land says nothing
IDLE_PPS = 1000.0  # a host that never passes this many packets/s (bucket mean) gives nothing to judge


@dataclass
class Core:
    """One core over the recording: means, peaks (max sample) and bucketed mean/max series for sparklines."""

    name: str
    label: str = ""
    busy: float | None = None
    net: float | None = None
    pps: float | None = None
    busy_max: float | None = None
    net_max: float | None = None
    pps_max: float | None = None
    busy_buckets: tuple[list[float | None], list[float | None]] = field(default_factory=lambda: ([], []))
    net_buckets: tuple[list[float | None], list[float | None]] = field(default_factory=lambda: ([], []))

    @property
    def load(self) -> float | None:
        return self.net if self.net is not None else self.busy

    def to_json(self) -> dict[str, Any]:
        return {
            "core": self.name,
            "label": self.label,
            "busy_pct": _r(self.busy),
            "busy_max_pct": _r(self.busy_max),
            "net_pct": _r(self.net),
            "net_max_pct": _r(self.net_max),
            "pps": _r(self.pps),
            "pps_max": _r(self.pps_max),
            "busy_buckets": {"mean": _rl(self.busy_buckets[0]), "max": _rl(self.busy_buckets[1])},
            "net_buckets": {"mean": _rl(self.net_buckets[0]), "max": _rl(self.net_buckets[1])},
        }


@dataclass
class DiagnoseReport:
    """The whole answer: verdict, windows, findings with numbers, ranked remedies, and per-core data to draw."""

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
    total_pps_max: float | None = None
    windows: list[win.Window] = field(default_factory=list)
    worst: int | None = None  # index into windows
    window_share: float = 0.0  # share of the recording inside windows
    min_window_s: float = 0.0
    span_s: float = 0.0
    start_utc: float | None = None
    end_utc: float | None = None
    utc_offset: float | None = None  # of the first sample
    utc_known: bool = True
    timezone: str | None = None
    clock_events: list[dict[str, Any]] = field(default_factory=list)
    host_pps_buckets: tuple[list[float | None], list[float | None]] = field(default_factory=lambda: ([], []))
    note: str = ""  # the one line a script reads on stderr for idle / insufficient-data

    @property
    def start_local(self) -> str | None:
        if self.start_utc is None:
            return None
        return win.iso(self.start_utc, self.utc_offset) if self.utc_known else win.wall(self.start_utc)

    def finding(self, fid: str) -> Finding | None:
        return next((f for f in self.findings if f.id == fid), None)

    @property
    def worst_window(self) -> win.Window | None:
        return self.windows[self.worst] if self.worst is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "note": self.note,
            "findings": [f.to_json() for f in self.findings],
            "recommendations": [r.to_json() for r in self.recommendations],
            "platform": self.platform,
            "source": self.source,
            "host": self.host,
            "samples": self.samples,
            "timezone": self.timezone,
            "start_utc": win.iso(self.start_utc, 0.0) if self.start_utc is not None and self.utc_known else None,
            "end_utc": win.iso(self.end_utc, 0.0) if self.end_utc is not None and self.utc_known else None,
            "start_local": self.start_local,
            "span_s": round(self.span_s, 1),
            "min_window_s": round(self.min_window_s, 1),
            "windows": [w.to_json() for w in self.windows],
            "worst_window": self.worst,
            "window_share": round(self.window_share, 4),
            "clock_events": self.clock_events,
            "total_pps": _r(self.total_pps),
            "total_pps_max": _r(self.total_pps_max),
            "host_pps_buckets": {"mean": _rl(self.host_pps_buckets[0]), "max": _rl(self.host_pps_buckets[1])},
            "missing": self.missing,
            "cores": [c.to_json() for c in self.cores],
        }


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(float(v), nd)


def _rl(vs: list[float | None]) -> list[float | None]:
    return [_r(v) for v in vs]


def _core_summaries(view: View) -> list[Core]:
    out = []
    for c in view.cores:
        out.append(
            Core(
                name=c.name,
                label=c.label,
                busy=win._nanmean(c.busy) if c.busy is not None else None,
                net=win._nanmean(c.net) if c.net is not None else None,
                pps=win._nanmean(c.pkts) if c.pkts is not None else None,
                busy_max=win._nanmax(c.busy) if c.busy is not None else None,
                net_max=win._nanmax(c.net) if c.net is not None else None,
                pps_max=win._nanmax(c.pkts) if c.pkts is not None else None,
                busy_buckets=win.buckets(c.busy),
                net_buckets=win.buckets(c.net),
            )
        )
    return out


def _when(w: win.Window, tz: str | None) -> str:
    """`21:42:32-21:52:40 local (W. Europe Daylight Time), 19:42:32-19:52:40 UTC` (dates when they differ)."""
    s_l, e_l, s_u, e_u = w.times()

    def span(a: str, b: str) -> str:
        a, b = a.replace("T", " ")[:19], b.replace("T", " ")[:19]
        return f"{a}-{b[11:] if a[:10] == b[:10] else b}"

    if s_u is None or e_u is None:  # the file gave the wall clock without its time zone
        return f"{span(s_l or '', e_l or '')} on the host's clock (time zone not recorded)"
    utc = span(s_u, e_u) + " UTC"
    if s_l is None or e_l is None:
        return utc
    return f"{span(s_l, e_l)} local{f' ({tz})' if tz else ''}, {utc}"


def single_core_switch(
    view: View, windows: list[win.Window], tz: str | None, span: float
) -> tuple[Finding | None, Finding | None]:
    """SINGLE-CORE-SWITCH over the worst network window, and HOT-CORE for run-time-only windows."""
    net_w = [w for w in windows if w.evidence == "network"]
    run_w = [w for w in windows if w.evidence != "network"]
    switch: Finding | None = None
    hot_only: Finding | None = None
    if net_w:
        w = win.worst(net_w)
        assert w is not None
        est = w.estimate
        total = sum(x.duration_s for x in net_w)
        share = total / span if span > 0 else 0.0
        rate = f"; {est['derivation']}" if est.get("derivation") else ""
        summary = (
            f"core {w.core} saturated ({w.load:.0f}% mean, others {w.others_busy_mean or 0:.0f}%) in {len(net_w)} "
            f"window(s) of {_dur(total)} ({share * 100:.1f}% of the recording); worst {_when(w, tz)}" + rate
        )
        ev: dict[str, Any] = {
            "windows": len(net_w),
            "window_seconds": round(total, 1),
            "window_share": round(share, 4),
            "worst_start_utc": w.times()[2],
            "worst_end_utc": w.times()[3],
            "worst_start_local": w.times()[0],
            "worst_end_local": w.times()[1],
            "busy_pct": _r(w.busy_mean),
            "net_pct": _r(w.net_mean),
            "others_mean_busy_pct": _r(w.others_busy_mean),
            "nic_pps": est.get("host_pps"),
            "nic_rx_pps": est.get("host_rx_pps"),
            "nic_tx_pps": est.get("host_tx_pps"),
            "hot_core_pps": est.get("core_pps"),
            **{k: est[k] for k in ("packet_share", "share_basis", "saturation_pps", "headroom_pps") if k in est},
            **{k: est[k] for k in ("core_saturation_pps", "cost_us_per_packet", "derivation") if k in est},
        }
        switch = Finding("SINGLE-CORE-SWITCH", "critical", summary, w.core, ev)
    if run_w:
        w = win.worst(run_w)
        assert w is not None
        need = [WINDOWS_NEEDED["net"], WINDOWS_NEEDED["percore"]]
        total = sum(x.duration_s for x in run_w)
        hot_only = Finding(
            "HOT-CORE",
            "warning",
            f"core {w.core} was {w.busy_mean or 0:.0f}% busy (run time) while the others averaged "
            f"{w.others_busy_mean or 0:.0f}%, for {_dur(total)} in {len(run_w)} window(s), worst {_when(w, tz)}; "
            "this recording has no interrupt/DPC or per-processor switch counters, so it cannot show that the "
            "work is network work. Record also: " + "; ".join(need),
            w.core,
            {
                "windows": len(run_w),
                "window_seconds": round(total, 1),
                "busy_pct": _r(w.busy_mean),
                "others_mean_busy_pct": _r(w.others_busy_mean),
                "missing": need,
                "host_pps": _r(w.host_pps_mean, 0),
            },
        )
    return switch, hot_only


def _dur(s: float) -> str:
    s = round(s)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def missing_spread(view: View) -> Finding | None:
    """Most packets on one processor: VMQ/RSS/RPS off or a single queue."""
    if not view.percore_pps or len(view.cores) < 2:
        return None
    per = {c.name: win._nanmean(c.pkts) or 0.0 for c in view.cores if c.pkts is not None}
    all_pps = sum(per.values())
    if all_pps < SPREAD_MIN_PPS:
        return None
    top = max(per, key=lambda c: per[c])
    share = per[top] / all_pps
    if share < SPREAD_SHARE:
        return None
    what = "VMQ/vRSS" if view.platform == "windows" else "RSS/RPS"
    return Finding(
        "MISSING-SPREAD",
        "warning",
        f"{share * 100:.0f}% of {all_pps:,.0f} pkt/s are handled on core {top}: no {what} spread "
        "(off, or a single queue / single flow hash)",
        top,
        {"share": _r(share, 3), "core_pps": _r(per[top], 0), "all_pps": _r(all_pps, 0)},
    )


def _rate_findings(rec: Recording, view: View) -> Iterator[Finding]:
    """Drop counters: any non-zero rate is worth a line with its numbers."""

    def per_inst(keys: tuple[str, ...]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k in keys:
            for inst, vals in first_rates(rec, (k,)).items():
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
    busy = [m for c in view.cores if c.busy is not None and (m := win._nanmean(c.busy)) is not None]
    if len(busy) >= 2 and min(busy) >= HOT_PCT:
        yield Finding(
            "HOST-CPU-SATURATED",
            "warning",
            f"all {len(busy)} cores are >= {HOT_PCT:.0f}% busy: the host is overloaded, not one core",
            None,
            {"min_busy_pct": _r(min(busy))},
        )


@dataclass
class Analysis:
    verdict: Verdict
    findings: list[Finding]
    view: View
    windows: list[win.Window]
    min_window_s: float
    note: str = ""


def analyse(rec: Recording, min_window: float | None = None) -> Analysis:
    """Run every rule over the recording; `min_window` is the shortest sustained window in seconds (default 30,
    capped at the recording's own length)."""
    view = build_view(rec)
    min_s = win.min_window(view, min_window)
    offsets = arr(rec.utc_offsets) if rec.utc_offsets is not None else None
    windows = win.find(view, min_s, offsets, rec.utc_known)
    kept: list[win.Window] = []
    for w in windows:
        hot = next(c for c in view.cores if c.name == w.core)
        w.estimate = estimate(view, hot, slice(w.first, w.last + 1))
        share = w.estimate.get("packet_share")
        if view.percore_pps and share is not None:
            if share < MOST_SHARE:
                if w.evidence == "network":
                    continue  # the core is busy, but not with most of the switch's packets
            else:
                w.evidence = "network"  # per-processor switch packets show the work is the switch's
        kept.append(w)
    findings: list[Finding] = []
    switch, hot_only = single_core_switch(view, kept, rec.timezone, view.span)
    findings += [f for f in (switch, hot_only) if f is not None]
    if (f := missing_spread(view)) is not None:
        findings.append(f)
    findings.extend(_rate_findings(rec, view))
    host_peak = max((v for v in win.buckets(view.host_pps)[0] if v is not None), default=None)
    note = ""
    if any(f.id in ("SINGLE-CORE-SWITCH", "VHOST-SATURATED") for f in findings):
        verdict: Verdict = "bottleneck"
    elif not any(c.load() is not None for c in view.cores) or not len(view.times):
        verdict = "insufficient-data"
        note = "the recording lacks " + ("; ".join(view.missing) or "per-core CPU counters")
        if rec.unrecognized:
            note += _unrecognized_line(rec)
    elif hot_only is not None:
        verdict = "insufficient-data"
        note = f"core {hot_only.core} was saturated, but run time alone does not show network work; record also " + (
            "; ".join(hot_only.evidence["missing"])
        )
    elif host_peak is not None and host_peak < IDLE_PPS:
        verdict = "idle"
        what = f" ({view.host_basis})" if view.host_basis else ""
        note = (
            f"idle: at most {host_peak:,.0f} pkt/s{what}, under {IDLE_PPS:,.0f}: nothing to judge; record (or "
            "sample) again while the VMs carry their usual or peak traffic"
        )
    elif host_peak is None:
        verdict = "insufficient-data"
        need = WINDOWS_NEEDED["pps"] if view.platform == "windows" else LINUX_NEEDED["pps"]
        note = f"no packet counters, so no load to judge: the recording lacks {need}"
    else:
        verdict = "ok"
    return Analysis(verdict, findings, view, kept, min_s, note)


def _unrecognized_line(rec: Recording) -> str:
    shown = ", ".join(repr(o) for o in rec.unrecognized[:6]) + (" ..." if len(rec.unrecognized) > 6 else "")
    return (
        f". Counter objects not recognized (a display language iovkit does not map): {shown}; record with the "
        "script from `iovkit script counters`, which resolves names through the Perflib indexes"
    )


def diagnose(rec: Recording, min_window: float | None = None) -> DiagnoseReport:
    """The full report for a recording: windows, findings, verdict and remedies ranked for the case."""
    a = analyse(rec, min_window)
    view = a.view
    worst = win.worst(a.windows)
    times = view.times
    offsets = arr(rec.utc_offsets) if rec.utc_offsets is not None else None
    return DiagnoseReport(
        verdict=a.verdict,
        findings=a.findings,
        recommendations=rank(view.platform, a.findings, view),
        platform=view.platform,
        cores=_core_summaries(view),
        missing=view.missing,
        source=rec.source,
        samples=len(times),
        host=rec.host,
        total_pps=win._nanmean(view.host_pps) if view.host_pps is not None else None,
        total_pps_max=win._nanmax(view.host_pps) if view.host_pps is not None else None,
        windows=a.windows,
        worst=a.windows.index(worst) if worst is not None else None,
        window_share=(sum(w.duration_s for w in a.windows) / view.span) if view.span > 0 else 0.0,
        min_window_s=a.min_window_s,
        span_s=view.span,
        start_utc=float(times[0] - view.intervals[0]) if len(times) else None,
        end_utc=float(times[-1]) if len(times) else None,
        utc_offset=float(offsets[0]) if offsets is not None and len(offsets) else None,
        utc_known=rec.utc_known,
        timezone=rec.timezone,
        clock_events=[e.to_json() for e in rec.clock_events],
        host_pps_buckets=win.buckets(view.host_pps),
        note=a.note,
    )


__all__ = ["Analysis", "Core", "DiagnoseReport", "Finding", "Recommendation", "View", "analyse", "diagnose"]
