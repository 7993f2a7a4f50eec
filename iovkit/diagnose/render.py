"""Render a DiagnoseReport: a rich report (windows, per-core peaks and sparklines), or the JSON scripts read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from iovkit.diagnose.detect import DiagnoseReport
from iovkit.diagnose.windows import iso

if TYPE_CHECKING:  # rich is imported where a table is drawn: `--format json` on a day-long file need not pay it
    from rich.console import Console
    from rich.table import Table

BARS = "▁▂▃▄▅▆▇█"
VERDICT_STYLE = {"bottleneck": "bold red", "ok": "bold green", "idle": "bold cyan", "insufficient-data": "bold yellow"}
SEV_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def sparkline(values: list[float | None], top: float = 100.0) -> str:
    """One character per value, scaled 0..top; missing values are blank."""
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            idx = int(max(0.0, min(v, top)) / top * (len(BARS) - 1) + 0.5) if top > 0 else 0
            out.append(BARS[idx])
    return "".join(out)


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def to_json(report: DiagnoseReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)


def verdict_line(report: DiagnoseReport) -> str:
    """The verdict in one line, as every short view says it: the bottleneck's finding, a clear only when the
    verdict is ok, and for idle / insufficient-data why the input cannot answer (never "no bottleneck")."""
    if report.verdict == "bottleneck":
        hot = report.finding("SINGLE-CORE-SWITCH") or report.finding("VHOST-SATURATED")
        return f"bottleneck: {hot.summary}" if hot else "bottleneck"
    if report.verdict == "ok":
        return "ok: no single-core switch bottleneck"
    note = report.note.removeprefix("idle: ")
    return f"{report.verdict}: {note}" if note else report.verdict


def cores_table(report: DiagnoseReport) -> Table:
    """Per core: mean and peak busy and network work, packets, and sparklines of the bucket max over the mean."""
    from rich.table import Table

    hot = report.finding("SINGLE-CORE-SWITCH") or report.finding("HOT-CORE")
    t = Table(title="Per-core load (mean / peak)", title_justify="left", expand=False)
    t.add_column("core", justify="right")
    t.add_column("busy %", justify="right")
    t.add_column("net %" if report.platform == "linux" else "intr+DPC %", justify="right")
    t.add_column("pkt/s", justify="right")
    t.add_column("max / mean over time")
    for c in report.cores:
        style = "bold red" if hot and hot.core == c.name else ""
        means, maxes = c.busy_buckets if c.busy_buckets[0] else c.net_buckets
        plain = not c.label or (c.label.lower().endswith(c.name) and "," not in c.label)
        name = c.name if plain else f"{c.name} ({c.label})"
        t.add_row(
            name,
            f"{_f(c.busy)} / {_f(c.busy_max)}",
            f"{_f(c.net)} / {_f(c.net_max)}",
            f"{_f(c.pps, '{:,.0f}')} / {_f(c.pps_max, '{:,.0f}')}" if c.pps is not None else "-",
            f"{sparkline(maxes)}\n{sparkline(means)}",
            style=style,
        )
    return t


def _hms(t: str | None) -> str:
    return "-" if t is None else t[11:19]


def windows_table(report: DiagnoseReport) -> Table | None:
    if not report.windows:
        return None
    from rich.table import Table

    zone = f"; local = {report.timezone}" if report.timezone else ""
    t = Table(
        title=f"Sustained single-core windows: at least {report.min_window_s:.0f} s, "
        f"{report.window_share * 100:.1f}% of the recording",
        title_justify="left",
        caption=f"busy mean / peak; net = interrupt+DPC (softirq on Linux); rates in pkt/s{zone}",
        caption_justify="left",
    )
    for col in ("core", "local", "UTC", "length", "busy %", "net %", "host pkt/s", "saturates at"):
        t.add_column(col, justify="left" if col in ("local", "UTC") else "right", overflow="fold")
    for n, w in enumerate(report.windows):
        sat = w.estimate.get("saturation_pps")
        s_l, e_l, s_u, e_u = w.times()
        t.add_row(
            w.core + (" (worst)" if n == report.worst and len(report.windows) > 1 else ""),
            f"{(s_l or '')[5:10]} {_hms(s_l)}-{_hms(e_l)}" if s_l else "unknown",
            f"{_hms(s_u)}-{_hms(e_u)}" if s_u else "not recorded",
            f"{w.duration_s:,.0f} s",
            f"{_f(w.busy_mean)} / {_f(w.busy_max)}",
            _f(w.net_mean),
            _f(w.host_pps_mean, "{:,.0f}"),
            f"{sat:,.0f}" if sat else "-",
            style="bold red" if n == report.worst else "",
        )
    return t


def render(report: DiagnoseReport, console: Console) -> None:
    """The human report: verdict, windows, per-core table with peaks, findings, remedies, missing counters."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    head = Text.assemble(
        ("verdict: ", "bold"),
        (report.verdict, VERDICT_STYLE[report.verdict]),
        f"   {report.platform.capitalize()} host {report.host or ''} · {report.source} · {report.samples:,} samples",
    )
    parts: list[Table | Text] = [head]
    if report.start_utc is not None and report.end_utc is not None:
        local = report.start_local
        when = (local or iso(report.start_utc, 0.0) or "").replace("T", " ")
        zone = f" ({report.timezone})" if report.timezone and local else ""
        if not report.utc_known:
            zone = " on the host's clock (the file does not say its time zone)"
        parts.append(Text(f"recorded from {when}{zone} for {report.span_s:,.0f} s"))
    if report.total_pps is not None:
        where = "on the NICs" if report.platform == "windows" else "through NET_RX (softnet)"
        parts.append(Text(f"{report.total_pps:,.0f} pkt/s mean, {report.total_pps_max or 0:,.0f} peak {where}"))
    if report.note:
        parts.append(Text(report.note, "yellow"))
    if (wt := windows_table(report)) is not None:
        parts.append(wt)
    parts.append(cores_table(report))
    if report.host_pps_buckets[0]:
        top = max((v for v in report.host_pps_buckets[1] if v is not None), default=0.0) or 1.0
        parts.append(
            Text(
                f"host pkt/s over time (max / mean per bucket, top {top:,.0f}):\n"
                f"{sparkline(report.host_pps_buckets[1], top)}\n{sparkline(report.host_pps_buckets[0], top)}"
            )
        )
    if report.clock_events:
        parts.append(
            Text(
                "clock: "
                + "; ".join(
                    f"{e['kind']} of {e['delta_s']:+,.0f} s at sample {e['index']}" for e in report.clock_events
                ),
                "dim",
            )
        )
    if report.findings:
        ft = Table(title="Findings", title_justify="left", show_lines=False)
        ft.add_column("id")
        ft.add_column("core", justify="right")
        ft.add_column("what", overflow="fold")
        for f in report.findings:
            ft.add_row(Text(f.id, SEV_STYLE[f.severity]), f.core or "", f.summary)
        parts.append(ft)
    else:
        parts.append(
            Text("No findings.", "green")
            if report.verdict == "ok"
            else Text(f"No findings, and no clear: {report.verdict} (the input cannot answer).", "yellow")
        )
    if report.recommendations:
        rt = Table(title="Recommendations (best fit first)", title_justify="left")
        rt.add_column("#", justify="right")
        rt.add_column("remedy")
        rt.add_column("why", overflow="fold")  # a long registry path stays whole
        for r in report.recommendations:
            cmds = "\n".join(f"  {c}" for c in r.commands)
            rt.add_row(str(r.rank), r.title, r.why + (f"\n{cmds}" if cmds else ""))
        parts.append(rt)
    if report.missing:
        parts.append(Text("Counters not in this recording: " + "; ".join(report.missing), "yellow"))
    console.print(Panel(Group(*parts), title="iovkit diagnose", expand=False), soft_wrap=False)
