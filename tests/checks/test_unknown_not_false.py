"""Unknown is not false (issue 13): removing facts from an input never creates a failure and never hardens the
verdict.

For every shipped example and every fixture bundle, hypothesis deletes a set of facts the way real inputs lack
them: a whole cmdlet (a paste without Get-VMSwitch), one record (a VM adapter nobody pasted), or one property of
a record (`| fl Name, IovEnabled` instead of `| fl *`). The Linux and ESXi examples lose snapshot fields and whole
lists; the ESXi paste loses command outputs, .vmx files, devices and lines.
Then every rule that fails on the smaller input must have failed on the full one (same rule, same scope), and
the verdict may only move to `unknown` or to a softer verdict.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iovkit.checks.catalog import VERDICT_RANK, CheckResult, _blocked, _units, run_checks
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
    _assert_no_new_fails(full, part, what)
    if part.verdict != "unknown":
        assert VERDICT_RANK[part.verdict] >= VERDICT_RANK[full.verdict], (
            f"{what}: verdict hardened from {full.verdict} to {part.verdict} ({part.reason})"
        )


def _assert_no_new_fails(full: CheckResult, part: CheckResult, what: str) -> None:
    before = _fails(full)
    # A scope whose name was itself removed ("(unnamed)" switch, "?/adapter") matches any of the same kind.
    anonymous = ("(unnamed)", "?/")
    new = {
        f
        for f in _fails(part)
        if f not in before and not (f[2].startswith(anonymous) and any(b[:2] == f[:2] for b in before))
    }
    assert not new, f"{what}: failures on facts that were removed: {sorted(new)}"


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


# Snapshot values whose None is an observation, not a missing fact: on Linux a VF without a driver link (unbound);
# on ESXi a VF row's `-` owner (unowned) and so no VM, and an SR-IOV adapter's PF (None = automatic; it is derived
# from pf_raw, which is deleted instead).
OBSERVED_NONE = {
    "linux-cx5": {("vfs", "driver")},
    "esxi-x710": {("esxi", "owner_world_id"), ("esxi", "vm"), ("vfs", "vm"), ("esxi", "pf")},
}


@pytest.mark.parametrize("name", list(OBSERVED_NONE))
def test_deleting_snapshot_facts_never_fails_a_rule_or_hardens_the_verdict(name: str) -> None:
    """Linux and ESXi snapshots lose fields and whole lists (None: not collected)."""
    snap = load_example(name)
    data = snap.model_dump(mode="json")
    full = run_checks(snap)
    paths = [p for p in _leaf_paths(data) if (p[0], p[-1]) not in OBSERVED_NONE[name]]
    assert {(c,) for c in COLLECTIONS if data.get(c)} <= set(paths)

    def check(chosen: set[tuple[Any, ...]]) -> None:
        try:
            part_snap = snapshot_from_dict(_null(data, chosen), name)
        except Exception:  # a required field (a NIC's name) cannot be "not collected": not a real input
            return
        _assert_units_not_harder(snap, full, part_snap, run_checks(part_snap), f"{name} without {sorted(chosen)}")

    for p in paths:  # every single fact, then sets of them
        check({p})

    @SETTINGS
    @given(st.sets(st.sampled_from(paths), min_size=2, max_size=6))
    def prop(chosen: set[tuple[Any, ...]]) -> None:
        check(chosen)

    prop()


def _blocked_units(snap: HostSnapshot, result: CheckResult) -> tuple[set[str], set[str]]:
    """(in-scope units, the blocked ones), as the verdict counts them."""
    units = _units(snap, None) or []
    blocked: set[str] = set()
    for f in result.findings:
        if f.status == "fail":
            blocked |= _blocked(f, snap, units)
    return set(units), blocked


def _assert_units_not_harder(
    full_snap: HostSnapshot, full: CheckResult, part_snap: HostSnapshot, part: CheckResult, what: str
) -> None:
    """The property, where a deletion can remove a whole unit (a VM whose .vmx was not pasted): no new failure, no
    unit blocked that was clear, and the verdict not harder when the same units remain (when a unit left the input
    the verdict counts other units, so units are compared one by one)."""
    full_units, full_blocked = _blocked_units(full_snap, full)
    units, blocked = _blocked_units(part_snap, part)
    if units == full_units:
        _assert_not_harder(full, part, what)
    else:
        _assert_no_new_fails(full, part, what)
    newly = (blocked & full_units) - full_blocked
    assert not newly, f"{what}: units blocked on facts that were removed: {sorted(newly)} ({part.reason})"


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


# -- ESXi pastes ----------------------------------------------------------------------------------------------

# Outputs whose lines (or blank-line records) a paste can lack: key-value and per-device outputs, and `lspci | grep`.
# esxcli's tables (nic list, sriovnic list, VF list, module parameters, pcipassthru), a plain `lspci` and a .vmx file
# list everything: a row missing from them is another host, not a missing fact, so they are cut only whole, like
# every other command's output. (A piped lspci is a lower bound: iovkit counts its VFs only when all asked for.)
_ESXI_LINES = ("system version get", "hostsummary", "hardware pci list", "lspci |", "vm process list", "vmkernel.log")


def _esxi_blocks(text: str) -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("[root@"):
            blocks.append((line, []))
        elif not blocks:  # a fixture of one command's output, without its prompt
            blocks.append(("", [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def _esxi_cuts(blocks: list[tuple[str, list[str]]]) -> list[tuple[int, ...]]:
    """(block,) a command's whole output; (block, line) a line; (block, -first) the record starting at a line."""
    cuts: list[tuple[int, ...]] = []
    for b, (prompt, lines) in enumerate(blocks):
        cuts.append((b,))
        if not any(k in prompt for k in _ESXI_LINES):
            continue
        for i, ln in enumerate(lines):
            if ln.strip():
                cuts.append((b, i))
            starts = ("vm process" in prompt and ln[:1].isalnum()) or ("pci list" in prompt and ln[:1] == "0")
            if starts:
                cuts.append((b, -1 - i))
    return cuts


def _esxi_render(blocks: list[tuple[str, list[str]]], cuts: set[tuple[int, ...]]) -> str:
    out: list[str] = []
    for b, (prompt, lines) in enumerate(blocks):
        if (b,) in cuts:
            continue
        out += [prompt] if prompt else []
        gone = False
        for i, ln in enumerate(lines):
            if not ln.strip():
                gone = False
            gone = gone or (b, -1 - i) in cuts
            if not gone and (b, i) not in cuts:
                out.append(ln)
    return "\n".join(out) + "\n"


def _esxi_fixture_pastes() -> dict[str, str]:
    """The shipped ESXi example, also with a grepped lspci. (The one paste fixture under tests/fixtures/esxi is a
    single nic list: cutting it leaves nothing to check; test_recommendations_agree reads it as a partial paste.)"""
    example = example_path("esxi-x710").read_text(encoding="utf-8")
    grepped = example.replace("] lspci\n", "] lspci | grep -i net\n")
    assert grepped != example
    return {"esxi-x710": example, "esxi-x710 (lspci | grep)": grepped}


@pytest.mark.parametrize("name", list(_esxi_fixture_pastes()))
def test_deleting_esxi_command_outputs_records_or_lines_never_fails_a_rule(name: str) -> None:
    """A pasted ESXi session that lacks a command's output, a .vmx file, a device or a line."""
    from iovkit.errors import InputError
    from iovkit.sources.esxi.paste import snapshot_from_sections, split_sections

    def load(text: str) -> HostSnapshot:
        return snapshot_from_sections(split_sections(text, name), name)

    blocks = _esxi_blocks(_esxi_fixture_pastes()[name])
    full_snap = load(_esxi_render(blocks, set()))
    full = run_checks(full_snap)
    cuts = _esxi_cuts(blocks)
    assert len(cuts) > (40 if name.startswith("esxi-x710") else 0)

    def check(chosen: set[tuple[int, ...]]) -> None:
        try:
            snap = load(_esxi_render(blocks, chosen))
        except InputError:  # nothing iovkit reads was left: refused with one line, no verdict at all
            return
        _assert_units_not_harder(full_snap, full, snap, run_checks(snap), f"{name} paste without {sorted(chosen)}")

    commands = [c for c in cuts if len(c) == 1]
    for c in cuts:  # every single cut, every pair of command outputs, then sets of cuts
        check({c})
    for i, a in enumerate(commands):
        for b in commands[i + 1 :]:
            check({a, b})

    @SETTINGS
    @given(st.sets(st.sampled_from(cuts), min_size=2, max_size=8))
    def prop(chosen: set[tuple[int, ...]]) -> None:
        check(chosen)

    prop()
