"""The rule catalog: rules, findings, the registry, filtering and the verdict.

A rule is a small pure function over (HostSnapshot, Policy | None) registered with a stable ID, a title, a
platform, a severity, a rationale, a remediation, an impact and a documentation link (kube-bench style): the
catalog is the single source of truth for all of them (docs/checks.md is generated from it). It yields Findings;
it never reads the system. The catalog stamps the rule's ID and title on every finding, so a rule body never
spells its own ID. What a run knows beyond the snapshot (the `iovkit plan` command for the input the user gave)
travels in a CheckContext.
Results: pass, warn, fail, info, not-applicable (the rule does not apply here; no fact is missing) and unknown
(a fact it needs was not collected: the finding names the fact and the exact command that collects it).
Unknown is not false: a rule fails only on facts the input showed.

Verdict (one of three, computed from the findings only):

- **ready**: no finding failed, and every prerequisite rule (severity "critical") that applies had the facts it
  needs (none of them skipped for a missing fact).
- **partial**: something failed, no failure is host-wide, and at least one in-scope *unit* has no failure
  against it or anything it depends on. Units: on Hyper-V the in-scope VM adapters (policy scope); a unit
  depends on its switch, the NICs under that switch and the host. On Linux the SR-IOV capable NICs (PFs);
  a PF depends on the host.
- **not-ready**: a host-wide failure, every in-scope unit blocked, or no unit at all: each on observed facts.
- **unknown**: nothing observed fails the host, but a prerequisite (a critical rule) could not be checked, or
  which units a failure blocks cannot be told (the VM adapters were not in the input). The findings name the
  missing facts and the commands that collect them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from iovkit.errors import InputError
from iovkit.policy import Policy, adapters_in_scope
from iovkit.quoting import ps_quote, sh_quote
from iovkit.snapshot import HostSnapshot, adapter_key

Status = Literal["pass", "warn", "fail", "info", "not-applicable", "unknown"]
STATUSES: tuple[str, ...] = ("pass", "warn", "fail", "info", "not-applicable", "unknown")
Severity = Literal["critical", "high", "medium", "low"]
RulePlatform = Literal["hyperv", "linux", "esxi", "guest", "any"]
ScopeKind = Literal["host", "nic", "switch", "vm-adapter", "vf", "guest-nic"]
Verdict = Literal["ready", "partial", "not-ready", "unknown"]
# How hard a verdict is: removing facts from an input may move a verdict to "unknown" or to a softer one, never
# to a harder one (tests/checks/test_unknown_not_false.py).
VERDICT_RANK: dict[str, int] = {"not-ready": 0, "partial": 1, "unknown": 2, "ready": 3}
Ev = dict[str, Any]  # evidence: snapshot field path -> value

SEVERITY_RANK: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}
STATUS_RANK: dict[str, int] = {"fail": 0, "warn": 1, "unknown": 2, "info": 3, "not-applicable": 4, "pass": 5}


@dataclass(frozen=True)
class Scope:
    """What a finding is about: the host, a NIC, a switch, a VM adapter ("vm/adapter") or a VF ("pf/vfN")."""

    kind: ScopeKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass
class Finding:
    """One result of one rule for one scope. `fix` is a command that runs as written, or a named setting."""

    id: str
    status: Status
    scope: Scope
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str | None = None
    missing: list[str] = field(default_factory=list)  # facts the snapshot lacks (unknown/warn)
    collect: str | None = None  # the exact command that collects the missing facts
    title: str = ""
    severity: Severity = "medium"
    # Units (vm adapter keys / PF names) this failure blocks; None = derive from the scope.
    affects: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
            "scope": {"kind": self.scope.kind, "name": self.scope.name},
            "message": self.message,
            "evidence": self.evidence,
            "fix": self.fix,
            "missing": self.missing,
            "collect": self.collect,
        }


RuleFunc = Callable[[HostSnapshot, Policy | None], Iterable[Finding]]


DOC_PAGE = "docs/checks.md"
_RULE: ContextVar[str] = ContextVar("iovkit_rule", default="")


def current_rule() -> str:
    """The ID of the rule being evaluated: a rule body names its findings with this, never by spelling its ID."""
    return _RULE.get()


@dataclass(frozen=True)
class Rule:
    """A registered rule: everything the reference and the reports say about it, and its function."""

    id: str
    title: str
    platform: RulePlatform
    severity: Severity
    rationale: str
    func: RuleFunc
    remediation: str = ""  # the kind of fix (each finding's `fix` is the exact command for its scope)
    impact: str = ""  # what a failure costs the operator
    doc: str = ""  # where the rule is documented (docs/checks.md#<id>)

    def evaluate(self, snap: HostSnapshot, policy: Policy | None) -> list[Finding]:
        token = _RULE.set(self.id)
        try:
            found = list(self.func(snap, policy))
        finally:
            _RULE.reset(token)
        for f in found:
            f.id = self.id  # the catalog's spelling wins: a rule body need not (and should not) repeat it
            f.title = self.title
            f.severity = self.severity
        return found


REGISTRY: dict[str, Rule] = {}


def rule(
    rule_id: str,
    title: str,
    *,
    platform: RulePlatform,
    severity: Severity,
    rationale: str,
    remediation: str = "",
    impact: str = "",
    doc: str | None = None,
) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule function under a stable ID (registration order is report order).

    `remediation` and `impact` are required of every shipped rule (tests/checks/test_docs_current.py); `doc`
    defaults to the rule's section of docs/checks.md.
    """

    def wrap(func: RuleFunc) -> RuleFunc:
        if rule_id in REGISTRY:
            raise ValueError(f"duplicate rule id {rule_id}")
        link = doc if doc is not None else f"{DOC_PAGE}#{rule_id.lower()}"
        REGISTRY[rule_id] = Rule(rule_id, title, platform, severity, rationale, func, remediation, impact, link)
        return func

    return wrap


@dataclass(frozen=True)
class CheckContext:
    """What a check run knows beyond the snapshot: the `iovkit plan` command for the input the user gave."""

    plan_command: str | None = None


_CONTEXT: ContextVar[CheckContext | None] = ContextVar("iovkit_check_context", default=None)


@contextmanager
def check_context(ctx: CheckContext) -> Iterator[CheckContext]:
    """Rules evaluated inside see `ctx` (through plan_command and current_context)."""
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


def current_context() -> CheckContext:
    return _CONTEXT.get() or CheckContext()


def all_rules() -> dict[str, Rule]:
    """Every registered rule (iovkit.checks imports the platform modules, which registers them)."""
    if not getattr(all_rules, "_sorted", False):
        # Report order: host platform rules first, then the in-guest rule; registration order within a platform.
        rank = {"any": 0, "hyperv": 1, "linux": 2, "esxi": 3, "guest": 4}
        items = sorted(REGISTRY.items(), key=lambda kv: rank[kv[1].platform])
        REGISTRY.clear()
        REGISTRY.update(items)
        all_rules._sorted = True  # type: ignore[attr-defined]
    return REGISTRY


# -- helpers rules use -------------------------------------------------------------------------------------


ps = ps_quote  # PowerShell single-quoted literal (typographic quotes doubled too)
sh = sh_quote  # POSIX shell word


def unknown(
    rule_id: str, scope: Scope, missing: list[str], why: str | None = None, *, collect: str | None = None
) -> Finding:
    """The rule needs facts the snapshot lacks: name them, and the exact command that collects them."""
    msg = why or f"not collected: {', '.join(missing)}"
    if collect and collect not in msg:
        msg += f" (collect: {collect})"
    return Finding(rule_id, "unknown", scope, msg, evidence=dict.fromkeys(missing), missing=missing, collect=collect)


skip = unknown  # the older name; rules written before issue 13 call it


def not_applicable(rule_id: str, scope: Scope, why: str) -> Finding:
    """The rule does not apply here (no fact is missing)."""
    return Finding(rule_id, "not-applicable", scope, why)


HOST = "host"


def host_scope(snap: HostSnapshot) -> Scope:
    return Scope("host", snap.host.name or "unnamed host")  # a paste without a name is not this machine


def plan_command(snap: HostSnapshot) -> str:
    """`iovkit plan` for the input the user gave (from the check context), else for the snapshot's recorded source."""
    given = current_context().plan_command
    if given:
        return given
    src = snap.source
    if src.kind == "example" and src.origin:
        return f"iovkit plan --example {sh(src.origin)} -o plan.json"
    if src.kind == "snapshot" and src.origin:
        return f"iovkit plan {sh(src.origin)} -o plan.json"
    if (src.origin and src.kind in ("hyperv-formatlist", "hyperv-netview", "linux-archive", "esxi-paste")) or (
        src.kind == "hyperv-bundle"
        and src.origin
        and ("/" in src.origin or "\\" in src.origin or src.origin.lower().endswith(".json"))
    ):
        return f"iovkit plan --from {sh(src.origin)} -o plan.json"
    if src.kind == "hyperv-bundle" and src.origin:
        return f"iovkit plan --host {sh(src.origin)} -o plan.json"
    return "iovkit plan -o plan.json"


# -- selection, running, verdict ---------------------------------------------------------------------------


def is_guest(snap: HostSnapshot) -> bool:
    """The snapshot says this host is itself a VM (GUEST-VF applies)."""
    return bool(snap.host.is_vm_guest) or bool(snap.guest_nics)


def applicable(r: Rule, snap: HostSnapshot) -> bool:
    if r.platform == "any":
        return True
    if r.platform == "guest":
        return is_guest(snap)
    return r.platform == snap.host.platform


def parse_ids(values: list[str] | None, known: Iterable[str], option: str) -> list[str]:
    """`--only A --only B,C` -> [A, B, C]; an unknown ID is an error naming it."""
    ids: list[str] = []
    known_set = set(known)
    for v in values or []:
        for part in v.split(","):
            p = part.strip().upper()
            if not p:
                continue
            if p not in known_set:
                raise InputError(f"unknown check ID {part.strip()!r} (see `iovkit check --list`)", field=option)
            if p not in ids:
                ids.append(p)
    return ids


@dataclass
class CheckResult:
    verdict: Verdict
    reason: str
    findings: list[Finding]
    units_total: int = 0
    units_clear: int = 0
    datapath: dict[str, Any] | None = None  # inside a VM: snapshot.guest as JSON (the data-path verdict)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for f in self.findings:
            out[f.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "counts": self.counts(),
            "units": {"total": self.units_total, "clear": self.units_clear},
            "findings": [f.to_dict() for f in self.findings],
            **({"datapath": self.datapath} if self.datapath is not None else {}),
        }


def run_checks(
    snap: HostSnapshot,
    policy: Policy | None = None,
    only: list[str] | None = None,
    skip_ids: list[str] | None = None,
    plan_cmd: str | None = None,
) -> CheckResult:
    """Evaluate every applicable rule (filtered by --only/--skip) and compute the verdict.

    `plan_cmd`: the `iovkit plan ...` command for the input the user actually gave (the CLI knows it); it goes
    into the CheckContext the rules read, so fixes that point at `iovkit plan` name it.
    """
    with check_context(CheckContext(plan_command=plan_cmd)):
        return _run_checks(snap, policy, only, skip_ids)


def _run_checks(
    snap: HostSnapshot, policy: Policy | None, only: list[str] | None, skip_ids: list[str] | None
) -> CheckResult:
    rules = all_rules()
    only_ids = parse_ids(only, rules, "--only")
    skip_set = set(parse_ids(skip_ids, rules, "--skip"))
    findings: list[Finding] = []
    windows_guest = windows_guest_only(snap)
    for rid, r in rules.items():
        if (only_ids and rid not in only_ids) or rid in skip_set or not applicable(r, snap):
            continue
        if windows_guest and r.platform == "hyperv":
            f = not_applicable(
                rid,
                host_scope(snap),
                "this machine is a VM guest, not a Hyper-V host: host-side "
                "SR-IOV is checked on the hypervisor host (GUEST-VF checks this guest)",
            )
            f.title, f.severity = r.title, r.severity
            findings.append(f)
            continue
        findings.extend(r.evaluate(snap, policy))
    result = verdict_for(snap, policy, findings)
    if snap.guest is not None:
        result.datapath = snap.guest.model_dump(mode="json")
    return result


def windows_guest_only(snap: HostSnapshot) -> bool:
    """A Windows VM (not itself a Hyper-V host): the host-side Hyper-V rules do not apply to it."""
    return (
        snap.host.platform == "hyperv"
        and bool(snap.host.is_vm_guest)
        and not snap.switches
        and not snap.vms
        and snap.iov.supported is None
    )


def _units(snap: HostSnapshot, policy: Policy | None) -> list[str] | None:
    """The in-scope units, or None when the facts that list them were not collected."""
    if snap.host.platform in ("hyperv", "esxi"):
        if snap.host.platform == "hyperv" and (
            not snap.has("vm_adapters") or (policy is None and not snap.has("switches"))
        ):
            return None
        if snap.host.platform == "esxi" and (
            not snap.has("vm_adapters") or (snap.esxi is not None and not snap.esxi.has("vms"))
        ):
            return None
        return [adapter_key(a.vm_name, a.name) for a in adapters_in_scope(snap, policy)]
    if not snap.has("nics"):
        return None
    return [n.name for n in snap.nics if (n.vfs_total or 0) > 0 or n.sriov_support == "Supported"]


def _blocked(f: Finding, snap: HostSnapshot, units: list[str]) -> set[str]:
    """Which units a failed finding blocks."""
    if f.affects is not None:
        return set(f.affects) & set(units)
    kind, name = f.scope.kind, f.scope.name
    if kind == "host":
        return set(units)
    if snap.host.platform == "esxi":
        # A NIC failure blocks the adapters whose physical function is that NIC (esxi.md §3.9 pfId).
        if kind == "vm-adapter":
            return {name} & set(units)
        nic = snap.nic(name) if kind == "nic" else None
        pci = nic.pci_address if nic else None
        vms = snap.esxi.vms if snap.esxi else []
        return {adapter_key(vm.name, a.name) for vm in vms for a in vm.adapters if pci and a.pf == pci} & set(units)
    if snap.host.platform != "hyperv":
        return {name} & set(units) if kind == "nic" else set()
    by_switch: dict[str, set[str]] = {}
    for a in snap.vm_adapters:
        if a.switch_name:
            by_switch.setdefault(a.switch_name, set()).add(a.key)
    if kind == "switch":
        return by_switch.get(name, set()) & set(units)
    if kind == "nic":
        hit: set[str] = set()
        for sw in snap.switches:
            if any(n.name == name for n in snap.switch_nics(sw)):
                hit |= by_switch.get(sw.name, set())
        return hit & set(units)
    if kind == "vm-adapter":
        return {name} & set(units)
    return set()


def verdict_for(snap: HostSnapshot, policy: Policy | None, findings: list[Finding]) -> CheckResult:
    known_units = _units(snap, policy)
    units = known_units or []
    fails = [f for f in findings if f.status == "fail"]
    blocked: set[str] = set()
    for f in fails:
        blocked |= _blocked(f, snap, units)
    clear = [u for u in units if u not in blocked]
    host_fails = [f for f in fails if f.scope.kind == "host"]
    unconfirmed = [f for f in findings if f.status == "unknown" and f.severity == "critical"]

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(verdict, reason, findings, len(units), len(clear))

    if not findings:
        return result("not-ready", "no check applies to this snapshot (see --only/--skip)")
    if host_fails:
        return result("not-ready", f"host-wide failure: {', '.join(dict.fromkeys(f.id for f in host_fails))}")
    if not fails and not unconfirmed:
        if known_units is None and snap.host.platform in ("hyperv", "esxi"):
            return result("unknown", "no check failed, but the VM adapters were not in the input")
        return result("ready", "no check failed")
    if not fails:
        ids = ", ".join(sorted({f.id for f in unconfirmed}))
        return result("unknown", f"could not confirm prerequisites ({ids}): facts not collected")
    if known_units is None:
        ext = [s.name for s in snap.switches if snap.is_external(s)]
        failed_sw = {f.scope.name for f in fails if f.scope.kind == "switch"}
        if snap.has("switches") and ext and set(ext) <= failed_sw:
            return result("not-ready", f"every external switch has a failure; {len(fails)} check(s) failed")
        return result(
            "unknown",
            f"{len(fails)} check(s) failed; which VM adapters they block is not known (VM adapters not in the input)",
        )
    if clear:
        return result(
            "partial",
            f"{len(clear)} of {len(units)} in-scope unit(s) could use SR-IOV; {len(fails)} check(s) failed",
        )
    what = "no in-scope unit" if not units else f"all {len(units)} in-scope unit(s) blocked"
    return result("not-ready", f"{what}; {len(fails)} check(s) failed")


def top_fixes(findings: list[Finding], n: int = 3) -> list[Finding]:
    """The most important findings that carry a fix: fails before warns, by severity, then catalog order."""
    order = {rid: i for i, rid in enumerate(REGISTRY)}
    cands = [f for f in findings if f.status in ("fail", "warn") and f.fix]
    cands.sort(key=lambda f: (STATUS_RANK[f.status], SEVERITY_RANK[f.severity], order.get(f.id, 999)))
    seen: set[str] = set()
    out: list[Finding] = []
    # First pass: one per rule (eight VMs with IovWeight 0 should not fill every slot); then fill up.
    for one_per_rule in (True, False):
        for f in cands:
            if len(out) == n:
                return out
            if f.fix in seen or (one_per_rule and any(o.id == f.id for o in out)):
                continue
            seen.add(f.fix or "")
            out.append(f)
    return out
