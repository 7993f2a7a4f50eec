"""Render a DiagnoseReport: a rich report with per-core sparklines, or the JSON shape scripts read."""

from __future__ import annotations

import json

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from iovkit.diagnose.detect import DiagnoseReport
from iovkit.diagnose.model import Values

BARS = "▁▂▃▄▅▆▇█"
VERDICT_STYLE = {"bottleneck": "bold red", "ok": "bold green", "insufficient-data": "bold yellow"}
SEV_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def sparkline(values: Values, width: int = 30, top: float = 100.0) -> str:
    """One character per sample (the last `width`), scaled 0..top; missing samples are blank."""
    out = []
    for v in values[-width:]:
        if v is None:
            out.append(" ")
        else:
            idx = int(max(0.0, min(v, top)) / top * (len(BARS) - 1) + 0.5)
            out.append(BARS[idx])
    return "".join(out)


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def to_json(report: DiagnoseReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)


def cores_table(report: DiagnoseReport) -> Table:
    hot = report.finding("SINGLE-CORE-SWITCH")
    t = Table(title="Per-core load", title_justify="left", expand=False)
    t.add_column("core", justify="right")
    t.add_column("busy %", justify="right")
    t.add_column("net %" if report.platform == "linux" else "intr+DPC %", justify="right")
    t.add_column("pkt/s", justify="right")
    t.add_column("busy over time")
    for c in report.cores:
        style = "bold red" if hot and hot.core == c.name else ""
        series = c.busy_series if any(v is not None for v in c.busy_series) else c.net_series
        t.add_row(c.name, _f(c.busy), _f(c.net), _f(c.pps, "{:,.0f}"), sparkline(series), style=style)
    return t


def render(report: DiagnoseReport, console: Console) -> None:
    """The human report: verdict, per-core table with sparklines, findings, ranked remedies, missing counters."""
    head = Text.assemble(
        ("verdict: ", "bold"),
        (report.verdict, VERDICT_STYLE[report.verdict]),
        f"   {report.platform} · {report.source} · {report.samples} samples",
    )
    if report.host:
        head.append(f" · host {report.host}")
    if report.total_pps is not None:
        where = "on the NICs" if report.platform == "windows" else "through NET_RX (softnet)"
        head.append(f" · {report.total_pps:,.0f} pkt/s {where}")
    parts: list[Table | Text] = [head, cores_table(report)]
    if report.findings:
        ft = Table(title="Findings", title_justify="left", show_lines=False)
        ft.add_column("id")
        ft.add_column("core", justify="right")
        ft.add_column("what")
        for f in report.findings:
            ft.add_row(Text(f.id, SEV_STYLE[f.severity]), f.core or "", f.summary)
        parts.append(ft)
    else:
        parts.append(Text("No findings.", "green"))
    if report.recommendations:
        rt = Table(title="Recommendations (best fit first)", title_justify="left")
        rt.add_column("#", justify="right")
        rt.add_column("remedy")
        rt.add_column("why")
        for r in report.recommendations:
            cmds = "\n".join(f"  {c}" for c in r.commands)
            rt.add_row(str(r.rank), r.title, r.why + (f"\n{cmds}" if cmds else ""))
        parts.append(rt)
    if report.missing:
        parts.append(Text("Counters not in this recording: " + "; ".join(report.missing), "yellow"))
    console.print(Panel(Group(*parts), title="iovkit diagnose", expand=False))
