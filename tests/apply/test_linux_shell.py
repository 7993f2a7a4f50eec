"""The Linux sriov_numvfs steps run through bash on a sysfs tree built by the test (--root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iovkit.apply.engine import StepFailed, apply_plan, rollback_journal
from iovkit.apply.executors import ShellExecutor
from iovkit.apply.journal import read_events
from iovkit.errors import InputError
from iovkit.plan import make_plan
from iovkit.plan.model import Plan, SetNumVfsStep
from tests.fixtures.hosts import linux_host


def _tree(root: Path, pf: str, numvfs: int, total: int = 8) -> Path:
    dev = root / "sys/class/net" / pf / "device"
    dev.mkdir(parents=True)
    (dev / "sriov_totalvfs").write_text(f"{total}\n")
    (dev / "sriov_numvfs").write_text(f"{numvfs}\n")
    return dev / "sriov_numvfs"


def _numvfs_plan(steps: list[SetNumVfsStep]) -> Plan:
    plan = make_plan(linux_host(), None)
    for i, s in enumerate(steps, start=1):
        s.id = i
    plan.steps = list(steps)
    plan.plan_id = plan.compute_id()
    return plan


def test_numvfs_goes_through_zero_and_rolls_back(tmp_path: Path) -> None:
    f = _tree(tmp_path, "enp3s0f0", 2)
    plan = _numvfs_plan([SetNumVfsStep(pf="enp3s0f0", num_vfs=4, old_num_vfs=2)])
    ex = ShellExecutor(tmp_path)
    res = apply_plan(plan, ex, tmp_path / "j", yes=True, console=False)
    assert res.status == "completed" and f.read_text().strip() == "4"
    end = next(e for e in read_events(tmp_path / "j") if e["event"] == "step-end")
    assert end["output"] == "sriov_numvfs enp3s0f0: 2 -> 0 -> 4"
    rollback_journal(tmp_path / "j", ex, yes=True)
    assert f.read_text().strip() == "2"


def test_verification_failure_rolls_back(tmp_path: Path) -> None:
    """A PF that takes the write but does not read back the count (like a driver that enabled fewer VFs):
    its sriov_numvfs is a symlink to /dev/null, which accepts writes and reads back empty."""
    a = _tree(tmp_path, "enp3s0f0", 0)
    dev = tmp_path / "sys/class/net/enp5s0f0/device"
    dev.mkdir(parents=True)
    (dev / "sriov_numvfs").symlink_to("/dev/null")
    plan = _numvfs_plan(
        [SetNumVfsStep(pf="enp3s0f0", num_vfs=3, old_num_vfs=0), SetNumVfsStep(pf="enp5s0f0", num_vfs=3, old_num_vfs=0)]
    )
    ex = ShellExecutor(tmp_path)
    with pytest.raises(StepFailed, match=r"step 2 .*verification failed"):
        apply_plan(plan, ex, tmp_path / "j", yes=True, console=False)
    assert a.read_text().strip() == "0"
    ends = [(e["step"], e["result"]) for e in read_events(tmp_path / "j") if e["event"] in ("step-end", "undo-end")]
    assert ends == [(1, "ok"), (2, "failed"), (2, "ok"), (1, "ok")]


def test_stale_numvfs_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path, "enp3s0f0", 3)
    plan = _numvfs_plan([SetNumVfsStep(pf="enp3s0f0", num_vfs=4, old_num_vfs=2)])
    with pytest.raises(InputError, match="stale snapshot: enp3s0f0 sriov_numvfs is 3"):
        apply_plan(plan, ShellExecutor(tmp_path), tmp_path / "j", yes=False, console=False)


def test_ip_link_steps_are_not_run_against_a_tree(tmp_path: Path) -> None:
    _tree(tmp_path, "enp3s0f0", 0)
    plan = make_plan(linux_host(), None)
    with pytest.raises(StepFailed, match=r"step 2 .*cannot act on --root"):
        apply_plan(plan, ShellExecutor(tmp_path), tmp_path / "j", yes=True, console=False)
    assert (tmp_path / "sys/class/net/enp3s0f0/device/sriov_numvfs").read_text().strip() == "0"


def test_cli_refuses_a_root_that_is_no_tree_even_for_a_dry_run(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(make_plan(linux_host(), None).to_json())
    r = cli("apply", str(plan_file), "--executor", "shell", "--root", str(tmp_path / "nonexistent"))
    assert r.code == 2 and "nonexistent" in r.err and "--root" in r.err and r.err.count("\n") == 1
