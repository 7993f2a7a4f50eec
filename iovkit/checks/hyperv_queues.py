"""HV-VF-QUEUES: a VF's receive queue pairs, because with a VF vRSS is off (issue 13 item 5).

With a VF attached, receive spreading inside the guest comes only from the VF's own queues (Microsoft's vRSS
documentation; field-notes), so a relay VM whose VF has one queue pair takes every receive interrupt on one
vCPU: the bottleneck moves from root VP 0 into the guest. IovQueuePairsRequested asks; IovQueuePairsAssigned is
what the NIC gave (an I350 VF has one queue pair whatever is asked, guest.md §5).
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import Ev, Finding, current_rule, host_scope, not_applicable, ps, rule, unknown
from iovkit.checks.hyperv import _a_scope, _get_adapter, _idx, _no_adapter, _set_adapter
from iovkit.nics import default_queue_pairs, lookup
from iovkit.policy import Policy, adapters_in_scope
from iovkit.snapshot import HostSnapshot, VmAdapter


def _nic_description(snap: HostSnapshot, a: VmAdapter) -> str | None:
    sw = snap.switch(a.switch_name) if a.switch_name else None
    nics = snap.switch_nics(sw) if sw else []
    if nics:
        return nics[0].description
    return next(iter(sw.net_adapters or []), None) if sw else None


@rule(
    "HV-VF-QUEUES",
    "A busy VM's VF has enough queue pairs to spread its receive interrupts",
    platform="hyperv",
    severity="medium",
    rationale="With a VF, vRSS is off and only the VF's queue pairs spread receive interrupts in the guest; "
    "one queue pair puts a whole relay's receive work on one guest vCPU.",
    remediation="PowerShell: `Set-VMNetworkAdapter ... -IovQueuePairsRequested N` (N = min(vCPUs, the NIC's per-VF "
    "limit)); or hardware: a NIC with more queue pairs per VF.",
    impact="The bottleneck moves from the host's root VP 0 into the guest: one vCPU takes every receive interrupt.",
)
def vf_queues(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    adapters = [a for a in adapters_in_scope(snap, policy) if (a.iov_weight or 0) > 0 or a.vf_data_path_active]
    if not adapters:
        if adapters_in_scope(snap, policy):
            yield not_applicable(rid, host_scope(snap), "no in-scope VM adapter asks for a VF (see HV-VNIC-WEIGHT)")
        else:
            yield _no_adapter(snap, policy, rid, "no VM adapter in scope")
        return
    for a in adapters:
        i = _idx(snap, a)
        vm = snap.vm(a.vm_name) if a.vm_name else None
        vcpus = vm.vcpus if vm else None
        desc = _nic_description(snap, a)
        want, why = default_queue_pairs(vcpus, desc)
        have = a.iov_queue_pairs_assigned if (a.iov_usage or 0) > 0 else None
        asked = a.iov_queue_pairs_requested
        ev: Ev = {
            f"vm_adapters[{i}].iov_queue_pairs_requested": asked,
            f"vm_adapters[{i}].iov_queue_pairs_assigned": a.iov_queue_pairs_assigned,
            f"vm_adapters[{i}].iov_usage": a.iov_usage,
            "vm.vcpus": vcpus,
        }
        pairs = have if have is not None else asked
        if pairs is None:
            yield unknown(
                rid,
                _a_scope(a),
                [f"vm_adapters[{i}].iov_queue_pairs_requested"],
                collect=_get_adapter(a, "IovQueuePairsRequested, IovQueuePairsAssigned, IovUsage"),
            )
            continue
        what = "has" if have is not None else "asks for"
        if vcpus is None:
            if pairs > 1:
                yield Finding(rid, "pass", _a_scope(a), f"the VF {what} {pairs} queue pairs", ev)
            else:
                yield unknown(
                    rid,
                    _a_scope(a),
                    ["vm.vcpus"],
                    f"the VF {what} 1 queue pair; the VM's vCPUs are not in the input",
                    collect=f"Get-VM -Name {ps(a.vm_name or '')} | Format-List Name, ProcessorCount",
                )
            continue
        if pairs >= min(vcpus, 2) or vcpus == 1:
            msg = f"the VF {what} {pairs} queue pair(s): {min(pairs, vcpus)} of {vcpus} vCPUs take receive interrupts"
            if have is not None and asked is not None and asked > have:
                msg += f" (asked for {asked}; the NIC gave {have})"
            yield Finding(rid, "pass", _a_scope(a), msg, ev)
            continue
        model = lookup(desc)
        limit = model.queue_pairs_per_vf if model else None
        text = (
            f"the VF {what} 1 queue pair: every receive interrupt of this VM lands on one of its {vcpus} vCPUs "
            "(vRSS is off with a VF)"
        )
        if limit == 1:
            yield Finding(
                rid,
                "warn",
                _a_scope(a),
                text + f"; a {model.model if model else 'this NIC'} VF has only one ({model.source if model else ''})",
                ev,
                fix="Hardware: a NIC with more queue pairs per VF (Intel X710/E810: up to 16) for this VM, or keep it "
                "on the switch with VMQ/vRSS",
            )
        else:
            yield Finding(
                rid,
                "warn",
                _a_scope(a),
                text + f"; ask for {want} ({why})",
                ev,
                fix=_set_adapter(a, f"-IovQueuePairsRequested {want}"),
            )
