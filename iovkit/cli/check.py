"""`iovkit check` and `iovkit doctor`: parse, call iovkit.checks / iovkit.doctor, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from iovkit.cli.common import err, out, resolve_snapshot
from iovkit.cli.options import (
    ASSESS,
    INPUT_PANEL,
    AuthOpt,
    EsxiHostOpt,
    ExampleOpt,
    FormatTableJson,
    FormatTableJsonMarkdownJunit,
    FromOpt,
    HostOpt,
    InsecureOpt,
    PortOpt,
    SnapshotArg,
    SslOpt,
    UserOpt,
    VsphereOpt,
    duration_opt,
    exit_codes,
)
from iovkit.errors import ExitCode

if TYPE_CHECKING:
    from iovkit.policy import Policy

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="SR-IOV policy YAML naming the VMs/adapters in scope",
        show_default=False,
        rich_help_panel=INPUT_PANEL,
    ),
]
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--only", help="Run only these check IDs (repeat or comma-separate)", show_default=False, metavar="<id>"
    ),
]
SkipOpt = Annotated[
    list[str] | None,
    typer.Option("--skip", help="Skip these check IDs (repeat or comma-separate)", show_default=False, metavar="<id>"),
]


def _policy(path: Path | None) -> Policy | None:
    from iovkit.policy import load_policy

    return load_policy(path) if path is not None else None


def plan_for_input(
    snapshot: Path | None, from_path: Path | None, example: str | None, host: str | None, policy: Path | None
) -> str | None:
    """The `iovkit plan` command for the very input given here (fixes point at it)."""
    import shlex

    if snapshot is not None:
        cmd = f"iovkit plan {shlex.quote(str(snapshot))}"
    elif from_path is not None:
        cmd = f"iovkit plan --from {shlex.quote(str(from_path))}"
    elif example is not None:
        cmd = f"iovkit plan --example {shlex.quote(example)}"
    elif host is not None:
        cmd = f"iovkit plan --host {shlex.quote(host)}"
    else:
        return None
    if policy is not None:
        cmd += f" --policy {shlex.quote(str(policy))}"
    return cmd + " -o plan.json"


def check_cmd(
    snapshot: SnapshotArg = None,
    from_path: FromOpt = None,
    example: ExampleOpt = None,
    host: HostOpt = None,
    user: UserOpt = None,
    auth: AuthOpt = "negotiate",
    port: PortOpt = None,
    ssl: SslOpt = False,
    vsphere: VsphereOpt = None,
    insecure: InsecureOpt = False,
    esxi_host: EsxiHostOpt = None,
    policy: PolicyOpt = None,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    fmt: FormatTableJsonMarkdownJunit = "table",
    list_rules: Annotated[bool, typer.Option("--list", help="List the check IDs and exit")] = False,
) -> int:
    """SR-IOV readiness: each check's status, evidence and exact fix.

    Verdict: ready = no check failed and every prerequisite was confirmed; partial = some in-scope VM adapters
    (Linux: SR-IOV NICs) could use SR-IOV while others are blocked; not-ready = anything else.
    """
    from iovkit.checks import render
    from iovkit.checks.catalog import all_rules, run_checks

    if list_rules:
        rules = all_rules().values()
        if fmt == "json":
            rows = [{"id": r.id, "platform": r.platform, "severity": r.severity, "title": r.title} for r in rules]
            typer.echo(json.dumps(rows, indent=2))
        else:
            for r in rules:
                typer.echo(f"{r.id:18} {r.platform:7} {r.severity:9} {r.title}")
        return int(ExitCode.OK)
    form = fmt
    pol = _policy(policy)
    snap = resolve_snapshot(snapshot, from_path, example, host, user, auth, port, ssl, vsphere, insecure, esxi_host)
    result = run_checks(snap, pol, only, skip, plan_cmd=plan_for_input(snapshot, from_path, example, host, policy))
    if (only or skip) and result.verdict == "ready":
        err.print("warning: --only/--skip left checks out: READY covers only the checks that ran", highlight=False)
    if form == "json":
        typer.echo(render.to_json(result))
    elif form == "markdown":
        typer.echo(render.to_markdown(result), nl=False)
    elif form == "junit":
        typer.echo(render.to_junit(result), nl=False)
    else:
        render.render_table(result, out)
    return int(ExitCode.OK if result.verdict == "ready" else ExitCode.FINDINGS)


def doctor_cmd(
    snapshot: SnapshotArg = None,
    from_path: FromOpt = None,
    example: ExampleOpt = None,
    host: HostOpt = None,
    user: UserOpt = None,
    auth: AuthOpt = "negotiate",
    port: PortOpt = None,
    ssl: SslOpt = False,
    vsphere: VsphereOpt = None,
    insecure: InsecureOpt = False,
    esxi_host: EsxiHostOpt = None,
    policy: PolicyOpt = None,
    fmt: FormatTableJson = "table",
    duration: Annotated[
        float, duration_opt("Live counter sample length in seconds (this Linux host)", min=0.1, max=10.0)
    ] = 1.0,
    examples: Annotated[
        bool,
        typer.Option(
            "--examples/--no-examples", help="On a host without SR-IOV hardware, also check the shipped examples"
        ),
    ] = True,
) -> int:
    """One page: ready / not ready / bottleneck, the three most important fixes, then the details."""
    from iovkit.checks import render
    from iovkit.doctor import run_doctor

    form = fmt
    pol = _policy(policy)
    snap = resolve_snapshot(snapshot, from_path, example, host, user, auth, port, ssl, vsphere, insecure, esxi_host)
    report = run_doctor(
        snap,
        pol,
        seconds=duration,
        with_examples=examples,
        plan_cmd=plan_for_input(snapshot, from_path, example, host, policy),
    )
    if form == "json":
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return report.exit_code
    label = {
        "ready": ("READY", "bold green"),
        "partial": ("PARTIAL", "bold yellow"),
        "not-ready": ("NOT READY", "bold red"),
        "unknown": ("UNKNOWN", "bold magenta"),
        "bottleneck": ("BOTTLENECK", "bold red"),
    }[report.verdict]
    name = snap.host.name or "unnamed host"
    from rich.text import Text

    out.print(
        Text.assemble(
            ("iovkit doctor: ", "bold"),
            (label[0], label[1]),
            f"  {name} ({snap.host.platform}, source {snap.source.kind})",
        )
    )
    out.print(Text(report.headline))
    if report.check.datapath is not None:
        out.print()
        render.render_datapath(report.check.datapath, out)
    if report.top:
        out.print(Text("\nMost important fixes", "bold"))
        for i, f in enumerate(report.top, 1):
            out.print(Text.assemble(f"{i}. ", (f"[{f.id}] ", "bold"), f"{f.scope}: {f.message}"))
            out.print(Text.assemble("   ", (f.fix or "", "cyan")))
    if report.to_collect:
        heading = (
            "Not collected (iovkit could not read these here: run them to see, or re-run with the rights they need)"
            if snap.source.kind == "linux-live"
            else "Collect (not in this input; run on the host and paste the output)"
        )
        out.print(Text("\n" + heading, "bold"))
        for row in report.to_collect[:6]:
            out.print(Text.assemble(f"  [{row['ids']}] ", (row["command"], "cyan")))
    if report.diagnose_note:
        out.print(Text(f"\nCounters: {report.diagnose_note}", "dim" if report.diagnose is None else ""))
    for d in report.diagnose_findings[:3]:
        out.print(Text(f"  [{d['id']}] {d['summary']}"))
    out.print(Text("\nDetails", "bold"))
    render.render_table(report.check, out, fixes=False, passes=False, datapath=False)
    if report.examples:
        _render_examples(report.examples)
    return report.exit_code


def _render_examples(rows: list[dict[str, str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    out.print(Text("\nThis host has no SR-IOV hardware. The shipped example hosts, checked the same way:", "bold"))
    table = Table(show_edge=False, show_header=True)
    for col in ("example", "verdict", "what iovkit says first"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["example"], r["verdict"].upper(), r["first_fix"] or r["headline"])
    out.print(table)
    out.print(Text("Details of one: iovkit doctor --example NAME   (iovkit collect --list-examples)", "dim"))


def register(app: typer.Typer) -> None:
    """Add `check` and `doctor` to the app."""
    app.command(
        "doctor",
        rich_help_panel=ASSESS,
        epilog=exit_codes("not ready, partial or bottleneck", ok="ready", extra={3: "host unreachable"}),
    )(doctor_cmd)
    app.command(
        "check",
        rich_help_panel=ASSESS,
        epilog=exit_codes("partial or not ready", ok="ready", extra={3: "host unreachable"}),
    )(check_cmd)
