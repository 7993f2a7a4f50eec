"""The Hyper-V simulator keeps the documented behaviour the switch-over depends on."""

from __future__ import annotations

import pytest

from iovkit.apply.simulator import SimError, Simulator
from iovkit.fingerprint import fingerprint
from iovkit.plan.model import SwitchSpec
from tests.fixtures.hosts import i350_host, lbfo_host


def test_export_of_an_untouched_host_matches_its_snapshot() -> None:
    snap = i350_host()
    assert fingerprint(Simulator.from_snapshot(snap).to_snapshot()) == fingerprint(snap)


def test_iov_is_fixed_at_creation_and_needs_sriov_on_the_nic() -> None:
    sim = Simulator.from_snapshot(i350_host())
    sim.s.nics[1].sriov_enabled = False
    sim.new_switch(SwitchSpec(name="B", nics=["Ethernet 2"], iov=True))
    sw = sim.to_snapshot().switch("B")
    assert sw is not None and sw.iov_enabled is True and sw.iov_support is False and sw.vf_count == 0
    with pytest.raises(SimError, match="already exists"):
        sim.new_switch(SwitchSpec(name="B", nics=["Ethernet 2"], iov=True))
    with pytest.raises(SimError, match="already bound"):
        sim.new_switch(SwitchSpec(name="C", nics=["Ethernet"], iov=True))


def test_host_without_iov_support_gives_no_vfs() -> None:
    sim = Simulator.from_snapshot(i350_host())
    sim.s.iov_supported = False
    sim.new_switch(SwitchSpec(name="B", nics=["Ethernet 2"], iov=True))
    assert sim.to_snapshot().switch("B").vf_count == 0  # type: ignore[union-attr]


def test_lbfo_team_blocks_iov() -> None:
    sim = Simulator.from_snapshot(lbfo_host())
    sim.remove_switch("External")
    sim.new_switch(SwitchSpec(name="External", nics=["Team1"], iov=True))
    sw = sim.to_snapshot().switch("External")
    assert sw is not None and sw.iov_support is False and sw.vf_count == 0


def test_remove_switch_disconnects_adapters_and_drops_the_management_vnic() -> None:
    sim = Simulator.from_snapshot(i350_host(vms=2))
    sim.remove_switch("External")
    snap = sim.to_snapshot()
    assert [(a.vm_name, a.switch_name, a.connected) for a in snap.vm_adapters] == [
        ("relay-01", None, False),
        ("relay-02", None, False),
    ]
    sim.new_switch(SwitchSpec(name="External", nics=["Ethernet"], iov=True, allow_management_os=True))
    mgmt = [a for a in sim.to_snapshot().vm_adapters if a.is_management_os]
    assert [(a.name, a.switch_name) for a in mgmt] == [("External", "External")]


def test_vf_needs_weight_iov_switch_free_vf_running_vm_and_guest_driver() -> None:
    sim = Simulator.from_snapshot(i350_host())
    sim.remove_switch("External")
    sim.new_switch(SwitchSpec(name="External", nics=["Ethernet"], iov=True))
    for i in range(1, 9):
        sim.connect(f"relay-{i:02d}", "Network Adapter", "External")
    assert sim.vf_assignments() == {}  # IovWeight 0 everywhere
    for a in sim.s.adapters:
        if a.vm:
            a.iov_weight = 100
    sim.s.vms[1].guest_driver = False  # relay-02
    sim.s.vms[2].state = "Off"  # relay-03
    got = sim.vf_assignments()
    assert sorted(vm for vm, _ in got) == ["relay-01", "relay-04", "relay-05", "relay-06", "relay-07", "relay-08"]
    assert sorted(i for _, i in got.values()) == list(range(6))  # NumVFs 6 on "Ethernet": capacity is full
    snap = sim.to_snapshot()
    active = {a.vm_name: (a.iov_usage, a.vf_data_path_active) for a in snap.vm_adapters if a.vm_name}
    assert active["relay-01"] == (1, True) and active["relay-02"] == (0, False)
    assert snap.switch("External").vfs_in_use == 6  # type: ignore[union-attr]


def test_a_non_iov_switch_gives_no_vf_even_with_weight() -> None:
    sim = Simulator.from_snapshot(i350_host(vms=1))
    sim.s.adapters[1].iov_weight = 100
    assert sim.vf_assignments() == {}


def test_state_file_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = Simulator.from_snapshot(i350_host())
    sim.remove_adapter("relay-01", "Network Adapter")
    sim.save(tmp_path / "s.json")
    again = Simulator.load(tmp_path / "s.json")
    assert again.signature() == sim.signature() and again.s.deleted_adapters == 1
