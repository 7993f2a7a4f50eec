"""`iovkit doctor`: one page that says whether SR-IOV is ready here, the three fixes that matter most, and why.

It runs `check` on a snapshot and, only when the snapshot is of this very Linux host (source linux-live from /),
takes a short live diagnose sample through `iovkit.diagnose.doctor_sample(seconds)`. The sampler is passed in
(default: that function, or none when the diagnose package is not importable) so the no-sampler path is explicit.

Verdict: the check verdict (ready / partial / not-ready), except that a bottleneck found by the live sample
turns ready/partial into "bottleneck" (a not-ready host stays not-ready; the bottleneck is named in the headline).
Exit code: 0 only for ready; 1 otherwise (as check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from iovkit.checks.catalog import CheckResult, Finding, run_checks, top_fixes
from iovkit.errors import ExitCode
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot

DoctorVerdict = Literal["ready", "partial", "not-ready", "unknown", "bottleneck"]
Sampler = Callable[[float], Any]


def default_sampler() -> Sampler | None:
    """`iovkit.diagnose.doctor_sample`, or None when the diagnose package (or the function) is absent."""
    try:
        from iovkit.diagnose import doctor_sample
    except ImportError:
        return None
    return doctor_sample


def is_this_host(snap: HostSnapshot) -> bool:
    """Live counters describe this host only when the snapshot was collected live from /."""
    return snap.source.kind == "linux-live" and snap.source.origin in (None, "", "/")


@dataclass
class DoctorReport:
    verdict: DoctorVerdict
    headline: str
    check: CheckResult
    top: list[Finding]
    diagnose: Any | None = None
    diagnose_note: str = ""
    diagnose_findings: list[dict[str, str]] = field(default_factory=list)
    examples: list[dict[str, str]] = field(default_factory=list)
    to_collect: list[dict[str, str]] = field(default_factory=list)  # what the input lacked, and how to get it

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK if self.verdict == "ready" else ExitCode.FINDINGS)

    def to_dict(self) -> dict[str, Any]:
        diag: dict[str, Any] | None = None
        if self.diagnose is not None:
            to_json = getattr(self.diagnose, "to_json", None)
            diag = (
                to_json()
                if callable(to_json)
                else {"verdict": self.diagnose.verdict, "findings": self.diagnose_findings}
            )
        return {
            "verdict": self.verdict,
            "headline": self.headline,
            "check_verdict": self.check.verdict,
            "top_fixes": [
                {"id": f.id, "scope": str(f.scope), "status": f.status, "message": f.message, "fix": f.fix}
                for f in self.top
            ],
            "diagnose": diag,
            "diagnose_note": self.diagnose_note,
            "examples": self.examples,
            "to_collect": self.to_collect,
            "findings": [f.to_dict() for f in self.check.findings],
            "datapath": self.check.datapath,
        }


def _headline(check: CheckResult) -> str:
    if check.verdict == "ready":
        warns = check.counts()["warn"]
        return "SR-IOV is ready: no check failed" + (f" ({warns} warning(s) below)." if warns else ".")
    host_fails = [f for f in check.findings if f.status == "fail" and f.scope.kind == "host"]
    guest = next((f for f in host_fails if f.id == "LX-GUEST"), None)
    if guest is not None:
        return (
            "This machine is itself a VM guest: host-side SR-IOV cannot be set up inside a guest, and no VF "
            f"carries its traffic{_paths(check)}. Run iovkit doctor on the hypervisor host."
        )
    if host_fails:
        return f"SR-IOV cannot work on this host: {host_fails[0].message.rstrip('.')}."
    if check.verdict == "partial":
        return (
            f"SR-IOV can work for {check.units_clear} of {check.units_total} in-scope adapter(s); "
            "the rest need the fixes below."
        )
    if check.verdict == "unknown":
        fails = [f for f in check.findings if f.status == "fail"]
        missing = sorted({f.id for f in check.findings if f.status == "unknown" and f.severity in ("critical", "high")})
        said = (
            f"{len(fails)} check(s) fail on what the input shows, but " if fails else "nothing in the input fails, but "
        )
        what = f"{', '.join(missing)} could not be checked" if missing else check.reason.rstrip(".")
        return f"Cannot tell yet: {said}{what}. Run what is listed under 'Collect' on the host and add its output."
    return f"Not ready: {check.reason.rstrip('.')}."


def _paths(check: CheckResult) -> str:
    """' (data path: eth0 paravirtual virtio_net)' from the guest verdict, or ''."""
    if not check.datapath:
        return ""
    parts = [
        f"{i['name']} {i['path']} {i.get('driver') or ''}".strip()
        for i in check.datapath.get("interfaces", [])
        if not i.get("master")
    ]
    return f" (data path: {', '.join(parts)})" if parts else ""


def missing_facts(check: CheckResult) -> list[dict[str, str]]:
    """The unknown findings' commands, most important first, each once: what to run to get a full answer."""
    from iovkit.checks.catalog import SEVERITY_RANK

    rows: dict[str, dict[str, str]] = {}
    for f in sorted(
        (f for f in check.findings if f.status in ("unknown", "warn") and f.collect),
        key=lambda f: SEVERITY_RANK[f.severity],
    ):
        cmd = f.collect or ""
        if cmd in rows:
            rows[cmd]["ids"] += f", {f.id}"
            continue
        rows[cmd] = {"ids": f.id, "missing": ", ".join(f.missing), "command": cmd}
    return list(rows.values())


def has_sriov_hardware(snap: HostSnapshot) -> bool:
    """Any physical NIC that offers SR-IOV (or any VF at all) on this host."""
    return bool(snap.vfs) or any(n.sriov_support == "Supported" or (n.vfs_total or 0) > 0 for n in snap.nics)


def example_verdicts(policy: Policy | None = None) -> list[dict[str, str]]:
    """Doctor's verdict on each shipped example: what iovkit says about real SR-IOV hosts, on a machine without one."""
    from iovkit.sources import EXAMPLES, load_example

    rows: list[dict[str, str]] = []
    for name, (_, description) in EXAMPLES.items():
        snap = load_example(name)
        check = run_checks(snap, policy, plan_cmd=f"iovkit plan --example {name} -o plan.json")
        top = top_fixes(check.findings)
        rows.append(
            {
                "example": name,
                "description": description,
                "verdict": check.verdict,
                "headline": _headline(check),
                "first_fix": f"[{top[0].id}] {top[0].message.split(' (')[0]}" if top else "",
            }
        )
    return rows


def run_doctor(
    snap: HostSnapshot,
    policy: Policy | None = None,
    *,
    sampler: Sampler | None = None,
    use_default_sampler: bool = True,
    seconds: float = 1.0,
    plan_cmd: str | None = None,
    with_examples: bool = True,
) -> DoctorReport:
    """Check the snapshot; sample live counters when it is this host and a sampler exists.

    On a host with no SR-IOV hardware the shipped examples are checked too (the embedded default), so the
    page shows what iovkit finds on real SR-IOV hosts next to this host's own verdict.
    """
    check = run_checks(snap, policy, plan_cmd=plan_cmd)
    report = DoctorReport(check.verdict, _headline(check), check, top_fixes(check.findings))
    report.to_collect = missing_facts(check)
    if sampler is None and use_default_sampler:
        sampler = default_sampler()
    if is_this_host(snap) and with_examples and not has_sriov_hardware(snap):
        report.examples = example_verdicts(policy)
    if not is_this_host(snap):
        report.diagnose_note = f"no live sample: the snapshot is not of this host (source {snap.source.kind})"
        return report
    if sampler is None:
        report.diagnose_note = "no live sample: the diagnose module is not available"
        return report
    diag = sampler(seconds)
    if diag is None:
        report.diagnose_note = "no live counters on this host"
        return report
    report.diagnose = diag
    report.diagnose_findings = [{"id": str(f.id), "summary": str(f.summary)} for f in getattr(diag, "findings", [])]
    report.diagnose_note = f"live sample {seconds:g} s: {diag.verdict}"
    why: str = str(getattr(diag, "note", "") or "")
    if diag.verdict in ("idle", "insufficient-data") and why:
        report.diagnose_note += ": " + why.removeprefix("idle: ")  # why the sample cannot answer
    if diag.verdict == "bottleneck":
        # Not-ready stays the verdict (SR-IOV, the usual cure, is not available); the bottleneck is still said.
        if check.verdict != "not-ready":
            report.verdict = "bottleneck"
        first = report.diagnose_findings[0]["summary"] if report.diagnose_findings else "a core is saturated"
        report.headline = report.headline + f" Bottleneck now: {first.rstrip('.')}."
    return report
