"""The Hyper-V plan: allocation by priority within the port's VF count, what does not fit, the runbook order."""

from __future__ import annotations

from pathlib import Path

import pytest

from iovkit.errors import InputError
from iovkit.plan import load_plan, make_plan, plan_summary
from iovkit.plan.model import (
    ConnectStep,
    CreateSwitchStep,
    DisconnectStep,
    EnableSriovStep,
    RemoveSwitchStep,
    SetIovStep,
    VerifyVfStep,
)
from iovkit.policy import AdapterSelector, Policy
from tests.fixtures.hosts import i350_host, lbfo_host


def test_i350_gives_six_vfs_by_priority_and_names_the_two_that_do_not_fit() -> None:
    plan = make_plan(i350_host(), Policy(adapters=[AdapterSelector(vm="relay-*")]))
    assert [a.vm for a in plan.allocations] == [f"relay-{i:02d}" for i in range(1, 7)]
    assert all(a.nic == "Ethernet" and a.switch == "External" for a in plan.allocations)
    assert [(c.nic, c.vfs, c.estimate) for c in plan.capacity] == [("Ethernet", 6, False)]
    assert [u.vm for u in plan.unfit] == ["relay-07", "relay-08"]
    second = [a for a in plan.alternatives if a.kind == "second-switch"]
    assert len(second) == 1 and not second[0].planned and "'Ethernet 2'" in second[0].text
    assert any(a.kind == "vmq-vrss" for a in plan.alternatives)
    text = plan_summary(plan)
    assert "does not fit: relay-07/Network Adapter" in text and "allow_second_switch" in text


def test_second_switch_is_planned_when_the_policy_allows_it() -> None:
    plan = make_plan(i350_host(), Policy(allow_second_switch=True, second_switch_name="SRIOV-2"))
    assert len(plan.allocations) == 8
    moved = {a.vm: a.switch for a in plan.allocations if a.switch == "SRIOV-2"}
    assert moved == {"relay-07": "SRIOV-2", "relay-08": "SRIOV-2"}
    assert all(u.moved_to == "SRIOV-2" for u in plan.unfit)
    created = [s.switch for s in plan.steps if isinstance(s, CreateSwitchStep)]
    assert [(c.name, c.nics, c.iov, c.allow_management_os) for c in created] == [
        ("External", ["Ethernet"], True, True),
        ("SRIOV-2", ["Ethernet 2"], True, False),
    ]
    connects = {(s.vm, s.switch) for s in plan.steps if isinstance(s, ConnectStep)}
    assert ("relay-07", "SRIOV-2") in connects and ("relay-01", "External") in connects


def test_management_os_on_the_rebuilt_switch_warns_and_requires_a_console() -> None:
    plan = make_plan(i350_host(), None)
    assert plan.requires_console
    assert any("management OS" in w and "console" in w and "HV-RELAY-01" in w for w in plan.warnings)
    no_mgmt = i350_host()
    no_mgmt.switches[0].allow_management_os = False
    no_mgmt.vm_adapters = [a for a in no_mgmt.vm_adapters if not a.is_management_os]
    assert not make_plan(no_mgmt, None).requires_console


def test_runbook_order_disconnect_remove_create_reconnect_weight_verify() -> None:
    plan = make_plan(i350_host(), Policy(allow_second_switch=True))
    kinds = [s.kind for s in plan.steps]
    assert kinds[0] == "record"
    last_disconnect = max(i for i, k in enumerate(kinds) if k == "disconnect")
    remove = kinds.index("remove-switch")
    first_create = kinds.index("create-switch")
    first_connect = kinds.index("connect")
    assert last_disconnect < remove < first_create < first_connect
    assert max(i for i, k in enumerate(kinds) if k == "connect") < kinds.index("set-iov") < kinds.index("verify-vf")
    old = next(s.switch for s in plan.steps if isinstance(s, RemoveSwitchStep))
    assert (old.name, old.nics, old.iov, old.allow_management_os) == ("External", ["Ethernet"], False, True)
    disc = [(s.vm, s.switch) for s in plan.steps if isinstance(s, DisconnectStep)]
    assert len(disc) == 8 and {sw for _, sw in disc} == {"External"}
    weights = [s for s in plan.steps if isinstance(s, SetIovStep)]
    assert all((s.old_iov_weight, s.iov_weight) == (0, 100) for s in weights)
    assert len([s for s in plan.steps if isinstance(s, VerifyVfStep)]) == 8
    assert [s.id for s in plan.steps] == list(range(1, len(plan.steps) + 1))


def test_policy_order_is_priority() -> None:
    pol = Policy(adapters=[AdapterSelector(vm="relay-08", iov_weight=50, queue_pairs=2), AdapterSelector(vm="*")])
    plan = make_plan(i350_host(), pol)
    assert plan.allocations[0].vm == "relay-08"
    assert (plan.allocations[0].iov_weight, plan.allocations[0].queue_pairs) == (50, 2)
    assert {u.vm for u in plan.unfit} == {"relay-06", "relay-07"}


def test_nic_with_sriov_off_is_enabled_first_and_catalog_count_is_an_estimate() -> None:
    snap = i350_host()
    snap.nics[0].sriov_enabled = False
    snap.nics[0].vfs_total = None
    plan = make_plan(snap, None)
    assert plan.capacity[0].estimate and plan.capacity[0].vfs == 7 and plan.capacity[0].source.startswith("catalog")
    assert isinstance(plan.steps[1], EnableSriovStep) and plan.steps[1].nic == "Ethernet"
    assert len(plan.allocations) == 7
    assert "(estimate)" in plan_summary(plan)


def test_lbfo_team_under_the_switch_is_a_blocker() -> None:
    plan = make_plan(lbfo_host(), None)
    assert plan.steps == []
    assert any("LBFO" in b and "Team1" in b for b in plan.blockers)


def test_host_without_iov_support_is_a_blocker() -> None:
    snap = i350_host()
    snap.iov.supported = False
    snap.iov.reasons = [
        "The chipset on the system does not do DMA remapping, without which SR-IOV cannot be supported."
    ]
    plan = make_plan(snap, None)
    assert plan.steps == [] and "DMA remapping" in plan.blockers[0]


def test_switch_already_iov_only_sets_weights() -> None:
    snap = i350_host(vms=3)
    sw = snap.switches[0]
    sw.iov_enabled, sw.iov_support, sw.vf_count = True, True, 6
    plan = make_plan(snap, None)
    assert {s.kind for s in plan.steps} == {"record", "set-iov", "verify-vf"}
    assert not plan.requires_console
    assert plan.capacity[0].source == "IovVirtualFunctionCount"


def test_plan_file_round_trip_and_edited_plan_is_refused(tmp_path: Path) -> None:
    plan = make_plan(i350_host(), Policy(allow_second_switch=True))
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    again = load_plan(path)
    assert again.plan_id == plan.plan_id and again.steps == plan.steps
    path.write_text(plan.to_json().replace('"SRIOV-2"', '"Evil"'))
    with pytest.raises(InputError, match="plan_id"):
        load_plan(path)
    path.write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an iovkit plan"):
        load_plan(path)


def test_a_vm_that_is_off_gets_its_weight_but_no_vf_verification() -> None:
    snap = i350_host(vms=3)
    snap.vms[1].state = "Off"
    plan = make_plan(snap, None)
    verified = [s.vm for s in plan.steps if isinstance(s, VerifyVfStep)]
    weighted = [s.vm for s in plan.steps if isinstance(s, SetIovStep)]
    assert verified == ["relay-01", "relay-03"] and weighted == ["relay-01", "relay-02", "relay-03"]
    assert any("relay-02" in w and "Off" in w for w in plan.warnings)


def test_shipped_example_plans_like_the_built_host() -> None:
    """The shipped example `hyperv-i350-no-iov` is the same host as hosts.i350_host()."""
    from iovkit.sources import load_example

    plan = make_plan(load_example("hyperv-i350-no-iov"), Policy(allow_second_switch=True))
    assert len([a for a in plan.allocations if a.switch == "External"]) == 6
    assert {u.vm for u in plan.unfit} == {"relay-07", "relay-08"}
    assert plan.requires_console


def test_set_switch_is_rebuilt_with_its_members_and_their_vfs() -> None:
    from iovkit.snapshot import Team

    snap = i350_host()
    sw = snap.switches[0]
    sw.embedded_teaming = True
    sw.net_adapter_names = ["Ethernet", "Ethernet 2"]
    sw.net_adapters = [n.description or "" for n in snap.nics]
    snap.teams = [Team(name="External", kind="set", members=["Ethernet", "Ethernet 2"])]
    plan = make_plan(snap, None)
    new = next(s.switch for s in plan.steps if isinstance(s, CreateSwitchStep))
    assert (new.nics, new.embedded_teaming, new.iov) == (["Ethernet", "Ethernet 2"], True, True)
    assert sum(c.vfs for c in plan.capacity) == 12 and len(plan.allocations) == 8 and plan.unfit == []


def test_plan_without_output_prints_json_and_summary_to_stderr(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    snap = tmp_path / "snap.json"
    snap.write_text(i350_host().to_json())
    r = cli("plan", str(snap))
    assert r.code == 0
    assert json.loads(r.out)["format"] == "iovkit-plan"
    assert "VFs for 6 adapters" in r.err and "BLOCKER" not in r.err
