"""The vSphere executor: its API specs are pyVmomi's own objects, and a dry run reads the recorded host."""

from __future__ import annotations

from pathlib import Path

from pyVmomi import SoapAdapter, vim

from iovkit.apply.engine import apply_plan
from iovkit.apply.vsphere import VsphereExecutor, add_sriov_spec, memory_spec, remove_spec, sriov_config
from iovkit.plan import make_plan
from iovkit.policy import Policy
from iovkit.sources.esxi.live import collect_vsphere
from iovkit.sources.esxi.target import VsphereTarget
from tests.fixtures.vsphere_replay import VERSION, replay_server


def test_sriov_config_is_the_api_object_and_serialises():
    cfg = sriov_config("0000:1a:00.0", True, 8)
    assert isinstance(cfg, vim.host.SriovConfig) and isinstance(cfg, vim.host.PciPassthruConfig)
    assert (cfg.id, cfg.sriovEnabled, cfg.numVirtualFunction, cfg.passthruEnabled) == ("0000:1a:00.0", True, 8, False)
    xml = SoapAdapter.Serialize(cfg, version=VERSION).decode()
    assert "<numVirtualFunction>8</numVirtualFunction>" in xml and "<sriovEnabled>true</sriovEnabled>" in xml


def test_vm_specs_reserve_memory_add_and_remove_an_sriov_card():
    spec = memory_spec(8192, True)
    assert spec.memoryReservationLockedToMax is True and spec.memoryAllocation.reservation == 8192
    add = add_sriov_spec("0000:1a:00.1", vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Relay"))
    (change,) = add.deviceChange
    card = change.device
    assert change.operation == "add" and isinstance(card, vim.vm.device.VirtualSriovEthernetCard)
    assert card.sriovBacking.physicalFunctionBacking.id == "0000:1a:00.1" and card.backing.deviceName == "Relay"
    assert "VirtualSriovEthernetCard" in SoapAdapter.Serialize(add, version=VERSION).decode()
    rm = remove_spec([card])
    assert [c.operation for c in rm.deviceChange] == ["remove"]


def test_dry_run_against_the_recorded_host_checks_staleness_and_lists_the_calls(tmp_path: Path):
    with replay_server(password="secret") as srv:
        target = VsphereTarget.parse(f"http://127.0.0.1:{srv.server_address[1]}", "root", insecure=False)
        snap = collect_vsphere(target, "secret")
        plan = make_plan(snap, Policy.model_validate({"adapters": [{"vm": "relay-12"}]}))
        res = apply_plan(plan, VsphereExecutor(target, "secret"), tmp_path / "j", yes=False, console=False)
    assert res.status == "dry-run" and not plan.reboots_host  # vmnic3 already has 8 VFs
    titles = [s.title for s in res.steps]
    assert titles[0] == "power off VM 'relay-12'" and titles[-1] == "verify 'relay-12' owns an active VF of vmnic3"
    assert any("VirtualSriovEthernetCard" in s.command and "0000:1a:00.1" in s.command for s in res.steps)


def test_a_plan_from_a_paste_is_checked_on_what_its_steps_restore():
    from iovkit.apply.vsphere import paste_plan_stale
    from iovkit.sources import load_example

    snap = load_example("esxi-x710")
    plan = make_plan(
        snap, Policy.model_validate({"nics": ["vmnic1"], "adapters": [{"vm": "relay-02", "adapter": "ethernet1"}]})
    )
    live = snap.model_copy(deep=True)
    assert paste_plan_stale(plan, live) is None
    assert live.esxi is not None
    live.esxi.modules[0].options = "max_vfs=8,4"
    assert "i40en max_vfs is [8, 4], the plan expected [8, 0]" in (paste_plan_stale(plan, live) or "")
    live = snap.model_copy(deep=True)
    live.host.name = "esx99"
    assert "live host is 'esx99'" in (paste_plan_stale(plan, live) or "")
    step = next(s for s in plan.steps if s.kind == "esx-disconnect")
    assert step.mac == "00:50:56:a1:10:02"  # type: ignore[union-attr]  # finds "Network adapter 2" by MAC over the API


def test_cli_plan_and_a_dry_run_through_the_vsphere_executor(tmp_path: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "IOVKIT_PASSWORD": "secret", "PYTHONPATH": ":".join(sys.path)}
    (tmp_path / "policy.yaml").write_text("version: 1\nadapters:\n  - vm: relay-12\n")
    with replay_server(password="secret") as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        conn = ["--vsphere", url, "--user", "root"]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "iovkit", *args],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
                env=env,
            )

        r = run("plan", *conn, "--policy", "policy.yaml", "-o", "plan.json")
        assert r.returncode == 0, r.stderr
        r = run("apply", "plan.json", "--executor", "vsphere", *conn)
    assert r.returncode == 0, r.stderr
    assert "Dry run: 6 step(s) would run" in r.stdout and "ReconfigVM_Task('relay-12'" in r.stdout
    assert "secret" not in r.stdout + r.stderr
