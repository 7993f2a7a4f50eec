"""Judge each collected snapshot here (check, doctor or plan, as for one host) and build the fleet result."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from iovkit import __version__
from iovkit.fileio import write_text
from iovkit.fleet.collect import Collected
from iovkit.fleet.model import Command, FleetHost, FleetResult, TopFinding, exit_code_for, worst_verdict
from iovkit.policy import Policy
from iovkit.quoting import sh_quote
from iovkit.snapshot import HostSnapshot


def safe_name(host: str) -> str:
    """A file name for an inventory host name (which may hold ':' or '/')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", host) or "host"


def _beside(stem: Path, suffix: str) -> Path:
    """stem + suffix; not with_suffix, which would eat the domain of `hv01.example`."""
    return stem.with_name(stem.name + suffix)


def judge_host(
    c: Collected, command: Command, policy: Policy | None, results_dir: Path | None, inventory: str = "INVENTORY"
) -> FleetHost:
    row = FleetHost(name=c.host.name, groups=list(c.host.groups), status=c.status, error=c.error, method=c.method)
    if c.snapshot is None:
        row.verdict = "unreachable" if c.status == "unreachable" else "failed"
        row.headline = c.error
        return row
    snap = c.snapshot
    row.host_name, row.platform = snap.host.name, snap.host.platform
    row.vfs_total, row.vfs_used = snap.vf_counts()
    if row.vfs_total is not None and row.vfs_used is not None:
        row.vfs_free = max(0, row.vfs_total - row.vfs_used)
    stem = results_dir / safe_name(c.host.name) if results_dir is not None else None
    if stem is not None:
        write_text(_beside(stem, ".snapshot.json"), snap.to_json() + "\n")
        row.files.append(str(_beside(stem, ".snapshot.json")))
    if command == "collect":
        row.verdict = "collected"
        row.headline = f"{len(snap.nics)} NIC(s), {len(snap.switches)} switch(es), {len(snap.vms)} VM(s)"
        if snap.errors:
            row.headline += f"; {len(snap.errors)} source(s) not read"
        return row
    if command == "plan":
        return _plan_row(row, snap, policy, stem)
    plan_cmd = f"iovkit fleet plan -i {sh_quote(inventory)} --limit {sh_quote(c.host.name)}"
    return _check_row(row, snap, policy, stem, doctor=command == "doctor", plan_cmd=plan_cmd)


def _check_row(
    row: FleetHost, snap: HostSnapshot, policy: Policy | None, stem: Path | None, doctor: bool, plan_cmd: str
) -> FleetHost:
    import json

    from iovkit.doctor import run_doctor

    report = run_doctor(snap, policy, use_default_sampler=False, with_examples=False, plan_cmd=plan_cmd)
    check = report.check
    row.verdict = report.verdict if doctor else check.verdict
    row.headline = report.headline
    row.counts = check.counts()
    if report.top:
        f = report.top[0]
        row.top = TopFinding(id=f.id, status=f.status, message=f.message, fix=f.fix)
    else:
        first = next((f for f in check.findings if f.status in ("fail", "warn", "unknown") and f.missing), None)
        if first is not None:
            row.top = TopFinding(id=first.id, status=first.status, message=first.message, fix=first.fix)
    if stem is not None:
        path = _beside(stem, ".doctor.json" if doctor else ".check.json")
        data = report.to_dict() if doctor else check.to_dict()
        write_text(path, json.dumps(data, indent=2) + "\n")
        row.files.append(str(path))
    return row


def _plan_row(row: FleetHost, snap: HostSnapshot, policy: Policy | None, stem: Path | None) -> FleetHost:
    from iovkit.plan import make_plan

    plan = make_plan(snap, policy)
    if plan.blockers:
        row.verdict = "blocked"
        row.headline = plan.blockers[0]
        row.top = TopFinding(id="PLAN-BLOCKER", status="fail", message=plan.blockers[0])
    elif plan.steps:
        row.verdict = "planned"
        row.headline = f"{len(plan.steps)} step(s), VFs for {len(plan.allocations)} adapter(s)"
        if plan.unfit:
            row.headline += f", {len(plan.unfit)} do not fit"
    else:
        row.verdict = "nothing-to-do"
        row.headline = "no change needed"
    if plan.warnings and row.top is None:
        row.top = TopFinding(id="PLAN-WARNING", status="warn", message=plan.warnings[0])
    if stem is not None:
        path = _beside(stem, ".plan.json")
        write_text(path, plan.to_json() + "\n")
        row.files.append(str(path))
    return row


def judge_fleet(
    collected: list[Collected],
    command: Command,
    *,
    inventory: Path,
    limit: str | None,
    policy: Policy | None = None,
    results_dir: Path | None = None,
    started: datetime | None = None,
) -> FleetResult:
    """Rows for every host, the fleet rules over the collected snapshots, the worst verdict and exit code."""
    from iovkit.fleet.rules import run_fleet_rules

    begun = started or datetime.now(UTC)
    result = FleetResult(
        tool_version=__version__, command=command, inventory=str(inventory), limit=limit, started=begun
    )
    result.hosts = [judge_host(c, command, policy, results_dir, str(inventory)) for c in collected]
    if command in ("check", "doctor"):
        result.findings = run_fleet_rules(collected, str(inventory))
    result.finished = datetime.now(UTC)
    result.verdict = worst_verdict(result)
    result.exit_code = exit_code_for(result.verdict)
    if results_dir is not None:
        write_text(results_dir / "fleet.json", result.to_json() + "\n")
    return result
