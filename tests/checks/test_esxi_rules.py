"""ESX-* rules on the example host and on variations of it: evidence, the exact fix, unknown is not false."""

from __future__ import annotations

from pathlib import Path

import pytest

from iovkit.checks.catalog import Finding, run_checks
from iovkit.examples import example_path
from iovkit.policy import Policy
from iovkit.snapshot import EsxiInfo, HostSnapshot
from iovkit.sources.esxi.paste import snapshot_from_paste


def _snap(tmp_path: Path, edit=None) -> HostSnapshot:
    text = example_path("esxi-x710").read_text()
    if edit:
        text = edit(text)
    f = tmp_path / "paste.txt"
    f.write_text(text)
    return snapshot_from_paste(f)


def _by(findings: list[Finding], rid: str) -> list[Finding]:
    return [f for f in findings if f.id == rid]


def test_example_is_partial_only_relay_03_memory_fails(tmp_path):
    res = run_checks(_snap(tmp_path))
    assert res.verdict == "partial" and (res.units_total, res.units_clear) == (2, 1)
    (fail,) = [f for f in res.findings if f.status == "fail"]
    assert fail.id == "ESX-VM-MEMORY" and fail.scope.name == "relay-03/pciPassthru31"
    assert 'sched.mem.min = "8192"' in (fail.fix or "")
    assert fail.evidence["esxi.vms[2].reservation_mb"] == 0


@pytest.mark.parametrize(
    ("version", "vendor_line", "status"),
    [
        ("5.1.0", "Intel(R) Xeon(R)", "warn"),
        ("5.1.0", "AMD EPYC 7302", "fail"),
        ("5.0.0", "Intel(R) Xeon(R)", "fail"),
        ("8.0.3", "AMD EPYC 7302", "pass"),
    ],
)
def test_version_on_intel_and_amd(tmp_path, version, vendor_line, status):
    def edit(t: str) -> str:
        return t.replace("Version: 7.0.3", f"Version: {version}").replace("Intel(R) Xeon(R) Gold 6130", vendor_line)

    snap = _snap(tmp_path, edit)
    snap.esxi.pci_devices = None  # type: ignore[union-attr]  # the host bridge would say Intel
    (f,) = _by(run_checks(snap).findings, "ESX-VERSION")
    assert f.status == status


def test_missing_facts_are_skips_that_name_the_command():
    snap = HostSnapshot.model_validate({"source": {"kind": "example"}, "host": {"platform": "esxi"}})
    res = run_checks(snap)
    skips = {f.id: f.message for f in res.findings if f.status == "unknown" and f.missing}
    assert "esxcli system version get" in skips["ESX-VERSION"]
    assert "grep -E 'DMAR|IOV' /var/log/vmkernel.log" in skips["ESX-IOMMU"]
    assert "esxcli network nic list" in skips["ESX-NIC-DRIVER"]
    assert res.verdict == "unknown" and "could not confirm" in res.reason
    assert not [f for f in res.findings if f.status == "fail"]


def test_dmar_missing_in_the_boot_log_fails_with_the_firmware_fix(tmp_path):
    def edit(t: str) -> str:
        return t.replace(
            "[root@esx01:~] grep -E 'DMAR|IOV' /var/log/vmkernel.log\n",
            "[root@esx01:~] grep -E 'DMAR|IOV' /var/log/vmkernel.log\n"
            "2026-11-02T10:00:01.123Z cpu0:1)WARNING: VTD: 733: ACPI DMAR table not found\n"
            "2026-11-02T10:00:01.125Z cpu0:1)WARNING: IOV: 250: IOV initialization failed\n",
        )

    snap = _snap(tmp_path, edit)
    snap.esxi.vfs = []  # type: ignore[union-attr]
    for n in snap.nics:
        n.vfs_configured = 0
    (f,) = _by(run_checks(snap).findings, "ESX-IOMMU")
    assert f.status == "fail" and "ACPI DMAR table not found" in f.message and "Intel VT-d" in (f.fix or "")


def test_igbn_alone_cannot_carry_vfs(tmp_path):
    snap = _snap(tmp_path)
    snap.nics = [n for n in snap.nics if n.driver == "igbn"]
    (f,) = _by(run_checks(snap).findings, "ESX-NIC-DRIVER")
    assert f.status == "fail" and "igbn: no max_vfs" in f.message


def test_enabling_vfs_restates_the_other_module_options(tmp_path):
    def edit(t: str) -> str:
        return t.replace("options = 'max_vfs=8,0'", "options = 'VMDQ=4,4 max_vfs=8,0'")

    snap = _snap(tmp_path, edit)
    # relay-03's adapter moves to vmnic1 (0000:3b:00.1), where max_vfs is 0
    vm = snap.esxi.vms[2]  # type: ignore[union-attr]
    vm.adapters[0].pf = "0000:3b:00.1"
    f = next(f for f in _by(run_checks(snap).findings, "ESX-VFS-ENABLED") if f.scope.name == "vmnic1")
    assert f.status == "fail"
    assert f.fix is not None and f.fix.startswith(
        'esxcli system module parameters set -m i40en -p "VMDQ=4,4 max_vfs=8,8"'
    )
    assert "maintenanceMode set --enable true" in f.fix


def test_vfs_requested_but_absent_mean_a_pending_reboot(tmp_path):
    def edit(t: str) -> str:
        start = t.index("[root@esx01:~] esxcli network sriovnic vf list -n vmnic0")
        end = t.index("[root@esx01:~] esxcli network sriovnic vf list -n vmnic1")
        t = (
            t[:start]
            + "[root@esx01:~] esxcli network sriovnic vf list -n vmnic0\n"
            + ("There is no SRIOV Nic with name vmnic0\n")
            + t[end:]
        )
        start = t.index("[root@esx01:~] lspci")
        end = t.index("[root@esx01:~] esxcli vm process list")
        return t[:start] + t[end:]

    res = run_checks(_snap(tmp_path, edit))
    f = next(f for f in _by(res.findings, "ESX-VFS-ACTIVE") if f.scope.name == "vmnic0")
    assert f.status == "fail" and "0 VF(s) present, 8 requested" in f.message
    assert "esxcli system shutdown reboot" in (f.fix or "")
    cap = next(f for f in _by(res.findings, "ESX-VF-CAPACITY") if f.scope.name == "vmnic0")
    assert cap.status == "fail"
    assert res.verdict == "not-ready"


def test_capacity_blocks_only_the_adapters_past_the_vfs(tmp_path):
    snap = _snap(tmp_path)
    snap.nics[0].vfs_configured = 1
    assert snap.esxi is not None
    snap.esxi.modules[0].options = "max_vfs=1,0"  # one VF asked for, one present
    snap.esxi.vms[2].reserve_all = True
    res = run_checks(snap)
    cap = next(f for f in _by(res.findings, "ESX-VF-CAPACITY") if f.scope.name == "vmnic0")
    assert cap.status == "fail" and cap.affects == ["relay-03/pciPassthru31"]
    assert res.verdict == "partial" and res.units_clear == 1


def test_vm_adapter_hw_version_hex_pfid_and_vmxnet3_under_a_policy(tmp_path):
    def edit(t: str) -> str:
        return t.replace(
            'virtualHW.version = "19"\ndisplayName = "relay-03"', 'virtualHW.version = "9"\ndisplayName = "relay-03"'
        )

    snap = _snap(tmp_path, edit)
    res = run_checks(snap, Policy.model_validate({"adapters": [{"vm": "relay-*"}]}))
    got = {f.scope.name: f for f in _by(res.findings, "ESX-VM-ADAPTER")}
    assert got["relay-03/pciPassthru31"].status == "fail" and "vmx-9" in got["relay-03/pciPassthru31"].message
    assert "vim-cmd vmsvc/upgrade" in (got["relay-03/pciPassthru31"].fix or "")
    assert got["relay-01/ethernet0"].status == "fail" and "vmxnet3" in got["relay-01/ethernet0"].message
    snap.esxi.vms[0].adapters[0].pf = None  # type: ignore[union-attr]
    snap.esxi.vms[0].adapters[0].pf_raw = "0000:3b:00.0"  # type: ignore[union-attr]
    got = {f.scope.name: f for f in _by(run_checks(snap).findings, "ESX-VM-ADAPTER")}
    assert (
        got["relay-01/pciPassthru31"].status == "fail"
        and "not a decimal PCI id" in got["relay-01/pciPassthru31"].message
    )


def test_features_lost_are_a_warning_per_vm(tmp_path):
    res = run_checks(_snap(tmp_path))
    warns = _by(res.findings, "ESX-VM-FEATURES")
    assert [f.status for f in warns] == ["warn", "warn"] and all("vMotion" in f.message for f in warns)


def test_reboot_required_from_the_host_summary(tmp_path):
    snap = _snap(tmp_path, lambda t: t.replace("rebootRequired = false", "rebootRequired = true"))
    assert isinstance(snap.esxi, EsxiInfo) and snap.esxi.reboot_required is True
    (f,) = _by(run_checks(snap).findings, "ESX-REBOOT")
    assert f.status == "warn" and "shutdown reboot" in (f.fix or "")


def test_a_paste_without_vmx_files_leaves_the_vm_rules_unknown(tmp_path):
    def edit(t: str) -> str:
        return t[: t.index("[root@esx01:~] cat /vmfs/volumes/")] + t[t.index("[root@esx01:~] grep -E 'DMAR|IOV'") :]

    snap = _snap(tmp_path, edit)
    assert not snap.has("vm_adapters") and snap.has("nics")
    res = run_checks(snap)
    for rid in ("ESX-VM-ADAPTER", "ESX-VM-MEMORY", "ESX-VM-FEATURES", "ESX-VF-CAPACITY"):
        (f,) = _by(res.findings, rid)
        assert f.status == "unknown" and f.missing == ["vm_adapters"] and "vim-cmd vmsvc/getallvms" in (f.collect or "")
    assert not [f for f in res.findings if f.status == "fail"]  # nothing about the VMs is concluded
    assert res.verdict == "unknown" and "VM adapters were not in the input" in res.reason  # not "ready"


def _cut(t: str, start: str, end: str) -> str:
    """The paste without the output from the prompt line containing `start` to the one containing `end`."""
    a = t.index(f"[root@esx01:~] {start}")
    return t[:a] + t[t.index(f"[root@esx01:~] {end}", a) :]


def test_an_unread_port_never_makes_another_port_fail(tmp_path):
    """vmnic1 has no VFs and no VM uses it: that is a failure only when every port is seen without VFs. Without
    the sriovnic list and vmnic0's driver parameters, vmnic0's state is not known, so vmnic1 does not fail."""
    snap = _snap(tmp_path)
    snap.nics[0].sriov_support = snap.nics[0].sriov_enabled = None
    res = run_checks(snap)
    (f,) = [f for f in _by(res.findings, "ESX-VFS-ENABLED") if f.scope.name == "vmnic1"]
    assert f.status == "not-applicable"
    snap.nics[0].sriov_support, snap.nics[0].sriov_enabled = "Supported", False  # seen off: now it is a failure
    (f,) = [f for f in _by(run_checks(snap).findings, "ESX-VFS-ENABLED") if f.scope.name == "vmnic1"]
    assert f.status == "fail" and "on no other port" in f.message and "max_vfs=" in (f.fix or "")


def test_a_pf_nobody_gave_a_pci_address_is_unknown_not_a_moved_card(tmp_path):
    snap = _snap(tmp_path)
    snap.nics[0].pci_address = None
    f = next(f for f in _by(run_checks(snap).findings, "ESX-VM-ADAPTER") if f.scope.name == "relay-01/pciPassthru31")
    assert f.status == "unknown" and f.missing == ["nics[0].pci_address"]
    assert f.collect == "esxcli network nic list"


def test_a_grepped_lspci_counts_vfs_only_when_it_shows_all_that_were_asked_for(tmp_path):
    """Without the VF list, lspci counts the VFs; `lspci | grep` may have dropped some, so fewer than max_vfs asks
    for is not collected (ESX-VFS-ACTIVE unknown, naming the VF list command), not "not active"."""

    def edit(t: str, grep: str) -> str:
        t = _cut(t, "esxcli network sriovnic vf list -n vmnic0", "esxcli system module")
        t = t.replace("] lspci\n", f"] lspci{grep}\n")
        return t.replace("0000:3b:02.7 Network controller: Intel(R) Ethernet Virtual Function 700 Series", "")

    plain = _snap(tmp_path, lambda t: edit(t, ""))
    grepped = _snap(tmp_path, lambda t: edit(t, " | grep -i net"))
    assert plain.nics[0].vfs_configured == 7 and grepped.nics[0].vfs_configured is None
    (f,) = [f for f in _by(run_checks(plain).findings, "ESX-VFS-ACTIVE") if f.scope.name == "vmnic0"]
    assert f.status == "fail" and "7 VF(s) present, 8 requested" in f.message
    (f,) = [f for f in _by(run_checks(grepped).findings, "ESX-VFS-ACTIVE") if f.scope.name == "vmnic0"]
    assert f.status == "unknown" and f.collect == "esxcli network sriovnic vf list -n vmnic0"
    full = _snap(tmp_path, lambda t: t.replace("] lspci\n", "] lspci | grep -i net\n"))
    assert full.nics[0].vfs_configured == 8  # all eight asked for are there


def test_no_vf_for_an_adapter_is_not_concluded_without_the_vm_process_list(tmp_path):
    """A VF list names owners by world id; without `esxcli vm process list` no VF can be tied to a VM, so an SR-IOV
    adapter's VF data path is not collected (None), not inactive."""
    full = {(a.vm_name, a.name): a.vf_data_path_active for a in _snap(tmp_path).vm_adapters}
    assert full[("relay-01", "pciPassthru31")] is True and full[("relay-03", "pciPassthru31")] is False
    snap = _snap(tmp_path, lambda t: _cut(t, "esxcli vm process list", "cat "))
    part = {(a.vm_name, a.name): a.vf_data_path_active for a in snap.vm_adapters}
    assert part[("relay-01", "pciPassthru31")] is None and part[("relay-03", "pciPassthru31")] is None


def test_a_grepped_vmx_does_not_mean_no_memory_reservation(tmp_path):
    """`grep -i mem relay-03.vmx` shows memSize but not the absent sched.mem.* keys: the reservation is not
    collected (ESX-VM-MEMORY unknown, naming the cat of the .vmx), where the whole file says 0 MB reserved."""
    path = "/vmfs/volumes/5b645dbf-d27a664c-e76a-1402ec67d6e6/relay-03/relay-03.vmx"

    def edit(t: str) -> str:
        a = t.index(f"[root@esx01:~] cat {path}")
        b = t.index("[root@esx01:~] grep -E 'DMAR|IOV'")
        grepped = f'[root@esx01:~] grep -iE "displayName|memSize|pciPassthru31.pfId" {path}\n'
        grepped += 'displayName = "relay-03"\nmemSize = "8192"\npciPassthru31.pfId = "00000:059:00.0"\n'
        return t[:a] + grepped + t[b:]

    snap = _snap(tmp_path, edit)
    assert snap.esxi is not None
    vm = next(v for v in snap.esxi.vms if v.name == "relay-03")
    assert (vm.memory_mb, vm.reservation_mb, vm.reserve_all) == (8192, None, None)
    (f,) = [f for f in _by(run_checks(snap).findings, "ESX-VM-MEMORY") if f.scope.name.startswith("relay-03/")]
    assert f.status == "unknown" and "cat " in (f.collect or "")


def test_a_paste_without_the_nic_list_never_passes_an_adapter_on_its_pf(tmp_path):
    """The .vmx names pfId 00000:059:00.0; without `esxcli network nic list` nobody saw that PF on this host, so
    ESX-VM-ADAPTER is unknown (naming `nics` and the command), not "SR-IOV passthrough on 0000:3b:00.0"."""
    snap = _snap(tmp_path, lambda t: _cut(t, "esxcli network nic list", "esxcli network sriovnic list"))
    assert not snap.has("nics") and snap.has("vm_adapters")
    res = run_checks(snap)
    adapters = _by(res.findings, "ESX-VM-ADAPTER")
    sriov = [f for f in adapters if f.scope.name.endswith("/pciPassthru31")]
    assert len(sriov) >= 2 and not [f for f in adapters if f.status == "pass"]
    for f in sriov:
        assert f.status == "unknown" and f.missing == ["nics"] and f.collect == "esxcli network nic list"
    (cap,) = _by(res.findings, "ESX-VF-CAPACITY")  # which vmnic each PF is was not seen either
    assert cap.status == "unknown" and cap.collect == "esxcli network nic list"
    (act,) = _by(res.findings, "ESX-VFS-ACTIVE")  # "no port has VFs enabled" is not known without the ports
    assert act.status == "unknown" and act.collect == "esxcli network nic list"
    full = [f for f in _by(run_checks(_snap(tmp_path)).findings, "ESX-VM-ADAPTER") if f.status == "pass"]
    assert full and "SR-IOV passthrough on 0000:3b:00.0" in full[0].message  # the whole paste does pass


def test_an_adapter_on_a_port_not_seen_sr_iov_capable_is_unknown_naming_the_sriovnic_list(tmp_path):
    """With the nic list but nothing that shows vmnic0 can carry VFs (no sriovnic list, VF list, driver parameters
    or lspci), "SR-IOV passthrough on vmnic0" is not claimed: unknown, naming `esxcli network sriovnic list`."""

    def edit(t: str) -> str:
        t = _cut(t, "esxcli network sriovnic list", "esxcli hardware pci pcipassthru list")
        return _cut(t, "lspci", "esxcli vm process list")

    snap = _snap(tmp_path, edit)
    assert snap.nics[0].name == "vmnic0" and snap.nics[0].sriov_support is None
    f = next(f for f in _by(run_checks(snap).findings, "ESX-VM-ADAPTER") if f.scope.name == "relay-01/pciPassthru31")
    assert f.status == "unknown" and f.missing == ["nics[0].sriov_support"]
    assert f.collect == "esxcli network sriovnic list" and "vmnic0" in f.message


def test_esxi_lists_not_pasted_are_null_and_their_rules_unknown(tmp_path):
    """A paste of the nic list and system version only: ESXi's VMs, VF lists, VFs and driver modules are null in
    the snapshot JSON (not collected), like switches and teams (never read on ESXi); a round trip keeps it."""
    from iovkit.snapshot import snapshot_from_dict

    snap = _snap(tmp_path, lambda t: t[: t.index("[root@esx01:~] esxcli network sriovnic list")])
    data = snap.model_dump(mode="json")
    assert [data["esxi"][k] for k in ("modules", "vf_lists", "vfs", "vms")] == [None] * 4
    assert data["switches"] is None and data["teams"] is None and data["nics"]
    assert snap.esxi is not None and snap.esxi.vms == [] and not snap.esxi.has("vms")  # a list for callers
    again = snapshot_from_dict(data, "again")
    assert again.esxi is not None and not again.esxi.has("modules") and again.model_dump(mode="json") == data
    res = run_checks(again)
    (drv,) = _by(res.findings, "ESX-NIC-DRIVER")
    assert drv.status == "unknown" and "esxi.modules" in drv.missing
    assert "esxcli system module parameters list -m i40en" in (drv.collect or "")
    assert not [f for f in res.findings if f.status == "fail"] and res.verdict == "unknown"
    # the full paste: every one of them read (a VF list read and empty is "no VF", not null)
    full = _snap(tmp_path).model_dump(mode="json")
    assert all(full["esxi"][k] is not None for k in ("modules", "vf_lists", "vfs", "vms"))


def test_a_snapshot_whose_esxi_vms_are_null_leaves_the_vm_rules_unknown(tmp_path):
    """A saved snapshot with `esxi.vms: null` (VM records not collected) but adapters: the VM rules cannot read
    type, PF or memory, so they are unknown, not "no VM adapter in scope"."""
    from iovkit.snapshot import snapshot_from_dict

    data = _snap(tmp_path).model_dump(mode="json")
    data["esxi"]["vms"] = None
    res = run_checks(snapshot_from_dict(data, "edited"))
    for rid in ("ESX-VM-ADAPTER", "ESX-VM-MEMORY", "ESX-VM-FEATURES", "ESX-VF-CAPACITY"):
        (f,) = _by(res.findings, rid)
        assert f.status == "unknown" and "vim-cmd vmsvc/getallvms" in (f.collect or ""), rid
