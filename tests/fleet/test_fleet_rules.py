"""Fleet rules on real-shaped snapshots (the shipped examples and variants of them), without Ansible.

What a user sees: a differing switch name or an LBFO straggler fails with the exact fix; a host whose facts were
not collected is named with the command that collects them and never counted as differing (unknown is not false).
"""

from __future__ import annotations

from iovkit.fleet.collect import Collected
from iovkit.fleet.inventory import InventoryHost
from iovkit.fleet.model import FleetFinding
from iovkit.fleet.rules import FLEET_RULES, run_fleet_rules
from iovkit.snapshot import HostSnapshot
from iovkit.sources import load_example


def host(name: str, snap: HostSnapshot | None, groups: tuple[str, ...] = ("edge",)) -> Collected:
    if snap is None:
        return Collected(InventoryHost(name, list(groups)), "unreachable", error="Connection refused")
    return Collected(InventoryHost(name, list(groups)), "ok", "capture", snap)


def renamed(switch: str) -> HostSnapshot:
    snap = load_example("hyperv-ready")
    for s in snap.switches:
        s.name = switch
    for a in snap.vm_adapters:
        a.switch_name = switch
    return snap


def pasted_without_switches() -> HostSnapshot:
    """A Format-List paste that held no Get-VMSwitch output: the switches are unknown, not absent."""
    snap = load_example("hyperv-ready")
    snap.source.kind = "hyperv-formatlist"
    snap.switches = []
    snap.mark_absent("switches")  # what the Format-List reader records for a paste without that table
    return snap


def rule(findings: list[FleetFinding], rule_id: str, group: str = "edge") -> FleetFinding:
    return next(f for f in findings if f.id == rule_id and f.group == group)


def test_the_rules_are_catalogued_with_remediation_and_impact() -> None:
    assert list(FLEET_RULES) == ["FLEET-SWITCH-NAME", "FLEET-VF-CAPACITY", "FLEET-LBFO"]
    for r in FLEET_RULES.values():
        assert r.title and r.remediation and r.impact and r.doc.startswith("docs/howto-fleet.md")


def test_a_differing_iov_switch_name_fails_with_the_rename() -> None:
    found = run_fleet_rules(
        [host("hv1", load_example("hyperv-ready")), host("hv2", load_example("hyperv-ready")),
         host("hv3", renamed("SRIOV-2"))],
        "fleet.yml",
    )  # fmt: skip
    f = rule(found, "FLEET-SWITCH-NAME")
    assert (f.status, f.hosts) == ("fail", ["hv3"])
    assert f.fix == "on hv3: Rename-VMSwitch -Name 'SRIOV-2' -NewName 'SETswitch'"
    assert rule(found, "FLEET-LBFO").status == "pass"
    assert rule(found, "FLEET-VF-CAPACITY").status == "pass"


def test_a_host_without_an_iov_switch_gets_a_plan_command() -> None:
    found = run_fleet_rules(
        [host("hv1", load_example("hyperv-ready")), host("hv2", load_example("hyperv-i350-no-iov"))], "fleet.yml"
    )
    f = rule(found, "FLEET-SWITCH-NAME")
    assert f.status == "fail" and "hv2 has none" in f.message
    assert f.fix == "iovkit fleet plan -i fleet.yml --limit hv2"
    cap = rule(found, "FLEET-VF-CAPACITY")
    assert cap.status == "warn" and cap.evidence == {"hv1": 62, "hv2": 12}


def test_one_host_still_on_lbfo_while_its_peers_moved() -> None:
    found = run_fleet_rules([host("hv1", load_example("hyperv-ready")), host("hv2", load_example("hyperv-lbfo"))])
    f = rule(found, "FLEET-LBFO")
    assert (f.status, f.hosts) == ("fail", ["hv2"]) and "team 'Team1'" in f.message
    both = run_fleet_rules([host("a", load_example("hyperv-lbfo")), host("b", load_example("hyperv-lbfo"))])
    assert rule(both, "FLEET-LBFO").status == "pass"  # nobody moved yet: HV-TEAM on each host says it


def test_facts_not_collected_are_named_never_counted_as_different() -> None:
    found = run_fleet_rules(
        [host("hv1", load_example("hyperv-ready")), host("hv2", pasted_without_switches()), host("hv3", None)],
        "fleet.yml",
    )
    f = rule(found, "FLEET-SWITCH-NAME")
    # hv1 is the only host with known switches: nothing to compare it with, so not a pass and not a fail
    assert f.status == "unknown"
    assert any(m.startswith("hv2: IOV switch facts not collected (Get-VMSwitch") for m in f.missing)
    assert any("hv3: not collected (unreachable)" in m and "--limit hv3" in m for m in f.missing)
    only_unknown = run_fleet_rules([host("hv2", pasted_without_switches())])
    assert rule(only_unknown, "FLEET-SWITCH-NAME").status == "unknown"


def test_groups_are_judged_apart_and_an_ungrouped_inventory_is_one_group() -> None:
    found = run_fleet_rules(
        [host("hv1", load_example("hyperv-ready"), ("a",)), host("hv2", renamed("SRIOV-2"), ("b",))]
    )
    assert {f.group for f in found} == {"a", "b"}
    assert {f.status for f in found} == {"not-applicable"}  # one host per group: nothing to compare
    flat = run_fleet_rules([host("hv1", load_example("hyperv-ready"), ()), host("hv2", renamed("X"), ())])
    assert rule(flat, "FLEET-SWITCH-NAME", "all").status == "fail"


def test_every_fleet_rule_is_documented_in_the_howto() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "howto-fleet.md").read_text(encoding="utf-8")
    assert "### Fleet rules" in doc
    for rule_id, r in FLEET_RULES.items():
        assert f"| `{rule_id}` |" in doc, rule_id
        assert r.doc == "docs/howto-fleet.md#fleet-rules"


def test_the_messages_claim_only_what_the_hosts_show() -> None:
    """One IOV switch among three hosts is not 'most hosts'; a host that never had a team did not 'move'."""
    found = run_fleet_rules(
        [host("hv1", load_example("hyperv-ready")), host("hv2", load_example("hyperv-lbfo")),
         host("hv3", load_example("hyperv-i350-no-iov"))],
    )  # fmt: skip
    names = rule(found, "FLEET-SWITCH-NAME").message
    assert "most hosts" not in names and "'SETswitch' on hv1;" in names
    assert "hv2 has none" in names and "hv3 has none" in names
    lbfo = rule(found, "FLEET-LBFO").message
    assert lbfo == "hv2 (team 'Team1') still on LBFO while hv1, hv3 are not"


def test_every_fleet_view_names_each_missing_fact_once_with_its_command() -> None:
    """Table, markdown and the standalone HTML (the report's fleet section uses the same text): the unknown rule
    shows what it could not see and how to collect it, each said once (no "not collected: h: not collected")."""
    import io
    from datetime import UTC, datetime

    from rich.console import Console

    from iovkit.fleet.model import FleetResult
    from iovkit.fleet.render import render_table, to_html, to_markdown

    findings = run_fleet_rules([host("hv1", load_example("hyperv-ready")), host("hv3", None)], "fleet.yml")
    f = rule(findings, "FLEET-SWITCH-NAME")
    assert f.status == "unknown" and len(f.missing) == 1
    result = FleetResult(
        tool_version="0", command="check", inventory="fleet.yml", started=datetime.now(UTC), findings=[f]
    )
    buf = io.StringIO()
    render_table(result, Console(file=buf, width=400, color_system=None))
    views = {"table": buf.getvalue(), "markdown": to_markdown(result), "html": to_html(result)}
    for name, text in views.items():
        flat = " ".join(text.replace("│", " ").split())
        assert "hv3: not collected (unreachable)" in flat and "--limit hv3" in flat, name
        assert flat.count("not collected") == f.message.count("not collected") + 1, name
