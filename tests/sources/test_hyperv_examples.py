"""The four shipped Hyper-V examples: loaded through the bundle parser, with the facts other stages rely on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iovkit.examples import example_path
from iovkit.sources import load_example
from tests.fixtures import hyperv_bundles as B

NAMES = ["hyperv-firmware-blocked", "hyperv-i350-no-iov", "hyperv-ready", "hyperv-lbfo"]


@pytest.mark.parametrize("name", NAMES)
def test_example_via_cli(name: str, cli: Any) -> None:
    r = cli("collect", "--example", name)
    assert r.code == 0, r.err
    snap = json.loads(r.out)
    assert snap["source"] == {**snap["source"], "kind": "example", "origin": name}
    assert snap["host"]["platform"] == "hyperv" and snap["errors"] == []
    assert snap["host"]["name"] in r.err  # the one-screen summary


@pytest.mark.parametrize("name", NAMES)
def test_shipped_file_is_the_builders_output(name: str) -> None:
    """Regenerate with `python3 tools/build_examples.py` after changing a builder."""
    shipped = json.loads(example_path(name).read_text(encoding="utf-8"))
    assert shipped == B.EXAMPLES[f"{name}.json"]()


def test_shapes_are_mixed() -> None:
    raw = {n: json.loads(example_path(n).read_text()) for n in NAMES}
    assert raw["hyperv-i350-no-iov"]["collected_at"].startswith("/Date(")
    assert raw["hyperv-i350-no-iov"]["sources"]["Get-NetAdapterSriov"][0]["SriovSupport"] == 1
    assert raw["hyperv-lbfo"]["sources"]["Get-VM"].keys() == {"value", "Count"}
    assert raw["hyperv-ready"]["sources"]["Get-VMSwitch"][0]["SwitchType"] == "External"
    assert raw["hyperv-firmware-blocked"]["powershell"]["edition"] == "Core"


def test_i350_is_the_case() -> None:
    s = load_example("hyperv-i350-no-iov")
    assert (s.host.name, s.host.os_caption, s.host.os_version, s.host.edition) == (
        "HV-RELAY-01",
        "Microsoft Windows Server 2019 Datacenter",
        "10.0.17763",
        "server",
    )
    assert s.iov.supported is True and "Xeon" in (s.cpu.model or "")
    assert [
        (
            n.name,
            n.description,
            n.link_speed_bps,
            n.status,
            n.sriov_enabled,
            n.sriov_support,
            n.vfs_total,
            n.vfs_allocated,
            n.vmq_enabled,
        )
        for n in s.nics
    ] == [
        ("Ethernet", B.I350, 10**9, "Up", True, "Supported", 6, 0, True),
        ("Ethernet 2", f"{B.I350} #2", 10**9, "Up", True, "Supported", 6, 0, True),
    ]
    (sw,) = s.switches
    assert (sw.name, sw.switch_type, sw.iov_enabled, sw.vf_count, sw.allow_management_os) == (
        "External",
        "External",
        False,
        0,
        True,
    )
    assert [n.name for n in s.switch_nics(sw)] == ["Ethernet"]  # "Ethernet 2" is unbound
    assert [v.name for v in s.vms] == [f"relay-{i:02d}" for i in range(1, 9)]
    assert all(v.state == "Running" for v in s.vms)
    mgmt = [a for a in s.vm_adapters if a.is_management_os]
    assert [(a.name, a.switch_name, a.iov_weight) for a in mgmt] == [("External", "External", None)]
    vm_nics = [a for a in s.vm_adapters if not a.is_management_os]
    assert [a.vm_name for a in vm_nics] == [v.name for v in s.vms]
    assert all(
        (a.name, a.switch_name, a.iov_weight, a.vmq_weight, a.vf_data_path_active)
        == ("Network Adapter", "External", 0, 100, False)
        for a in vm_nics
    )
    assert s.vfs == [] and s.teams == []


def test_firmware_blocked_ready_and_lbfo() -> None:
    fw = load_example("hyperv-firmware-blocked")
    assert fw.host.os_version == "10.0.20348" and fw.iov.supported is False
    assert fw.iov.reasons == [B.REASON_OSC, B.REASON_ACS]
    assert fw.nics[0].description == B.X550 and fw.nics[0].sriov_support == "NoOscSupport"
    assert (fw.switches[0].iov_enabled, fw.switches[0].iov_support) == (True, False)
    assert all(a.iov_weight == 100 for a in fw.vm_adapters) and fw.vfs == []

    ready = load_example("hyperv-ready")
    sw = ready.switch("SETswitch")
    assert sw is not None and (sw.embedded_teaming, sw.iov_enabled, sw.iov_support, sw.vf_count) == (
        True,
        True,
        True,
        62,
    )
    assert sw.vfs_in_use == len(ready.vfs) == 3
    assert all(n.description and "X710" in n.description and n.vfs_total == 64 for n in ready.nics)
    assert all(
        (a.iov_weight, a.iov_usage, a.vf_data_path_active) == (100, 1, True)
        for a in ready.vm_adapters
        if not a.is_management_os
    )

    lbfo = load_example("hyperv-lbfo")
    assert lbfo.host.os_version == "10.0.14393"
    assert [(t.name, t.kind) for t in lbfo.teams] == [("Team1", "lbfo")]
    assert lbfo.switches[0].net_adapters == [B.MUX] and lbfo.switches[0].iov_enabled is False
    assert all(n.sriov_support == "Supported" and "X540" in (n.description or "") for n in lbfo.nics)


def test_every_shipped_example_is_what_tools_build_examples_writes() -> None:
    """The examples are built by tools/build_examples.py from the test builders; `--check` finds none stale."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "tools" / "build_examples.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
