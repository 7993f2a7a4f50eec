"""Plots of a sweep and of a comparison (matplotlib, Agg backend: no display needed), as PNG and SVG.

Why both formats: PNG for a chat or ticket, SVG for a report that scales. Plots sit beside the JSON they show.
matplotlib is imported when a plot is drawn, not when this module is: it costs a few hundred ms of start-up, and
a run with --no-plots should not pay it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from iovkit.traffic.results import SweepResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PCTS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9"))


def _save(fig: Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return paths


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sweep(result: SweepResult, stem: Path) -> list[Path]:
    """Latency percentiles and loss against offered rate; the knee as a dashed line. Returns the files."""
    steps = result.steps
    rates = [s.offered_pps for s in steps]
    fig, (ax1, ax2) = _pyplot().subplots(2, 1, figsize=(8, 7), sharex=True)
    kind = steps[0].latency_kind if steps else "rtt"
    for attr, label in _PCTS:
        ys = [getattr(s.latency_us, attr) for s in steps]
        pts = [(r, y) for r, y in zip(rates, ys, strict=True) if y is not None]
        if pts:
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax1.axhline(result.settings.objective.max_p99_us, color="grey", linestyle=":", label="p99 objective")
    ax1.set_ylabel(f"latency ({kind}), us")
    ax1.set_yscale("log")
    ax1.legend(loc="upper left", fontsize="small")
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(rates, [s.loss_pct for s in steps], marker="o", color="tab:red", label="loss")
    ax2.axhline(result.settings.objective.max_loss_pct, color="grey", linestyle=":", label="loss objective")
    ax2.set_ylabel("loss, %")
    ax2.set_xlabel("offered rate, datagrams/s")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="upper left", fontsize="small")
    if result.knee_pps is not None:
        for ax in (ax1, ax2):
            ax.axvline(result.knee_pps, color="black", linestyle="--", alpha=0.6)
        ax1.annotate(
            f"knee {result.knee_pps:,.0f}/s",
            (result.knee_pps, 1.0),
            xycoords=("data", "axes fraction"),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize="small",
        )
    if rates and max(rates) / max(min(rates), 1e-9) > 20:
        ax2.set_xscale("log")
    s = result.settings
    fig.suptitle(f"iovkit bench {s.mode} -> {s.target}, {s.payload} B, {result.host.hostname}", fontsize="medium")
    return _save(fig, stem)


def plot_compare(before: list[SweepResult], after: list[SweepResult], stem: Path) -> list[Path]:
    """p99 and loss against offered rate for every run, before in blue, after in orange; knees dashed."""
    fig, (ax1, ax2) = _pyplot().subplots(2, 1, figsize=(8, 7), sharex=True)
    for runs, color, name in ((before, "tab:blue", "before"), (after, "tab:orange", "after")):
        for i, run in enumerate(runs):
            label = name if i == 0 else None
            pts = [(s.offered_pps, s.latency_us.p99) for s in run.steps if s.latency_us.p99 is not None]
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color, alpha=0.8, label=label)
            ax2.plot(
                [s.offered_pps for s in run.steps],
                [s.loss_pct for s in run.steps],
                marker="o",
                color=color,
                alpha=0.8,
                label=label,
            )
            if run.knee_pps is not None:
                ax1.axvline(run.knee_pps, color=color, linestyle="--", alpha=0.5)
    ax1.set_ylabel("p99 latency, us")
    ax1.set_yscale("log")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(loc="upper left", fontsize="small")
    ax2.set_ylabel("loss, %")
    ax2.set_xlabel("offered rate, datagrams/s")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="upper left", fontsize="small")
    fig.suptitle(f"iovkit compare: {len(before)} run(s) before, {len(after)} after (dashed: knees)", fontsize="medium")
    return _save(fig, stem)
