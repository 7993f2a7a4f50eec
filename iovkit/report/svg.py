"""Inline SVG charts for the HTML report: no library, no script, a bounded number of points whatever the input.

Why hand-made: the page must open offline with no external request, and a day of one-second samples (86,400 per
core) must not become megabytes of markup. Every series goes through `downsample`, which keeps each bucket's
minimum and maximum in time order, so a one-minute peak in a day-long recording still reaches the top of the plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

Num = float | None

MAX_POINTS = 400  # per series: about 2 points per horizontal pixel of the plot area
PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")


def downsample(xs: Sequence[float], ys: Sequence[Num], max_points: int = MAX_POINTS) -> tuple[list[float], list[Num]]:
    """At most about `max_points` points: per bucket its min and max (in time order); gaps (None) kept as gaps."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    buckets = max(1, max_points // 2)
    size = n / buckets
    out_x: list[float] = []
    out_y: list[Num] = []
    for b in range(buckets):
        lo, hi = int(b * size), min(n, int((b + 1) * size))
        idx = [i for i in range(lo, hi) if ys[i] is not None]
        if not idx:
            out_x.append(xs[lo])
            out_y.append(None)
            continue
        i_min = min(idx, key=lambda i: ys[i])  # type: ignore[arg-type,return-value]
        i_max = max(idx, key=lambda i: ys[i])  # type: ignore[arg-type,return-value]
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


@dataclass
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[Num]
    color: str | None = None
    dashed: bool = False
    dots: bool = False  # mark each point (short series: a bench step each)


@dataclass
class Chart:
    """One plot: series over a shared x axis, shaded x ranges and labelled vertical markers."""

    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    shade: list[tuple[float, float, str]] = field(default_factory=list)  # (x0, x1, tooltip)
    markers: list[tuple[float, str]] = field(default_factory=list)  # (x, label)
    y_min: float | None = 0.0
    y_max: float | None = None
    log_y: bool = False
    x_fmt: Callable[[float], str] = field(default=lambda v: _num(v))
    x_time: bool = False  # x is seconds: ticks on whole seconds, minutes or hours
    y_fmt: Callable[[float], str] = field(default=lambda v: _num(v))
    width: int = 760
    height: int = 240


def _num(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out: list[float] = []
    v = first
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _time_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Ticks on round clock times (every 5 min, every 3 h, ...) rather than round numbers of seconds."""
    step = next((s for s in TIME_STEPS if (hi - lo) / s <= n), TIME_STEPS[-1])
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


def render(chart: Chart) -> str:
    """The chart as one <svg> element (inline, with <title> tooltips); an empty chart says there is no data."""
    left, right, top, bottom = 64, 16, 40, 44
    w, h = chart.width, chart.height
    pw, ph = w - left - right, h - top - bottom
    pts = [(x, y) for s in chart.series for x, y in zip(s.xs, s.ys, strict=False) if y is not None and math.isfinite(y)]
    head = (
        f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(chart.title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<text class="ct" x="{left}" y="16">{escape(chart.title)}</text>'
    )
    if not pts:
        return head + f'<text class="nodata" x="{w / 2}" y="{h / 2}">no data to plot</text></svg>'
    x_lo = min(p[0] for p in pts)
    x_hi = max(p[0] for p in pts)
    for x0, x1, _ in chart.shade:
        x_lo, x_hi = min(x_lo, x0), max(x_hi, x1)
    if x_hi == x_lo:  # one point: centre it
        pad = abs(x_lo) * 0.1 or 1.0
        x_lo, x_hi = x_lo - pad, x_hi + pad
    ys = [p[1] for p in pts]
    if chart.log_y:
        pos = [y for y in ys if y > 0] or [1.0]
        y_lo, y_hi = math.log10(min(pos)), math.log10(max(pos))
        y_lo, y_hi = math.floor(y_lo), math.ceil(y_hi) if math.ceil(y_hi) > y_lo else y_lo + 1
    else:
        y_lo = chart.y_min if chart.y_min is not None else min(ys)
        y_hi = chart.y_max if chart.y_max is not None else max(ys) * 1.05
        if y_hi <= y_lo:
            y_hi = y_lo + 1.0

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def sy(y: float) -> float:
        if chart.log_y:
            y = math.log10(y) if y > 0 else y_lo
        y = min(max(y, y_lo), y_hi)
        return top + ph - (y - y_lo) / (y_hi - y_lo) * ph

    parts = [head]
    for x0, x1, tip in chart.shade:
        a, b = sx(x0), sx(x1)
        parts.append(
            f'<rect class="shade" x="{a:.1f}" y="{top}" width="{max(b - a, 1.5):.1f}" height="{ph}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    # axes and grid
    y_ticks = [10**e for e in range(int(y_lo), int(y_hi) + 1)] if chart.log_y else _ticks(y_lo, y_hi)
    for t in y_ticks:
        y = sy(t)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{chart.y_fmt(t)}</text>')
    for t in _time_ticks(x_lo, x_hi) if chart.x_time else _ticks(x_lo, x_hi, 6):
        x = sx(t)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{escape(chart.x_fmt(t))}</text>'
        )
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{pw}" height="{ph}"/>')
    parts.append(
        f'<text class="axis" x="{left + pw / 2:.1f}" y="{h - 6}" text-anchor="middle">{escape(chart.x_label)}</text>'
        f'<text class="axis" transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(chart.y_label)}</text>"
    )
    for x, label in chart.markers:
        px = sx(x)
        near_right = px > left + pw * 0.75  # label on the left of the line, inside the plot
        lx, anchor = (px - 4, "end") if near_right else (px + 4, "start")
        parts.append(
            f'<line class="marker" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + ph}"/>'
            f'<text class="mlabel" x="{lx:.1f}" y="{top + 12}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    legend_x = left
    for i, s in enumerate(chart.series):
        color = s.color or PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        xs, ys2 = downsample(s.xs, s.ys)
        for seg in _segments(xs, ys2):
            d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in seg)
            parts.append(f'<polyline class="line" points="{d}" stroke="{color}"{dash}/>')
        if s.dots:
            for x, maybe in zip(xs, ys2, strict=False):
                if maybe is not None and math.isfinite(maybe):
                    parts.append(
                        f'<circle cx="{sx(x):.1f}" cy="{sy(maybe):.1f}" r="3" fill="{color}">'
                        f"<title>{escape(s.name)}: {escape(chart.x_fmt(x))} -> {escape(chart.y_fmt(maybe))}</title>"
                        "</circle>"
                    )
        if len(chart.series) > 1 or s.name:
            parts.append(
                f'<rect x="{legend_x}" y="{top - 13}" width="10" height="3" fill="{color}"/>'
                f'<text class="legend" x="{legend_x + 14}" y="{top - 8}">{escape(s.name)}</text>'
            )
            legend_x += 22 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


def _segments(xs: Sequence[float], ys: Sequence[Num]) -> list[list[tuple[float, float]]]:
    """Runs of present values (a None breaks the line: a missing sample is not a zero)."""
    segs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=False):
        if y is None or not math.isfinite(y):
            if segs[-1]:
                segs.append([])
            continue
        segs[-1].append((x, y))
    return [s for s in segs if s]
