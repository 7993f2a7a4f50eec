"""Plans from partial input (issue 13 items 5 and 6): a switch known only by its NIC's description, stale `#2`
descriptions, a switch without IOV and no VM adapter in scope, VM adapters not in the input, and the VF queue
pairs each VM gets. Inputs are pasted Format-List text and the shipped examples."""

from __future__ import annotations

from iovkit.plan import make_plan, plan_summary
from iovkit.plan.model import CreateSwitchStep, RemoveSwitchStep, SetIovStep
from iovkit.plan.render import render_powershell
from iovkit.policy import AdapterSelector, Policy
from iovkit.sources import load_example
from iovkit.sources.hyperv.formatlist import snapshot_from_formatlist_text

I350 = "Intel(R) Ethernet Server Adapter I350-T2"
X710 = "Intel(R) Ethernet Controller X710 for 10GbE SFP+"

SWITCH = f"""PS C:\\> Get-VMSwitch | fl Name, SwitchType, AllowManagementOS, NetAdapterInterfaceDescription, IovEnabled

Name                           : External
SwitchType                     : External
AllowManagementOS              : True
NetAdapterInterfaceDescription : {I350}
IovEnabled                     : False
"""

ADAPTERS = """PS C:\\> Get-VMNetworkAdapter -VMName * | fl VMName, Name, SwitchName, MacAddress, IovWeight

VMName     : relay-01
Name       : Network Adapter
SwitchName : External
MacAddress : 00155D010101
IovWeight  : 0
"""

VM = """PS C:\\> Get-VM relay-01 | fl Name, State, ProcessorCount

Name           : relay-01
State          : Running
ProcessorCount : 4
"""


def test_switch_known_by_description_is_rebuilt_on_that_description() -> None:
    snap = snapshot_from_formatlist_text(SWITCH + ADAPTERS + VM, "paste.txt")
    plan = make_plan(snap, None)
    assert plan.blockers == []
    create = next(s for s in plan.steps if isinstance(s, CreateSwitchStep))
    assert create.switch.nics == [I350] and create.switch.by_description and create.switch.iov
    apply_ps, rollback_ps = render_powershell(plan)
    assert f"New-VMSwitch -Name 'External' -NetAdapterInterfaceDescription '{I350}' -EnableIov $true" in apply_ps
    assert f"-NetAdapterInterfaceDescription '{I350}' -EnableIov $false" in rollback_ps
    # the I350's VF has one queue pair whatever is asked (guest.md §5): the summary says what that means
    [alloc] = plan.allocations
    assert (alloc.queue_pairs, alloc.vcpus) == (1, 4)
    text = plan_summary(plan)
    assert "1 queue pair (min(4 vCPUs, Intel I350 per-VF limit 1)): 1 of its 4 vCPUs takes its receive" in text
    assert any("one VF queue pair each" in w for w in plan.warnings)


def test_stale_description_with_the_nics_in_the_input_asks_for_get_netadapter() -> None:
    stale = SWITCH.replace(I350, f"{X710} #2")
    nics = f"""PS C:\\> Get-NetAdapter | fl Name, InterfaceDescription

Name                 : SLOT 3 Port 1
InterfaceDescription : {X710} #39

Name                 : SLOT 3 Port 2
InterfaceDescription : {X710} #40
"""
    plan = make_plan(snapshot_from_formatlist_text(stale + nics + ADAPTERS, "paste.txt"), None)
    assert plan.steps == []
    assert any("Get-NetAdapter | Format-List Name, InterfaceDescription, InterfaceGuid" in b for b in plan.blockers)


def test_switch_without_iov_is_rebuilt_even_with_no_vm_adapter_in_scope() -> None:
    no_vm = """PS C:\\> Get-VMNetworkAdapter -All | fl Name, IsManagementOs, SwitchName, MacAddress

Name           : External
IsManagementOs : True
SwitchName     : External
MacAddress     : A0369F1A2B30
"""
    plan = make_plan(snapshot_from_formatlist_text(SWITCH + no_vm, "paste.txt"), None)
    kinds = [s.kind for s in plan.steps]
    assert plan.blockers == [] and plan.allocations == []
    assert kinds == ["record", "remove-switch", "create-switch"]  # HV-SWITCH-IOV's fix, not a lone "record"
    assert next(s for s in plan.steps if isinstance(s, RemoveSwitchStep)).switch.name == "External"
    assert plan.requires_console  # the management OS is on it


def test_vm_adapters_not_in_the_input_block_a_rebuild_instead_of_stranding_them() -> None:
    plan = make_plan(snapshot_from_formatlist_text(SWITCH, "paste.txt"), None)
    assert plan.steps == []
    assert any("Get-VMNetworkAdapter -All | Format-List *" in b for b in plan.blockers)
    assert any("VM adapters are not in the input" in w for w in plan.warnings)


def test_queue_pairs_default_to_min_vcpus_and_nic_limit_and_policy_wins() -> None:
    ready = make_plan(load_example("hyperv-ready"), None)
    assert {(a.queue_pairs, a.vcpus) for a in ready.allocations} == {(4, 4)}
    sets = [s for s in ready.steps if isinstance(s, SetIovStep)]
    assert sets and all(s.queue_pairs == 4 and s.old_queue_pairs == 1 for s in sets)
    assert "4 queue pairs (min(4 vCPUs, Intel X710 family per-VF limit 16)): 4 of its 4 vCPUs take" in plan_summary(
        ready
    )
    pinned = make_plan(load_example("hyperv-ready"), Policy(adapters=[AdapterSelector(queue_pairs=2)]))
    assert {(a.queue_pairs, a.queue_pairs_why) for a in pinned.allocations} == {(2, "policy")}
