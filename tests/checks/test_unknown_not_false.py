"""Unknown is not false (issue 13): removing facts from an input never creates a failure and never hardens the
verdict.

For every shipped example and every fixture bundle, hypothesis deletes a set of facts the way real inputs lack
them: a whole cmdlet (a paste without Get-VMSwitch), one record (a VM adapter nobody pasted), or one property of
a record (`| fl Name, IovEnabled` instead of `| fl *`). The Linux example loses snapshot fields and whole lists.
Then every rule that fails on the smaller input must have failed on the full one (same rule, same scope), and
the verdict may only move to `unknown` or to a softer verdict.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iovkit.checks.catalog import VERDICT_RANK, CheckResult, run_checks
from iovkit.examples import EXAMPLES, example_path
from iovkit.fileio import read_json
from iovkit.snapshot import COLLECTIONS, HostSnapshot, snapshot_from_dict
from iovkit.sources import load_example
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from tests.fixtures import hyperv_bundles as B

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is a bug, never luck
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Every Hyper-V bundle iovkit ships or builds: the four examples (PowerShell 5.1 shape) and the builders'
# PowerShell 7 shape of each.
BUNDLES: dict[str, dict[str, Any]] = {
    **{name: read_json(example_path(name)) for name in EXAMPLES if EXAMPLES[name][0].endswith(".json")},
    "i350 (ps7)": B.i350_bundle(),
    "firmware-blocked (ps7)": B.firmware_blocked_bundle(),
    "ready (ps7)": B.ready_bundle(),
    "lbfo (ps7)": B.lbfo_bundle(),
}


def _records(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict) and set(value) == {"value", "Count"}:
        value = value["value"]
    return value if isinstance(value, list) else [value]


def _deletions(bundle: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every fact a paste can lack: a cmdlet, a record of it, a property of a record."""
    out: list[tuple[Any, ...]] = []
    for cmdlet, value in bundle["sources"].items():
        out.append(("cmdlet", cmdlet))
        for i, rec in enumerate(_records(value)):
            out.append(("record", cmdlet, i))
            out.extend(("field", cmdlet, i, key) for key in rec)
    return out


def _delete(bundle: dict[str, Any], cuts: set[tuple[Any, ...]]) -> dict[str, Any]:
    b = copy.deepcopy(bundle)
    src = b["sources"]
    for cut in sorted(cuts, key=lambda c: (-len(c), str(c))):  # properties first, then records, then cmdlets
        if cut[1] not in src:
            continue
        recs = _records(src[cut[1]])
        if cut[0] == "field" and cut[2] < len(recs):
            recs[cut[2]].pop(cut[3], None)
        elif cut[0] == "record" and cut[2] < len(recs):
            recs[cut[2]] = {"__deleted__": True}
        elif cut[0] == "cmdlet":
            del src[cut[1]]
    for name in list(src):
        kept = [r for r in _records(src[name]) if "__deleted__" not in r]
        src[name] = kept if kept or src[name] is None else []
    return b


def _fails(result: CheckResult) -> set[tuple[str, str, str]]:
    """(rule, scope kind, scope name) of each failure; the host scope by kind only (its name is a fact too)."""
    return {
        (f.id, f.scope.kind, "" if f.scope.kind == "host" else f.scope.name)
        for f in result.findings
        if f.status == "fail"
    }


def _assert_not_harder(full: CheckResult, part: CheckResult, what: str) -> None:
    before = _fails(full)
    # A scope whose name was itself removed ("(unnamed)" switch, "?/adapter") matches any of the same kind.
    anonymous = ("(unnamed)", "?/")
    new = {
        f
        for f in _fails(part)
        if f not in before and not (f[2].startswith(anonymous) and any(b[:2] == f[:2] for b in before))
    }
    assert not new, f"{what}: failures on facts that were removed: {sorted(new)}"
    if part.verdict != "unknown":
        assert VERDICT_RANK[part.verdict] >= VERDICT_RANK[full.verdict], (
            f"{what}: verdict hardened from {full.verdict} to {part.verdict} ({part.reason})"
        )


@pytest.mark.parametrize("name", list(BUNDLES))
def test_deleting_hyperv_facts_never_fails_a_rule_or_hardens_the_verdict(name: str) -> None:
    bundle = BUNDLES[name]
    full = run_checks(snapshot_from_bundle(bundle, name))
    cuts = _deletions(bundle)

    @SETTINGS
    @given(st.sets(st.sampled_from(cuts), min_size=1, max_size=8))
    def prop(chosen: set[tuple[Any, ...]]) -> None:
        part = run_checks(snapshot_from_bundle(_delete(bundle, chosen), name))
        _assert_not_harder(full, part, f"{name} without {sorted(chosen)}")

    prop()


def _leaf_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every value a snapshot holds that may be "not collected": scalars, lists, whole record lists."""
    out: list[tuple[Any, ...]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if path == () and k in ("schema_version", "source", "errors"):
                continue
            if v is not None and not isinstance(v, dict):
                out.append((*path, k))
            out.extend(_leaf_paths(v, (*path, k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.extend(_leaf_paths(v, (*path, i)))
    return out


def _null(data: dict[str, Any], cuts: set[tuple[Any, ...]]) -> dict[str, Any]:
    d = copy.deepcopy(data)
    for cut in sorted(cuts, key=len, reverse=True):
        node: Any = d
        for p in cut[:-1]:
            node = node[p]
        node[cut[-1]] = None
    return d


def test_deleting_linux_facts_never_fails_a_rule_or_hardens_the_verdict() -> None:
    snap = load_example("linux-cx5")
    data = snap.model_dump(mode="json")
    full = run_checks(snap)
    # On Linux a VF's driver None is an observation (sysfs has no driver link: unbound), not a missing fact.
    observed_none = {("vfs", "driver")}
    paths = [p for p in _leaf_paths(data) if (p[0], p[-1]) not in observed_none]
    assert {(c,) for c in COLLECTIONS if data.get(c)} <= set(paths)

    @SETTINGS
    @given(st.sets(st.sampled_from(paths), min_size=1, max_size=6))
    def prop(chosen: set[tuple[Any, ...]]) -> None:
        try:
            part_snap = snapshot_from_dict(_null(data, chosen), "linux-cx5")
        except Exception:  # a required field (a NIC's name) cannot be "not collected": not a real input
            return
        _assert_not_harder(full, run_checks(part_snap), f"linux-cx5 without {sorted(chosen)}")

    prop()


def test_not_collected_lists_are_null_in_the_snapshot_json() -> None:
    """A paste of only Get-VMNetworkAdapter: switches, NICs and VMs are null (not collected), not []."""
    b = B.i350_bundle()
    b["sources"] = {"Get-VMNetworkAdapter": b["sources"]["Get-VMNetworkAdapter"]}
    snap = snapshot_from_bundle(b, "paste")
    data = snap.model_dump(mode="json")
    assert data["switches"] is None and data["nics"] is None and data["vms"] is None
    assert data["iov"]["reasons"] is None and data["vm_adapters"]
    assert data["source"]["sources_read"] == ["Get-VMNetworkAdapter"]
    # and it survives a round trip through the JSON file
    again = snapshot_from_dict(data, "again")
    assert not again.has("switches") and again.has("vm_adapters")
    assert isinstance(again, HostSnapshot) and again.model_dump(mode="json") == data


def _paste_blocks(bundle: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """The bundle as an operator pastes it: per cmdlet a prompt and its `| Format-List *` records (lines)."""
    blocks = []
    for cmdlet, value in bundle["sources"].items():
        recs = _records(value)
        if not recs:
            continue
        cmd = {"Get-VMNetworkAdapter": "Get-VMNetworkAdapter -All"}.get(cmdlet, cmdlet)
        if cmdlet.startswith("Win32_"):
            cmd = f"Get-CimInstance {cmdlet}"
        if cmdlet == "VMSMP-Parameters":
            cmd = r"Get-ItemProperty HKLM:\SYSTEM\CurrentControlSet\Services\VMSMP\Parameters"
        records = [B.format_list([r], width=120).strip("\n").splitlines() for r in recs]
        blocks.append((f"PS C:\\> {cmd} | Format-List *", records))
    return blocks


def _render(blocks: list[tuple[str, list[list[str]]]], cuts: set[tuple[int, ...]]) -> str:
    out: list[str] = []
    for b, (prompt, records) in enumerate(blocks):
        if (b,) in cuts:
            continue
        out += [prompt, ""]
        for r, lines in enumerate(records):
            if (b, r) in cuts:
                continue
            kept = [
                ln
                for i, ln in enumerate(lines)
                if (b, r, i) not in cuts and not (ln.startswith(" ") and (b, r, i - 1) in cuts)
            ]
            out += [*kept, ""]
    return "\n".join(out)


@pytest.mark.parametrize("name", ["i350 (ps7)", "firmware-blocked (ps7)", "ready (ps7)", "lbfo (ps7)"])
def test_deleting_lines_records_or_cmdlets_from_a_paste_never_fails_a_rule(name: str) -> None:
    """The same property on pasted Format-List text (enum names, as Format-List prints them): a paste that lacks
    a command's output, a record or a line."""
    from iovkit.errors import InputError
    from iovkit.sources.hyperv.formatlist import snapshot_from_formatlist_text

    blocks = _paste_blocks(BUNDLES[name])
    full = run_checks(snapshot_from_formatlist_text(_render(blocks, set()), name))
    cuts: list[tuple[int, ...]] = []
    for b, (_, records) in enumerate(blocks):
        cuts.append((b,))
        for r, lines in enumerate(records):
            cuts.append((b, r))
            cuts.extend((b, r, i) for i, ln in enumerate(lines) if not ln.startswith(" "))

    @SETTINGS
    @given(st.sets(st.sampled_from(cuts), min_size=1, max_size=8))
    def prop(chosen: set[tuple[int, ...]]) -> None:
        try:
            snap = snapshot_from_formatlist_text(_render(blocks, chosen), name)
        except InputError:  # everything iovkit reads was cut: refused with one line, no verdict at all
            return
        _assert_not_harder(full, run_checks(snap), f"{name} paste without {sorted(chosen)}")

    prop()
