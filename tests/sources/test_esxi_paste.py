"""Pasted ESXi output in the verbatim shapes of reference esxi.md §3, with and without prompts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from iovkit.errors import InputError
from iovkit.sources import detect, load_input
from iovkit.sources.esxi import parsers as p
from iovkit.sources.esxi.paste import snapshot_from_paste

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "esxi"
NIC_LIST_703 = (FIX / "nic_list_703.txt").read_text()  # verbatim, ESXi 7.0.3 build-18905247 (S26)

SRIOVNIC_CISCO = """\
Name    PCI Device    Driver  Link  Speed  Duplex  MAC Address         MTU  Description
----------------------------------------------------------------------------------------------------------
vmnic0  0000:1b:00.0  nenic   Up    50000  Full    f4:ee:31:30:80:40  1500  Cisco Systems Inc Cisco VIC Ethernet NIC
"""

SRIOVNIC_EMPTY = """\
Name  PCI Device  Driver  Link  Speed  Duplex  MAC Address  MTU  Description
----  ----------  ------  ----  -----  ------  -----------  ---  -----------
"""

VF_LIST_MLX = """\
VF ID  Active  PCI Address     Owner World ID
-----  ------  --------------  --------------
    0   false  00000:101:00.1   -
    1   false  00000:101:00.2   -
"""

PCI_BLOCK = """\
0000:02:00.1
   Address: 0000:02:00.1
   Segment: 0x0000
   Bus: 0x02
   Slot: 0x00
   Function: 0x1
   VMkernel Name: vmnic5
   Vendor Name: Intel Corporation
   Device Name: Ethernet Controller 10 Gigabit X540-AT2
   Configured Owner: Unknown
   Current Owner: VMkernel
   Vendor ID: 0x8086
   Device ID: 0x1528
   SubVendor ID: 0x103c
   SubDevice ID: 0x192d
   Device Class: 0x0200
   Device Class Name: Ethernet controller
   Module Name: ixgbe
   Passthru Capable: true
"""

VMX_API_803 = """\
pciPassthru31.deviceId = "0"
pciPassthru31.dvs.portgroupId = "dvportgroup-75"
pciPassthru31.id = "00000:026:00.1"
pciPassthru31.pciSlotNumber = "1184"
pciPassthru31.pfId = "00000:026:00.1"
pciPassthru31.present = "TRUE"
pciPassthru31.systemId = "BYPASS"
pciPassthru31.vendorId = "0"
"""


def test_nic_list_columns_vary_with_the_data():
    rows = p.parse_nic_list(NIC_LIST_703)
    assert [(r["Name"], r["Driver"], r["Speed"], r["PCI Device"]) for r in rows] == [
        ("vmnic0", "i40en", "1000", "0000:1c:00.0"),
        ("vmnic2", "nmlx5_core", "10000", "0000:5e:00.0"),
    ]
    assert rows[1]["Description"].endswith("dual-port SFP28; (MCX4121A-ACA)")


def test_sriovnic_list_with_a_single_dash_rule_and_empty():
    rows = p.parse_sriovnic_list(SRIOVNIC_CISCO)
    assert [(r["Name"], r["Driver"], r["MTU"]) for r in rows] == [("vmnic0", "nenic", "1500")]
    assert rows[0]["Description"] == "Cisco Systems Inc Cisco VIC Ethernet NIC"
    assert p.parse_sriovnic_list(SRIOVNIC_EMPTY) == []


def test_vf_addresses_decimal_before_803_and_hex_after_name_the_same_function():
    # 7.0.3 printed `00000:075:17.0`, 8.0.3 prints `0000:4b:11.0` for the same VF (bus 0x4b = 75, slot 0x11 = 17)
    assert p.vf_list_address("00000:075:17.0") == p.vf_list_address("0000:4b:11.0") == "0000:4b:11.0"
    assert p.vf_list_address("00000:027:00.1") == "0000:1b:00.1"
    rows = p.parse_vf_list(VF_LIST_MLX)
    assert rows is not None
    assert [(r["VF ID"], r["Active"], p.vf_list_address(r["PCI Address"]), r["Owner World ID"]) for r in rows] == [
        ("0", "false", "0000:65:00.1", "-"),
        ("1", "false", "0000:65:00.2", "-"),
    ]
    assert p.parse_vf_list("There is no SRIOV Nic with name vmnic6\n") is None


def test_vmx_ids_are_decimal_padded_or_not_and_a_hex_id_is_refused():
    vm = p.vm_from_vmx(VMX_API_803, "/vmfs/volumes/ds/vm1/vm1.vmx")
    (a,) = vm.adapters
    assert (a.type, a.pf, a.pf_raw, a.network, a.present) == (
        "sriov",
        "0000:1a:00.1",
        "00000:026:00.1",
        "dvportgroup-75",
        True,
    )
    assert vm.name == "vm1"
    assert p.vmx_address("0:66:0.0") == "0000:42:00.0"
    assert p.vmx_address("0000:1a:00.1") is None  # hex in a .vmx: "AH No device hints found"


def test_pci_list_block_and_lspci_tags():
    (dev,) = p.parse_pci_list(PCI_BLOCK)
    assert (dev["Address"], dev["VMkernel Name"], dev["Vendor ID"], dev["Module Name"]) == (
        "0000:02:00.1",
        "vmnic5",
        "0x8086",
        "ixgbe",
    )
    lines = p.parse_lspci(
        "0000:af:00.0 Network controller: Mellanox Technologies MT27700 Family [ConnectX-4] [vmnic4]\n"
        "0000:af:00.2 Network controller: Mellanox Technologies MT27700 Family [ConnectX-4 Virtual Function]"
        " [PF_0.175.0_VF_0]\n"
        "0000:ca:02.0 Class 0200: 8086:154c [PF_0.202.0_VF_0]\n"
        "0000:af:00.0               8086:1572 8086:0008  11/   /     A V i40en\n"
    )
    assert lines[0].vmnic == "vmnic4" and lines[1].vf_of == (0, 175, 0) and lines[1].vf_index == 0
    assert (lines[2].vendor_id, lines[2].device_id, lines[2].vf_of) == (0x8086, 0x154C, (0, 202, 0))
    assert (lines[3].vendor_id, lines[3].module) == (0x8086, "i40en")


def test_module_options_and_max_vfs_range():
    assert p.parse_esxcfg_module_g(
        "nmlx5_core enabled = 1 options = 'pfctx=0x08 pfcrx=0x08 trust_state=2 max_vfs=4'"
    ) == (
        "nmlx5_core",
        "pfctx=0x08 pfcrx=0x08 trust_state=2 max_vfs=4",
    )
    assert p.max_vfs_range("Maximum number of VFs to be enabled (0..128)") == "0..128"
    assert p.max_vfs_range("Array of 'uint' of range 0-128, May be limited by device, 0 - disabled") == "0..128"


def _paste(tmp_path: Path, text: str, name: str = "paste.txt") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def _owner_paste(version: str, owner: int) -> str:
    return f"""\
[root@h1:~] esxcli system version get
   Product: VMware ESXi
   Version: {version}
[root@h1:~] esxcli network nic list
Name    PCI Device    Driver  Admin Status  Link Status  Speed  Duplex  MAC Address         MTU  Description
------  ------------  ------  ------------  -----------  -----  ------  -----------------  ----  -----------
vmnic4  0000:4b:00.0  i40en   Up            Up           25000  Full    3c:ec:ef:05:48:18  1500  Intel X710
[root@h1:~] esxcli network sriovnic vf list -n vmnic4
VF ID  Active  PCI Address     Owner World ID
-----  ------  --------------  --------------
    0    true  0000:4b:11.0     {owner}
[root@h1:~] esxcli vm process list
VM_A
   World ID: 2169832
   Process ID: 0
   VMX Cartel ID: 2169831
   Display Name: VM_A
   Config File: /vmfs/volumes/ds/VM_A/VM_A.vmx

VM_B
   World ID: 2169831
   Process ID: 0
   VMX Cartel ID: 2169900
   Display Name: VM_B
   Config File: /vmfs/volumes/ds/VM_B/VM_B.vmx
"""


@pytest.mark.parametrize(
    ("version", "owner"),
    [("7.0.3", "VM_B"), ("8.0.3", "VM_B"), ("6.7.0", "VM_A"), ("9.0.0", "VM_A")],
)
def test_owner_world_id_means_world_id_from_7_0_and_cartel_id_before_and_from_9_0(tmp_path, version, owner):
    # 2169831 is VM_A's VMX Cartel ID and VM_B's World ID: the version decides which VM owns the VF.
    snap = snapshot_from_paste(_paste(tmp_path, _owner_paste(version, 2169831)))
    assert snap.host.name == "h1" and snap.host.platform == "esxi"
    assert [(v.pf, v.index, v.vm, v.pci_address) for v in snap.vfs] == [("vmnic4", 0, owner, "0000:4b:11.0")]
    (nic,) = snap.nics
    assert (nic.vfs_configured, nic.vfs_allocated, nic.link_speed_bps) == (1, 1, 25_000_000_000)


def test_a_paste_without_prompts_is_cut_at_its_headers(tmp_path):
    text = "   Product: VMware ESXi\n   Version: 8.0.1\n   Build: Releasebuild-21495797\n" + NIC_LIST_703 + VF_LIST_MLX
    snap = snapshot_from_paste(_paste(tmp_path, text))
    assert snap.host.os_version == "8.0.1" and [n.name for n in snap.nics] == ["vmnic0", "vmnic2"]
    # A VF list names no vmnic: it is not guessed, the error says what to paste.
    assert snap.vfs == []
    assert any("sriovnic vf list -n" in e.error for e in snap.errors)


def test_unknown_is_not_false_for_a_nic_nobody_reported_on(tmp_path):
    snap = snapshot_from_paste(_paste(tmp_path, "[root@h:~] esxcli network nic list\n" + NIC_LIST_703))
    assert all(n.sriov_support is None and n.sriov_enabled is None and n.vfs_configured is None for n in snap.nics)
    assert snap.esxi is not None and snap.esxi.version is None and snap.esxi.reboot_required is None


def test_a_directory_of_pastes_and_vmx_files(tmp_path):
    _paste(tmp_path, "[root@h:~] esxcli network nic list\n" + NIC_LIST_703, "nics.txt")
    _paste(tmp_path, 'displayName = "relay"\nvirtualHW.version = "21"\nmemSize = "4096"\n' + VMX_API_803, "relay.vmx")
    assert detect(tmp_path) == "esxi-paste"
    snap = load_input(tmp_path)
    assert [(a.vm_name, a.kind) for a in snap.vm_adapters] == [("relay", "sriov")]
    assert snap.esxi is not None and snap.esxi.vms[0].hw_version == 21 and snap.esxi.vms[0].reserve_all is False


def test_the_example_host_reads_through_the_ordinary_input_path():
    from iovkit.sources import load_example

    snap = load_example("esxi-x710")
    assert snap.host.name == "esx01" and snap.cpu.vendor == "intel"
    by = {n.name: n for n in snap.nics}
    assert (by["vmnic0"].sriov_enabled, by["vmnic0"].vfs_configured, by["vmnic0"].vfs_allocated) == (True, 8, 1)
    assert by["vmnic1"].sriov_enabled is False and by["vmnic2"].sriov_support is None
    assert snap.esxi is not None and snap.esxi.module("igbn").has_max_vfs is False  # type: ignore[union-attr]


def test_not_esxi_output_is_one_error_line(tmp_path):
    f = _paste(tmp_path, "[root@h:~] esxcli software vib list\nName  Version\n----  -------\nfoo   1.0\n")
    with pytest.raises(InputError, match="no ESXi command output recognised"):
        load_input(f)
    r = subprocess.run(
        [sys.executable, "-m", "iovkit", "collect", "--from", str(f), "-q"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("iovkit: error: ")


def _example_sections():
    from iovkit.examples import example_path
    from iovkit.sources.esxi.paste import split_sections

    return [s for s in split_sections(example_path("esxi-x710").read_text(), "x").sections if s.text.strip()]


@pytest.mark.parametrize("kind", sorted({s.kind for s in _example_sections()}))
def test_every_command_is_recognised_without_its_prompt(kind):
    from iovkit.sources.esxi.paste import split_sections

    sec = next(s for s in _example_sections() if s.kind == kind)
    got = split_sections(sec.text + "\n", "bare")
    assert got.host is None  # no prompt, no host name
    assert {s.kind for s in got.sections} == {kind}, sec.command


def test_the_dmar_signature_is_recognised_without_its_prompt(tmp_path):
    text = NIC_LIST_703 + (
        "2026-11-02T10:00:01.123Z cpu0:1)WARNING: VTD: 733: ACPI DMAR table not found\n"
        "2026-11-02T10:00:01.125Z cpu0:1)WARNING: IOV: 250: IOV initialization failed\n"
    )
    snap = snapshot_from_paste(_paste(tmp_path, text))
    assert snap.esxi is not None and snap.esxi.boot_log is not None and len(snap.esxi.boot_log) == 2


def test_the_example_pasted_without_prompts_keeps_each_vmx_its_own_vm(tmp_path):
    """Prompt lines stripped (a ticket, a chat): three .vmx files in a row are three VMs, never one mixed VM
    whose reservation comes from another VM's file."""
    from iovkit.examples import example_path

    text = example_path("esxi-x710").read_text()
    bare = "\n".join(ln for ln in text.splitlines() if not ln.startswith("[root@"))
    snap = snapshot_from_paste(_paste(tmp_path, bare))
    assert snap.esxi is not None
    vms = {vm.name: vm for vm in snap.esxi.vms}
    assert {"relay-01", "relay-02", "relay-03"} <= set(vms)
    assert vms["relay-01"].reserve_all is True and vms["relay-03"].reserve_all is False
