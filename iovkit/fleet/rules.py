"""Fleet rules: what only a view of several hosts can see, catalogued like the per-host checks.

Each rule is a small function over one inventory group's collected hosts, registered with its ID, title,
remediation, impact and doc link. A host whose snapshot lacks the fact a rule needs (or that could not be
collected) is named as not collected and never counted as differing: unknown is not false.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from iovkit.fleet.collect import Collected
from iovkit.fleet.model import FleetFinding, FleetStatus
from iovkit.quoting import sh_quote
from iovkit.snapshot import HostSnapshot

DOC = "docs/howto-fleet.md#fleet-rules"
VF_COUNT_COMMANDS = {
    "hyperv": "Get-NetAdapterSriov | Format-List Name,NumVFs,NumAllocatedVFs",
    "linux": "cat /sys/class/net/*/device/sriov_totalvfs",
    "esxi": "esxcli network sriovnic list; esxcli system module parameters list -m DRIVER",
}


@dataclass(frozen=True)
class GroupView:
    """One inventory group: its collected hosts (name -> snapshot) and the ones that were not collected."""

    name: str
    snapshots: dict[str, HostSnapshot]
    not_collected: dict[str, str]  # host -> why (unreachable, failed)
    inventory: str = "INVENTORY"  # as the user gave it, for the commands in fixes

    def fleet_cmd(self, command: str, limit: str) -> str:
        return f"iovkit fleet {command} -i {sh_quote(self.inventory)} --limit {sh_quote(limit)}"


FleetRuleFunc = Callable[[GroupView], Iterable[FleetFinding]]


@dataclass(frozen=True)
class FleetRule:
    id: str
    title: str
    remediation: str
    impact: str
    doc: str
    func: FleetRuleFunc


FLEET_RULES: dict[str, FleetRule] = {}


def fleet_rule(
    rule_id: str, title: str, *, remediation: str, impact: str, doc: str = DOC
) -> Callable[[FleetRuleFunc], FleetRuleFunc]:
    """Register a fleet rule under a stable ID (registration order is report order)."""

    def wrap(func: FleetRuleFunc) -> FleetRuleFunc:
        if rule_id in FLEET_RULES:
            raise ValueError(f"duplicate fleet rule id {rule_id}")
        FLEET_RULES[rule_id] = FleetRule(rule_id, title, remediation, impact, doc, func)
        return func

    return wrap


def groups_of(collected: list[Collected], inventory: str = "INVENTORY") -> list[GroupView]:
    """Every inventory group the hosts belong to; `all` when the inventory has no groups."""
    names: list[str] = []
    for c in collected:
        names.extend(g for g in c.host.groups if g not in names)
    if not names:
        names = ["all"]
    views = []
    for g in names:
        members = [c for c in collected if g == "all" or g in c.host.groups]
        views.append(
            GroupView(
                g,
                {c.host.name: c.snapshot for c in members if c.snapshot is not None},
                {c.host.name: c.status for c in members if c.snapshot is None},
                inventory,
            )
        )
    return views


def run_fleet_rules(collected: list[Collected], inventory: str = "INVENTORY") -> list[FleetFinding]:
    findings: list[FleetFinding] = []
    for view in groups_of(collected, inventory):
        for r in FLEET_RULES.values():
            for f in r.func(view):
                f.title, f.doc = r.title, r.doc
                findings.append(f)
    return findings


# -- helpers -----------------------------------------------------------------------------------------------


def _finding(rule_id: str, status: FleetStatus, view: GroupView, message: str, **kw: object) -> FleetFinding:
    return FleetFinding(id=rule_id, title="", status=status, group=view.name, message=message, **kw)


def _not_collected(view: GroupView, extra: dict[str, str]) -> list[str]:
    """Missing facts, each with the command that collects them."""
    out = [
        f"{h}: not collected ({why}); `{view.fleet_cmd('collect', h)}` says why"
        for h, why in view.not_collected.items()
    ]
    out += [f"{h}: {what}" for h, what in extra.items()]
    return out


def _too_few(
    rid: str, view: GroupView, known: Mapping[str, object], missing: dict[str, str], what: str
) -> FleetFinding:
    """Fewer than two hosts to compare: unknown when some were not seen, else not applicable."""
    unseen = bool(missing) or bool(view.not_collected)
    return _finding(
        rid,
        "unknown" if unseen else "not-applicable",
        view,
        f"{len(known)} {what}: nothing to compare" + (" (the others were not collected)" if unseen else ""),
        hosts=sorted(known),
        missing=_not_collected(view, missing),
    )


def _hyperv(view: GroupView) -> dict[str, HostSnapshot]:
    return {h: s for h, s in view.snapshots.items() if s.host.platform == "hyperv" and not s.host.is_vm_guest}


def _switch_facts_missing(snap: HostSnapshot) -> bool:
    """Get-VMSwitch was not in the input (a partial capture) or not readable, or IovEnabled is absent."""
    if not snap.has("switches") or snap.read("Get-VMSwitch") is False:
        return True
    if any(e.source == "Get-VMSwitch" for e in snap.errors):
        return True
    return any(s.iov_enabled is None for s in snap.external_switches())


def iov_switches(snap: HostSnapshot) -> list[str]:
    return sorted(s.name for s in snap.external_switches() if s.iov_enabled)


def lbfo_team(snap: HostSnapshot) -> str | None:
    """The LBFO team an external switch is bound to, if any (the snapshot's own query, per switch)."""
    return next((t for t in (snap.lbfo_team(sw) for sw in snap.external_switches()) if t), None)


# -- the rules ---------------------------------------------------------------------------------------------


@fleet_rule(
    "FLEET-SWITCH-NAME",
    "Every Hyper-V host of a group has the same one IOV switch name",
    remediation="Rename-VMSwitch -Name 'OLD' -NewName 'NAME' on the hosts that differ (connected adapters stay "
    "connected); a host without an IOV switch needs `iovkit fleet plan -i INVENTORY --limit HOST`",
    impact="SCVMM placement and live migration look a VM's switch up by name: a VM that moves to a host "
    "without that IOV switch name fails to place or loses its VF; a second IOV switch makes placement harder",
)
def switch_names(view: GroupView) -> Iterable[FleetFinding]:
    hosts = _hyperv(view)
    missing = {
        h: "IOV switch facts not collected (Get-VMSwitch | Format-List Name,SwitchType,IovEnabled)"
        for h, s in hosts.items()
        if _switch_facts_missing(s)
    }
    known = {h: iov_switches(s) for h, s in hosts.items() if h not in missing}
    rid = "FLEET-SWITCH-NAME"
    if not hosts:
        return []
    if len(known) < 2:
        return [_too_few(rid, view, known, missing, "Hyper-V host(s) with known IOV switch facts")]
    if not any(known.values()):
        return [
            _finding(
                rid,
                "not-applicable",
                view,
                "no Hyper-V host of the group has an IOV switch",
                hosts=sorted(known),
                missing=_not_collected(view, missing),
            )
        ]
    counts = Counter(name for names in known.values() for name in names)
    target = counts.most_common(1)[0][0]
    odd = {h: names for h, names in known.items() if names != [target]}
    evidence = {h: names for h, names in known.items()}
    if not odd:
        return [
            _finding(
                rid,
                "pass",
                view,
                f"every host has one IOV switch named {target!r}",
                hosts=sorted(known),
                evidence=evidence,
                missing=_not_collected(view, missing),
            )
        ]
    parts, fixes = [], []
    for h, names in odd.items():
        if not names:
            parts.append(f"{h} has none")
            fixes.append(view.fleet_cmd("plan", h))
        elif target not in names and len(names) == 1:
            parts.append(f"{h} has {names[0]!r}")
            fixes.append(f"on {h}: Rename-VMSwitch -Name '{names[0]}' -NewName '{target}'")
        else:
            parts.append(f"{h} has {len(names)}: {', '.join(repr(n) for n in names)}")
    status: FleetStatus = "fail" if any(target not in names for names in odd.values()) else "warn"
    return [
        _finding(
            rid,
            status,
            view,
            f"IOV switch names differ in group {view.name!r}: {target!r} on "
            + ", ".join(sorted(h for h, names in known.items() if target in names))
            + "; "
            + "; ".join(parts),
            hosts=sorted(odd),
            fix="; ".join(fixes) or None,
            evidence=evidence,
            missing=_not_collected(view, missing),
        )
    ]


@fleet_rule(
    "FLEET-VF-CAPACITY",
    "The hosts of a group offer the same number of VFs",
    remediation="Place VMs that need a VF by the VFs free column of `iovkit fleet check`, or give the group the same "
    "SR-IOV NICs",
    impact="A VM that migrates to a host with fewer VFs free may get none and fall back to the synthetic path "
    "through the virtual switch, the bottleneck SR-IOV removed",
)
def vf_capacity(view: GroupView) -> Iterable[FleetFinding]:
    rid = "FLEET-VF-CAPACITY"
    totals: dict[str, int] = {}
    missing: dict[str, str] = {}
    for h, s in view.snapshots.items():
        if s.host.is_vm_guest:
            continue
        total, _used = s.vf_counts()
        if total is None:
            missing[h] = (
                f"VF counts not collected ({VF_COUNT_COMMANDS.get(s.host.platform, VF_COUNT_COMMANDS['linux'])})"
            )
        else:
            totals[h] = total
    if len(totals) < 2:
        if not totals and not missing:
            return []
        return [
            _finding(
                rid,
                "unknown" if missing or view.not_collected else "not-applicable",
                view,
                "fewer than two hosts of the group have known VF counts",
                hosts=sorted(totals),
                evidence=dict(totals),
                missing=_not_collected(view, missing),
            )
        ]
    if len(set(totals.values())) == 1:
        value = next(iter(totals.values()))
        return [
            _finding(
                rid,
                "pass",
                view,
                f"every host offers {value} VF(s)",
                hosts=sorted(totals),
                evidence=dict(totals),
                missing=_not_collected(view, missing),
            )
        ]
    shown = ", ".join(f"{h} {n}" for h, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
    low = min(totals.values())
    return [
        _finding(
            rid,
            "warn",
            view,
            f"VF capacity differs in group {view.name!r}: {shown}",
            hosts=sorted(h for h, n in totals.items() if n == low),
            evidence=dict(totals),
            fix=f"place VF-backed VMs by the VFs free of `{view.fleet_cmd('check', view.name)}`",
            missing=_not_collected(view, missing),
        )
    ]


@fleet_rule(
    "FLEET-LBFO",
    "No Hyper-V host of a group is still on LBFO while its peers moved",
    remediation="Plan the straggler's move to a SET switch: iovkit fleet plan -i INVENTORY --limit HOST",
    impact="A host still on LBFO cannot give VMs a VF (SR-IOV is not supported over LBFO); VMs placed or migrated "
    "there run through the virtual switch again",
)
def lbfo_straggler(view: GroupView) -> Iterable[FleetFinding]:
    rid = "FLEET-LBFO"
    hosts = _hyperv(view)
    missing = {
        h: "switch binding not collected (Get-VMSwitch | Format-List Name,NetAdapterInterfaceDescriptions; "
        "Get-NetLbfoTeam)"
        for h, s in hosts.items()
        if _switch_facts_missing(s) or not s.switches
    }
    on = {h: lbfo_team(s) for h, s in hosts.items() if h not in missing}
    lbfo = {h: t for h, t in on.items() if t}
    moved = sorted(h for h, t in on.items() if not t)
    if not hosts:
        return []
    if len(on) < 2:
        return [_too_few(rid, view, on, missing, "Hyper-V host(s) with known switch bindings")]
    if not lbfo:
        return [
            _finding(rid, "pass", view, "no host is on LBFO", hosts=sorted(on), missing=_not_collected(view, missing))
        ]
    if not moved:
        return [
            _finding(
                rid,
                "pass",
                view,
                "every host is still on LBFO (HV-TEAM on each says what to do)",
                hosts=sorted(on),
                missing=_not_collected(view, missing),
            )
        ]
    names = ", ".join(f"{h} (team {t!r})" for h, t in sorted(lbfo.items()))
    return [
        _finding(
            rid,
            "fail",
            view,
            f"{names} still on LBFO while {', '.join(moved)} {'is' if len(moved) == 1 else 'are'} not",
            hosts=sorted(lbfo),
            evidence={h: t for h, t in on.items()},
            fix="; ".join(view.fleet_cmd("plan", h) for h in sorted(lbfo)),
            missing=_not_collected(view, missing),
        )
    ]
