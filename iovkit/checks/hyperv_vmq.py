"""HV-VMQ: VMQ as it really is (issue 13 item 4; field-notes "VMQ, vRSS and queues").

Get-NetAdapterVmq's Enabled is not proof: below 10 Gbps the Hyper-V switch does not use VMQ unless the VMSMP
registry value BelowTenGigVmqEnabled is 1, and Get-NetAdapterVmqQueue shows whether the adapters on the switch
really got queues."""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    current_rule,
    not_applicable,
    ps,
    rule,
    unknown,
)
from iovkit.checks.hyperv import (
    COLLECT_ADAPTERS,
    COLLECT_NETADAPTER,
    _a_scope,
    _idx,
    _nic_scope,
    _no_switch,
    _set_adapter,
    _sw_scope,
    external_switches,
)
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot, PhysicalNic, VmAdapter

TEN_GIG = 10_000_000_000
SET_BELOW_TEN_GIG = (
    "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Services\\VMSMP\\Parameters "
    "-Name BelowTenGigVmqEnabled -Value 1 -Type DWord"
)


def _speed(bps: int) -> str:
    return f"{bps / 1e9:g} Gbps" if bps >= 1_000_000_000 else f"{bps / 1e6:g} Mbps"


def _vm_queues(snap: HostSnapshot, nic: PhysicalNic, staying: list[VmAdapter]) -> list[str]:
    """Get-NetAdapterVmqQueue rows of this NIC that serve an adapter staying on the switch (a queue other than
    the default queue 0, matched by MAC, else by VmFriendlyName: a VM's name, or the host's for its vNICs)."""
    macs = {a.mac for a in staying if a.mac}
    names = {a.vm_name for a in staying if a.vm_name}
    if any(a.is_management_os for a in staying) and snap.host.name:
        names.add(snap.host.name)
    out = []
    for q in snap.vmq_queues:
        if q.nic != nic.name or q.queue_id == 0:
            continue
        if (q.mac and q.mac in macs) or (q.vm and q.vm in names):
            out.append(f"queue {q.queue_id} -> {q.vm or q.mac} on processor {q.processor or '?'}")
    return out


def _below_ten_gig(snap: HostSnapshot, nic: PhysicalNic) -> str:
    value = snap.vmq.below_ten_gig_vmq_enabled
    state = {0: "0, the system default", 2: "2, explicitly off"}.get(value or 0, str(value))
    return (
        f"its link is {_speed(nic.link_speed_bps or 0)} and the Hyper-V switch uses VMQ below 10 Gbps only when "
        f"BelowTenGigVmqEnabled is 1 (here {state}), whatever Get-NetAdapterVmq says. To use VMQ anyway: "
        f"{SET_BELOW_TEN_GIG}, then restart the host; on some 1 GbE drivers VMQ made things slower, so measure "
        "(iovkit bench) before and after. SR-IOV takes the relay VMs off the switch instead"
    )


@rule(
    "HV-VMQ",
    "VMQ really in use for traffic that stays on the switch",
    platform="hyperv",
    severity="low",
    rationale="Without VMQ every receive interrupt of a port lands on one core that does all switching. "
    "Get-NetAdapterVmq's Enabled is not proof: below 10 Gbps the switch does not use VMQ unless "
    "BelowTenGigVmqEnabled is set; Get-NetAdapterVmqQueue shows whether VM adapters got queues.",
    remediation="PowerShell: `Enable-NetAdapterVmq -Name <nic>`, `Set-VMNetworkAdapter ... -VmqWeight 100`; below "
    "10 Gbps the VMSMP registry value `BelowTenGigVmqEnabled` = 1 and a restart.",
    impact="Without VMQ the traffic that stays on the switch is handled on one core: that core saturates first.",
)
def vmq(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    switches = external_switches(snap, policy)
    if not switches:
        yield _no_switch(snap, rid)
        return
    for sw in switches:
        on_switch = [a for a in snap.vm_adapters if a.switch_name == sw.name]
        staying = [a for a in on_switch if a.vf_data_path_active is not True]
        if not snap.has("vm_adapters"):
            yield unknown(rid, _sw_scope(sw), ["vm_adapters"], collect=COLLECT_ADAPTERS)
            continue
        if not on_switch:
            yield not_applicable(rid, _sw_scope(sw), "the input lists no adapter on this switch")
            continue
        if not staying:
            yield not_applicable(rid, _sw_scope(sw), f"all {len(on_switch)} adapter(s) listed on this switch use a VF")
            continue
        nics = snap.switch_nics(sw)
        if not nics:
            yield unknown(rid, _sw_scope(sw), ["nics"], collect=COLLECT_NETADAPTER)
        for n in nics:
            j = snap.nics.index(n)
            ev: Ev = {
                f"nics[{j}].vmq_enabled": n.vmq_enabled,
                f"nics[{j}].link_speed_bps": n.link_speed_bps,
                "vmq.below_ten_gig_vmq_enabled": snap.vmq.below_ten_gig_vmq_enabled,
                "adapters_on_switch": len(staying),
            }
            slow = n.link_speed_bps is not None and n.link_speed_bps < TEN_GIG
            if n.vmq_enabled is None:
                yield unknown(
                    rid,
                    _nic_scope(n),
                    [f"nics[{j}].vmq_enabled"],
                    collect=f"Get-NetAdapterVmq -Name {ps(n.name)} | Format-List *",
                )
            elif not n.vmq_enabled:
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    f"VMQ off on a NIC of {sw.name!r} while {len(staying)} adapter(s) stay on the switch",
                    ev,
                    fix=f"Enable-NetAdapterVmq -Name {ps(n.name)}",
                )
            elif snap.has("vmq_queues"):
                used = _vm_queues(snap, n, staying)
                # A SET team places each vNIC's queue on one member: the team's queues count for every member.
                team_used = [q for m in nics if m is not n for q in _vm_queues(snap, m, staying)]
                ev["vmq_queues"] = used or team_used
                if used or team_used:
                    where = "" if used else f" (on {len(nics) - 1} other team member(s) of the switch)"
                    yield Finding(
                        rid,
                        "pass",
                        _nic_scope(n),
                        f"VMQ in use: {len(used or team_used)} queue(s) serve adapters on the switch{where}",
                        ev,
                    )
                else:
                    why = _below_ten_gig(snap, n) if slow else "check the NIC's VMQ processors and queue count"
                    yield Finding(
                        rid,
                        "warn",
                        _nic_scope(n),
                        "VMQ is enabled but not in use: Get-NetAdapterVmqQueue shows no queue for an adapter on the "
                        "switch; " + why,
                        ev,
                        fix=SET_BELOW_TEN_GIG if slow else f"Get-NetAdapterVmq -Name {ps(n.name)} | Format-List *",
                    )
            elif slow and snap.vmq.below_ten_gig_vmq_enabled in (0, 2):
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    "VMQ is enabled but not in use: " + _below_ten_gig(snap, n),
                    ev,
                    fix=SET_BELOW_TEN_GIG,
                )
            elif not slow and n.link_speed_bps is not None and snap.vmq.ten_gig_vmq_enabled == 2:
                yield Finding(
                    rid,
                    "warn",
                    _nic_scope(n),
                    "VMQ is enabled on the NIC but TenGigVmqEnabled is 2 (explicitly off): the switch does not use it",
                    ev,
                    fix=SET_BELOW_TEN_GIG.replace("BelowTenGigVmqEnabled", "TenGigVmqEnabled"),
                )
            else:
                missing = ["vmq_queues"] + ([f"nics[{j}].link_speed_bps"] if n.link_speed_bps is None else [])
                if slow:
                    missing.append("vmq.below_ten_gig_vmq_enabled")
                yield unknown(
                    rid,
                    _nic_scope(n),
                    missing,
                    "VMQ is enabled on the NIC; whether the switch gives VM adapters queues is not in the input",
                    collect=f"Get-NetAdapterVmqQueue -Name {ps(n.name)} | Format-List *",
                )
        for a in staying:
            if a.vmq_weight == 0:
                i = _idx(snap, a)
                yield Finding(
                    rid,
                    "warn",
                    _a_scope(a),
                    "VMQWeight 0: VMQ off for an adapter on the switch",
                    {f"vm_adapters[{i}].vmq_weight": 0},
                    fix=_set_adapter(a, "-VmqWeight 100"),
                )
