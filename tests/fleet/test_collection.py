"""The iovkit.fleet collection from a user's own playbook (ansible-playbook through ansible-runner), and the
Windows path's wiring: the collect role's script task, its stdout bundle, and the judging of it.

PowerShell cannot run here, so the Windows host's collector is a stand-in shell script that prints what
collect.ps1 prints under Windows PowerShell 5.1 (a banner line, then the bundle in 5.1's JSON shape): the
Ansible wiring (task choice, script transfer, stdout, parsing) is real, the cmdlets are not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from iovkit.cli.main import main
from iovkit.examples import example_path
from iovkit.fleet import COLLECTIONS_PATH
from iovkit.fleet.model import load_fleet_result
from iovkit.plan import make_plan
from iovkit.sources.linux import collect as linux_collect
from tests.fixtures.hyperv_bundles import lbfo_bundle, to_ps51
from tests.fixtures.linux_tree import build_cx5_host
from tests.fleet.conftest import LOCAL, write_inventory

PLAYBOOK = """
- hosts: all
  gather_facts: false
  roles: [iovkit.fleet.collect]
  tasks:
    - name: judge on the controller
      iovkit.fleet.iovkit_check:
        snapshot: "{{ iovkit_collected.snapshot if iovkit_collected is not skipped else omit }}"
        bundle: "{{ iovkit_collected_windows.stdout if iovkit_collected_windows is not skipped else omit }}"
        esxi: "{{ iovkit_collected_esxi.stdout if iovkit_collected_esxi is not skipped else omit }}"
      delegate_to: localhost
      register: judged
    - name: gate
      iovkit.fleet.iovkit_check:
        snapshot: "{{ iovkit_collected.snapshot }}"
        fail_on: not-ready
      delegate_to: localhost
      when: iovkit_collected is not skipped
    - name: dry run of the plan
      iovkit.fleet.iovkit_apply:
        plan: "{{ plan_file }}"
        root: "{{ iovkit_root }}"
      check_mode: true
      when: plan_file is defined
"""


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("collection")
    tree = d / "tree"
    build_cx5_host(tree)
    plan = make_plan(linux_collect(tree), None)
    (d / "plan.json").write_text(plan.to_json())
    bundle = d / "bundle.json"
    bundle.write_text(json.dumps(to_ps51(lbfo_bundle()), indent=2))
    standin = d / "collect-standin.sh"
    standin.write_text(f"#!/bin/sh\necho 'Windows PowerShell'\ncat {bundle}\n")
    standin.chmod(0o755)
    esxi = d / "esxi-standin.sh"  # what the ESXi commands print over SSH (busybox sh there; the commands are not)
    esxi.write_text(f"#!/bin/sh\ncat {example_path('esxi-x710')}\n")
    esxi.chmod(0o755)
    inv = write_inventory(
        d / "inventory.yml",
        {
            "kvm": {"kvm-t": {"iovkit_root": str(tree), "plan_file": str(d / "plan.json")}},
            "hyperv": {"hv-win": {"iovkit_windows": True, "iovkit_collector_script": str(standin)}},
            "vsphere": {"esx-1": {"iovkit_esxi": True, "iovkit_esxi_script": str(esxi)}},
        },
        **LOCAL,
    )
    return d, inv


def test_a_users_playbook_collects_checks_and_dry_runs_a_plan(hosts: tuple[Path, Path]) -> None:
    d, inv = hosts
    (d / "site.yml").write_text(PLAYBOOK)
    (d / "runner").mkdir()
    results: dict[tuple[str, str], dict[str, Any]] = {}

    def on_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        if str(event.get("event", "")).startswith("runner_on_") and data.get("host"):
            results[(data["host"], data.get("task", ""))] = {"event": event["event"], **(data.get("res") or {})}
        return False

    run = ansible_runner.run(
        private_data_dir=str(d / "runner"),
        playbook=str(d / "site.yml"),
        inventory=str(inv),
        envvars={"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "PATH": os.environ["PATH"]},
        event_handler=on_event,
        quiet=True,
    )
    assert run.rc == 0, [(k, v.get("msg")) for k, v in results.items() if v["event"] == "runner_on_failed"]
    kvm, win = results[("kvm-t", "judge on the controller")], results[("hv-win", "judge on the controller")]
    assert (kvm["platform"], kvm["host"], kvm["verdict"]) == ("linux", "kvm-edge-01", "ready")
    assert (win["platform"], win["host"], win["verdict"]) == ("hyperv", "HV-LEGACY-01", "not-ready")
    assert win["top"][0]["id"] == "HV-TEAM"
    esx = results[("esx-1", "judge on the controller")]
    assert (esx["platform"], esx["host"], esx["verdict"]) == ("esxi", "esx01", "partial")
    dry = results[("kvm-t", "dry run of the plan")]
    assert dry["event"] == "runner_on_ok" and dry["status"] == "dry-run" and dry["changed"] is False
    assert dry["steps"] and all(s["command"] for s in dry["steps"])
    assert not (d / "plan.journal.jsonl").exists() or "completed" not in (d / "plan.journal.jsonl").read_text()


def test_fleet_reads_windows_and_esxi_output_from_the_script_tasks(hosts: tuple[Path, Path], tmp_path: Path) -> None:
    _d, inv = hosts
    code = main(["fleet", "check", "-i", str(inv), "--results-dir", str(tmp_path), "-f", "json", "-o",
                 str(tmp_path / "out.json")])  # fmt: skip
    result = load_fleet_result(tmp_path / "fleet.json")
    win = next(h for h in result.hosts if h.name == "hv-win")
    assert (win.status, win.method, win.platform, win.host_name) == ("ok", "script", "hyperv", "HV-LEGACY-01")
    assert win.verdict == "not-ready" and win.top is not None and win.top.id == "HV-TEAM"
    esx = next(h for h in result.hosts if h.name == "esx-1")
    assert (esx.status, esx.method, esx.platform, esx.host_name) == ("ok", "esxi-shell", "esxi", "esx01")
    assert esx.verdict == "partial"
    assert code == 1  # not-ready is a finding; nobody unreachable
