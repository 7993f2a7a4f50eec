"""Linux/KVM and in-guest rules: pass, fail and skip for each."""

from __future__ import annotations

from iovkit.checks import run_checks
from iovkit.checks.catalog import Finding
from iovkit.snapshot import HostSnapshot, PhysicalNic, Team
from tests.fixtures.snapshots import guest, lx_ready


def run(snap: HostSnapshot, rid: str) -> list[Finding]:
    return run_checks(snap, only=[rid]).findings


def one(snap: HostSnapshot, rid: str) -> Finding:
    fs = run(snap, rid)
    assert len(fs) == 1, fs
    return fs[0]


def test_ready_kvm_host():
    r = run_checks(lx_ready())
    assert r.verdict == "ready", [(f.id, f.status, f.message) for f in r.findings if f.status != "pass"]


# -- LX-VIRT -------------------------------------------------------------------------------------------------
def test_virt_pass_fail_skip():
    s = lx_ready()
    assert one(s, "LX-VIRT").status == "pass"
    s.iommu.kvm_device = False
    f = one(s, "LX-VIRT")
    assert f.status == "fail" and f.fix == "sudo modprobe kvm_intel"
    s.cpu.virtualization_extensions = False
    assert "VT-x" in (one(s, "LX-VIRT").fix or "")
    s.cpu.virtualization_extensions, s.iommu.kvm_device = None, None
    f = one(s, "LX-VIRT")
    assert f.status == "unknown" and f.missing == ["cpu.virtualization_extensions", "iommu.kvm_device"]


# -- LX-GUEST ------------------------------------------------------------------------------------------------
def test_guest_pass_fail_skip():
    assert one(lx_ready(), "LX-GUEST").status == "pass"
    f = one(guest(vf=False), "LX-GUEST")
    assert f.status == "fail" and "cannot be set" in f.message and "iovkit doctor" in (f.fix or "")
    s = lx_ready()
    s.host.is_vm_guest = None
    assert one(s, "LX-GUEST").status == "unknown"


def test_guest_without_vf_is_not_ready_and_host_rules_do_not_apply():
    r = run_checks(guest(vf=False))
    assert r.verdict == "not-ready"
    iommu = next(f for f in r.findings if f.id == "LX-IOMMU")
    assert iommu.status == "not-applicable" and "VM guest" in iommu.message and not iommu.missing


# -- LX-IOMMU / LX-IOMMU-CMDLINE -----------------------------------------------------------------------------
def test_iommu_pass_fail_skip():
    s = lx_ready()
    assert one(s, "LX-IOMMU").status == "pass"
    s.iommu.active, s.iommu.groups, s.iommu.cmdline_options = False, 0, {}
    f = one(s, "LX-IOMMU")
    assert f.status == "fail" and "intel_iommu=on iommu=pt" in (f.fix or "") and "update-grub" in (f.fix or "")
    s.iommu.active = None
    assert one(s, "LX-IOMMU").missing == ["iommu.active"]


def test_iommu_cmdline_fix_is_grubby_off_debian():
    s = lx_ready()
    s.host.os_caption = "Rocky Linux 9.3 (Blue Onyx)"
    s.iommu.active, s.iommu.cmdline_options = False, {}
    f = one(s, "LX-IOMMU-CMDLINE")
    assert f.status == "fail"
    assert f.fix == "sudo grubby --update-kernel=ALL --args='intel_iommu=on iommu=pt' && sudo reboot"


def test_iommu_cmdline_off_fails_missing_pt_warns_and_skip():
    s = lx_ready()
    assert one(s, "LX-IOMMU-CMDLINE").status == "pass"
    s.iommu.cmdline_options = {"intel_iommu": "off"}
    assert one(s, "LX-IOMMU-CMDLINE").status == "fail"
    s.iommu.cmdline_options = {"intel_iommu": "on"}
    assert one(s, "LX-IOMMU-CMDLINE").status == "warn"
    s.cpu.vendor, s.cpu.model, s.iommu.kind = "AuthenticAMD", "AMD EPYC 7443", "amd-vi"
    s.iommu.cmdline_options = {"amd_iommu": "off"}
    assert one(s, "LX-IOMMU-CMDLINE").status == "fail"
    s.iommu.kernel_cmdline = None
    assert one(s, "LX-IOMMU-CMDLINE").missing == ["iommu.kernel_cmdline"]


# -- LX-NIC-SRIOV --------------------------------------------------------------------------------------------
def test_nic_sriov_pass_fail_skip():
    s = lx_ready()
    assert one(s, "LX-NIC-SRIOV").status == "pass"
    s.nics = [
        PhysicalNic(name="eno1", driver="e1000e", pci_address="0000:00:1f.6", sriov_support="NotSupported", vfs_total=0)
    ]
    f = one(s, "LX-NIC-SRIOV")
    assert f.status == "fail" and f.scope.kind == "host"
    assert run_checks(s).verdict == "not-ready"
    s.nics = [PhysicalNic(name="eno1")]
    assert one(s, "LX-NIC-SRIOV").missing == ["nics[0].vfs_total"]


def test_nic_sriov_mlx_without_sriov_firmware_gets_mstconfig():
    s = lx_ready()
    s.nics[0].vfs_total, s.nics[0].sriov_support = 0, "NotSupported"
    f = one(s, "LX-NIC-SRIOV")
    assert f.fix == "sudo mstconfig -d 0000:3b:00.0 set SRIOV_EN=1 NUM_OF_VFS=8 && sudo reboot"


# -- LX-VFS --------------------------------------------------------------------------------------------------
def test_vfs_pass_fail_skip():
    s = lx_ready()
    assert one(s, "LX-VFS").status == "pass"
    s.nics[0].vfs_configured = 0
    f = one(s, "LX-VFS")
    assert f.status == "fail" and f.fix == "echo 8 | sudo tee /sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs"
    s.nics[0].vfs_configured = None
    assert one(s, "LX-VFS").status == "unknown"


def test_vfs_second_port_without_vfs_only_warns_and_stays_ready():
    s = lx_ready()
    s.nics.append(
        PhysicalNic(
            name="enp59s0f1",
            driver="mlx5_core",
            pci_address="0000:3b:00.1",
            sriov_support="Supported",
            vfs_total=8,
            vfs_configured=0,
        )
    )
    by = {f.scope.name: f.status for f in run(s, "LX-VFS")}
    assert by == {"enp59s0f0": "pass", "enp59s0f1": "warn"}
    assert run_checks(s).verdict == "ready"


# -- LX-VF-BOUND ---------------------------------------------------------------------------------------------
def test_vf_bound_pass_fail_skip():
    s = lx_ready()
    assert {f.status for f in run(s, "LX-VF-BOUND")} == {"pass"}
    s.vfs[1].driver = None
    f = run(s, "LX-VF-BOUND")[1]
    assert f.status == "fail" and "0000:3b:00.3" in (f.fix or "")
    r = run_checks(s)
    assert r.verdict == "partial"  # one VF unbound: the PF still works
    s.vfs[1].pci_address = None
    assert run(s, "LX-VF-BOUND")[1].status == "unknown"


# -- LX-BOND -------------------------------------------------------------------------------------------------
def test_bond_pass_warn_fail_skip():
    s = lx_ready()
    assert one(s, "LX-BOND").status == "pass"
    s.teams = [Team(name="bond0", kind="bond", members=["enp59s0f0"])]
    s.nics[0].team = "bond0"
    f = one(s, "LX-BOND")
    assert f.status == "warn" and "bond0" in f.message and "nomaster" in (f.fix or "")
    s.nics[0].driver = "ice"
    assert one(s, "LX-BOND").status == "fail"
    s.nics = []
    assert one(s, "LX-BOND").status == "not-applicable"


# -- LX-VF-POLICY --------------------------------------------------------------------------------------------
def test_vf_policy_pass_warn_skip():
    s = lx_ready()
    assert {f.status for f in run(s, "LX-VF-POLICY")} == {"pass"}
    s.vfs[0].spoof_check, s.vfs[0].trust, s.vfs[0].mac = False, True, "00:00:00:00:00:00"
    f = run(s, "LX-VF-POLICY")[0]
    assert f.status == "warn"
    assert f.fix == (
        "sudo ip link set dev enp59s0f0 vf 0 spoofchk on && sudo ip link set dev enp59s0f0 vf 0 "
        "trust off && sudo ip link set dev enp59s0f0 vf 0 mac 52:54:00:00:00:01"
    )
    s.vfs[1].spoof_check = s.vfs[1].trust = s.vfs[1].mac = None
    assert run(s, "LX-VF-POLICY")[1].status == "unknown"


# -- GUEST-VF ------------------------------------------------------------------------------------------------
def test_guest_vf_pass_fail_warn():
    r = run_checks(guest())
    assert r.verdict == "ready"
    assert next(f for f in r.findings if f.id == "GUEST-VF").status == "pass"
    f = one(guest(vf=False), "GUEST-VF")
    assert f.status == "fail" and "host's virtual switch" in f.message
    assert one(guest(rx=0, tx=0), "GUEST-VF").status == "warn"


def test_guest_vf_counters_missing_and_not_collected():
    f = one(guest(rx=None, tx=None), "GUEST-VF")
    assert f.status == "warn" and f.missing
    s = guest(vf=False)
    s.guest_nics = []
    from iovkit.snapshot import CollectionError

    s.errors.append(CollectionError(source="ethtool -S eth0", error="not permitted"))
    assert one(s, "GUEST-VF").status == "unknown"


def test_guest_vf_passthrough_vf_counts():
    s = guest(vf=False)
    s.guest_nics = []
    s.nics = [PhysicalNic(name="ens5", driver="iavf", pci_address="0000:00:05.0")]
    assert one(s, "GUEST-VF").status == "pass"


def test_guest_vf_not_applied_to_bare_metal():
    r = run_checks(lx_ready(), only=["GUEST-VF"])
    assert not r.findings and r.verdict == "not-ready"  # nothing checked is never "ready"


def test_windows_guest_gets_guest_vf_only():
    from iovkit.snapshot import GuestNic, HostInfo, HostSnapshot, SourceInfo

    def win(vf: bool) -> HostSnapshot:
        nics = [GuestNic(name="Ethernet", driver="netvsc")]
        if vf:
            nics = [
                GuestNic(name="Ethernet", driver="netvsc", paired_with="Ethernet 2", vf_rx_packets=10),
                GuestNic(name="Ethernet 2", driver="mlx5", is_vf=True, paired_with="Ethernet"),
            ]
        return HostSnapshot(
            source=SourceInfo(kind="hyperv-bundle", origin="C:/t/b.json"),
            host=HostInfo(
                name="relay-01", platform="hyperv", is_vm_guest=True, edition="server", os_version="10.0.20348"
            ),
            guest_nics=nics,
        )

    r = run_checks(win(vf=True))
    assert r.verdict == "ready"
    assert {f.status for f in r.findings if f.id.startswith("HV-")} == {"not-applicable"}
    r = run_checks(win(vf=False))
    assert r.verdict == "not-ready"
    assert next(f for f in r.findings if f.id == "GUEST-VF").status == "fail"
