"""`iovkit fleet` over real Ansible with local-connection hosts, each reading its own capture or tree.

One `fleet check` run is shared by the assertions about it (Ansible starts slowly); a limit and a plan run
have their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iovkit.cli.main import main
from iovkit.fleet.model import load_fleet_result


def run_fleet(*args: str) -> int:
    return main(["fleet", *args])


@pytest.fixture(scope="module")
def checked(fleet_dir: Path) -> tuple[int, dict[str, Any], Path]:
    out = fleet_dir / "check.json"
    results = fleet_dir / "check-results"
    code = run_fleet(
        "check", "-i", str(fleet_dir / "inventory.yml"), "-f", "json", "-o", str(out), "--results-dir", str(results)
    )
    return code, json.loads(out.read_text()), results


def host(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in result["hosts"] if h["name"] == name)


def test_every_host_is_a_row_in_inventory_order(checked: tuple[int, dict[str, Any], Path]) -> None:
    _code, result, _ = checked
    assert [h["name"] for h in result["hosts"]] == ["hv-a", "hv-b", "hv-c", "kvm-a", "kvm-b", "kvm-gone", "down-1"]
    assert host(result, "hv-a")["groups"] == ["hyperv"]


def test_hosts_are_judged_with_the_checks_of_one_host(checked: tuple[int, dict[str, Any], Path]) -> None:
    _code, result, _ = checked
    a, c = host(result, "hv-a"), host(result, "hv-c")
    assert (a["status"], a["method"], a["platform"], a["verdict"]) == ("ok", "capture", "hyperv", "ready")
    assert (a["vfs_total"], a["vfs_used"], a["vfs_free"]) == (62, 3, 59)  # the IOV switch's own counts
    assert c["verdict"] == "not-ready" and c["top"]["id"] == "HV-TEAM"
    kvm = host(result, "kvm-a")
    assert (kvm["method"], kvm["platform"], kvm["host_name"]) == ("tree", "linux", "kvm-edge-01")


def test_an_unreachable_host_is_a_row_with_its_error_not_an_abort(checked: tuple[int, dict[str, Any], Path]) -> None:
    code, result, _ = checked
    down = host(result, "down-1")
    assert down["status"] == "unreachable" and down["verdict"] == "unreachable"
    assert "Connection refused" in down["error"]
    gone = host(result, "kvm-gone")
    assert gone["status"] == "failed" and "no-such-capture.tar.gz" in gone["error"]
    assert result["verdict"] == "unreachable" and code == result["exit_code"] == 3


def test_fleet_rules_see_what_no_single_host_shows(checked: tuple[int, dict[str, Any], Path]) -> None:
    _code, result, _ = checked
    found = {(f["id"], f["group"]): f for f in result["findings"]}
    names = found[("FLEET-SWITCH-NAME", "hyperv")]
    assert names["status"] == "fail" and "'SRIOV-2'" in names["message"]
    assert "Rename-VMSwitch -Name 'SRIOV-2' -NewName 'SETswitch'" in names["fix"]
    lbfo = found[("FLEET-LBFO", "hyperv")]
    assert lbfo["status"] == "fail" and lbfo["hosts"] == ["hv-c"]
    assert found[("FLEET-VF-CAPACITY", "hyperv")]["status"] == "warn"  # 62 VFs on the IOV switches, 64 on hv-c
    # kvm-gone's capture is missing: the rule compares the two it has and names the third as not collected
    kvm = found[("FLEET-VF-CAPACITY", "kvm")]
    assert kvm["status"] == "pass" and any("kvm-gone" in m for m in kvm["missing"])


def test_per_host_results_and_fleet_json_are_written(checked: tuple[int, dict[str, Any], Path]) -> None:
    _code, result, results = checked
    assert (results / "hv-a.check.json").exists() and (results / "kvm-a.snapshot.json").exists()
    assert not list(results.glob("down-1.*"))
    back = load_fleet_result(results / "fleet.json")
    assert back.model_dump(mode="json", by_alias=True) == result


def test_limit_selects_hosts_and_the_exit_code_follows_the_worst_verdict(fleet_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet.md"
    code = run_fleet(
        "collect",
        "-i",
        str(fleet_dir / "inventory.yml"),
        "--limit",
        "kvm:!kvm-gone",
        "-f",
        "markdown",
        "-o",
        str(out),
        "--results-dir",
        str(tmp_path / "r"),
    )
    text = out.read_text()
    assert code == 0, text
    assert "| kvm-a | linux | collected |" in text and "| kvm-b | linux | collected |" in text
    assert "hv-a" not in text and "down-1" not in text


def test_plan_writes_a_plan_per_host(fleet_dir: Path, tmp_path: Path) -> None:
    code = run_fleet(
        "plan",
        "-i",
        str(fleet_dir / "inventory.yml"),
        "--limit",
        "hv-a:hv-c",
        "-f",
        "html",
        "-o",
        str(tmp_path / "plan.html"),
        "--results-dir",
        str(tmp_path / "r"),
    )
    result = load_fleet_result(tmp_path / "r" / "fleet.json")
    assert {h.name: h.verdict for h in result.hosts} == {"hv-a": "planned", "hv-c": "blocked"}
    assert "LBFO team 'Team1'" in (result.hosts[1].top.message if result.hosts[1].top else "")
    assert (tmp_path / "r" / "hv-a.plan.json").exists() and (tmp_path / "r" / "hv-c.plan.json").exists()
    assert code == result.exit_code == 1
    assert "<table>" in (tmp_path / "plan.html").read_text()


def test_a_limit_that_matches_nothing_is_bad_input(
    fleet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # where the default ./iovkit-fleet-<time> results folder would go
    code = run_fleet("check", "-i", str(fleet_dir / "inventory.yml"), "--limit", "nosuchhost")
    assert code == 2
    assert "no host matches --limit 'nosuchhost'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # a run that ended before any result leaves no empty folder behind


def test_version_does_not_load_ansible() -> None:
    code = "import sys; from iovkit.cli.main import main; main(['--version']); assert 'ansible' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"all:\n  hosts: [\n", "ending in ':' is not allowed"),  # a YAML typo, read by the INI parser at last
        (bytes(range(256)) * 4, "not UTF-8 text"),  # a binary file given by mistake
    ],
    ids=["yaml-typo", "binary"],
)
def test_an_unreadable_inventory_is_one_line_not_ansible_warnings(tmp_path: Path, content: bytes, says: str) -> None:
    inv = tmp_path / "inventory.yml"
    inv.write_bytes(content)
    r = subprocess.run(
        [sys.executable, "-m", "iovkit", "fleet", "check", "-i", str(inv)], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"iovkit: error: {inv}: ") and says in r.stderr
