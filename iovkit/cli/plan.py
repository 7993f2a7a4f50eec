"""`iovkit plan`, `iovkit apply`, `iovkit rollback`: parse, call iovkit.plan / iovkit.apply, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from iovkit.cli.common import err, out, remote_target, resolve_snapshot, winrm_password
from iovkit.cli.options import (
    INPUT_PANEL,
    SWITCH_OVER,
    AuthOpt,
    EsxiHostOpt,
    ExampleOpt,
    FormatTableJson,
    FromOpt,
    HostOpt,
    InsecureOpt,
    PortOpt,
    SnapshotArg,
    SslOpt,
    UserOpt,
    VsphereOpt,
    exit_codes,
    output_opt,
)
from iovkit.errors import ExitCode, InputError

if TYPE_CHECKING:
    from iovkit.apply.executors import Executor

EXECUTORS = ("local", "winrm", "shell", "simulator", "vsphere")
ExecutorKind = Literal["local", "winrm", "shell", "simulator", "vsphere"]

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="SR-IOV policy YAML (adapters, weights, NICs, second switch)",
        show_default=False,
        rich_help_panel=INPUT_PANEL,
    ),
]
ExecutorOpt = Annotated[
    ExecutorKind,
    typer.Option(
        "--executor",
        help="local (PowerShell here), winrm (--host), shell (Linux), vsphere (ESXi/vCenter: --vsphere), or "
        "simulator (--sim-state; Hyper-V or ESXi by the plan)",
    ),
]
JournalOpt = Annotated[
    Path | None, typer.Option("--journal", help="Journal file (default: beside the plan)", show_default=False)
]
SimStateOpt = Annotated[
    Path | None,
    typer.Option(
        "--sim-state", help="Simulator state JSON; created from the plan's snapshot when missing", show_default=False
    ),
]
RootOpt = Annotated[Path, typer.Option("--root", help="Linux: sysfs root for the shell executor (a test tree)")]
YesOpt = Annotated[bool, typer.Option("--yes", help="Really change the host (otherwise a dry run)")]


def plan_cmd(
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
    output: Annotated[Path | None, output_opt("Write plan.json here (default: standard output)")] = None,
) -> int:
    """VF allocation and an ordered, reversible runbook for this host; a human summary beside it."""
    from iovkit.plan import make_plan, plan_summary
    from iovkit.policy import load_policy

    pol = load_policy(policy) if policy is not None else None
    snap = resolve_snapshot(snapshot, from_path, example, host, user, auth, port, ssl, vsphere, insecure, esxi_host)
    plan = make_plan(snap, pol)
    summary = plan_summary(plan)
    if output is None:
        typer.echo(plan.to_json())
        err.print(summary, end="", markup=False)
    else:
        from iovkit.fileio import write_text

        write_text(output, plan.to_json() + "\n")
        out.print(summary, end="", markup=False)
        out.print(f"Plan written to {output}; review it with `iovkit script plan {output}`", markup=False)
    return int(ExitCode.FINDINGS if plan.blockers else ExitCode.OK)


def _is_esxi(snapshot: object, sim_state: Path) -> bool:
    """The ESXi simulator for an ESXi plan, or for an existing ESXi simulator state (rollback has no plan)."""
    from iovkit.snapshot import HostSnapshot

    if isinstance(snapshot, HostSnapshot):
        return snapshot.host.platform == "esxi"
    if sim_state.exists():
        try:
            return '"iovkit-esxi-sim"' in sim_state.read_text(encoding="utf-8", errors="replace")[:200]
        except OSError:
            return False
    return False


def _executor(
    kind: str,
    snapshot: object,
    sim_state: Path | None,
    root: Path,
    host: str | None,
    user: str | None,
    auth: str,
    port: int | None,
    ssl: bool,
    vsphere: str | None = None,
    insecure: bool = False,
    esxi_host: str | None = None,
) -> Executor:
    from iovkit.apply import executors
    from iovkit.sources import collect_here, collect_remote

    if kind not in EXECUTORS:
        raise InputError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}", field="--executor")
    if kind == "simulator":
        from iovkit.apply.simulator import Simulator
        from iovkit.snapshot import HostSnapshot

        if sim_state is None:
            raise InputError("--executor simulator needs --sim-state FILE", field="--sim-state")
        if _is_esxi(snapshot, sim_state):
            from iovkit.apply.esxi_sim import EsxiSimulator

            if sim_state.exists():
                esim = EsxiSimulator.load(sim_state)
            elif isinstance(snapshot, HostSnapshot):
                esim = EsxiSimulator.from_snapshot(snapshot)
                esim.save(sim_state)
            else:
                raise InputError("no such simulator state (it is created by `apply`)", path=str(sim_state))
            return executors.EsxiSimulatorExecutor(esim, sim_state)
        if isinstance(snapshot, HostSnapshot) and snapshot.host.platform != "hyperv":
            # it would build a Hyper-V host from a Linux snapshot and call the plan stale
            raise InputError(
                f"the simulator models Hyper-V hosts only; this plan is for {snapshot.host.platform} "
                "(use --executor shell --root TREE)",
                field="--executor",
            )
        if sim_state.exists():
            sim = Simulator.load(sim_state)
        elif isinstance(snapshot, HostSnapshot):
            sim = Simulator.from_snapshot(snapshot)
            sim.save(sim_state)
        else:
            raise InputError("no such simulator state (it is created by `apply`)", path=str(sim_state))
        return executors.SimulatorExecutor(sim, sim_state)
    if kind == "vsphere":
        from iovkit.apply.vsphere import VsphereExecutor
        from iovkit.cli.esxi import vsphere_password, vsphere_target

        vtarget = vsphere_target(vsphere, user, insecure, esxi_host)
        if vtarget is None:
            raise InputError("--executor vsphere needs --vsphere HOST", field="--vsphere")
        return VsphereExecutor(vtarget, vsphere_password(vtarget.user))
    if kind == "shell":
        if not (root / "sys").is_dir():  # refused even for a dry run: it would preview steps on no host at all
            raise InputError("no sys/ under it: not a Linux root or a test tree", path=str(root), field="--root")
        return executors.ShellExecutor(root)
    if kind == "winrm":
        target = remote_target(host, user, auth, port, ssl)
        if target is None:
            raise InputError("--executor winrm needs --host", field="--host")
        password = winrm_password(user)
        return executors.WinRMExecutor(target, password, lambda: collect_remote(target, password))
    return executors.LocalPowerShellExecutor(collect_here)


def _report(result: object, fmt: str = "table") -> None:
    from iovkit.apply.engine import ApplyResult

    assert isinstance(result, ApplyResult)
    if fmt == "json":  # status, the steps that ran or would run, done/undone ids, the journal's path
        import dataclasses
        import json

        typer.echo(json.dumps(dataclasses.asdict(result), indent=2, default=str))
        return
    if result.status == "dry-run":
        if result.resumed_after:
            out.print(f"Resuming after step {result.resumed_after}.", markup=False)
        what = "undo(s) would run" if result.undo else "step(s) would run"
        out.print(f"Dry run: {len(result.steps)} {what} (pass --yes to run them):", markup=False)
        for s in result.steps:
            out.print(f"  {s.id:>3}. {s.title}", markup=False)
            for line in s.command.splitlines():
                out.print(f"         {line}", markup=False)
        if result.needs_console:
            out.print("NOTE: this plan rebuilds the management OS's switch: --yes also needs --console", markup=False)
        if result.needs_reboot:
            out.print("NOTE: this plan reboots the ESXi host: --yes also needs --reboot", markup=False)
    elif result.status == "already-applied":
        out.print(f"Already applied ({len(result.done)} steps); journal: {result.journal}", markup=False)
    elif result.status == "nothing-to-undo":
        out.print(f"Nothing to undo; journal: {result.journal}", markup=False)
    elif result.status == "completed":
        out.print(f"Completed {len(result.done)} step(s), every one verified; journal: {result.journal}", markup=False)
    else:
        out.print(f"Rolled back {len(result.undone)} step(s); journal: {result.journal}", markup=False)


def apply_cmd(
    plan_path: Annotated[Path, typer.Argument(help="plan.json written by `iovkit plan`", metavar="PLAN")],
    yes: YesOpt = False,
    console: Annotated[
        bool,
        typer.Option("--console", help="I am on the host console: a switch carrying the management OS may be rebuilt"),
    ] = False,
    reboot: Annotated[
        bool, typer.Option("--reboot", help="ESXi: the plan may reboot the host (maintenance mode first)")
    ] = False,
    executor: ExecutorOpt = "local",
    journal: JournalOpt = None,
    sim_state: SimStateOpt = None,
    root: RootOpt = Path("/"),
    host: HostOpt = None,
    user: UserOpt = None,
    auth: AuthOpt = "negotiate",
    port: PortOpt = None,
    ssl: SslOpt = False,
    vsphere: VsphereOpt = None,
    insecure: InsecureOpt = False,
    esxi_host: EsxiHostOpt = None,
    fmt: FormatTableJson = "table",
) -> int:
    """Run the plan's steps (a dry run unless --yes), verified one by one, journaled, rolled back on failure."""
    from iovkit.apply.engine import apply_plan, default_journal
    from iovkit.plan import load_plan

    plan = load_plan(plan_path)
    ex = _executor(executor, plan.snapshot, sim_state, root, host, user, auth, port, ssl, vsphere, insecure, esxi_host)
    result = apply_plan(plan, ex, journal or default_journal(plan_path), yes=yes, console=console, reboot=reboot)
    _report(result, fmt)
    return int(ExitCode.OK)


def rollback_cmd(
    journal: Annotated[Path, typer.Argument(help="The journal an `iovkit apply` run wrote", metavar="JOURNAL")],
    yes: YesOpt = False,
    reboot: Annotated[
        bool, typer.Option("--reboot", help="ESXi: the undo may reboot the host (maintenance mode first)")
    ] = False,
    executor: ExecutorOpt = "local",
    sim_state: SimStateOpt = None,
    root: RootOpt = Path("/"),
    host: HostOpt = None,
    user: UserOpt = None,
    auth: AuthOpt = "negotiate",
    port: PortOpt = None,
    ssl: SslOpt = False,
    vsphere: VsphereOpt = None,
    insecure: InsecureOpt = False,
    esxi_host: EsxiHostOpt = None,
    fmt: FormatTableJson = "table",
) -> int:
    """Undo a finished or broken apply run from its journal, last step first (a dry run unless --yes)."""
    from iovkit.apply.engine import rollback_journal

    ex = _executor(executor, None, sim_state, root, host, user, auth, port, ssl, vsphere, insecure, esxi_host)
    result = rollback_journal(journal, ex, yes=yes, reboot=reboot)
    _report(result, fmt)
    return int(ExitCode.OK)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command(
        "plan",
        rich_help_panel=SWITCH_OVER,
        epilog=exit_codes("blockers (nothing to switch over yet)", extra={3: "host unreachable"}),
    )(plan_cmd)
    app.command(
        "apply",
        rich_help_panel=SWITCH_OVER,
        epilog=exit_codes(
            ok="done, already applied or dry run", extra={3: "host unreachable", 4: "a step failed and was rolled back"}
        ),
    )(apply_cmd)
    app.command(
        "rollback",
        rich_help_panel=SWITCH_OVER,
        epilog=exit_codes(
            ok="undone, nothing to undo or dry run", extra={3: "host unreachable", 4: "an undo step failed"}
        ),
    )(rollback_cmd)
