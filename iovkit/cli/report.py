"""`iovkit report INPUT... -o report.html`: one self-contained HTML page from what iovkit reads or writes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iovkit.cli.common import err
from iovkit.cli.options import ASSESS, INPUT_PANEL, FormatHtmlJson, exit_codes, output_opt
from iovkit.errors import ExitCode, InputError

REPORT_HELP = """One self-contained HTML report (inline CSS, JS and SVG; opens offline) of what iovkit reads or writes.

Inputs are told apart by content: snapshots and captures (anything `collect --from` reads), counter recordings,
plan.json and apply journals, bench results, fleet results. A Get-NetView folder or .zip is read as both a capture
and counters. Sections: per host the doctor verdict, the fixes that matter most and the check table (filterable by
status); the diagnosis (per-core load over time, bottleneck windows, the saturation estimate); the plan (allocations,
steps, console warning, rollback); measurements (latency against offered load with the knee, loss, before/after
against the source's figures); the guest's data path; the fleet.

Example: iovkit report host.json counters.csv plan.json --before before.json --after after.json -o report.html
"""


def report_cmd(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to report on (sniffed by content)", show_default=False, metavar="INPUT"),
    ] = None,
    before: Annotated[
        list[Path] | None,
        typer.Option(
            "--before",
            help="Bench result(s) before the change (repeat)",
            show_default=False,
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    after: Annotated[
        list[Path] | None,
        typer.Option(
            "--after", help="Bench result(s) after the change (repeat)", show_default=False, rich_help_panel=INPUT_PANEL
        ),
    ] = None,
    examples: Annotated[
        list[str] | None,
        typer.Option(
            "--example",
            help="A shipped example host (repeat; see `iovkit collect --list-examples`)",
            show_default=False,
            metavar="<name>",
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    output: Annotated[Path | None, output_opt("The HTML file to write (default: standard output)")] = None,
    fmt: FormatHtmlJson = "html",
) -> int:
    from iovkit.report import make_report

    if not inputs and not before and not examples:
        raise InputError("give at least one INPUT (or --example, or --before/--after bench results)", field="INPUT")
    if output is not None and str(output) != "-":
        from iovkit.fileio import ensure_writable

        ensure_writable(output)
    html = make_report(list(inputs or []), list(before or []), list(after or []), fmt=fmt, examples=examples)
    if output is None or str(output) == "-":
        typer.echo(html, nl=False)
    else:
        from iovkit.fileio import write_text

        write_text(output, html)
        err.print(f"report written to {output} ({len(html.encode()) / 1024:,.0f} KiB)", highlight=False)
    return int(ExitCode.OK)


def register(app: typer.Typer) -> None:
    """Add `report` to the app."""
    app.command("report", help=REPORT_HELP, rich_help_panel=ASSESS, epilog=exit_codes(ok="report written"))(report_cmd)
