"""doctor, check and plan agree (issue 13 item 7): every iovkit command doctor or check recommends, run as printed
on the same input, does what the recommendation says. Over every shipped example and over partial pastes.

`iovkit plan ...` recommended by HV-SWITCH-IOV (or HV-VF-ACTIVE for a switch not in IOV mode) must plan that
switch's rebuild with IOV; recommended by HV-VF-CAPACITY it must list the adapters that do not fit. `iovkit apply
plan.json --console --yes` (HV-MGMT-OS) is run as printed against the Hyper-V simulator, since no Windows host is
here: the same command with `--executor simulator --sim-state FILE` appended.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iovkit.examples import EXAMPLES, example_path
from tests.fixtures import hyperv_bundles as B


def _paste(bundle: dict[str, Any], cmdlets: tuple[str, ...]) -> str:
    """`Get-X | Format-List *` output of some cmdlets of a bundle, with prompts: what an operator pastes."""
    parts = []
    for c in cmdlets:
        recs = bundle["sources"].get(c)
        if not recs:
            continue
        cmd = "Get-VMNetworkAdapter -All" if c == "Get-VMNetworkAdapter" else c
        parts.append(f"PS C:\\> {cmd} | Format-List *\n\n" + B.format_list(recs if isinstance(recs, list) else [recs]))
    return "\n".join(parts)


PASTES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "i350-switch-only": (B.i350_bundle(), ("Get-VMSwitch",)),
    "i350-switch-and-adapters": (B.i350_bundle(), ("Get-VMSwitch", "Get-VMNetworkAdapter")),
    "i350-no-netadapter": (B.i350_bundle(), ("Get-VMHost", "Get-VMSwitch", "Get-VMNetworkAdapter", "Get-VM")),
    "i350-adapters-only": (B.i350_bundle(), ("Get-VMNetworkAdapter",)),
    "firmware-host-and-switch": (B.firmware_blocked_bundle(), ("Get-VMHost", "Get-VMSwitch")),
    "lbfo-switch-team": (B.lbfo_bundle(), ("Get-VMSwitch", "Get-NetLbfoTeam", "Get-NetAdapter")),
}


def _esxi_paste(keep: Callable[[str], bool]) -> str:
    """The ESXi example as pasted, keeping the commands (prompt line without the prompt) `keep` accepts."""
    text = example_path("esxi-x710").read_text(encoding="utf-8")
    parts = text.split("[root@esx01:~] ")
    return "".join("[root@esx01:~] " + p for p in parts[1:] if keep(p.split("\n", 1)[0]))


def _nic_list_fixture() -> str:
    nics = (Path(__file__).resolve().parents[1] / "fixtures" / "esxi" / "nic_list_703.txt").read_text(encoding="utf-8")
    return "[root@esx:~] esxcli network nic list\n" + nics


ESXI_PASTES: dict[str, Callable[[], str]] = {
    "esxi-no-vmx": lambda: _esxi_paste(lambda c: not c.startswith("cat ")),
    "esxi-vmx-only": lambda: _esxi_paste(lambda c: c.startswith("cat ")),
    "esxi-no-driver-params": lambda: _esxi_paste(
        lambda c: not c.startswith(("esxcli system module", "esxcfg-module", "esxcli network sriovnic list"))
    ),
    "esxi-no-vf-lists": lambda: _esxi_paste(lambda c: not c.startswith(("esxcli network sriovnic vf", "lspci"))),
    "esxi-relay-03-only": lambda: _esxi_paste(lambda c: not c.endswith(("relay-01.vmx", "relay-02.vmx"))),
    "esxi-nic-list-703": _nic_list_fixture,
}

INPUTS = [("example", n) for n in EXAMPLES] + [("paste", n) for n in PASTES] + [("esxi-paste", n) for n in ESXI_PASTES]


def _recommended(doc: dict[str, Any], doctor: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(finding, command) for every `iovkit ...` command in check's fixes/collect and doctor's top fixes."""
    out: list[tuple[dict[str, Any], str]] = []
    by_key = {(f["id"], f"{f['scope']['kind']} {f['scope']['name']}"): f for f in doc["findings"]}
    for f in doc["findings"] + [by_key.get((t["id"], t["scope"]), t) for t in doctor["top_fixes"]]:
        for cmd in (f.get("fix"), f.get("collect")):
            if cmd and cmd.startswith("iovkit "):
                out.append((f, cmd.split("#", 1)[0].strip()))
            elif cmd and (m := re.search(r"[:;] (iovkit [^#;]*)$", cmd)):  # "..., or let the plan do it: iovkit ..."
                out.append((f, m.group(1).strip()))
    return out


@pytest.mark.parametrize(("kind", "name"), INPUTS, ids=[f"{k}:{n}" for k, n in INPUTS])
def test_every_recommended_iovkit_command_does_what_it_says(
    kind: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    has_nics = kind == "example"
    if kind == "example":
        args = ["--example", name]
    elif kind == "esxi-paste":
        (tmp_path / "paste.txt").write_text(ESXI_PASTES[name](), encoding="utf-8")
        args = ["--from", "paste.txt"]
    else:
        bundle, cmdlets = PASTES[name]
        (tmp_path / "paste.txt").write_text(_paste(bundle, cmdlets), encoding="utf-8")
        args = ["--from", "paste.txt"]
        has_nics = "Get-NetAdapter" in cmdlets
    check = cli("check", *args, "--format", "json")
    assert check.code in (0, 1), check.err
    doctor = cli("doctor", *args, "--format", "json", "--no-examples")
    assert doctor.code in (0, 1), doctor.err
    doc, doc_doctor = json.loads(check.out), json.loads(doctor.out)
    ran: dict[str, Any] = {}
    recs = _recommended(doc, doc_doctor)
    # plan before apply: apply reads the plan.json the plan recommendation writes
    for finding, cmd in sorted(recs, key=lambda fc: "apply" in fc[1]):
        argv = shlex.split(cmd)[1:]
        if argv[0] == "apply":
            if "plan" not in ran or not has_nics:
                # apply follows a plan; and the simulator stands in for a host only with the NICs in the input
                continue
            argv += ["--executor", "simulator", "--sim-state", "sim.json"]
        if cmd not in ran:
            ran[cmd] = cli(*argv)
        r = ran[cmd]
        assert r.code in (0, 1), f"{cmd!r} (from {finding['id']}) exited {r.code}: {r.err}"
        if argv[0] == "plan":
            ran["plan"] = r
            _plan_does_what_it_says(finding, json.loads((tmp_path / "plan.json").read_text()), cmd)
        if argv[0] == "apply":
            assert r.code == 0, f"{cmd!r} did not apply: {r.err}"


def _plan_does_what_it_says(finding: dict[str, Any], plan: dict[str, Any], cmd: str) -> None:
    steps = plan["steps"]
    scope = finding.get("scope") if isinstance(finding.get("scope"), dict) else {"kind": "", "name": ""}
    if finding["id"] in ("HV-SWITCH-IOV", "HV-VF-ACTIVE") and "not in IOV mode" in finding["message"]:
        switch = scope["name"] if scope["kind"] == "switch" else finding["evidence"].get("switch_name")
        creates = [s for s in steps if s["kind"] == "create-switch" and s["switch"]["name"] == switch]
        assert not plan["blockers"], f"{cmd}: {finding['id']} says the plan rebuilds {switch!r}: {plan['blockers']}"
        assert creates and creates[0]["switch"]["iov"], f"{cmd} does not recreate {switch!r} with IOV"
        assert any(s["kind"] == "remove-switch" and s["switch"]["name"] == switch for s in steps)
    if finding["id"] == "ESX-VM-MEMORY" and finding["status"] == "fail":
        vm = scope["name"].split("/")[0]
        mem = next(v for k, v in finding["evidence"].items() if k.endswith(".memory_mb"))
        reserve = [s for s in steps if s["kind"] == "esx-memory" and s["vm"] == vm]
        assert reserve and reserve[0]["memory_mb"] == mem, f"{cmd} does not reserve {vm}'s {mem} MB: {steps}"
    if finding["id"] == "HV-VF-CAPACITY" and finding["status"] == "fail":
        unfit = {f"{u['vm']}/{u['adapter']}" for u in plan["unfit"]}
        said = {a.strip() for a in finding["message"].split(": ", 1)[1].split(" will stay")[0].split(", ")}
        assert said <= unfit, f"{cmd}: {finding['message']} but the plan's unfit list is {sorted(unfit)}"


def test_the_pastes_do_reach_the_plan_recommendation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any) -> None:
    """The partial pastes are not vacuous: a switch without IOV and the adapters on it give HV-SWITCH-IOV's plan;
    without the VM adapters the plan could not move them, so HV-SWITCH-IOV gives the commands by hand and says what
    to paste for a plan; without the switch there is no failure at all (unknown is not false)."""
    monkeypatch.chdir(tmp_path)
    for name, expect in (
        ("i350-switch-and-adapters", True),
        ("i350-switch-only", False),
        ("i350-adapters-only", False),
    ):
        bundle, cmdlets = PASTES[name]
        (tmp_path / f"{name}.txt").write_text(_paste(bundle, cmdlets), encoding="utf-8")
        doc = json.loads(cli("check", "--from", f"{name}.txt", "--format", "json").out)
        fixes = [f["fix"] for f in doc["findings"] if f["id"] == "HV-SWITCH-IOV" and f["status"] == "fail"]
        if name == "i350-adapters-only":
            assert fixes == []
        else:
            assert len(fixes) == 1 and fixes[0].startswith("iovkit plan --from") is expect, (name, fixes)


ESXI_INPUTS = [("example", "esxi-x710")] + [("esxi-paste", n) for n in ESXI_PASTES]
_REBOOT_RULES = ("ESX-VFS-ENABLED", "ESX-VFS-ACTIVE", "ESX-VF-CAPACITY", "ESX-REBOOT")


@pytest.mark.parametrize(("kind", "name"), ESXI_INPUTS, ids=[f"{k}:{n}" for k, n in ESXI_INPUTS])
def test_esxi_doctor_check_and_plan_agree(
    kind: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    """On the ESXi example and partial ESXi pastes: doctor's verdict and fixes are check's; the plan reboots the
    host only where check saw a reason to (a port without its VFs, a pending reboot), never on a fact nobody
    collected; and a plan built on an SR-IOV adapter's unread port says what to collect instead of calling it
    "not an SR-IOV port"."""
    monkeypatch.chdir(tmp_path)
    if kind == "example":
        args = ["--example", name]
    else:
        (tmp_path / "paste.txt").write_text(ESXI_PASTES[name](), encoding="utf-8")
        args = ["--from", "paste.txt"]
    doc = json.loads(cli("check", *args, "--format", "json").out)
    doctor = json.loads(cli("doctor", *args, "--format", "json", "--no-examples").out)
    assert doctor["check_verdict"] == doc["verdict"]
    fixes = {(f["id"], f"{f['scope']['kind']} {f['scope']['name']}"): f.get("fix") for f in doc["findings"]}
    for t in doctor["top_fixes"]:
        assert fixes.get((t["id"], t["scope"])) == t["fix"], f"doctor's fix for {t['id']} is not check's"
    r = cli("plan", *args, "-o", "plan.json")
    assert r.code in (0, 1), r.err
    plan = json.loads((tmp_path / "plan.json").read_text())
    reasons = [f for f in doc["findings"] if f["id"] in _REBOOT_RULES and f["status"] in ("fail", "warn")]
    if plan["reboots_host"]:
        assert reasons, f"the plan reboots the host but check saw no reason to: {plan['steps']}"
    nics = {f["scope"]["name"] for f in doc["findings"] if f["id"] == "ESX-NIC-DRIVER" and f["status"] == "pass"}
    for u in plan["unfit"]:
        if "is not an SR-IOV port" in u["reason"]:
            assert nics, f"{u}: but check did not see which ports can carry VFs"
