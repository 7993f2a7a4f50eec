"""apply/rollback on the simulator: the I350 case end to end, a fault at every step, refusals, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iovkit.apply.engine import StepFailed, apply_plan, rollback_journal
from iovkit.apply.executors import Outcome, SimulatorExecutor
from iovkit.apply.journal import journal_state, read_events
from iovkit.apply.simulator import Simulator
from iovkit.errors import ExitCode, InputError
from iovkit.fingerprint import fingerprint
from iovkit.plan import Plan, make_plan
from iovkit.plan.model import Step
from iovkit.plan.render import Phase
from iovkit.policy import Policy
from tests.fixtures.hosts import i350_host

HOST = i350_host()
PLAN = make_plan(HOST, Policy(allow_second_switch=True))


def _sim() -> tuple[Simulator, SimulatorExecutor]:
    sim = Simulator.from_snapshot(HOST)
    return sim, SimulatorExecutor(sim)


def test_i350_runs_through_to_verified_vfs(tmp_path: Path) -> None:
    sim, ex = _sim()
    res = apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)
    assert res.status == "completed" and res.done == [s.id for s in PLAN.steps]
    snap = sim.to_snapshot()
    vf = {a.vm_name: (a.switch_name, a.vf_data_path_active, a.iov_weight) for a in snap.vm_adapters if a.vm_name}
    assert vf == {
        **{f"relay-{i:02d}": ("External", True, 100) for i in range(1, 7)},
        "relay-07": ("SRIOV-2", True, 100),
        "relay-08": ("SRIOV-2", True, 100),
    }
    assert snap.switch("External").iov_enabled and snap.switch("External").allow_management_os  # type: ignore[union-attr]
    assert sim.s.deleted_adapters == 0
    events = read_events(tmp_path / "j")
    assert events[0]["event"] == "begin" and events[-1] == {**events[-1], "event": "end", "status": "completed"}
    starts = [e for e in events if e["event"] == "step-start"]
    assert starts[1]["command"] == "Disconnect-VMNetworkAdapter -VMName 'relay-01' -Name 'Network Adapter'"


@pytest.mark.parametrize("phase", ["action", "verify"])
def test_a_failure_at_every_step_ends_in_the_starting_state(tmp_path: Path, phase: str) -> None:
    for step in PLAN.steps:
        sim, ex = _sim()
        start = sim.signature()
        sim.s.fail_step, sim.s.fail_phase = step.id, phase  # type: ignore[assignment]
        journal = tmp_path / f"j-{step.id}-{phase}"
        with pytest.raises(StepFailed) as info:
            apply_plan(PLAN, ex, journal, yes=True, console=True)
        assert info.value.exit_code == ExitCode.FAILED
        assert f"step {step.id} " in str(info.value) and "\n" not in str(info.value)
        assert sim.signature() == start, f"step {step.id} ({step.kind}) {phase}"
        assert fingerprint(sim.to_snapshot()) == PLAN.fingerprint
        events = read_events(journal)
        failed = [e for e in events if e["event"] == "step-end" and e["result"] == "failed"]
        assert [(e["step"], e["phase"]) for e in failed] == [(step.id, phase)]
        undone = [e["step"] for e in events if e["event"] == "undo-end" and e["result"] == "ok"]
        expect = list(range(step.id if phase == "verify" else step.id - 1, 0, -1))
        assert undone == expect
        assert events[-1]["event"] == "end" and events[-1]["status"] == "rolled-back"


def test_refuses_without_console_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    sim, ex = _sim()
    start = sim.signature()
    with pytest.raises(InputError, match="--console"):
        apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=False)
    res = apply_plan(PLAN, ex, tmp_path / "j", yes=False, console=False)
    assert res.status == "dry-run" and len(res.steps) == len(PLAN.steps) and res.needs_console
    assert sim.signature() == start and not (tmp_path / "j").exists()


def test_stale_snapshot_and_other_host_are_refused(tmp_path: Path) -> None:
    sim, ex = _sim()
    sim.s.adapters[3].iov_weight = 50
    with pytest.raises(InputError, match=r"stale snapshot.*adapters 'relay-03/Network Adapter' iov_weight") as info:
        apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)
    assert info.value.exit_code == ExitCode.USAGE
    sim, ex = _sim()
    sim.s.host = "HV-OTHER"
    with pytest.raises(InputError, match="plan is for host 'HV-RELAY-01', but the live host is 'HV-OTHER'"):
        apply_plan(PLAN, ex, tmp_path / "j", yes=False, console=True)


class _Crash(Exception):
    pass


class CrashingExecutor(SimulatorExecutor):
    """Dies (like a killed process) right after the action of one step ran, before its verification."""

    def __init__(self, sim: Simulator, crash_after: int) -> None:
        super().__init__(sim)
        self.crash_after = crash_after
        self.actions: list[int] = []

    def run(self, step: Step, phase: Phase) -> Outcome:
        out = super().run(step, phase)
        if phase == "action":
            self.actions.append(step.id)
            if step.id == self.crash_after:
                raise _Crash
        return out


def test_rerun_with_the_same_journal_resumes_after_the_last_completed_step(tmp_path: Path) -> None:
    sim = Simulator.from_snapshot(HOST)
    crashing = CrashingExecutor(sim, crash_after=10)  # Remove-VMSwitch ran, then the process died
    with pytest.raises(_Crash):
        apply_plan(PLAN, crashing, tmp_path / "j", yes=True, console=True)
    st = journal_state(tmp_path / "j")
    assert st.done == list(range(1, 10)) and st.interrupted == 10
    again = CrashingExecutor(sim, crash_after=-1)
    res = apply_plan(PLAN, again, tmp_path / "j", yes=True, console=True)
    assert res.status == "completed" and res.resumed_after == 9
    assert 10 not in again.actions and again.actions[0] == 11  # step 10 verified as done, not re-run
    assert apply_plan(PLAN, again, tmp_path / "j", yes=True, console=True).status == "already-applied"


def test_rollback_journal_undoes_a_finished_run_once(tmp_path: Path) -> None:
    sim, ex = _sim()
    start = sim.signature()
    apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)
    dry = rollback_journal(tmp_path / "j", ex, yes=False)
    assert dry.status == "dry-run" and dry.steps[0].command.startswith("Set-VMNetworkAdapter -VMName 'relay-08'")
    assert sim.signature() != start
    res = rollback_journal(tmp_path / "j", ex, yes=True)
    assert res.status == "rolled-back" and sim.signature() == start
    assert rollback_journal(tmp_path / "j", ex, yes=True).status == "nothing-to-undo"
    with pytest.raises(InputError, match="ended rolled-back"):
        apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)


def test_rollback_of_a_run_broken_mid_way(tmp_path: Path) -> None:
    sim = Simulator.from_snapshot(HOST)
    start = sim.signature()
    with pytest.raises(_Crash):
        apply_plan(PLAN, CrashingExecutor(sim, crash_after=12), tmp_path / "j", yes=True, console=True)
    res = rollback_journal(tmp_path / "j", SimulatorExecutor(sim), yes=True)
    assert res.undone[0] == 12 and sim.signature() == start


def test_journal_of_another_plan_is_refused(tmp_path: Path) -> None:
    _, ex = _sim()
    other: Plan = make_plan(HOST, None)
    apply_plan(other, ex, tmp_path / "j", yes=True, console=True)
    with pytest.raises(InputError, match="journal belongs to plan"):
        apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)


def test_journal_lines_are_json_and_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    _, ex = _sim()
    apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)
    lines = (tmp_path / "j").read_text().splitlines()
    assert all(json.loads(line)["time"] for line in lines)
    with (tmp_path / "j").open("a") as fh:
        fh.write('{"event": "undo-st')
    assert journal_state(tmp_path / "j").status == "completed"


def test_winrm_executor_reports_an_unreachable_host_in_one_line() -> None:
    """Real pypsrp against a closed port on loopback: UnreachableError (exit 3), one line, no password in it."""
    import socket

    from iovkit.apply.executors import WinRMExecutor
    from iovkit.errors import UnreachableError
    from iovkit.sources import RemoteTarget, collect_remote

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = RemoteTarget(host="127.0.0.1", port=port, user="admin", auth="ntlm")
    ex = WinRMExecutor(target, "s3cret-pw", lambda: collect_remote(target, "s3cret-pw"))
    with pytest.raises(UnreachableError) as info:
        ex.run(PLAN.steps[0], "action")
    msg = str(info.value)
    assert info.value.exit_code == ExitCode.UNREACHABLE and msg.startswith("127.0.0.1: ")
    assert "\n" not in msg and "s3cret-pw" not in msg


class LosingExecutor(SimulatorExecutor):
    """The connection to the host drops when step `lose_at` is about to run."""

    def __init__(self, sim: Simulator, lose_at: int) -> None:
        super().__init__(sim)
        self.lose_at = lose_at

    def run(self, step: Step, phase: Phase) -> Outcome:
        from iovkit.errors import UnreachableError

        if step.id == self.lose_at:
            raise UnreachableError("HV-RELAY-01: ConnectionError: connection reset")
        return super().run(step, phase)


def test_lost_connection_is_journaled_and_the_run_resumes(tmp_path: Path) -> None:
    from iovkit.errors import UnreachableError

    sim = Simulator.from_snapshot(HOST)
    with pytest.raises(UnreachableError, match=r"4 step\(s\) done: re-run apply with the same --journal"):
        apply_plan(PLAN, LosingExecutor(sim, lose_at=5), tmp_path / "j", yes=True, console=True)
    assert read_events(tmp_path / "j")[-1]["event"] == "interrupted"
    res = apply_plan(PLAN, SimulatorExecutor(sim), tmp_path / "j", yes=True, console=True)
    assert res.status == "completed" and res.resumed_after == 4
    assert sum(1 for a in sim.to_snapshot().vm_adapters if a.vf_data_path_active) == 8


def test_a_plan_with_blockers_is_not_applied(tmp_path: Path) -> None:
    snap = i350_host()
    snap.iov.supported = False
    blocked = make_plan(snap, None)
    with pytest.raises(InputError, match="blockers"):
        apply_plan(blocked, SimulatorExecutor(Simulator.from_snapshot(snap)), tmp_path / "j", yes=False, console=True)


def test_rollback_refuses_a_journal_from_another_host(tmp_path: Path) -> None:
    _, ex = _sim()
    apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=True)
    other = Simulator.from_snapshot(i350_host(name="HV-OTHER"))
    with pytest.raises(InputError, match="journal is for host 'HV-RELAY-01'"):
        rollback_journal(tmp_path / "j", SimulatorExecutor(other), yes=True)
    assert other.signature() == Simulator.from_snapshot(i350_host(name="HV-OTHER")).signature()
