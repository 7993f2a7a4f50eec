"""`iovkit fleet collect|check|doctor|plan`: every host of an Ansible inventory, one table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from iovkit.cli.common import err, out
from iovkit.cli.options import ASSESS, INPUT_PANEL, FormatTableJsonMarkdownHtml, QuietOpt, exit_codes, output_opt
from iovkit.errors import InputError

if TYPE_CHECKING:
    from iovkit.fleet.model import Command

EXIT_HELP = exit_codes(
    "findings (a host not ready or blocked, or a fleet rule failed)",
    ok="every host fine (check/doctor: ready; plan: planned or nothing to do)",
    extra={3: "a host could not be reached or collected"},
)

fleet_app = typer.Typer(
    help="Many hosts through Ansible: collect, check, doctor or plan every host of an inventory.",
    epilog=EXIT_HELP,
    no_args_is_help=True,
)

InventoryOpt = Annotated[
    Path, typer.Option("-i", "--inventory", help="Ansible inventory (YAML, INI or a directory)", show_default=False)
]
LimitOpt = Annotated[
    str | None,
    typer.Option(
        "--limit", "-l", help="Ansible host pattern: only these hosts", show_default=False, metavar="<pattern>"
    ),
]
ForksOpt = Annotated[int, typer.Option("--forks", help="Hosts Ansible works on at once", min=1, max=500)]
TimeoutOpt = Annotated[int, typer.Option("--timeout", help="Connection timeout per host, seconds", min=1)]
FormatOpt = FormatTableJsonMarkdownHtml
OutputOpt = Annotated[Path | None, output_opt("Write the rendered result here (default: standard output)")]
ResultsOpt = Annotated[
    Path | None,
    typer.Option(
        "--results-dir",
        help="Per-host results (snapshot, check/doctor/plan JSON) and fleet.json; default ./iovkit-fleet-<time>",
        show_default=False,
    ),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy", help="SR-IOV policy YAML applied to every host", show_default=False, rich_help_panel=INPUT_PANEL
    ),
]


def _run(
    command: Command,
    inventory: Path,
    limit: str | None,
    forks: int,
    timeout: int,
    fmt: str,
    output: Path | None,
    results_dir: Path | None,
    policy: Path | None,
    quiet: bool = False,
) -> int:
    from iovkit.fileio import ensure_writable, write_text
    from iovkit.fleet import render
    from iovkit.fleet.collect import collect_fleet
    from iovkit.fleet.judge import judge_fleet
    from iovkit.policy import load_policy

    form = fmt.lower()
    if form not in render.FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(render.FORMATS)}", field="--format")
    pol = load_policy(policy) if policy is not None else None
    started = datetime.now(UTC)
    rdir = results_dir or Path(started.astimezone().strftime("iovkit-fleet-%Y%m%d-%H%M%S"))
    if command == "collect" and policy is not None:
        raise InputError("collect takes no policy (check, doctor and plan do)", field="--policy")
    if rdir.exists() and not rdir.is_dir():
        raise InputError("cannot write results: not a directory", path=str(rdir), field="--results-dir")
    created = not rdir.exists()
    try:
        rdir.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise InputError(f"cannot create: {ex.strerror or ex}", path=str(rdir), field="--results-dir") from ex
    try:
        ensure_writable(rdir / "fleet.json")
        if output is not None and str(output) != "-":
            ensure_writable(output)
        collected = collect_fleet(inventory, limit, forks=forks, timeout=timeout, on_event=None if quiet else _progress)
    except BaseException:
        if created and not any(rdir.iterdir()):  # a run that ended before any result leaves no empty folder behind
            rdir.rmdir()
        raise
    result = judge_fleet(
        collected,
        command,
        inventory=inventory,
        limit=limit,
        policy=pol,
        results_dir=rdir,
        started=started,
    )
    if form == "table":
        if output is None or str(output) == "-":
            from rich.console import Console

            console = out if out.is_terminal else Console(width=200, highlight=False, soft_wrap=False)
            render.render_table(result, console)
        else:
            from rich.console import Console

            with output.open("w", encoding="utf-8") as fh:
                render.render_table(result, Console(file=fh, width=200, highlight=False))
    else:
        text = {
            "json": lambda: result.to_json() + "\n",
            "markdown": lambda: render.to_markdown(result),
            "html": lambda: _fleet_page(result),
        }[form]()
        if output is None or str(output) == "-":
            typer.echo(text, nl=False)
        else:
            write_text(output, text)
    err.print(f"results: {rdir / 'fleet.json'}", highlight=False)
    return result.exit_code


def _progress(event: dict[str, Any]) -> None:
    """One stderr line per host as its collection ends (Ansible takes a while on a large inventory)."""
    kind = event.get("event")
    data = event.get("event_data") or {}
    if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
        return
    if not str(data.get("task", "")).startswith("iovkit: collect"):
        return
    from iovkit.fleet.runner import clean_message

    host = data.get("host", "?")
    if kind == "runner_on_ok":
        err.print(f"  {host}: collected", highlight=False)
    else:
        what = "unreachable" if kind == "runner_on_unreachable" else "failed"
        err.print(f"  {host}: {what}: {clean_message(dict(data.get('res') or {}))}", highlight=False)


def _fleet_page(result: object) -> str:
    """The HTML view is the report's fleet view (one look, one CSP for every page iovkit writes)."""
    from iovkit.report import fleet_page

    return fleet_page(result)


def _command(name: Command, doc: str, with_policy: bool) -> None:
    def cmd(
        inventory: InventoryOpt,
        limit: LimitOpt = None,
        forks: ForksOpt = 10,
        timeout: TimeoutOpt = 10,
        fmt: FormatOpt = "table",
        output: OutputOpt = None,
        results_dir: ResultsOpt = None,
        policy: PolicyOpt = None,
        quiet: QuietOpt = False,
    ) -> int:
        return _run(name, inventory, limit, forks, timeout, fmt, output, results_dir, policy, quiet)

    cmd.__doc__ = doc
    fleet_app.command(name, epilog=EXIT_HELP)(cmd)


_command(
    "collect",
    "Collect a snapshot from every host (Linux: the iovkit_collect module; Windows: the PowerShell collector over "
    "WinRM; host vars iovkit_from / iovkit_root: a capture or a captured tree).",
    False,
)
_command("check", "Collect, then check every host and apply the fleet rules (FLEET-*).", True)
_command("doctor", "Collect, then doctor's verdict and headline per host, and the fleet rules.", True)
_command("plan", "Collect, then plan the SR-IOV switch-over of every host (a plan JSON per host).", True)


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet", rich_help_panel=ASSESS)
