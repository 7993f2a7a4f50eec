"""`iovkit compare`: bench runs before and after a change, called against the run-to-run noise."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from iovkit.cli.bench import _print_wide
from iovkit.cli.common import err, out
from iovkit.cli.options import MEASURE, OUTPUT_PANEL, FormatTableJson, exit_codes, output_opt
from iovkit.errors import ExitCode, InputError

COMPARE_HELP = """Compare bench runs before and after a change: knee, p50/p99/p99.9 at matched rates, loss, CPU/packet.

Give several runs per side for a noise-aware call (a difference inside the run-to-run spread, or inside
--noise %, is called "within noise"):  iovkit compare b1.json b2.json --after a1.json --after a2.json.
With exactly two files and no --after, the first is BEFORE and the second AFTER.
The verdict is set against the guide's SR-IOV figures (up to 50% less CPU, 50% less latency, 30% more rate).
"""


def compare_cmd(
    before: Annotated[list[Path], typer.Argument(help="BEFORE result JSON(s)", show_default=False, metavar="BEFORE")],
    after: Annotated[
        list[Path] | None, typer.Option("--after", "-a", help="AFTER result JSON (repeat)", show_default=False)
    ] = None,
    noise: Annotated[float, typer.Option("--noise", help="Noise floor, % (differences inside are not called)")] = 5.0,
    output: Annotated[
        Path | None, output_opt("Plot file stem (PNG + SVG); default <first AFTER>-compare beside it")
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write the comparison plot", rich_help_panel=OUTPUT_PANEL)
    ] = True,
    fmt: FormatTableJson = "table",
) -> int:
    from iovkit.traffic.compare import compare
    from iovkit.traffic.results import load_result

    if not after:
        if len(before) != 2:
            raise InputError("give AFTER runs with --after (or exactly two files: BEFORE AFTER)", field="--after")
        before, after = before[:1], before[1:]
    if not math.isfinite(noise) or noise < 0:
        raise InputError(f"the noise floor cannot be negative (got {noise:g})", field="--noise")
    b_runs = [load_result(p) for p in before]
    a_runs = [load_result(p) for p in after]
    cmp = compare(b_runs, a_runs, noise_floor_pct=noise)
    written: list[Path] = []
    if plots:
        from iovkit.traffic.plots import plot_compare

        stem = output or after[0].with_name(after[0].stem + "-compare")
        written = plot_compare(b_runs, a_runs, stem)
    if fmt == "json":
        sys.stdout.write(json.dumps(cmp.as_dict(), indent=2) + "\n")
    else:
        _render_compare(cmp)
        if written:
            out.print("wrote " + ", ".join(str(p) for p in written))
    return int(ExitCode.FINDINGS if cmp.worse else ExitCode.OK)


def _render_compare(cmp: object) -> None:
    from iovkit.traffic.compare import Comparison

    assert isinstance(cmp, Comparison)
    for w in cmp.warnings:
        err.print(f"warning: {w}")
    from rich.table import Table

    if cmp.after_on_vf is False:
        out.print("[bold red]AFTER never ran on a VF[/]: this comparison does not measure SR-IOV")
    t = Table(title=f"before ({cmp.before_runs} run(s)) vs after ({cmp.after_runs} run(s))")
    for col in ("metric", "rate/s", "before", "after", "change", "noise", "call", "guide"):
        t.add_column(col, justify="right" if col not in ("metric", "call") else "left")

    def row(m: object, rate: str) -> None:
        from iovkit.traffic.compare import Metric

        assert isinstance(m, Metric)
        unit = " pts" if m.unit == "pct-points" else "%"
        change = "-" if m.delta_pct is None else f"{m.delta_pct:+.2f}{unit}"
        guide = "" if m.guide_pct is None else f"{m.guide_pct:+.0f}%: {'met' if m.meets_guide else 'not met'}"
        t.add_row(m.name, rate, _num(m.before), _num(m.after), change, f"±{m.noise_pct:.1f}", m.call, guide)

    row(cmp.knee, "-")
    for p in cmp.rates:
        for m in p.metrics:
            row(m, f"{p.offered_pps:,.0f}")
    for m in cmp.summary[1:]:
        row(m, "all ok")
    _print_wide(t)
    out.print(f"verdict: after is {cmp.overall}" + (" than before" if cmp.overall in ("better", "worse") else ""))


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def register(app: typer.Typer) -> None:
    """Add `compare` to the app."""
    app.command(
        "compare",
        help=COMPARE_HELP,
        rich_help_panel=MEASURE,
        epilog=exit_codes("AFTER is worse", ok="AFTER is better, the same within noise, or mixed"),
    )(compare_cmd)
