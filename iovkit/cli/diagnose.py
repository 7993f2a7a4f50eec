"""CLI for `iovkit diagnose` and `iovkit monitor`: parse options, call iovkit.diagnose, render.

Exit codes of diagnose: 1 = bottleneck (SINGLE-CORE-SWITCH or a saturated vhost worker), 0 = ok,
2 = bad input, and also 2 = insufficient-data and idle (the report is still printed, and stderr says in one line
which counters are missing, or that the host passed almost no packets): a recording that cannot answer the question
must not look like a clean bill of health to a script.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer

from iovkit.cli.common import err, out
from iovkit.cli.options import (
    ASSESS,
    INPUT_PANEL,
    MEASURE,
    FormatTableJson,
    duration_opt,
    exit_codes,
    output_opt,
)
from iovkit.errors import ExitCode, InputError


def diagnose_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="typeperf/logman/relog CSV, Get-NetView output, Get-Counter JSON or an iovkit recording",
            show_default=False,
            metavar="RECORDING",
        ),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Sample this Linux host's /proc counters", rich_help_panel=INPUT_PANEL)
    ] = False,
    duration: Annotated[float, duration_opt("How long to sample with --live, in seconds", min=0.1)] = 10.0,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between live samples", min=0.05)] = 1.0,
    output: Annotated[Path | None, output_opt("Save the samples as an iovkit recording")] = None,
    from_path: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Replay a recording (same as FILE)", show_default=False, rich_help_panel=INPUT_PANEL
        ),
    ] = None,
    fmt: FormatTableJson = "table",
    min_window: Annotated[
        float | None,
        typer.Option(
            "--min-window",
            help="Shortest sustained single-core window, in seconds (default 30; a shorter recording or live "
            "sample is judged as one window)",
            min=1.0,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Prove or clear the single-core virtual-switch bottleneck from recorded or live counters.

    Finds every sustained single-core window (start and end in the host's local time and UTC) and the host
    packet rate at which the hot core saturates. Record on Windows with `iovkit script counters`. A recording
    that lacks the counters needed gives the verdict insufficient-data, one that carried almost no packets the
    verdict idle (exit 2 for both; stderr says which in one line).
    """
    # numpy's OpenBLAS starts a busy-waiting thread per CPU when imported; diagnose does no linear algebra, and on
    # two CPUs those threads take the core the CSV reader's second half runs on (bench/diagnose_size.py)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from iovkit import diagnose as dg
    from iovkit.diagnose.render import render, to_json

    sources = [s for s in (file, from_path) if s is not None]
    if len(sources) + int(live) != 1:
        raise InputError("give exactly one of FILE, --from FILE or --live", field="diagnose")
    if live:
        if not dg.live_available():
            raise InputError(
                "no live counters here (needs Linux /proc/stat and /proc/net/softnet_stat)", field="--live"
            )
        if interval > duration:
            raise InputError(f"--interval {interval} is longer than --duration {duration}", field="--interval")
        if output is not None:
            from iovkit.fileio import ensure_writable

            ensure_writable(output)  # a sampling run is long: fail now, not after it
        err.print(f"sampling /proc for {duration:g} s every {interval:g} s ...")
        rec = dg.live_recording(duration, interval)
    else:
        rec = dg.load_recording(sources[0])
    if output is not None:
        try:
            rec.save(output)
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror or e}", path=str(output)) from None
        err.print(f"recording saved to {output}")
    report = dg.diagnose(rec, min_window=min_window)
    if fmt == "json":
        typer.echo(to_json(report))  # plain stdout: no rich console for a JSON document
    else:
        render(report, out)
    if report.verdict == "insufficient-data":
        raise InputError(f"insufficient data: {report.note}", path=rec.path)
    if report.verdict == "idle":
        raise InputError(report.note, path=rec.path)
    if report.verdict == "bottleneck":
        raise typer.Exit(int(ExitCode.FINDINGS))


def monitor_cmd(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT for the Prometheus /metrics endpoint", metavar="<host:port>")
    ] = "127.0.0.1:9464",
    interval: Annotated[float, typer.Option("--interval", help="Seconds between samples", min=0.05)] = 1.0,
    view: Annotated[bool, typer.Option("--view", help="Also show a live per-core view in the terminal")] = False,
    duration: Annotated[float, duration_opt("Stop after this many seconds; 0: run until Ctrl-C or SIGTERM")] = 0.0,
) -> None:
    """Serve live per-CPU, per-NIC and UDP counters and a SINGLE-CORE-SWITCH gauge to Prometheus."""
    from iovkit.diagnose.monitor import parse_listen, run

    addr, port = parse_listen(listen)
    if not (math.isfinite(duration) and duration >= 0):  # as relay says it
        raise InputError(f"must be 0 (none) or a number of seconds above 0, not {duration:g}", field="--duration")
    until = duration or None

    def serving(host: str, bound: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        err.print(f"serving metrics on http://{shown}:{bound}/metrics (interval {interval:g} s)")

    def stopped(samples: int) -> None:
        err.print(f"monitor stopped after {samples} sample{'s' * (samples != 1)}")

    if not view:
        stopped(run(addr, port, interval, until, on_bound=serving))
        return
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from iovkit.diagnose.detect import DiagnoseReport
    from iovkit.diagnose.model import Recording
    from iovkit.diagnose.render import cores_table, verdict_line

    with Live(console=out, auto_refresh=False) as screen:

        def show(rec: Recording, report: DiagnoseReport) -> None:
            # the verdict as it is, wrapped under the table (a table caption is cut at the table's width)
            screen.update(
                Group(cores_table(report), Text(verdict_line(report), no_wrap=False, overflow="fold")), refresh=True
            )

        samples = run(addr, port, interval, until, on_sample=show, on_bound=serving)
    stopped(samples)


def register(app: typer.Typer) -> None:
    """Add `diagnose` and `monitor` to the app."""
    app.command(
        "diagnose",
        rich_help_panel=ASSESS,
        epilog=exit_codes("bottleneck", ok="no bottleneck", cannot_answer=True),
    )(diagnose_cmd)
    app.command(
        "monitor",
        rich_help_panel=MEASURE,
        epilog=exit_codes(ok="stopped by --duration, Ctrl-C or SIGTERM", extra={130: None}),
    )(monitor_cmd)
