"""What the collection's modules run on the host Ansible reaches: plain data in, plain data out.

The modules stay thin (argument parsing and Ansible's return shape); the work is here, importable and typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def collect_snapshot(src: str | None, root: str | None) -> dict[str, Any]:
    """The snapshot of this host (live, or its tree under `root`), or of the capture `src`, as JSON data."""
    from iovkit.sources import collect_here, load_input

    snap = load_input(Path(src)) if src else collect_here(Path(root) if root else None)
    data: dict[str, Any] = json.loads(snap.to_json())
    return data


def check_snapshot(
    snapshot: dict[str, Any] | None,
    bundle: str | None,
    src: str | None,
    policy: str | None,
    esxi: str | None = None,
) -> dict[str, Any]:
    """iovkit's checks on a snapshot (or a Windows collector's bundle text, an ESXi shell session, or a capture):
    the verdict and why."""
    from iovkit.checks.catalog import run_checks, top_fixes
    from iovkit.policy import load_policy
    from iovkit.snapshot import snapshot_from_dict
    from iovkit.sources import load_input

    given = [x for x in (snapshot, bundle, src, esxi) if x]
    if len(given) != 1:
        from iovkit.errors import InputError

        raise InputError("give exactly one of snapshot, bundle, esxi or src")
    if snapshot:
        snap = snapshot_from_dict(snapshot, "snapshot")
    elif bundle:
        from iovkit.sources.hyperv.bundle import snapshot_from_output

        snap = snapshot_from_output(bundle, "bundle")
    elif esxi:
        from iovkit.sources.esxi.paste import snapshot_from_sections, split_sections

        snap = snapshot_from_sections(split_sections(esxi, "esxi"), "esxi")
    else:
        snap = load_input(Path(str(src)))
    result = run_checks(snap, load_policy(Path(policy)) if policy else None)
    return {
        "host": snap.host.name,
        "platform": snap.host.platform,
        "verdict": result.verdict,
        "reason": result.reason,
        "counts": result.counts(),
        "top": [f.to_dict() for f in top_fixes(result.findings)],
        "findings": [f.to_dict() for f in result.findings],
    }


def apply_here(
    plan: str | None, plan_data: dict[str, Any] | None, journal: str | None, root: str, check: bool, console: bool
) -> dict[str, Any]:
    """Apply a plan on this Linux host with iovkit's journaled engine (check mode: the dry run)."""
    from iovkit.apply.engine import apply_plan, default_journal
    from iovkit.apply.executors import ShellExecutor
    from iovkit.errors import InputError
    from iovkit.plan.model import load_plan, plan_from_dict

    if bool(plan) == bool(plan_data):
        raise InputError("give exactly one of plan (a file on the host) or plan_data")
    the_plan = load_plan(Path(str(plan))) if plan else plan_from_dict(plan_data, "plan_data")
    if the_plan.platform != "linux":
        raise InputError(
            f"iovkit_apply runs Linux plans; this plan is for {the_plan.platform} "
            "(Hyper-V: iovkit apply --executor winrm, or the plan's script from `iovkit script plan`)"
        )
    if journal:
        jpath = Path(journal)
    elif plan:
        jpath = default_journal(Path(plan))
    else:
        raise InputError("plan_data needs a journal path (where the run is recorded for rollback)")
    result = apply_plan(the_plan, ShellExecutor(Path(root)), jpath, yes=not check, console=console)
    return {
        "status": result.status,
        "journal": str(result.journal),
        "steps": [{"id": s.id, "title": s.title, "command": s.command} for s in result.steps],
        "done": result.done,
        "failed_step": result.failed_step,
        "failure": result.failure,
        "undone": result.undone,
    }
