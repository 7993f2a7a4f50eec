"""`iovkit script ...`: print scripts a host runs itself (no Python needed there)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iovkit.cli.options import REFERENCE, duration_opt, exit_codes, output_opt

script_app = typer.Typer(
    help="Print scripts to run on a host: collect, counters, plan", no_args_is_help=True, epilog=exit_codes()
)


@script_app.command("collect", epilog=exit_codes())
def collect_script(
    esxi: Annotated[
        bool, typer.Option("--esxi", help="The ESXi shell commands to paste instead (esxcli, vim-cmd, lspci, .vmx)")
    ] = False,
) -> None:
    """The PowerShell collector (5.1 or 7) that writes a raw JSON bundle for `iovkit collect --from`; with --esxi
    the read-only ESXi shell commands whose pasted output `iovkit collect --from` reads."""
    if esxi:
        from iovkit.sources.esxi.script import esxi_collect_script

        typer.echo(esxi_collect_script(), nl=False)
        return
    from iovkit.sources.hyperv.script import collector_script

    typer.echo(collector_script(), nl=False)


@script_app.command("counters", epilog=exit_codes())
def counters_script(
    duration: Annotated[int, duration_opt("How long to record, in seconds", min=1)] = 120,
    interval: Annotated[int, typer.Option("--interval", help="Seconds between samples", min=1)] = 1,
) -> None:
    """typeperf and logman command lines that record the counters `iovkit diagnose` needs."""
    from iovkit.diagnose.script import counters_script as _counters

    typer.echo(_counters(seconds=duration, interval=interval), nl=False)


@script_app.command("plan", epilog=exit_codes())
def plan_script(
    plan: Annotated[Path, typer.Argument(help="plan.json written by `iovkit plan`", metavar="PLAN")],
    output: Annotated[
        Path | None, output_opt("A folder for the script and its rollback script (default: standard output)")
    ] = None,
) -> None:
    """A standalone script (PowerShell or shell) for change review, and its rollback script beside it."""
    from iovkit.plan.render import render_plan_scripts

    render_plan_scripts(plan, output)


def register(app: typer.Typer) -> None:
    app.add_typer(script_app, name="script", rich_help_panel=REFERENCE)
