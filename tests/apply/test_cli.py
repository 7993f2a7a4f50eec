"""plan -> apply --executor simulator -> rollback through the CLI, and the one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iovkit.apply.simulator import Simulator
from iovkit.fingerprint import fingerprint
from iovkit.sources import load_example
from tests.fixtures.hosts import i350_host


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    snap = tmp_path / "snap.json"
    snap.write_text(i350_host().to_json())
    policy = tmp_path / "policy.yaml"
    policy.write_text('version: 1\nadapters:\n  - vm: "relay-*"\n    iov_weight: 100\nallow_second_switch: true\n')
    return {
        "snap": snap,
        "policy": policy,
        "plan": tmp_path / "plan.json",
        "sim": tmp_path / "sim.json",
        "journal": tmp_path / "plan.journal.jsonl",
    }


def _one_line_error(r) -> None:  # type: ignore[no-untyped-def]
    assert r.code == 2, r.err
    assert r.err.startswith("iovkit: error: ") and r.err.count("\n") == 1 and "Traceback" not in r.err


def _plan(cli, f: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    r = cli("plan", str(f["snap"]), "--policy", str(f["policy"]), "-o", str(f["plan"]))
    assert r.code == 0, r.err
    assert "does not fit: relay-07/Network Adapter" in r.out and "WARNING: the management OS" in r.out


def test_plan_apply_rollback_end_to_end(cli, files) -> None:  # type: ignore[no-untyped-def]
    _plan(cli, files)
    sim = ["--executor", "simulator", "--sim-state", str(files["sim"])]
    r = cli("apply", str(files["plan"]), *sim, "--yes")
    _one_line_error(r)
    assert "--console" in r.err
    start = Simulator.load(files["sim"]).signature()
    r = cli("apply", str(files["plan"]), *sim)
    assert r.code == 0 and "Dry run: 36 step(s)" in r.out and "needs --console" in r.out.replace("also ", "")
    r = cli("apply", str(files["plan"]), *sim, "--yes", "--console")
    assert r.code == 0, r.err
    assert "Completed 36 step(s)" in r.out
    snap = Simulator.load(files["sim"]).to_snapshot()
    assert sum(1 for a in snap.vm_adapters if a.vf_data_path_active) == 8
    r = cli("rollback", str(files["journal"]), *sim, "--yes")
    assert r.code == 0 and "Rolled back" in r.out
    assert Simulator.load(files["sim"]).signature() == start


def test_failed_step_exits_4_and_rolls_back(cli, files) -> None:  # type: ignore[no-untyped-def]
    _plan(cli, files)
    state = Simulator.from_snapshot(i350_host())
    start = state.signature()
    state.s.fail_step, state.s.fail_phase = 11, "verify"
    state.save(files["sim"])
    r = cli(
        "apply", str(files["plan"]), "--executor", "simulator", "--sim-state", str(files["sim"]), "--yes", "--console"
    )
    assert r.code == 4 and r.err.count("\n") == 1
    assert "step 11 (create switch 'External'" in r.err and "rolled back 11 step(s)" in r.err
    assert Simulator.load(files["sim"]).signature() == start
    last = json.loads(files["journal"].read_text().splitlines()[-1])
    assert last["status"] == "rolled-back" and last["failed_step"] == 11


def test_malformed_policy_is_a_one_line_error(cli, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nadapters:\n  - vm: relay-*\n    iov_weight: 500\n")
    r = cli("plan", str(files["snap"]), "--policy", str(bad))
    _one_line_error(r)
    assert "adapters.0.iov_weight" in r.err and "bad.yaml" in r.err
    bad.write_text("adapters: [\n")
    _one_line_error(cli("plan", str(files["snap"]), "--policy", str(bad)))


def test_plan_for_another_host_is_refused(cli, files) -> None:  # type: ignore[no-untyped-def]
    _plan(cli, files)
    Simulator.from_snapshot(i350_host(name="HV-OTHER")).save(files["sim"])
    r = cli("apply", str(files["plan"]), "--executor", "simulator", "--sim-state", str(files["sim"]))
    _one_line_error(r)
    assert "plan is for host 'HV-RELAY-01', but the live host is 'HV-OTHER'" in r.err


def test_stale_snapshot_is_refused(cli, files) -> None:  # type: ignore[no-untyped-def]
    _plan(cli, files)
    live = i350_host()
    live.vm_adapters[4].switch_name = None  # someone disconnected relay-04 since the snapshot
    Simulator.from_snapshot(live).save(files["sim"])
    r = cli(
        "apply", str(files["plan"]), "--executor", "simulator", "--sim-state", str(files["sim"]), "--yes", "--console"
    )
    _one_line_error(r)
    assert "stale snapshot" in r.err and "relay-04/Network Adapter" in r.err


def test_unknown_executor_and_missing_plan(cli, files) -> None:  # type: ignore[no-untyped-def]
    _plan(cli, files)
    _one_line_error(cli("apply", str(files["plan"]), "--executor", "ssh"))
    _one_line_error(cli("apply", str(files["plan"].with_name("nope.json"))))
    _one_line_error(cli("rollback", str(files["journal"]), "--executor", "simulator", "--sim-state", str(files["sim"])))


def test_apply_on_the_ready_example_then_rollback_restores_the_start(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan, state, journal = tmp_path / "plan.json", tmp_path / "sim.json", tmp_path / "plan.journal.jsonl"
    r = cli("plan", "--example", "hyperv-ready", "-o", str(plan))
    assert r.code == 0, r.err
    sim = ["--executor", "simulator", "--sim-state", str(state)]
    r = cli("apply", str(plan), *sim, "--yes")
    assert r.code == 0, r.err  # was exit 2: "stale snapshot ... vfs 'SLOT 3 Port 1/0' mac"
    assert "Completed 7 step(s), every one verified" in r.out
    after = Simulator.load(state).to_snapshot()
    assert {(v.pf, v.index, v.vm) for v in after.vfs} == {
        ("SLOT 3 Port 1", 0, "fast-01"),
        ("SLOT 3 Port 1", 1, "fast-02"),
        ("SLOT 3 Port 2", 0, "fast-03"),
    }
    assert {a.iov_queue_pairs_requested for a in after.vm_adapters if a.vm_name} == {4}
    r = cli("rollback", str(journal), *sim, "--yes")
    assert r.code == 0 and "Rolled back" in r.out, r.err
    start = load_example("hyperv-ready")
    assert fingerprint(Simulator.load(state).to_snapshot()) == fingerprint(start)
