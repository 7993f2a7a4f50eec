"""Hyper-V rules: pass, fail and skip for each, on snapshots built in the documented shapes."""

from __future__ import annotations

import pytest

from iovkit.checks import run_checks
from iovkit.checks.catalog import Finding
from iovkit.checks.reasons import classify_reason
from iovkit.policy import policy_from_dict
from iovkit.snapshot import CollectionError, HostSnapshot, Team, VmAdapter
from tests.fixtures.snapshots import REASONS, hv_ready


def run(snap: HostSnapshot, rid: str, policy=None) -> list[Finding]:
    return run_checks(snap, policy, only=[rid]).findings


def statuses(fs: list[Finding]) -> set[str]:
    return {f.status for f in fs}


# -- HV-OS-EDITION -------------------------------------------------------------------------------------------
def test_os_edition_server_passes():
    assert statuses(run(hv_ready(), "HV-OS-EDITION")) == {"pass"}


def test_os_edition_client_windows_fails():
    s = hv_ready()
    s.host.edition, s.host.os_caption = "client", "Microsoft Windows 11 Pro"
    [f] = run(s, "HV-OS-EDITION")
    assert f.status == "fail" and "client Windows" in f.message and "Windows Server 2012" in (f.fix or "")


def test_os_edition_2008r2_fails():
    s = hv_ready()
    s.host.os_version, s.host.os_build = "6.1.7601", "7601"
    assert statuses(run(s, "HV-OS-EDITION")) == {"fail"}


def test_os_edition_unknown_skips_naming_facts():
    s = hv_ready()
    s.host.edition = s.host.os_version = s.host.os_build = None
    [f] = run(s, "HV-OS-EDITION")
    assert f.status == "unknown" and f.missing == ["host.edition", "host.os_version"]


# -- HV-HOST-IOV ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", sorted(REASONS))
def test_each_documented_reason_is_classified_with_a_fix(category):
    cls = classify_reason(REASONS[category])
    assert cls.category == category and cls.fix


def test_reason_classifier_survives_wrapping_and_truncation():
    wrapped = (
        "To use SR-IOV on this system, the system BIOS\n   must be updated to allow Windows to control\n"
        " PCI Express. Contact your sys..."
    )
    assert classify_reason(wrapped).category == "NO_OSC_CONTROL"


def test_host_iov_firmware_blocked_fails_once_per_reason_and_keeps_unknown_verbatim():
    s = hv_ready()
    odd = "Some future reason nobody has seen (code 0x42)."
    s.iov.supported, s.iov.reasons = False, [REASONS["NO_OSC_CONTROL"], REASONS["NO_ACS"], odd]
    fs = run(s, "HV-HOST-IOV")
    assert [f.status for f in fs] == ["fail"] * 3
    assert [f.evidence["category"] for f in fs] == ["NO_OSC_CONTROL", "NO_ACS", "UNKNOWN"]
    assert odd in fs[2].message and "_OSC" in (fs[0].fix or "")
    assert run_checks(s).verdict == "not-ready"


def test_host_iov_true_passes_and_unknown_skips():
    assert statuses(run(hv_ready(), "HV-HOST-IOV")) == {"pass"}
    s = hv_ready()
    s.iov.supported = None
    [f] = run(s, "HV-HOST-IOV")
    assert f.status == "unknown" and f.missing == ["iov.supported"]
    # a prerequisite that cannot be confirmed: the verdict is neither ready nor not-ready, but unknown
    assert run_checks(s).verdict == "unknown"


# -- HV-SLAT -------------------------------------------------------------------------------------------------
def test_slat_false_under_running_hypervisor_does_not_fail():
    s = hv_ready()
    s.cpu.slat = False  # Win32_Processor under a running hypervisor
    [f] = run(s, "HV-SLAT")
    assert f.status == "pass"


def test_slat_fails_when_reasons_say_no_slat():
    s = hv_ready()
    s.iov.supported, s.iov.reasons = False, [REASONS["NO_SLAT"]]
    [f] = run(s, "HV-SLAT")
    assert f.status == "fail"


def test_slat_fails_without_hypervisor_and_skips_when_unknown():
    s = hv_ready()
    s.cpu.slat, s.host.hypervisor_present = False, False
    assert statuses(run(s, "HV-SLAT")) == {"fail"}
    s.cpu.slat, s.host.hypervisor_present = None, None
    [f] = run(s, "HV-SLAT")
    assert f.status == "unknown" and "cpu.slat" in f.missing


# -- HV-NIC-SRIOV --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["MissingAcs", "MissingPfDriver", "NoBusResources", "NoIoMmuSupport", "NoVfBarSpace", "NoOscSupport", "Unknown"],
)
def test_nic_sriov_failure_values_fail_on_switch_nic_with_fix(value):
    s = hv_ready()
    s.nics[0].sriov_support = value
    f = next(f for f in run(s, "HV-NIC-SRIOV") if f.scope.name == "Ethernet")
    assert f.status == "fail" and value in f.message and f.fix


def test_nic_sriov_unbound_nic_only_warns_and_supported_passes():
    s = hv_ready()
    s.nics[1].sriov_support = "MissingAcs"
    by = {f.scope.name: f.status for f in run(s, "HV-NIC-SRIOV")}
    assert by == {"Ethernet": "pass", "Ethernet 2": "warn"}


def test_nic_sriov_no_capable_nic_is_host_failure():
    s = hv_ready()
    for n in s.nics:
        n.sriov_support = "MissingPfDriver"
    assert any(f.scope.kind == "host" and f.status == "fail" for f in run(s, "HV-NIC-SRIOV"))


def test_nic_sriov_not_collected_skips():
    s = hv_ready()
    s.nics[1].sriov_support = None
    s.errors.append(CollectionError(source="Get-NetAdapterSriov", error="access denied"))
    f = next(f for f in run(s, "HV-NIC-SRIOV") if f.scope.name == "Ethernet 2")
    assert f.status == "unknown" and f.missing == ["nics[1].sriov_support"]


# -- HV-NIC-ENABLED ------------------------------------------------------------------------------------------
def test_nic_enabled_pass_fail_skip():
    s = hv_ready()
    assert statuses(run(s, "HV-NIC-ENABLED")) == {"pass"}
    s.nics[0].sriov_enabled = False
    f = next(f for f in run(s, "HV-NIC-ENABLED") if f.scope.name == "Ethernet")
    assert f.status == "fail" and f.fix == "Enable-NetAdapterSriov -Name 'Ethernet'"
    s.nics[0].sriov_enabled = None
    f = next(f for f in run(s, "HV-NIC-ENABLED") if f.scope.name == "Ethernet")
    assert f.status == "unknown"


def test_nic_enabled_zero_vfs_fails_and_quotes_names():
    s = hv_ready()
    s.nics[0].name = "Slot 4 Port 1 (O'Brien)"
    s.switches[0].net_adapter_names = [s.nics[0].name]
    s.nics[0].vfs_total = 0
    f = next(f for f in run(s, "HV-NIC-ENABLED") if f.scope.name == s.nics[0].name)
    assert f.status == "fail" and f.fix == "Set-NetAdapterSriov -Name 'Slot 4 Port 1 (O''Brien)' -NumVFs 8"


# -- HV-TEAM -------------------------------------------------------------------------------------------------
def test_lbfo_team_under_switch_fails():
    s = hv_ready()
    s.teams = [Team(name="Team1", kind="lbfo", members=["Ethernet", "Ethernet 2"])]
    s.switches[0].net_adapters = ["Microsoft Network Adapter Multiplexor Driver"]
    s.switches[0].net_adapter_names = ["Team1"]
    [f] = run(s, "HV-TEAM")
    assert (
        f.status == "fail"
        and "LBFO" in f.message
        and "Remove-NetLbfoTeam" in (f.fix or "")
        and "-EnableEmbeddedTeaming $true -EnableIov $true" in (f.fix or "")
    )


def test_set_team_passes_on_2016_plus_and_fails_before():
    s = hv_ready()
    s.switches[0].embedded_teaming = True
    assert statuses(run(s, "HV-TEAM")) == {"pass"}
    s.host.os_version, s.host.os_build = "6.3.9600", "9600"
    assert statuses(run(s, "HV-TEAM")) == {"fail"}


def test_team_skips_when_switch_binding_unknown():
    s = hv_ready()
    s.switches[0].net_adapters, s.switches[0].net_adapter_names = [], []
    [f] = run(s, "HV-TEAM")
    assert f.status == "unknown" and f.missing == ["switches[0].net_adapters"]


# -- HV-SWITCH-IOV -------------------------------------------------------------------------------------------
def test_switch_not_iov_fails_and_points_to_plan():
    s = hv_ready()
    s.switches[0].iov_enabled, s.switches[0].vf_count = False, 0
    [f] = run(s, "HV-SWITCH-IOV")
    assert f.status == "fail" and "only be chosen when a switch is created" in f.message
    assert f.fix == "iovkit plan --example hyperv-test -o plan.json"
    assert "New-VMSwitch -Name 'External' -NetAdapterName 'Ethernet' -EnableIov $true" in f.message


def test_switch_iov_pass_and_skip():
    assert statuses(run(hv_ready(), "HV-SWITCH-IOV")) == {"pass"}
    s = hv_ready()
    s.switches[0].iov_enabled = None
    assert statuses(run(s, "HV-SWITCH-IOV")) == {"unknown"}


def test_switch_iov_enabled_but_unsupported_shows_reasons():
    s = hv_ready()
    s.switches[0].iov_support, s.switches[0].iov_support_reasons = False, [REASONS["NO_OSC_CONTROL"]]
    [f] = run(s, "HV-SWITCH-IOV")
    assert f.status == "fail" and "control PCI" in f.message


# -- HV-VNIC-WEIGHT ------------------------------------------------------------------------------------------
def test_weight_zero_fails_with_exact_command():
    s = hv_ready()
    s.vm_adapters[0].iov_weight = 0
    f = next(f for f in run(s, "HV-VNIC-WEIGHT") if f.status != "pass")
    assert f.status == "fail"
    assert f.fix == "Set-VMNetworkAdapter -VMName 'relay-01' -Name 'Network Adapter' -IovWeight 100"


def test_weight_uses_policy_weight_and_scope():
    s = hv_ready()
    for a in s.vm_adapters:
        if not a.is_management_os:
            a.iov_weight = 0
    pol = policy_from_dict({"adapters": [{"vm": "relay-02", "iov_weight": 50}]}, "p.yaml")
    fs = run(s, "HV-VNIC-WEIGHT", pol)
    assert [(f.scope.name, f.status) for f in fs] == [("relay-02/Network Adapter", "fail")]
    assert fs[0].fix.endswith("-IovWeight 50")


def test_weight_pass_and_skip():
    s = hv_ready()
    assert statuses(run(s, "HV-VNIC-WEIGHT")) == {"pass"}
    s.vm_adapters[0].iov_weight = None
    assert "unknown" in statuses(run(s, "HV-VNIC-WEIGHT"))


# -- HV-VF-CAPACITY ------------------------------------------------------------------------------------------
def test_capacity_eight_vms_against_six_vfs_names_who_stays_and_is_partial():
    s = hv_ready(n_vms=8, vfs=6)
    for a in s.vm_adapters[6:8]:
        a.vf_data_path_active, a.iov_usage = False, 0
    s.switches[0].vfs_in_use = 6
    [f] = run(s, "HV-VF-CAPACITY")
    assert f.status == "fail" and "relay-07/Network Adapter, relay-08/Network Adapter" in f.message
    r = run_checks(s, only=["HV-VF-CAPACITY"])
    assert r.verdict == "partial" and (r.units_clear, r.units_total) == (6, 8)


def test_capacity_uses_nic_numvfs_before_iov_switch_exists():
    s = hv_ready(n_vms=8, vfs=6)
    s.switches[0].iov_enabled, s.switches[0].vf_count = False, 0
    [f] = run(s, "HV-VF-CAPACITY")
    assert f.status == "fail" and "NumVFs" in f.message
    assert statuses(run(hv_ready(n_vms=6, vfs=6), "HV-VF-CAPACITY")) == {"pass"}


def test_capacity_skips_when_counts_unknown():
    s = hv_ready()
    s.switches[0].iov_enabled = False
    s.nics[0].vfs_total = None
    [f] = run(s, "HV-VF-CAPACITY")
    assert f.status == "unknown" and "nics[0].vfs_total" in f.missing


# -- HV-VF-ACTIVE --------------------------------------------------------------------------------------------
def _inactive() -> HostSnapshot:
    s = hv_ready()
    s.vm_adapters[0].vf_data_path_active, s.vm_adapters[0].iov_usage = False, 0
    return s


def _cause(s: HostSnapshot) -> Finding:
    return next(f for f in run(s, "HV-VF-ACTIVE") if f.scope.name == "relay-01/Network Adapter")


def test_vf_active_pass_and_skip():
    assert statuses(run(hv_ready(), "HV-VF-ACTIVE")) == {"pass"}
    s = hv_ready()
    s.vm_adapters[0].vf_data_path_active = None
    assert _cause(s).status == "unknown"


def test_vf_inactive_switch_not_iov():
    s = _inactive()
    s.switches[0].iov_enabled = False
    f = _cause(s)
    assert f.status == "fail" and "not in IOV mode" in f.message and f.fix.startswith("iovkit plan")


def test_vf_inactive_vm_off():
    s = _inactive()
    s.vms[0].state = "Off"
    f = _cause(s)
    assert "VM is Off" in f.message and f.fix == "Start-VM -Name 'relay-01'"


def test_vf_inactive_no_free_vf():
    s = _inactive()
    s.switches[0].vf_count, s.switches[0].vfs_in_use = 1, 1
    assert "no free VF" in _cause(s).message


def test_vf_inactive_guest_driver_from_vm_status():
    s = _inactive()
    s.vms[0].operational_status = ["Degraded", "IovGuestDriversNeeded"]
    f = _cause(s)
    assert "guest driver missing" in f.message and "IovGuestDriversNeeded" in f.message


def test_vf_inactive_vf_allocated_points_at_guest_driver():
    s = _inactive()
    s.vm_adapters[0].iov_usage = 1
    assert "guest driver missing" in _cause(s).message


# -- HV-MGMT-OS ----------------------------------------------------------------------------------------------
def test_mgmt_os_on_switch_to_rebuild_warns_console():
    s = hv_ready()
    s.switches[0].iov_enabled = False
    [f] = run(s, "HV-MGMT-OS")
    assert f.status == "warn" and "console" in f.message and "--console" in (f.fix or "")


def test_mgmt_os_pass_and_skip():
    assert statuses(run(hv_ready(), "HV-MGMT-OS")) == {"pass"}
    s = hv_ready()
    s.switches[0].iov_enabled = False
    s.switches[0].allow_management_os = False
    s.vm_adapters = [a for a in s.vm_adapters if not a.is_management_os]
    assert statuses(run(s, "HV-MGMT-OS")) == {"pass"}
    s.switches[0].iov_enabled = None
    assert statuses(run(s, "HV-MGMT-OS")) == {"unknown"}


# -- HV-VMQ --------------------------------------------------------------------------------------------------
def test_vmq_off_on_switch_nic_warns_with_command():
    s = hv_ready()
    s.vm_adapters[0].vf_data_path_active = False
    s.nics[0].vmq_enabled = False
    f = next(f for f in run(s, "HV-VMQ") if f.scope.kind == "nic")
    assert f.status == "warn" and f.fix == "Enable-NetAdapterVmq -Name 'Ethernet'"


def test_vmq_pass_skip_and_adapter_weight():
    s = hv_ready()
    assert statuses(run(s, "HV-VMQ")) == {"pass"}  # the management OS adapter stays on the switch
    s.nics[0].vmq_enabled = None
    s.vm_adapters.append(
        VmAdapter(
            vm_name="web", name="nic", switch_name="External", vmq_weight=0, iov_weight=0, vf_data_path_active=False
        )
    )
    fs = run(s, "HV-VMQ")
    assert {(f.scope.kind, f.status) for f in fs} == {("nic", "unknown"), ("vm-adapter", "warn")}
    assert any(f.fix == "Set-VMNetworkAdapter -VMName 'web' -Name 'nic' -VmqWeight 100" for f in fs)


# -- verdicts on whole hosts ---------------------------------------------------------------------------------
def test_ready_host_is_ready():
    r = run_checks(hv_ready())
    assert r.verdict == "ready" and not [f for f in r.findings if f.status in ("fail", "unknown")]


def test_i350_case_switch_not_iov_is_not_ready():
    s = hv_ready(n_vms=8, vfs=6)
    s.switches[0].iov_enabled, s.switches[0].vf_count, s.switches[0].vfs_in_use = False, 0, 0
    for a in s.vm_adapters:
        if not a.is_management_os:
            a.iov_weight, a.iov_usage, a.vf_data_path_active = 0, 0, False
    r = run_checks(s)
    assert r.verdict == "not-ready"
    ids = {f.id for f in r.findings if f.status == "fail"}
    assert {"HV-SWITCH-IOV", "HV-VNIC-WEIGHT", "HV-VF-CAPACITY"} <= ids


def test_vf_inactive_host_or_switch_without_iov_support_names_that_not_capacity():
    s = _inactive()
    s.iov.supported, s.iov.reasons = False, [REASONS["NO_OSC_CONTROL"]]
    f = _cause(s)
    assert "host cannot do SR-IOV" in f.message and "_OSC" in (f.fix or "")
    s = _inactive()
    s.switches[0].iov_support, s.switches[0].vf_count = False, 0
    assert "IovSupport False" in _cause(s).message
    s = _inactive()
    s.switches[0].vf_count = 0
    f = _cause(s)
    assert "offers no VFs" in f.message and f.fix == "Enable-NetAdapterSriov -Name 'Ethernet'"
