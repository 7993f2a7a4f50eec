"""`iovkit plan`: from a snapshot and a policy to VF allocation and an ordered, reversible runbook."""

from __future__ import annotations

from datetime import UTC, datetime

from iovkit.fingerprint import fingerprint
from iovkit.plan.model import Allocation, Plan, Step, load_plan, step_title
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot

__all__ = ["Plan", "load_plan", "make_plan", "plan_summary"]


def make_plan(snap: HostSnapshot, policy: Policy | None) -> Plan:
    """Build the plan for this host; blockers leave the runbook empty but still explain themselves."""
    if snap.host.platform == "hyperv":
        from iovkit.plan.allocate import allocate_hyperv
        from iovkit.plan.runbook_hyperv import hyperv_steps, not_running

        alloc = allocate_hyperv(snap, policy)
        steps: list[Step] = [] if alloc.blockers else hyperv_steps(snap, alloc)
        parts = alloc
        warnings = alloc.warnings + not_running(snap, alloc)
        console = alloc.requires_console
    elif snap.host.platform == "esxi":
        from iovkit.plan.runbook_esxi import plan_esxi

        eparts = plan_esxi(snap, policy)
        steps = [] if eparts.blockers else eparts.steps
        parts = eparts  # type: ignore[assignment]
        warnings = eparts.warnings
        console = False
    else:
        from iovkit.plan.runbook_linux import plan_linux

        lparts = plan_linux(snap, policy)
        steps = [] if lparts.blockers else lparts.steps
        parts = lparts  # type: ignore[assignment]
        warnings = lparts.warnings
        console = False
    for i, step in enumerate(steps, start=1):
        step.id = i
    plan = Plan(
        created_at=datetime.now(UTC),
        platform=snap.host.platform,
        host=snap.host.name,
        fingerprint=fingerprint(snap),
        snapshot_collected_at=snap.collected_at,
        policy=(policy.model_dump(mode="json") if policy else {}),
        capacity=parts.capacity,
        allocations=sorted(parts.allocations, key=lambda a: a.priority),
        unfit=parts.unfit,
        alternatives=parts.alternatives,
        warnings=warnings,
        blockers=parts.blockers,
        requires_console=console,
        reboots_host=any(s.kind == "esx-reboot" for s in steps),
        steps=steps,
        snapshot=snap,
    )
    plan.plan_id = plan.compute_id()
    return plan


def receive_cpus(a: Allocation) -> str:
    """How many guest vCPUs take the VM's receive interrupts once the VF carries its traffic (vRSS is off with a
    VF, so only the VF's queue pairs spread them)."""
    qp = f"{a.queue_pairs} queue pair{'s' if a.queue_pairs != 1 else ''}"
    if a.vcpus is None:
        return f"{qp} ({a.queue_pairs_why}): up to {a.queue_pairs} guest vCPU(s) take its receive interrupts"
    takers = min(a.queue_pairs, a.vcpus)
    verb = "takes" if takers == 1 else "take"
    return f"{qp} ({a.queue_pairs_why}): {takers} of its {a.vcpus} vCPUs {verb} its receive interrupts"


def plan_summary(plan: Plan) -> str:
    """The human summary printed by `iovkit plan`: plain text, one fact per line."""
    lines = [f"Plan {plan.plan_id} for {plan.host or '(unnamed host)'} ({plan.platform})"]
    for c in plan.capacity:
        est = " (estimate)" if c.estimate else ""
        where = f" under {c.switch!r}" if c.switch else ""
        lines.append(f"  port {c.nic!r}{where}: {c.vfs} VFs from {c.source}{est}")
    if plan.allocations:
        lines.append(f"VFs for {len(plan.allocations)} adapters (priority order):")
        for a in plan.allocations:
            dest = f" on {a.switch!r}" if a.switch else ""
            vf = f" vf {a.vf}" if a.vf is not None else ""
            how = {"hyperv": f" IovWeight {a.iov_weight}", "esxi": " (SR-IOV passthrough)"}.get(
                plan.platform, " (libvirt hostdev)"
            )
            lines.append(f"  {a.priority:>3}. {a.vm}/{a.adapter}{dest} port {a.nic!r}{vf}{how}")
            if plan.platform == "hyperv":
                lines.append(f"       {receive_cpus(a)}")
    for u in plan.unfit:
        moved = f" -> moved to {u.moved_to!r}" if u.moved_to else ""
        lines.append(f"  does not fit: {u.vm}/{u.adapter}: {u.reason}{moved}")
    for alt in plan.alternatives:
        lines.append(f"  {'planned' if alt.planned else 'option'}: {alt.text}")
    for w in plan.warnings:
        lines.append(f"WARNING: {w}")
    for b in plan.blockers:
        lines.append(f"BLOCKER: {b}")
    if plan.steps:
        lines.append(f"Runbook: {len(plan.steps)} steps")
        lines.extend(f"  {s.id:>3}. {step_title(s)}" for s in plan.steps)
    elif not plan.blockers:
        lines.append("Runbook: nothing to change")
    return "\n".join(lines) + "\n"
