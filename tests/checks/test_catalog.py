"""Catalog conformance and the verdict definition (kube-bench style: every check is data with a stable ID)."""

from __future__ import annotations

import re

import pytest

from iovkit.checks.catalog import Finding, Scope, all_rules, parse_ids, top_fixes, verdict_for
from iovkit.errors import InputError
from tests.fixtures.snapshots import hv_ready, lx_ready

ISSUE_IDS = {
    "HV-OS-EDITION",
    "HV-HOST-IOV",
    "HV-SLAT",
    "HV-NIC-SRIOV",
    "HV-NIC-ENABLED",
    "HV-TEAM",
    "HV-SWITCH-IOV",
    "HV-VNIC-WEIGHT",
    "HV-VF-CAPACITY",
    "HV-VF-ACTIVE",
    "HV-MGMT-OS",
    "HV-VMQ",
    "HV-VF-QUEUES",
    "LX-VIRT",
    "LX-GUEST",
    "LX-IOMMU",
    "LX-IOMMU-CMDLINE",
    "LX-NIC-SRIOV",
    "LX-VFS",
    "LX-VF-BOUND",
    "LX-BOND",
    "LX-VF-POLICY",
    "GUEST-VF",
    "ESX-VERSION",
    "ESX-IOMMU",
    "ESX-NIC-DRIVER",
    "ESX-VFS-ENABLED",
    "ESX-VFS-ACTIVE",
    "ESX-VF-CAPACITY",
    "ESX-VM-ADAPTER",
    "ESX-VM-MEMORY",
    "ESX-VM-FEATURES",
    "ESX-REBOOT",
    "GUEST-VF-DRIVER",
    "GUEST-QUEUES",
    "GUEST-RSS",
    "GUEST-IRQ",
    "GUEST-RPS",
    "GUEST-NUMA",
    "GUEST-SOCKBUF",
    "GUEST-UDP-HASH",
    "GUEST-CONNTRACK",
    "GUEST-GRO",
    "GUEST-STEAL",
}


def test_every_issue_rule_exists_with_metadata():
    rules = all_rules()
    assert set(rules) == ISSUE_IDS
    for rid, r in rules.items():
        assert re.fullmatch(r"(HV|LX|ESX|GUEST)(-[A-Z]+)+", rid)
        assert r.title and r.rationale and r.platform in ("hyperv", "linux", "esxi", "guest", "any")
        assert r.severity in ("critical", "high", "medium", "low")


def test_report_order_is_host_platform_rules_then_guest():
    order = list(all_rules())
    assert order.index("GUEST-VF") == order.index("GUEST-STEAL") - 11 and order[-1] == "GUEST-STEAL"
    assert order.index("HV-OS-EDITION") < order.index("HV-VMQ") < order.index("LX-VIRT")


@pytest.mark.parametrize("snap", [hv_ready(), lx_ready()], ids=["hyperv", "linux"])
def test_no_rule_passes_on_an_empty_snapshot(snap):
    """A missing fact is skip or warn, never pass: strip every fact and run every rule."""
    from iovkit.checks import run_checks
    from iovkit.snapshot import HostInfo, HostSnapshot

    empty = HostSnapshot(source=snap.source, host=HostInfo(platform=snap.host.platform))
    r = run_checks(empty)
    assert r.findings and all(f.status != "pass" for f in r.findings), [
        (f.id, f.status) for f in r.findings if f.status == "pass"
    ]
    assert r.verdict == "not-ready"
    assert all(f.missing or f.message for f in r.findings if f.status in ("unknown", "not-applicable"))


def test_parse_ids_splits_dedupes_and_names_unknown():
    known = ["HV-TEAM", "HV-SLAT"]
    assert parse_ids(["hv-team, HV-SLAT", "HV-TEAM"], known, "--only") == ["HV-TEAM", "HV-SLAT"]
    with pytest.raises(InputError, match="'HV-X'") as ei:
        parse_ids(["HV-TEAM,HV-X"], known, "--only")
    assert "--only" in str(ei.value)


def _f(rid: str, status: str, kind: str, name: str, sev: str = "high", fix: str | None = "x") -> Finding:
    return Finding(rid, status, Scope(kind, name), "m", fix=fix, severity=sev)  # type: ignore[arg-type]


def test_verdict_partial_needs_a_clear_unit():
    s = hv_ready(n_vms=2)
    one_adapter = [_f("HV-VNIC-WEIGHT", "fail", "vm-adapter", "relay-01/Network Adapter")]
    r = verdict_for(s, None, one_adapter)
    assert r.verdict == "partial" and (r.units_clear, r.units_total) == (1, 2)
    both = [*one_adapter, _f("HV-VNIC-WEIGHT", "fail", "vm-adapter", "relay-02/Network Adapter")]
    assert verdict_for(s, None, both).verdict == "not-ready"
    # a NIC failure blocks every adapter on the switch bound to it
    assert verdict_for(s, None, [_f("HV-NIC-ENABLED", "fail", "nic", "Ethernet")]).verdict == "not-ready"
    # a failure on an unbound NIC blocks nobody
    assert verdict_for(s, None, [_f("HV-NIC-ENABLED", "fail", "nic", "Ethernet 2")]).verdict == "partial"


def test_top_fixes_orders_fail_before_warn_and_dedupes():
    fs = [
        _f("HV-VMQ", "warn", "nic", "a", "low", "w"),
        _f("HV-TEAM", "fail", "switch", "s", "high", "p"),
        _f("HV-SWITCH-IOV", "fail", "switch", "s", "high", "p"),
        _f("HV-HOST-IOV", "fail", "host", "h", "critical", "bios"),
        _f("HV-SLAT", "pass", "host", "h"),
    ]
    assert [f.id for f in top_fixes(fs)] == ["HV-HOST-IOV", "HV-TEAM", "HV-VMQ"]


def test_top_fixes_gives_other_rules_a_slot_before_repeating_one():
    fs = [_f("HV-VNIC-WEIGHT", "fail", "vm-adapter", f"vm{i}/n", "high", f"Set {i}") for i in range(3)]
    fs.append(_f("HV-MGMT-OS", "warn", "switch", "s", "medium", "console"))
    assert [(f.id, f.fix) for f in top_fixes(fs)] == [
        ("HV-VNIC-WEIGHT", "Set 0"),
        ("HV-MGMT-OS", "console"),
        ("HV-VNIC-WEIGHT", "Set 1"),
    ]


def test_the_catalog_stamps_its_id_and_title_on_every_finding():
    """A rule body's own spelling of its ID does not reach the report: the registry's does."""
    from iovkit.checks.catalog import Rule

    def body(snap, policy):
        yield Finding("HV-TYPO", "pass", Scope("host", "h"), "fine")

    r = Rule("HV-REAL", "The real title", "hyperv", "low", "why", body, "fix it", "it costs", "docs/checks.md#hv-real")
    (f,) = r.evaluate(hv_ready(), None)
    assert (f.id, f.title, f.severity) == ("HV-REAL", "The real title", "low")
    for snap in (hv_ready(), lx_ready()):
        for rid, rule in all_rules().items():
            assert {f.id for f in rule.evaluate(snap, None)} <= {rid}


def test_the_plan_command_the_user_gave_travels_in_the_check_context():
    """Fixes that send the user to `iovkit plan` name the input they gave, not the snapshot's recorded source."""
    from iovkit.checks.catalog import CheckContext, check_context, plan_command, run_checks
    from iovkit.sources import load_example

    snap = load_example("hyperv-i350-no-iov")
    assert plan_command(snap) == "iovkit plan --example hyperv-i350-no-iov -o plan.json"
    given = "iovkit plan --from 'host bundle.json' -o plan.json"
    with check_context(CheckContext(plan_command=given)):
        assert plan_command(snap) == given
    assert plan_command(snap) != given  # the context ends with the run
    fixes = [f.fix for f in run_checks(snap, plan_cmd=given).findings if f.fix and "iovkit plan" in f.fix]
    assert fixes and all(given in fix for fix in fixes), fixes


def test_no_rule_body_spells_its_own_id() -> None:
    """The ID lives in @rule(...) only; a body names its findings with current_rule() (one spelling)."""
    import ast
    from pathlib import Path

    bad = []
    for mod in (Path(__file__).resolve().parents[2] / "iovkit" / "checks").glob("*.py"):
        for fn in ast.walk(ast.parse(mod.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.FunctionDef):
                continue
            ids = [d.args[0].value for d in fn.decorator_list if isinstance(d, ast.Call) and d.args]
            ids = [i for i in ids if isinstance(i, str)]
            for stmt in fn.body:
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Constant) and node.value in ids:
                        bad.append(f"{mod.name}:{node.lineno}: {node.value} (use current_rule())")
    assert not bad, "\n".join(bad)


def test_every_unknown_names_the_missing_fact_and_the_command_that_collects_it() -> None:
    """Unknown is not false: it says which fact is missing and exactly what to run (over the probe snapshots)."""
    from iovkit.checks.catalog import run_checks
    from iovkit.checks.docgen import _probe_snapshots

    bare = []
    for snap in _probe_snapshots():
        for f in run_checks(snap).findings:
            if f.status == "unknown" and not (f.missing and f.collect):
                bare.append(f"{f.id} {f.scope}: {f.message}")
    assert not bare, "\n".join(sorted(set(bare)))
