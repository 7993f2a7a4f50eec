"""ESXi plan/apply/rollback on the ESXi simulator: paste to verified VFs, a fault at every step, the guards."""

from __future__ import annotations

from pathlib import Path

import pytest

from iovkit.apply.engine import StepFailed, apply_plan, rollback_journal
from iovkit.apply.esxi_sim import EsxiSimulator, SimError
from iovkit.apply.executors import EsxiSimulatorExecutor
from iovkit.errors import InputError
from iovkit.fingerprint import fingerprint
from iovkit.plan import Plan, make_plan
from iovkit.plan.model import EsxAddSriovStep, EsxRebootStep
from iovkit.policy import Policy
from iovkit.sources import load_example

HOST = load_example("esxi-x710")
# relay-02's vmxnet3 on the relay port group moves to a VF of vmnic1, whose max_vfs is 0: VFs, reboot, VM change.
CONVERT = Policy.model_validate({"nics": ["vmnic1"], "adapters": [{"vm": "relay-02", "adapter": "ethernet1"}]})
PLAN = make_plan(HOST, CONVERT)


def _sim() -> tuple[EsxiSimulator, EsxiSimulatorExecutor]:
    sim = EsxiSimulator.from_snapshot(HOST)
    return sim, EsxiSimulatorExecutor(sim)


def test_an_untouched_simulator_reads_back_as_its_snapshot() -> None:
    assert fingerprint(EsxiSimulator.from_snapshot(HOST).to_snapshot()) == fingerprint(HOST)


def test_the_plan_enables_vfs_reboots_in_maintenance_mode_and_keeps_the_old_adapter() -> None:
    kinds = [s.kind for s in PLAN.steps]
    assert kinds == [
        "esx-power",
        "esx-power",
        "esx-maintenance",
        "esx-enable-vfs",
        "esx-reboot",
        "esx-maintenance",
        "esx-memory",
        "esx-disconnect",
        "esx-add-sriov",
        "esx-power",
        "esx-power",
        "esx-verify-vf",
    ]
    enable = PLAN.steps[3]
    assert enable.options == "max_vfs=8,1" and enable.old_options == "max_vfs=8,0"  # type: ignore[union-attr]
    assert PLAN.reboots_host and not PLAN.blockers


def test_paste_to_verified_vf(tmp_path: Path) -> None:
    sim, ex = _sim()
    res = apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=False, reboot=True)
    assert res.status == "completed" and res.done == [s.id for s in PLAN.steps]
    snap = sim.to_snapshot()
    vf = {(v.pf, v.vm) for v in snap.vfs if v.vm}
    assert vf == {("vmnic0", "relay-01"), ("vmnic1", "relay-02")}
    relay02 = next(v for v in snap.esxi.vms if v.name == "relay-02")  # type: ignore[union-attr]
    assert [(a.type, a.present) for a in relay02.adapters] == [("vmxnet3", True), ("vmxnet3", False), ("sriov", True)]
    assert relay02.reserve_all and sim.s.reboots == 1 and sim.s.deleted_adapters == 0


@pytest.mark.parametrize("phase", ["action", "verify"])
def test_a_failure_at_every_step_ends_in_the_starting_state(tmp_path: Path, phase: str) -> None:
    for step in PLAN.steps:
        sim, ex = _sim()
        start = sim.signature()
        sim.s.fail_step, sim.s.fail_phase = step.id, phase  # type: ignore[assignment]
        with pytest.raises(StepFailed) as err:
            apply_plan(PLAN, ex, tmp_path / f"j-{phase}-{step.id}", yes=True, console=False, reboot=True)
        assert err.value.result.status == "rolled-back", f"step {step.id} ({step.kind}) {phase}"
        assert sim.signature() == start, f"step {step.id} ({step.kind}) {phase}"


def test_rollback_of_a_finished_run_reboots_back_to_the_old_vfs(tmp_path: Path) -> None:
    sim, ex = _sim()
    start = sim.signature()
    apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=False, reboot=True)
    assert sim.signature() != start
    with pytest.raises(InputError, match="pass --reboot"):
        rollback_journal(tmp_path / "j", ex, yes=True)
    assert rollback_journal(tmp_path / "j", ex, yes=False).needs_reboot
    res = rollback_journal(tmp_path / "j", ex, yes=True, reboot=True)
    assert res.status == "rolled-back" and sim.signature() == start
    assert sim.s.reboots == 2  # the restored max_vfs only takes effect at a reboot, done in maintenance mode


def test_the_reboot_is_refused_without_reboot_and_dry_run_says_so(tmp_path: Path) -> None:
    sim, ex = _sim()
    start = sim.signature()
    with pytest.raises(InputError, match="pass --reboot"):
        apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=False)
    res = apply_plan(PLAN, ex, tmp_path / "j", yes=False, console=False)
    assert res.status == "dry-run" and res.needs_reboot and sim.signature() == start
    assert any("esxcli system module parameters set -m i40en -p 'max_vfs=8,1'" in s.command for s in res.steps)


def test_documented_refusals() -> None:
    sim, _ = _sim()
    with pytest.raises(SimError, match="not in maintenance mode"):
        sim.reboot()
    with pytest.raises(SimError, match="still powered on"):
        sim.enter_maintenance()
    with pytest.raises(SimError, match=r"should be equal to memsize\(8192\)"):
        sim.power_on("relay-03")
    step = next(s for s in PLAN.steps if isinstance(s, EsxAddSriovStep))
    with pytest.raises(SimError, match="PCI hot-plug cannot be used"):
        sim.execute(step, "action")  # relay-02 is running
    sim.vm("relay-03").locked = True
    sim.port("vmnic0").running = 1  # the one VF is relay-01's
    with pytest.raises(SimError, match=r"No SR-IOV virtual function \(VF\) is available .* \(0000:3b:00.0\)"):
        sim.power_on("relay-03")


def test_a_stale_snapshot_is_refused(tmp_path: Path) -> None:
    sim, ex = _sim()
    sim.s.modules["i40en"] = "max_vfs=8,4"
    with pytest.raises(InputError, match="stale snapshot"):
        apply_plan(PLAN, ex, tmp_path / "j", yes=True, console=False, reboot=True)


def test_without_a_policy_only_the_memory_of_the_stopped_vm_changes() -> None:
    plan = make_plan(HOST, None)
    assert [s.kind for s in plan.steps] == ["esx-memory", "esx-verify-vf"]
    assert not plan.reboots_host
    assert any("relay-03 is poweredOff" in w for w in plan.warnings)


def test_plan_round_trips_and_the_review_script_names_every_step(tmp_path: Path) -> None:
    from iovkit.plan.render_esxi import render_esxi

    again = Plan.model_validate_json(PLAN.to_json())
    assert again.steps == PLAN.steps
    apply_txt, rollback_txt = render_esxi(PLAN)
    assert "esxcli system maintenanceMode set --enable true" in apply_txt
    assert "esxcli system shutdown reboot" in apply_txt
    assert "VirtualSriovEthernetCard" in apply_txt
    assert rollback_txt.index("Undo step 9") < rollback_txt.index("Undo step 4")
    assert any(isinstance(s, EsxRebootStep) for s in again.steps)


def test_cli_plan_apply_rollback_on_the_simulator(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "iovkit", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )

    (tmp_path / "policy.yaml").write_text(
        "version: 1\nnics: [vmnic1]\nadapters:\n  - vm: relay-02\n    adapter: ethernet1\n"
    )
    assert run("plan", "--example", "esxi-x710", "--policy", "policy.yaml", "-o", "plan.json").returncode == 0
    sim = ["--executor", "simulator", "--sim-state", "sim.json"]
    r = run("apply", "plan.json", *sim, "--yes")
    assert r.returncode == 2 and "pass --reboot" in r.stderr
    start = EsxiSimulator.load(tmp_path / "sim.json").signature()
    r = run("apply", "plan.json", *sim, "--yes", "--reboot")
    assert r.returncode == 0 and "Completed 12 step(s)" in r.stdout, r.stderr
    assert EsxiSimulator.load(tmp_path / "sim.json").signature() != start
    r = run("rollback", "plan.journal.jsonl", *sim, "--yes", "--reboot")
    assert r.returncode == 0, r.stderr
    assert EsxiSimulator.load(tmp_path / "sim.json").signature() == start


def _live_host() -> object:
    from iovkit.sources.esxi.live import collect_vsphere
    from iovkit.sources.esxi.target import VsphereTarget
    from tests.fixtures.vsphere_replay import replay_server

    with replay_server(password="secret") as srv:
        return collect_vsphere(
            VsphereTarget.parse(f"http://127.0.0.1:{srv.server_address[1]}", "root", False), "secret"
        )


def test_the_api_path_fault_at_every_step_restores_the_start(tmp_path: Path) -> None:
    from iovkit.snapshot import HostSnapshot

    live = _live_host()
    assert isinstance(live, HostSnapshot)
    plan = make_plan(live, Policy.model_validate({"nics": ["vmnic2"], "adapters": [{"vm": "relay-12"}]}))
    enable = next(s for s in plan.steps if s.kind == "esx-enable-vfs")
    assert enable.method == "api" and enable.pcis == ["0000:1a:00.0"]  # type: ignore[union-attr]
    assert plan.reboots_host  # deviceRebindWithoutRebootSupported is False on this host
    sim = EsxiSimulator.from_snapshot(live)
    assert apply_plan(
        plan, EsxiSimulatorExecutor(sim), tmp_path / "ok", yes=True, console=False, reboot=True
    ).status == ("completed")
    assert sim.port("vmnic2").running == 1 and sim.port("vmnic2").api_enabled is True
    for phase in ("action", "verify"):
        for step in plan.steps:
            sim = EsxiSimulator.from_snapshot(live)
            start = sim.signature()
            sim.s.fail_step, sim.s.fail_phase = step.id, phase  # type: ignore[assignment]
            with pytest.raises(StepFailed):
                apply_plan(
                    plan,
                    EsxiSimulatorExecutor(sim),
                    tmp_path / f"j{phase}{step.id}",
                    yes=True,
                    console=False,
                    reboot=True,
                )
            assert sim.signature() == start, f"step {step.id} ({step.kind}) {phase}"
