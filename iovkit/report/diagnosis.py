"""The diagnosis section: per-core load over time with the bottleneck windows shaded, and the saturation estimate.

Reads the DiagnoseReport as the diagnose stage made it. Two shapes are met: per-core bucketed series with the
recording's UTC span and its sustained windows (newer diagnose), or per-core sample series beside the recording's
timestamps (older). Either is drawn through svg.downsample, so a day-long recording stays a few hundred points.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from iovkit.report import svg
from iovkit.report.build import DiagnosisPart, Report
from iovkit.report.markup import absent, badge, code, e, kv, num, section, table

MAX_CORES_DRAWN = 8


def diagnosis_section(report: Report) -> str:
    if not report.diagnoses:
        body = absent(
            "No counter recording given. Record on the host under load (`iovkit script counters` on Windows, "
            "`iovkit diagnose --live --duration 60 -o rec.json` on Linux) and pass the file to `iovkit report`."
        )
        return section("diagnosis", "Diagnosis", body)
    return section("diagnosis", "Diagnosis", "".join(_one(i, d) for i, d in enumerate(report.diagnoses)))


def _one(index: int, part: DiagnosisPart) -> str:
    rep = part.report
    data = rep.to_json()
    verdict = str(data.get("verdict", "unknown"))
    host = data.get("host") or part.recording.host or "host"
    out = [
        f'<h3 id="diag-{index}">{e(host)} <span class="note">({e(data.get("platform"))}, {e(data.get("source"))}, '
        f"{num(data.get('samples'), '{:,}')} samples; {e(part.path)})</span></h3>",
        f'<p class="verdict">diagnose: {badge(verdict.upper(), "v-" + verdict)} {e(data.get("note") or "")}</p>',
    ]
    if data.get("missing"):
        out.append(f'<p class="note">Counters the recording lacks: {e("; ".join(map(str, data["missing"])))}</p>')
    xs, lines, epoch, network = _core_lines(part)
    windows = list(getattr(rep, "windows", None) or [])
    offset = getattr(rep, "utc_offset", None)
    offset = float(offset) if isinstance(offset, int | float) else None
    shade = [_shade(w, epoch) for w in windows]
    chart = svg.Chart(
        title=("Per-core network load over time" if network else "Per-core load over time")
        + (" (shaded: bottleneck windows)" if shade else ""),
        x_label=(_zone(offset) if epoch else "seconds from the first sample"),
        y_label="% of core, network work" if network else "% of core busy",
        series=[svg.Series(name, xs, ys) for name, ys in lines],
        shade=[s for s in shade if s is not None],
        y_min=0.0,
        y_max=100.0,
        x_fmt=(lambda v: _clock(v + (offset or 0.0))) if epoch else (lambda v: f"{v:,.0f} s"),
        x_time=True,
        y_fmt=lambda v: f"{v:.0f}",
    )
    out.append(svg.render(chart))
    drawn = len(lines)
    total = len(rep.cores)
    if total > drawn:
        out.append(f'<p class="note">{drawn} busiest of {total} cores drawn.</p>')
    if windows:
        out.append(_windows_table(windows))
    elif not hasattr(rep, "windows"):
        out.append(
            '<p class="note">This diagnosis has no time windows (an iovkit without windowed diagnosis made it): '
            "the verdict below covers the whole recording.</p>"
        )
    else:
        out.append('<p class="note">No sustained single-core window in this recording.</p>')
    out.append(_estimate(data, windows))
    out.append(_findings(data))
    return "".join(out)


def _zone(offset: float | None) -> str:
    """The x axis label: the host's local time where the recording says its offset (operators read local)."""
    if offset is None:
        return "time (UTC)"
    sign = "+" if offset >= 0 else "-"
    hours, rest = divmod(int(abs(offset)), 3600)
    return f"host local time (UTC{sign}{hours:02d}:{rest // 60:02d})"


def _clock(v: float) -> str:
    text = datetime.fromtimestamp(v, UTC).strftime("%H:%M:%S")
    return text[:-3] if text.endswith(":00") else text


def _core_lines(part: DiagnosisPart) -> tuple[list[float], list[tuple[str, list[float | None]]], bool, bool]:
    """x values, (label, load values) per drawn core, whether x is epoch seconds, whether the load is network
    time (interrupt + DPC, softirq) rather than busy time."""
    rep, rec = part.report, part.recording
    cores = list(rep.cores)
    if not cores:
        return [], [], False, False
    ranked = sorted(cores, key=lambda c: -(c.load or 0.0))[:MAX_CORES_DRAWN]
    first = cores[0]
    if hasattr(first, "busy_buckets"):
        start = getattr(rep, "start_utc", None)
        end = getattr(rep, "end_utc", None)
        epoch = isinstance(start, int | float) and isinstance(end, int | float)
        network = any(v is not None for c in ranked for v in c.net_buckets[1])
        lines = []
        n = 0
        for c in ranked:
            ys = c.net_buckets[1] if network else c.busy_buckets[1]
            n = max(n, len(ys))
            lines.append((_label(c), list(ys)))
        lo = float(start) if isinstance(start, int | float) and epoch else 0.0
        hi = float(end) if isinstance(end, int | float) and epoch else float(getattr(rep, "span_s", 0.0) or n)
        step = (hi - lo) / n if n else 0.0
        xs = [lo + (i + 0.5) * step for i in range(n)]
        return xs, lines, epoch, network
    ts = list(rec.timestamps)
    epoch = bool(ts) and ts[0] > 1e9
    xs = ts if epoch else [t - ts[0] for t in ts] if ts else []
    network = any(v is not None for c in ranked for v in c.net_series)
    lines = [(_label(c), list(c.net_series if network else c.busy_series)) for c in ranked]
    return xs, lines, epoch, network


def _label(core: Any) -> str:
    label = getattr(core, "label", "") or ""
    return f"core {core.name}" + (f" ({label})" if label and label != core.name else "")


def _shade(w: Any, epoch: bool) -> tuple[float, float, str] | None:
    start, end = getattr(w, "start_utc", None), getattr(w, "end_utc", None)
    if start is None or end is None or not epoch:
        return None
    secs, busy = getattr(w, "duration_s", None), getattr(w, "busy_mean", None)
    tip = f"core {w.core}: {num(secs, '{:,.0f}')} s, busy {num(busy)} %"
    return float(start), float(end), tip


def _windows_table(windows: list[Any]) -> str:
    rows = []
    for w in windows:
        d = w.to_json() if hasattr(w, "to_json") else {}
        rows.append(
            [
                e(d.get("core")),
                e(d.get("start_local") or d.get("start_utc")) + "<br>" + e(d.get("start_utc")),
                e(d.get("end_local") or d.get("end_utc")) + "<br>" + e(d.get("end_utc")),
                num(d.get("duration_s"), "{:,.0f}"),
                num(d.get("busy_mean_pct")),
                num(d.get("net_mean_pct")),
                num(d.get("others_busy_mean_pct")),
                num(d.get("host_pps_mean"), "{:,.0f}"),
                e(d.get("evidence")),
            ]
        )
    return "<h3>Bottleneck windows</h3>" + table(
        ("core", "start (local / UTC)", "end", "seconds", "busy %", "network %", "others busy %", "pkt/s", "evidence"),
        rows,
        numeric=(3, 4, 5, 6, 7),
    )


def _estimate(data: dict[str, Any], windows: list[Any]) -> str:
    """The saturation estimate and what it rests on, from the worst window or the SINGLE-CORE-SWITCH finding."""
    evidence: dict[str, Any] | None = None
    worst = data.get("worst_window")
    if windows and isinstance(worst, int) and 0 <= worst < len(windows):
        evidence = getattr(windows[worst], "estimate", None) or None
    if not evidence:
        hot = next((f for f in data.get("findings") or [] if f.get("id") == "SINGLE-CORE-SWITCH"), None)
        evidence = (hot or {}).get("evidence") or None
    if not evidence:
        return '<h3>Saturation estimate</h3><p class="note">No estimate: no single core was saturated.</p>'
    sat = evidence.get("saturation_pps")
    headline = (
        f"<p>Saturates near <b>{num(sat, '{:,.0f}')} packets/s</b>"
        f" ({num(evidence.get('cost_us_per_packet'), '{:.3f}')} µs of the core per packet; "
        f"headroom {num(evidence.get('headroom_pps'), '{:,.0f}')} pkt/s).</p>"
        if sat is not None
        else "<p>Saturation rate unknown (no packet counters).</p>"
    )
    basis = [evidence.get(k) for k in ("pps_basis", "share_basis", "basis") if evidence.get(k)]
    return (
        "<h3>Saturation estimate</h3>"
        + headline
        + (f'<p class="note">Basis: {e("; ".join(map(str, basis)))}</p>' if basis else "")
        + kv(evidence, limit=16)
    )


def _findings(data: dict[str, Any]) -> str:
    rows = [
        [
            badge(str(f.get("severity")), "s-" + _sev(str(f.get("severity")))),
            f"<b>{e(f.get('id'))}</b>",
            e(f.get("core")),
            e(f.get("summary")),
        ]
        for f in data.get("findings") or []
    ]
    recs = data.get("recommendations") or []
    out = "<h3>Findings</h3>" + (
        table(("severity", "finding", "core", "summary"), rows) if rows else '<p class="note">None.</p>'
    )
    if recs:
        items = "".join(
            f"<li><b>{e(r.get('title'))}</b> — {e(r.get('why'))}"
            + "".join(f"<br>{code(c)}" for c in r.get("commands") or [])
            + "</li>"
            for r in recs
        )
        out += f"<h3>Remedies, in order</h3><ol class='fixes'>{items}</ol>"
    return out


def _sev(sev: str) -> str:
    return {"critical": "fail", "warning": "warn", "info": "info"}.get(sev, "unknown")
