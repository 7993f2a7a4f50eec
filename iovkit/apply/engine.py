"""Run a plan: refuse what is unsafe, journal every step, stop at the first failure and roll back.

Order of refusals: blockers in the plan; a rebuild of the management OS's switch without --console; a
journal from another plan or an already rolled-back run; a live host that is not the plan's host or no
longer matches its snapshot (fresh runs only: a resumed run has already changed the host). Without
--yes nothing runs: the result lists the steps.

A step whose action fails is taken to have had no effect (cmdlets are atomic); a step whose action ran but
whose verification failed is undone with the rest. Undo is idempotent, so rollback can be repeated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

from iovkit.apply.executors import Executor
from iovkit.apply.journal import Journal, JournalState, journal_state
from iovkit.errors import ApplyError, InputError, IovkitError
from iovkit.plan.model import Plan, Step, step_title

Status = Literal["dry-run", "completed", "already-applied", "rolled-back", "rollback-failed", "nothing-to-undo"]


@dataclass
class StepReport:
    id: int
    title: str
    command: str


@dataclass
class ApplyResult:
    status: Status
    journal: Path
    steps: list[StepReport] = field(default_factory=list)  # dry run: what would run
    done: list[int] = field(default_factory=list)
    failed_step: int | None = None
    failure: str | None = None
    undone: list[int] = field(default_factory=list)
    undo_failed: list[int] = field(default_factory=list)
    resumed_after: int | None = None
    undo: bool = False  # the steps listed are undos (rollback dry run)
    needs_console: bool = False
    needs_reboot: bool = False  # ESXi: the plan reboots the host and --reboot was not given


class StepFailed(ApplyError):
    """A step failed; what was done has been rolled back (or the message says it could not be)."""

    def __init__(self, message: str, result: ApplyResult) -> None:
        super().__init__(message)
        self.result = result


def default_journal(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.stem + ".journal.jsonl")


def _console_check(plan: Plan, console: bool) -> None:
    if plan.requires_console and not console:
        raise InputError(
            f"the plan rebuilds a switch that carries the management OS of {plan.host}: remote access drops "
            "during the switch-over; run apply from the host console and pass --console"
        )


def _reboot_check(plan: Plan, reboot: bool) -> None:
    if plan.reboots_host and not reboot:
        raise InputError(
            f"the plan reboots ESXi host {plan.host} (in maintenance mode, its running VMs powered off first): "
            "pass --reboot to allow it"
        )


def apply_plan(
    plan: Plan, executor: Executor, journal_path: Path, *, yes: bool, console: bool, reboot: bool = False
) -> ApplyResult:
    """Apply (or, without yes, describe) a plan. Raises ApplyError after a failure that was rolled back."""
    if plan.blockers:
        raise InputError(f"the plan has blockers and cannot be applied: {plan.blockers[0]}")
    if yes:
        _console_check(plan, console)
        _reboot_check(plan, reboot)
    st = journal_state(journal_path)
    if st.plan_id is not None and st.plan_id != plan.plan_id:
        raise InputError(
            f"journal belongs to plan {st.plan_id}, not {plan.plan_id}; give another --journal", path=str(journal_path)
        )
    if st.status == "completed":
        return ApplyResult(status="already-applied", journal=journal_path, done=st.done)
    if st.status in ("rolled-back", "rollback-failed"):
        raise InputError(
            f"journal records a run that ended {st.status}; re-collect, re-plan and use a new --journal",
            path=str(journal_path),
        )
    resuming = st.plan_id is not None
    if not resuming:
        reason = executor.stale_reason(plan)
        if reason:
            raise InputError(reason)
    done = set(st.done)
    todo = [s for s in plan.steps if s.id not in done]
    if not yes:
        return ApplyResult(
            status="dry-run",
            journal=journal_path,
            done=st.done,
            steps=[StepReport(s.id, step_title(s), executor.command(s, "action")) for s in todo],
            resumed_after=max(done) if done else None,
            needs_console=plan.requires_console and not console,
            needs_reboot=plan.reboots_host and not reboot,
        )
    journal = Journal(journal_path)
    if resuming:
        journal.append("resume", plan_id=plan.plan_id, after=max(done) if done else 0, executor=executor.name)
    else:
        journal.append(
            "begin",
            plan_id=plan.plan_id,
            host=plan.host,
            platform=plan.platform,
            executor=executor.name,
            steps=[s.model_dump(mode="json") for s in plan.steps],
        )
    result = ApplyResult(
        status="completed",
        journal=journal_path,
        done=list(st.done),
        resumed_after=max(done) if resuming and done else None,
    )
    touched = list(st.touched)
    try:
        _run_steps(plan, executor, journal, result, st, todo, touched, resuming)
    except (IovkitError, KeyboardInterrupt) as err:
        if isinstance(err, StepFailed):
            raise
        # The executor lost the host (or the operator pressed Ctrl-C): nothing more can run safely here.
        journal.append("interrupted", reason=f"{type(err).__name__}: {err}", done=len(result.done))
        if isinstance(err, IovkitError):
            raise type(err)(
                f"{err}; {len(result.done)} step(s) done: re-run apply with the same --journal "
                f"to resume, or `iovkit rollback {journal.path}`"
            ) from err
        raise
    return result


def _run_steps(
    plan: Plan,
    executor: Executor,
    journal: Journal,
    result: ApplyResult,
    st: JournalState,
    todo: list[Step],
    touched: list[int],
    resuming: bool,
) -> None:
    for step in todo:
        if resuming and step.id == st.interrupted:
            # Interrupted mid-step: if its verification already passes, the action took effect.
            check = executor.run(step, "verify")
            if check.ok:
                journal.append("step-end", step=step.id, phase="verify", result="ok", output="already done")
                result.done.append(step.id)
                touched.append(step.id)
                continue
        journal.append(
            "step-start", step=step.id, kind=step.kind, title=step_title(step), command=executor.command(step, "action")
        )
        act = executor.run(step, "action")
        if not act.ok:
            journal.append("step-end", step=step.id, phase="action", result="failed", output=act.output)
            _fail(plan, executor, journal, result, touched, step, f"action failed: {act.output}")
        touched.append(step.id)
        ver = executor.run(step, "verify")
        if not ver.ok:
            journal.append(
                "step-end", step=step.id, phase="verify", result="failed", output=act.output, verification=ver.output
            )
            _fail(plan, executor, journal, result, touched, step, f"verification failed: {ver.output}")
        journal.append("step-end", step=step.id, phase="verify", result="ok", output=act.output)
        result.done.append(step.id)
    journal.append("end", status="completed", done=len(result.done))


def _fail(
    plan: Plan, executor: Executor, journal: Journal, result: ApplyResult, touched: list[int], step: Step, why: str
) -> NoReturn:
    result.failed_step, result.failure = step.id, why
    by_id = {s.id: s for s in plan.steps}
    undone, failed = _rollback(executor, journal, [by_id[i] for i in reversed(touched)])
    result.undone, result.undo_failed = undone, failed
    result.status = "rollback-failed" if failed else "rolled-back"
    journal.append("end", status=result.status, failed_step=step.id, reason=why)
    msg = (
        f"step {step.id} ({step_title(step)}) {why.splitlines()[0] if why else 'failed'}; "
        f"rolled back {len(undone)} step(s)"
    )
    if failed:
        msg += f", but undo failed for step(s) {', '.join(map(str, failed))}: the host is NOT back to its start"
    raise StepFailed(f"{msg}; journal: {journal.path}", result)


def _rollback(executor: Executor, journal: Journal, steps: list[Step]) -> tuple[list[int], list[int]]:
    """Undo in the order given (last done first); keep going past a failed undo, report it."""
    journal.append("rollback-start", steps=[s.id for s in steps])
    undone: list[int] = []
    failed: list[int] = []
    for step in steps:
        journal.append("undo-start", step=step.id, command=executor.command(step, "undo"))
        out = executor.run(step, "undo")
        journal.append("undo-end", step=step.id, result="ok" if out.ok else "failed", output=out.output)
        (undone if out.ok else failed).append(step.id)
    return undone, failed


def rollback_journal(journal_path: Path, executor: Executor, *, yes: bool, reboot: bool = False) -> ApplyResult:
    """`iovkit rollback JOURNAL`: undo every step of a finished or broken run that is not undone yet."""
    if not journal_path.exists():
        raise InputError("no such journal", path=str(journal_path))
    st: JournalState = journal_state(journal_path)
    if st.plan_id is None:
        raise InputError("not an iovkit apply journal (no begin event)", path=str(journal_path))
    here = executor.host_name()
    if here and st.host and here.split(".")[0].lower() != st.host.split(".")[0].lower():
        raise InputError(f"journal is for host {st.host!r}, but the executor runs on {here!r}", path=str(journal_path))
    by_id = {s.id: s for s in st.steps}
    ids = st.to_undo
    if not ids:
        return ApplyResult(status="nothing-to-undo", journal=journal_path)
    steps = [by_id[i] for i in ids if i in by_id]
    vf_undo = next((s for s in steps if s.kind == "esx-enable-vfs"), None)
    if yes and vf_undo is not None and not reboot:
        raise InputError(
            f"undoing step {vf_undo.id} restores VF settings that take effect at a reboot (in maintenance mode): "
            "pass --reboot to allow it",
            path=str(journal_path),
        )
    if not yes:
        return ApplyResult(
            status="dry-run",
            journal=journal_path,
            undo=True,
            needs_reboot=vf_undo is not None and not reboot,
            steps=[
                StepReport(s.id, step_title(s), executor.command(s, "undo"))
                for s in steps
                if not executor.command(s, "undo").startswith("# nothing")
            ],
        )
    journal = Journal(journal_path)
    undone, failed = _rollback(executor, journal, steps)
    status: Status = "rollback-failed" if failed else "rolled-back"
    journal.append("end", status=status, reason="iovkit rollback")
    result = ApplyResult(status=status, journal=journal_path, undone=undone, undo_failed=failed)
    if failed:
        raise StepFailed(f"undo failed for step(s) {', '.join(map(str, failed))}; journal: {journal_path}", result)
    return result
