"""The Hyper-V simulator keeps the documented behaviour the switch-over depends on."""

from __future__ import annotations

import pytest

import tests.fixtures.hyperv_bundles as B
from iovkit.apply.simulator import SimError, Simulator
from iovkit.examples import EXAMPLES
from iovkit.fingerprint import fingerprint, first_difference
from iovkit.plan.model import SetIovStep, SwitchSpec
from iovkit.snapshot import HostSnapshot
from iovkit.sources import load_example
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from tests.fixtures.hosts import i350_host, lbfo_host


def _seeds() -> dict[str, HostSnapshot]:
    """Every shipped Hyper-V example and every fixture bundle, in both PowerShell shapes."""
    out = {name: load_example(name) for name in EXAMPLES if name.startswith("hyperv-")}
    for build in (B.i350_bundle, B.firmware_blocked_bundle, B.ready_bundle, B.lbfo_bundle):
        out[f"{build.__name__} (ps7)"] = snapshot_from_bundle(build(), build.__name__)
        out[f"{build.__name__} (ps5.1)"] = snapshot_from_bundle(B.to_ps51(build()), build.__name__)
    out["i350_host"], out["lbfo_host"] = i350_host(), lbfo_host()
    return out


SEEDS = _seeds()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_untouched_simulated_host_recollects_to_its_snapshot(name: str) -> None:
    snap = SEEDS[name]
    again = Simulator.from_snapshot(snap).to_snapshot()
    assert first_difference(snap, again) is None
    assert fingerprint(again) == fingerprint(snap)


def test_seeded_vfs_keep_their_port_index_and_mac() -> None:
    sim = Simulator.from_snapshot(load_example("hyperv-ready"))
    vfs = {(v.pf, v.index): (v.vm, v.mac) for v in sim.to_snapshot().vfs}
    # fast-03's VF is on the second SET member in the capture; a re-allocation would put it on Port 1 index 2
    assert vfs == {
        ("SLOT 3 Port 1", 0): ("fast-01", "00155D020101"),
        ("SLOT 3 Port 1", 1): ("fast-02", "00155D020102"),
        ("SLOT 3 Port 2", 0): ("fast-03", "00155D020103"),
    }


def test_a_vf_is_released_when_its_adapter_stops_asking_and_handed_out_again() -> None:
    sim = Simulator.from_snapshot(load_example("hyperv-ready"))
    step = SetIovStep(
        id=1,
        vm="fast-01",
        adapter="Network Adapter",
        iov_weight=0,
        queue_pairs=1,
        old_iov_weight=100,
        old_queue_pairs=1,
    )
    sim.execute(step, "action")
    snap = sim.to_snapshot()
    assert {v.vm for v in snap.vfs} == {"fast-02", "fast-03"}
    fast01 = next(a for a in snap.vm_adapters if a.vm_name == "fast-01")
    assert fast01.vf_data_path_active is False and fast01.iov_usage == 0
    sim.execute(step, "undo")  # back to the old weight: it gets the first free VF, with its own MAC
    vfs = {(v.pf, v.index): (v.vm, v.mac) for v in sim.to_snapshot().vfs}
    assert vfs[("SLOT 3 Port 1", 0)] == ("fast-01", "00155D020101") and len(vfs) == 3


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
