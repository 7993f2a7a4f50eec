"""`iovkit check` / `iovkit doctor` through the CLI, as a user runs them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from iovkit.snapshot import HostSnapshot
from tests.fixtures.snapshots import guest, hv_ready, lx_ready


def write(tmp_path: Path, snap: HostSnapshot, name: str = "snap.json") -> str:
    p = tmp_path / name
    p.write_text(snap.to_json(), encoding="utf-8")
    return str(p)


def not_iov(n_vms: int = 8) -> HostSnapshot:
    s = hv_ready(n_vms=n_vms, vfs=6)
    s.switches[0].iov_enabled, s.switches[0].vf_count, s.switches[0].vfs_in_use = False, 0, 0
    for a in s.vm_adapters:
        if not a.is_management_os:
            a.iov_weight, a.iov_usage, a.vf_data_path_active = 0, 0, False
    return s


def test_check_ready_exits_0_with_table(cli, tmp_path):
    r = cli("check", write(tmp_path, hv_ready()))
    assert r.code == 0, r.err
    assert "READY" in r.out and "HV-SWITCH-IOV" in r.out and "switch External" in r.out


def test_check_not_ready_exits_1_and_lists_fixes(cli, tmp_path):
    r = cli("check", write(tmp_path, not_iov()))
    assert r.code == 1
    assert "NOT READY" in r.out and "Fixes" in r.out
    assert "Set-VMNetworkAdapter -VMName 'relay-08' -Name 'Network Adapter' -IovWeight 100" in r.out


def test_check_json_shape(cli, tmp_path):
    r = cli("check", write(tmp_path, not_iov()), "--format", "json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["verdict"] == "not-ready"
    f = next(f for f in doc["findings"] if f["id"] == "HV-SWITCH-IOV")
    assert f["status"] == "fail" and f["scope"] == {"kind": "switch", "name": "External"}
    assert f["evidence"]["switches[0].iov_enabled"] is False and f["fix"].startswith("iovkit plan")
    assert set(f) >= {"id", "title", "status", "severity", "scope", "evidence", "fix", "missing"}


def test_check_junit_one_case_per_finding_with_fix_as_failure_message(cli, tmp_path):
    r = cli("check", write(tmp_path, not_iov(2)), "--format", "junit")
    suite = ET.fromstring(r.out.split("\n", 1)[1])
    cases = suite.findall("testcase")
    doc = json.loads(cli("check", write(tmp_path, not_iov(2)), "-f", "json").out)
    assert len(cases) == len(doc["findings"]) == int(suite.get("tests"))
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == int(suite.get("failures")) > 0
    msgs = {c.find("failure").get("message") for c in failed}
    assert "Set-VMNetworkAdapter -VMName 'relay-01' -Name 'Network Adapter' -IovWeight 100" in msgs


def test_check_markdown(cli, tmp_path):
    r = cli("check", write(tmp_path, not_iov(2)), "--format", "markdown")
    assert r.out.startswith("# iovkit check: NOT READY")
    assert "## switch External" in r.out and "| fail | HV-SWITCH-IOV |" in r.out


def test_only_and_skip_repeatable_and_comma_separated(cli, tmp_path):
    path = write(tmp_path, not_iov(2))
    r = cli("check", path, "-f", "json", "--only", "HV-TEAM,hv-os-edition", "--only", "HV-SLAT")
    doc = json.loads(r.out)
    assert {f["id"] for f in doc["findings"]} == {"HV-TEAM", "HV-OS-EDITION", "HV-SLAT"}
    assert doc["verdict"] == "ready"
    assert "READY covers only the checks that ran" in r.err  # a subset's READY is not the host's
    assert "covers only" not in cli("check", write(tmp_path, hv_ready()), "-f", "json").err
    r = cli("check", path, "-f", "json", "--skip", "HV-SWITCH-IOV,HV-VNIC-WEIGHT", "--skip", "HV-VF-CAPACITY")
    ids = {f["id"] for f in json.loads(r.out)["findings"]}
    assert not ids & {"HV-SWITCH-IOV", "HV-VNIC-WEIGHT", "HV-VF-CAPACITY"} and "HV-TEAM" in ids


def test_unknown_check_id_is_one_line_error(cli, tmp_path):
    r = cli("check", write(tmp_path, hv_ready()), "--skip", "HV-TEAM,HV-NOPE")
    assert r.code == 2 and "HV-NOPE" in r.err and "--skip" in r.err and r.err.count("\n") == 1


def test_unknown_format_is_usage_error(cli, tmp_path):
    r = cli("check", write(tmp_path, hv_ready()), "--format", "xml")
    assert r.code == 2 and "--format" in r.err and "'xml'" in r.err


def test_malformed_snapshot_names_file_field_and_value(cli, tmp_path):
    data = json.loads(hv_ready().to_json())
    data["vm_adapters"][1]["iov_weight"] = "heavy"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    r = cli("check", str(p))
    assert r.code == 2 and r.err.count("\n") == 1 and "Traceback" not in r.err
    assert str(p) in r.err and "vm_adapters.1.iov_weight" in r.err and '"heavy"' in r.err


def test_truncated_snapshot_is_one_line_error(cli, tmp_path):
    p = tmp_path / "cut.json"
    p.write_text(hv_ready().to_json()[:300])
    r = cli("doctor", "--from", str(p))
    assert r.code == 2 and str(p) in r.err and r.err.count("\n") == 1


def test_malformed_policy_names_file_field_and_value(cli, tmp_path):
    pol = tmp_path / "policy.yaml"
    pol.write_text("version: 1\nadapters:\n  - vm: 'relay-*'\n    iov_weight: 500\n")
    r = cli("check", write(tmp_path, hv_ready()), "--policy", str(pol))
    assert r.code == 2 and r.err.count("\n") == 1
    assert str(pol) in r.err and "adapters.0.iov_weight" in r.err and "500" in r.err
    pol.write_text("adapters: [unclosed\n")
    r = cli("doctor", write(tmp_path, hv_ready()), "--policy", str(pol))
    assert r.code == 2 and str(pol) in r.err and "YAML" in r.err


def test_policy_scopes_adapters(cli, tmp_path):
    pol = tmp_path / "policy.yaml"
    pol.write_text("version: 1\nadapters:\n  - vm: 'relay-0[1-6]'\n")
    s = hv_ready(n_vms=8, vfs=6)
    for a in s.vm_adapters[6:8]:
        a.iov_weight, a.iov_usage, a.vf_data_path_active = 0, 0, False
    s.switches[0].vfs_in_use = 6
    r = cli("check", write(tmp_path, s), "--policy", str(pol), "-f", "json")
    assert json.loads(r.out)["verdict"] == "ready" and r.code == 0
    r = cli("check", write(tmp_path, s), "-f", "json")  # no policy: all 8 are in scope
    assert json.loads(r.out)["verdict"] == "partial" and r.code == 1


def test_list_shows_every_issue_id(cli):
    r = cli("check", "--list")
    for rid in (
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
    ):
        assert rid in r.out


# -- doctor --------------------------------------------------------------------------------------------------
def test_doctor_page_puts_verdict_then_three_fixes_then_details(cli, tmp_path):
    r = cli("doctor", write(tmp_path, not_iov()))
    assert r.code == 1
    lines = r.out.splitlines()
    assert "NOT READY" in lines[0]
    fixes = r.out.index("Most important fixes")
    details = r.out.index("Details")
    assert fixes < details
    block = r.out[fixes:details]
    assert "1. " in block and "3. " in block and "4. " not in block
    assert f"iovkit plan {tmp_path / 'snap.json'} -o plan.json" in block  # the input the user gave


def test_doctor_json(cli, tmp_path):
    r = cli("doctor", write(tmp_path, lx_ready()), "--format", "json")
    doc = json.loads(r.out)
    assert r.code == 0 and doc["verdict"] == "ready" and doc["diagnose"] is None
    assert "not of this host" in doc["diagnose_note"]


def test_doctor_guest_snapshot_says_guest_plainly(cli, tmp_path):
    r = cli("doctor", write(tmp_path, guest(vf=False)))
    assert r.code == 1 and "NOT READY" in r.out
    assert "VM guest" in r.out and "cannot be set up inside a guest" in r.out


EXPECTED = {
    "hyperv-ready": "ready",
    "hyperv-firmware-blocked": "not-ready",
    "hyperv-lbfo": "not-ready",
    "hyperv-i350-no-iov": "not-ready",
    "linux-cx5": "ready",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_doctor_example_verdicts(cli, name):
    r = cli("doctor", "--example", name, "--format", "json")
    assert r.err == "" or r.code != 2, r.err
    doc = json.loads(r.out)
    assert doc["verdict"] == EXPECTED[name], [
        (f["id"], f["status"], f["message"]) for f in doc["findings"] if f["status"] in ("fail", "unknown")
    ]
    assert r.code == (0 if EXPECTED[name] == "ready" else 1)


def test_plan_fix_follows_the_given_input_and_policy(cli, tmp_path):
    pol = tmp_path / "policy.yaml"
    pol.write_text("version: 1\n")
    path = write(tmp_path, not_iov(2))
    doc = json.loads(cli("check", path, "--policy", str(pol), "-f", "json").out)
    fix = next(f["fix"] for f in doc["findings"] if f["id"] == "HV-SWITCH-IOV")
    assert fix == f"iovkit plan {path} --policy {pol} -o plan.json"
    doc = json.loads(cli("check", "--from", path, "-f", "json").out)
    assert next(f["fix"] for f in doc["findings"] if f["id"] == "HV-SWITCH-IOV") == (
        f"iovkit plan --from {path} -o plan.json"
    )


HOWTO_PASTE = """PS C:\\> Get-VMHost | fl ComputerName, IovSupport, IovSupportReasons

ComputerName      : HV01
IovSupport        : False
IovSupportReasons : {REASON}

PS C:\\> Get-NetAdapterSriov | fl Name, InterfaceDescription, SriovSupport, Enabled, NumVFs

Name                 : Ethernet
InterfaceDescription : Intel(R) Ethernet Server Adapter I350-T2
SriovSupport         : NoOscSupport
Enabled              : True
NumVFs               : 6
""".replace(
    "REASON",
    "To use SR-IOV on this system, the system BIOS must be updated to allow Windows to control PCI Express. "
    "Contact your system manufacturer for an update.",
)


def test_an_sriov_nic_blocked_by_firmware_is_not_told_to_buy_an_sriov_nic(cli, tmp_path: Path) -> None:
    """The how-to's paste: an I350 whose BIOS withholds _OSC. The fix is firmware, and no switch was pasted."""
    p = tmp_path / "pasted.txt"
    p.write_text(HOWTO_PASTE, encoding="utf-8")
    r = cli("check", str(p), "--format", "json")
    assert r.code == 1, r.err
    nic = [f for f in json.loads(r.out)["findings"] if f["id"] == "HV-NIC-SRIOV"]
    host = next(f for f in nic if f["status"] == "fail")
    assert "install an SR-IOV capable NIC" not in (host["fix"] or "")
    assert "_OSC" in host["fix"] and "Ethernet NoOscSupport" in host["message"]
    port = next(f for f in nic if f["status"] == "warn")
    assert "not under an external switch" not in port["message"] and "switches not collected" in port["message"]


def test_a_paste_without_a_host_name_is_not_called_this_host(cli, tmp_path: Path) -> None:
    """Get-NetAdapterSriov alone names no computer: the report must not read as a verdict on this machine."""
    p = tmp_path / "sriov.txt"
    p.write_text(
        "Name                 : VM NIC\nInterfaceDescription : Mellanox ConnectX-3 Pro Ethernet Adapter\n"
        "Enabled              : True\nSriovSupport         : Supported\nNumVFs               : 32\n",
        encoding="utf-8",
    )
    for cmd in ("check", "doctor"):
        r = cli(cmd, "--from", str(p))
        assert "unnamed host" in r.out, r.out
        assert "host this host" not in r.out and "this host (hyperv" not in r.out


def test_the_check_list_follows_format_json(cli) -> None:
    """`iovkit check --list --format json` is JSON a script can read, like every other --format json."""
    rows = json.loads(cli("check", "--list", "--format", "json").out)
    assert {"HV-SWITCH-IOV", "ESX-VM-MEMORY"} <= {r["id"] for r in rows}
    assert all(set(r) == {"id", "platform", "severity", "title"} for r in rows)


@pytest.mark.parametrize(("example", "rule"), [("hyperv-lbfo", "HV-TEAM"), ("hyperv-ready", "HV-SWITCH-IOV")])
def test_a_by_hand_rebuild_reconnects_the_vm_adapters_it_unplugs(cli, tmp_path: Path, example: str, rule: str):
    """Remove-VMSwitch leaves every VM adapter on it disconnected: the fix a user pastes plugs them back in."""
    from iovkit.sources import load_example
    from tests.plan.test_render import _errors

    snap = load_example(example)
    if rule == "HV-SWITCH-IOV":  # the ready host's switch, as if it had been created without IOV
        snap.switches[0].iov_enabled, snap.switches[0].vf_count = False, 0
    doc = json.loads(cli("check", write(tmp_path, snap), "--format", "json").out)
    text = " ".join(f["fix"] or "" for f in doc["findings"] if f["id"] == rule) + " ".join(
        f["message"] for f in doc["findings"] if f["id"] == rule
    )
    assert "Remove-VMSwitch" in text
    switch = snap.switches[0].name
    assert f"Where-Object SwitchName -eq '{switch}'" in text
    assert f"$a | Connect-VMNetworkAdapter -SwitchName '{switch}'" in text
    if rule == "HV-TEAM":
        fix = next(f["fix"] for f in doc["findings"] if f["id"] == rule and f["status"] == "fail")
        assert _errors(fix) == []


def test_a_by_hand_rebuild_keeps_a_switch_without_management_os_without_it(cli, tmp_path: Path) -> None:
    """New-VMSwitch -NetAdapterName adds a management-OS adapter unless told not to."""
    from iovkit.sources import load_example

    snap = load_example("hyperv-ready")
    snap.switches[0].iov_enabled, snap.switches[0].vf_count = False, 0
    snap.switches[0].allow_management_os = False
    doc = json.loads(cli("check", write(tmp_path, snap), "--format", "json").out)
    text = " ".join((f["fix"] or "") + f["message"] for f in doc["findings"] if f["id"] == "HV-SWITCH-IOV")
    assert "-EnableIov $true -AllowManagementOS $false" in text
