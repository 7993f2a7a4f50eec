"""`iovkit script ...`: print scripts a host runs itself (no Python needed there)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

script_app = typer.Typer(help="Print scripts to run on a host: collect, counters, plan", no_args_is_help=True)


@script_app.command("collect")
def collect_script() -> None:
    """The PowerShell collector (5.1 or 7) that writes a raw JSON bundle for `iovkit collect --from`."""
    from iovkit.sources.hyperv.script import collector_script

    typer.echo(collector_script(), nl=False)


@script_app.command("counters")
def counters_script(
    seconds: Annotated[int, typer.Option("--seconds", help="How long to record", min=1)] = 120,
    interval: Annotated[int, typer.Option("--interval", help="Seconds between samples", min=1)] = 1,
) -> None:
    """typeperf and logman command lines that record the counters `iovkit diagnose` needs."""
    from iovkit.diagnose.script import counters_script as _counters

    typer.echo(_counters(seconds=seconds, interval=interval), nl=False)


@script_app.command("plan")
def plan_script(
    plan: Annotated[Path, typer.Argument(help="plan.json written by `iovkit plan`", metavar="PLAN")],
    output_dir: Annotated[
        Path | None, typer.Option("-o", "--output-dir", help="Write the script and its rollback script here")
    ] = None,
) -> None:
    """A standalone script (PowerShell or shell) for change review, and its rollback script beside it."""
    from iovkit.plan.render import render_plan_scripts

    render_plan_scripts(plan, output_dir)


def register(app: typer.Typer) -> None:
    app.add_typer(script_app, name="script")
