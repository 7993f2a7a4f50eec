"""The Linux/libvirt plan: sriov_numvfs through 0, VF settings, hostdev interfaces."""

from __future__ import annotations

from iovkit.plan import make_plan, plan_summary
from iovkit.plan.model import AttachHostdevStep, SetNumVfsStep, VfSettingsStep
from iovkit.plan.render import sh_phase
from iovkit.policy import AdapterSelector, Policy
from iovkit.snapshot import VirtualFunction
from tests.fixtures.hosts import linux_host


def test_three_domains_get_vfs_0_to_2() -> None:
    plan = make_plan(linux_host(), None)
    assert [(a.vm, a.vf) for a in plan.allocations] == [("relay-1", 0), ("relay-2", 1), ("relay-3", 2)]
    numvfs = [s for s in plan.steps if isinstance(s, SetNumVfsStep)]
    assert [(s.pf, s.old_num_vfs, s.num_vfs) for s in numvfs] == [("enp3s0f0", 0, 3)]
    vf = [s for s in plan.steps if isinstance(s, VfSettingsStep)]
    assert sh_phase(vf[0], "action") == (
        "ip link set dev enp3s0f0 vf 0 mac 52:54:00:00:00:01 spoofchk on trust off state auto"
    )
    att = [s for s in plan.steps if isinstance(s, AttachHostdevStep)]
    assert [(s.domain, s.vf, s.mac) for s in att] == [
        ("relay-1", 0, "52:54:00:00:00:01"),
        ("relay-2", 1, "52:54:00:00:00:02"),
        ("relay-3", 2, "52:54:00:00:00:03"),
    ]
    assert "virsh attach-device relay-1" in sh_phase(att[0], "action")
    summary = plan_summary(plan)  # a libvirt VF has no Hyper-V IovWeight
    assert "IovWeight" not in summary and "relay-1/" in summary and "hostdev" in summary


def test_changing_numvfs_while_vfs_are_in_use_is_a_blocker() -> None:
    snap = linux_host()
    snap.nics[0].vfs_configured = 1
    snap.vfs = [VirtualFunction(pf="enp3s0f0", index=0, vm="db-1")]
    plan = make_plan(snap, None)
    assert plan.steps == []
    assert "1 -> 0 -> 4" in plan.blockers[0] and "db-1" in plan.blockers[0]


def test_more_adapters_than_vfs_are_named() -> None:
    snap = linux_host()
    snap.nics[0].vfs_total = 2
    plan = make_plan(snap, Policy(adapters=[AdapterSelector(vm="relay-3"), AdapterSelector(vm="*")]))
    assert [a.vm for a in plan.allocations] == ["relay-3", "relay-1"]
    assert [u.vm for u in plan.unfit] == ["relay-2"]


def test_example_host_uses_free_vfs_off_the_bond_and_keeps_existing_hostdevs() -> None:
    from iovkit.sources import load_example

    plan = make_plan(load_example("linux-cx5"), None)
    # The ConnectX-5 port has created, unassigned VFs: use them rather than re-sizing a bonded I350 port.
    assert {a.nic for a in plan.allocations} == {"ens1f0np0"}
    assert not any(isinstance(s, SetNumVfsStep) for s in plan.steps)
    # relay1 and relay2 already have a VF each; their other interfaces get no second one.
    assert {a.vm for a in plan.allocations} == {"build-vm"}
