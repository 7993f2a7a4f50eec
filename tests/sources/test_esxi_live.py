"""The live collector: pyVmomi data objects built offline, and pyVmomi itself against recorded SOAP responses
served on 127.0.0.1 (tests/sources/vsphere_replay.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pyVmomi import vim

from iovkit.errors import UnreachableError
from iovkit.sources.esxi.live import VmApi, collect_vsphere, from_api, passthru_from_api
from iovkit.sources.esxi.target import VsphereTarget
from tests.fixtures.vsphere_replay import replay_server, self_signed


def test_sriov_info_and_plain_passthru_info_are_told_apart():
    items = [
        vim.host.SriovInfo(
            id="0000:03:00.0",
            sriovEnabled=True,
            sriovCapable=True,
            sriovActive=False,
            numVirtualFunctionRequested=8,
            numVirtualFunction=0,
            maxVirtualFunctionSupported=63,
        ),
        vim.host.PciPassthruInfo(id="0000:00:1f.6", passthruCapable=False),
    ]
    sriov, plain = passthru_from_api(items)
    assert (sriov.sriov_capable, sriov.sriov_active, sriov.vfs_requested, sriov.vfs_present, sriov.vfs_max) == (
        True,
        False,
        8,
        0,
        63,
    )
    assert plain.sriov_capable is None and plain.vfs_max is None  # not a SriovInfo: unknown, not "no"


def test_signed_vendor_ids_are_masked_and_requested_but_inactive_vfs_show():
    snap = from_api(
        name="esx9",
        product=vim.AboutInfo(name="VMware ESXi", version="7.0.3", build="18905247"),
        passthru=[
            vim.host.SriovInfo(
                id="0000:3b:00.0",
                sriovEnabled=True,
                sriovCapable=True,
                sriovActive=False,
                numVirtualFunctionRequested=8,
                numVirtualFunction=0,
                maxVirtualFunctionSupported=64,
            )
        ],
        pci_devices=[
            vim.host.PciDevice(
                id="0000:3b:00.0",
                classId=0x0200,
                vendorId=-32634,
                deviceId=0x1572,
                vendorName="Intel Corporation",
                deviceName="Ethernet Controller X710",
            )
        ],
        pnics=[vim.host.PhysicalNic(device="vmnic4", pci="0000:3b:00.0", driver="i40en", mac="3c:fd:fe:00:00:01")],
        cpu_pkgs=[vim.host.CpuPackage(index=0, vendor="amd")],
        reboot_required=True,
        in_maintenance=False,
        rebind=None,
        vms=[],
        module_options={"i40en": "VMDQ=4 max_vfs=8"},
        origin="test",
    )
    assert snap.esxi is not None and snap.esxi.pci_devices is not None
    assert snap.esxi.pci_devices[0].vendor_id == 0x8086
    (n,) = snap.nics
    assert (n.sriov_support, n.sriov_enabled, n.vfs_total, n.vfs_configured) == ("Supported", True, 64, 0)
    assert n.description == "Intel Corporation Ethernet Controller X710" and n.status == "Down"
    assert snap.cpu.vendor == "amd" and snap.esxi.reboot_required is True
    assert snap.esxi.modules[0].params == {"VMDQ": "4", "max_vfs": "8"}


def test_vm_sriov_card_memory_and_hardware_version():
    card = vim.vm.device.VirtualSriovEthernetCard(
        key=13031,
        deviceInfo=vim.Description(label="SR-IOV network adapter 1", summary=""),
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Relay"),
        sriovBacking=vim.vm.device.VirtualSriovEthernetCard.SriovBackingInfo(
            physicalFunctionBacking=vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(id="Automatic-0000:00:00.0")
        ),
    )
    cfg = vim.vm.ConfigInfo(
        name="r",
        version="vmx-10",
        hardware=vim.vm.VirtualHardware(memoryMB=4096, device=[card]),
        memoryAllocation=vim.ResourceAllocationInfo(reservation=1024),
        memoryReservationLockedToMax=False,
    )
    snap = from_api(
        name="h",
        product=None,
        passthru=None,
        pci_devices=None,
        pnics=[],
        cpu_pkgs=None,
        reboot_required=None,
        in_maintenance=None,
        rebind=None,
        vms=[VmApi("r", "vm-7", cfg, "poweredOff")],
        module_options={},
        origin=None,
    )
    assert snap.esxi is not None
    (vm,) = snap.esxi.vms
    assert (vm.hw_version, vm.memory_mb, vm.reservation_mb, vm.reserve_all, vm.power_state) == (
        10,
        4096,
        1024,
        False,
        "poweredOff",
    )
    (a,) = vm.adapters
    assert (a.type, a.pf, a.pf_raw, a.network) == ("sriov", None, "Automatic-0000:00:00.0", "Relay")


def test_pyvmomi_against_recorded_soap_responses():
    with replay_server(password="secret") as srv:
        target = VsphereTarget.parse(f"http://127.0.0.1:{srv.server_address[1]}", "root", insecure=False)
        snap = collect_vsphere(target, "secret")
        calls = [c[0] for c in srv.calls]
    assert calls[-1] == "Logout" and "QueryConfiguredModuleOptionString" in calls
    assert snap.host.name == "esx02.lab" and snap.host.os_version == "8.0.3" and snap.source.kind == "esxi-live"
    by = {n.name: n for n in snap.nics}
    assert (by["vmnic3"].sriov_enabled, by["vmnic3"].vfs_configured, by["vmnic3"].vfs_total) == (True, 8, 127)
    assert by["vmnic2"].sriov_enabled is False and by["vmnic0"].sriov_support is None
    assert snap.esxi is not None and snap.esxi.reboot_required is False and snap.esxi.rebind_without_reboot is False
    assert [(a.vm_name, a.kind) for a in snap.vm_adapters] == [("relay-11", "sriov"), ("relay-12", "vmxnet3")]


def test_a_wrong_password_is_one_line_exit_3_and_never_in_argv(tmp_path):
    with replay_server(password="secret") as srv:
        target = VsphereTarget.parse(f"http://127.0.0.1:{srv.server_address[1]}", "root", insecure=False)
        with pytest.raises(UnreachableError, match="login failed for root"):
            collect_vsphere(target, "wrong")
        env = {"IOVKIT_PASSWORD": "wrong", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "iovkit",
                "collect",
                "--vsphere",
                f"http://127.0.0.1:{srv.server_address[1]}",
                "--user",
                "root",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert r.returncode == 3 and r.stderr.startswith("iovkit: error: ") and "Traceback" not in r.stderr
    assert "wrong" not in r.stderr


def test_version_loads_no_pyvmomi():
    code = (
        "import sys\nsys.argv = ['iovkit', '--version']\nfrom iovkit.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import iovkit.cli.plan, iovkit.cli.collect, iovkit.cli.esxi\nprint('pyVmomi' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "False", r.stdout + r.stderr


def test_target_parsing_defaults_to_https_443_with_verification():
    t = VsphereTarget.parse("vc.example.com", "administrator@vsphere.local", insecure=False)
    assert (t.protocol, t.host, t.port, t.insecure) == ("https", "vc.example.com", 443, False)
    assert VsphereTarget.parse("esx1:8443", "root", True).port == 8443


def test_check_reads_the_host_over_the_api_with_the_password_from_the_environment():
    import json
    import os

    with replay_server(password="secret") as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        env = {**os.environ, "IOVKIT_PASSWORD": "secret", "PYTHONPATH": ":".join(sys.path)}
        r = subprocess.run(
            [sys.executable, "-m", "iovkit", "check", "--vsphere", url, "--user", "root", "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["verdict"] == "ready"
    got = {(f["id"], f["scope"]["name"]): f["status"] for f in report["findings"]}
    assert (
        got[("ESX-VFS-ACTIVE", "vmnic3")] == "pass"
        and got[("ESX-VM-FEATURES", "relay-11/SR-IOV network adapter 1")] == "warn"
    )
    assert "secret" not in r.stdout + r.stderr


def test_certificates_are_verified_unless_insecure(tmp_path):
    with replay_server(password="secret", tls=self_signed(tmp_path)) as srv:
        port = srv.server_address[1]
        strict = VsphereTarget.parse(f"127.0.0.1:{port}", "root", insecure=False)
        with pytest.raises(UnreachableError, match=r"certificate not trusted.*--insecure"):
            collect_vsphere(strict, "secret")
        snap = collect_vsphere(VsphereTarget.parse(f"127.0.0.1:{port}", "root", insecure=True), "secret")
    assert snap.host.name == "esx02.lab"
