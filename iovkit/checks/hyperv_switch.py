"""Hyper-V switch rules: no LBFO team under the switch (HV-TEAM), the switch created in IOV mode (HV-SWITCH-IOV).

Reference: hyperv.md §1.2, §3.1. Shared helpers live in checks.hyperv."""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    current_rule,
    host_scope,
    plan_command,
    ps,
    rule,
    unknown,
)
from iovkit.checks.hyperv import (
    BUILD_2016,
    COLLECT_ADAPTERS,
    COLLECT_OS,
    COLLECT_SWITCH,
    _build,
    _lbfo_fix,
    _no_switch,
    _set_team,
    _sw_scope,
    external_switches,
    indexed,
    keep_adapters,
)
from iovkit.checks.reasons import classify_reason
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot


@rule(
    "HV-TEAM",
    "No LBFO team under the switch (SET is fine on 2016+)",
    platform="hyperv",
    severity="high",
    rationale="SR-IOV traffic bypasses the host stack, so an LBFO team cannot carry it; Switch Embedded "
    "Teaming (Server 2016+) is compatible with SR-IOV.",
    remediation="By hand, from the console: remove the switch and the LBFO team, then `New-VMSwitch ... "
    "-EnableEmbeddedTeaming $true -EnableIov $true` over the members. SET needs Windows Server 2016 or newer.",
    impact="A switch on an LBFO team cannot pass VFs: every VM on it stays on the synthetic path.",
)
def team(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    switches = external_switches(snap, policy)
    if not switches:
        yield _no_switch(snap, rid)
        return
    for i, sw in indexed(snap.switches, switches):
        ev: Ev = {
            f"switches[{i}].net_adapters": sw.net_adapters,
            f"switches[{i}].embedded_teaming": sw.embedded_teaming,
        }
        lbfo = snap.lbfo_team(sw)
        if lbfo:
            ev["teams"] = [t.name for t in snap.teams if t.kind == "lbfo"]
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                f"switch is bound to LBFO team {lbfo!r}: SR-IOV is not "
                "supported on LBFO; rebuild it as a SET switch over the team's members (iovkit plan does not "
                "dissolve a team: do it by hand, from the console, then plan the rest)",
                ev,
                fix=_lbfo_fix(snap, sw, lbfo),
            )
        elif _set_team(snap, sw):
            build = _build(snap)
            ev["host.os_build"] = build
            if build is None:
                yield unknown(
                    rid,
                    _sw_scope(sw),
                    ["host.os_version"],
                    "SET switch; OS build not collected (SET with SR-IOV needs Server 2016, build 14393, or newer)",
                    collect=COLLECT_OS,
                )
            elif build >= BUILD_2016:
                yield Finding(rid, "pass", _sw_scope(sw), f"Switch Embedded Teaming on build {build}", ev)
            else:
                yield Finding(
                    rid,
                    "fail",
                    _sw_scope(sw),
                    f"SET reported on build {build} (< 14393)",
                    ev,
                    fix="Upgrade the host to Windows Server 2016 or newer.",
                )
        elif not sw.net_adapters and not sw.net_adapter_names:
            yield unknown(
                rid,
                _sw_scope(sw),
                [f"switches[{i}].net_adapters"],
                collect=f"Get-VMSwitch -Name {ps(sw.name)} | Format-List Name, NetAdapterInterfaceDescriptions",
            )
        else:
            yield Finding(rid, "pass", _sw_scope(sw), "no team under the switch", ev)


@rule(
    "HV-SWITCH-IOV",
    "External switch created in IOV mode",
    platform="hyperv",
    severity="high",
    rationale="IOV can only be chosen when a switch is created; a switch without it must be rebuilt.",
    remediation=(
        "Recreate the switch with `-EnableIov $true`: `iovkit plan` (IOV cannot be turned on later) once the VM "
        "adapters are in the input, else the commands by hand; an LBFO switch first loses its team (HV-TEAM). With "
        "no external switch at all: the `New-VMSwitch ... -EnableIov $true` command."
    ),
    impact=(
        "A switch created without IOV never gives a VF (it cannot be turned on later): its VMs stay on the "
        "synthetic path."
    ),
)
def switch_iov(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    switches = external_switches(snap, policy)
    if not switches:
        undecided = [s.name for s in snap.switches if snap.is_external(s) is None]
        failed = any(e.source == "Get-VMSwitch" for e in snap.errors)
        if not snap.has("switches") or failed:
            yield unknown(rid, host_scope(snap), ["switches"], collect=COLLECT_SWITCH)
        elif undecided:
            yield unknown(
                rid,
                host_scope(snap),
                [f"switches[{snap.switches.index(s)}].switch_type" for s in snap.switches if s.name in undecided],
                f"switch type of {', '.join(map(repr, undecided))} not in the input",
                collect="Get-VMSwitch | Format-List Name, SwitchType, NetAdapterInterfaceDescriptions, IovEnabled",
            )
        else:
            nic = next((n.name for n in snap.nics if n.sriov_support == "Supported"), None)
            yield Finding(
                rid,
                "fail",
                host_scope(snap),
                "no external virtual switch" + (" named by the policy" if policy and policy.switches else ""),
                {"switches": [s.name for s in snap.switches]},
                fix=f"New-VMSwitch -Name 'SRIOV' -NetAdapterName {ps(nic or '<SR-IOV NIC>')} -EnableIov $true "
                "-AllowManagementOS $false",
            )
        return
    for i, sw in indexed(snap.switches, switches):
        ev: Ev = {
            f"switches[{i}].iov_enabled": sw.iov_enabled,
            f"switches[{i}].iov_support": sw.iov_support,
            f"switches[{i}].vf_count": sw.vf_count,
        }
        if sw.iov_enabled is None:
            yield unknown(
                rid,
                _sw_scope(sw),
                [f"switches[{i}].iov_enabled"],
                collect=f"Get-VMSwitch -Name {ps(sw.name)} | Format-List *iov*",
            )
        elif not sw.iov_enabled:
            members = snap.switch_nics(sw)
            by = "-NetAdapterName"
            nics = ", ".join(ps(n.name) for n in members)
            if not nics and sw.net_adapters:  # the input names the NIC only by its description
                by, nics = "-NetAdapterInterfaceDescription", ", ".join(ps(d) for d in sw.net_adapters)
            nics = nics or "<nic>"
            if len(members) > 1:  # an LBFO or SET switch: rebuilt as SET, which works with SR-IOV
                nics += " -EnableEmbeddedTeaming $true"
            lbfo = snap.lbfo_team(sw)
            mgmt = sw.allow_management_os
            mgmt_arg = "" if mgmt is None else f" -AllowManagementOS ${str(mgmt).lower()}"  # New-VMSwitch adds one
            by_hand = keep_adapters(
                sw.name,
                f"Remove-VMSwitch -Name {ps(sw.name)} -Force; "
                f"New-VMSwitch -Name {ps(sw.name)} {by} {nics} -EnableIov $true" + mgmt_arg,
            )
            if lbfo:  # iovkit plan does not dissolve a team (HV-TEAM)
                msg, fix = (
                    "it must be recreated as a SET switch, after the LBFO team is removed",
                    _lbfo_fix(snap, sw, lbfo),
                )
            elif not snap.has("vm_adapters") or sw.allow_management_os is None:
                need, cmd = (
                    ("the VM adapters are", COLLECT_ADAPTERS)
                    if not snap.has("vm_adapters")
                    else ("AllowManagementOS is", COLLECT_SWITCH)
                )
                msg = (
                    f"it must be recreated; `iovkit plan` builds the journaled switch-over once {need} in the "
                    f"input (`{cmd}`); by hand, from the console: {by_hand}"
                )
                fix = by_hand
            else:
                msg = f"it must be recreated (`iovkit plan` builds the journaled switch-over; by hand: {by_hand})"
                fix = plan_command(snap)
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                "switch is not in IOV mode; IOV can only be chosen when a switch is created, so " + msg,
                ev,
                fix=fix,
            )
        elif sw.iov_support is False:
            ev[f"switches[{i}].iov_support_reasons"] = sw.iov_support_reasons
            cls = [classify_reason(r) for r in sw.iov_support_reasons or []]
            text = "; ".join(sw.iov_support_reasons or []) or (
                "reasons not in the input" if sw.iov_support_reasons is None else "no reason given"
            )
            yield Finding(
                rid,
                "fail",
                _sw_scope(sw),
                f"IovEnabled but IovSupport False: {text}",
                ev,
                fix=cls[0].fix if cls else "Get-VMSwitch | Format-List *iov*",
            )
        elif sw.vf_count == 0:
            yield Finding(
                rid,
                "warn",
                _sw_scope(sw),
                "IOV switch offers 0 VFs (SR-IOV off on its NIC?)",
                ev,
                fix="Get-NetAdapterSriov",
            )
        else:
            yield Finding(
                rid,
                "pass",
                _sw_scope(sw),
                "IovEnabled True" + (f", {sw.vf_count} VFs" if sw.vf_count is not None else ""),
                ev,
            )
