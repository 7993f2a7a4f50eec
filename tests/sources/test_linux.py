"""Linux source: this machine for real, sysfs trees in the kernel's layout, archives (good and hostile)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from iovkit.sources.linux import collect
from iovkit.sources.linux.archive import snapshot_from_archive
from tests.conftest import needs_root
from tests.fixtures import linux_tree as lt


def _without_source(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "source"}


# -- this machine ----------------------------------------------------------------------------------------
def _system_facts() -> tuple[bool, int]:
    """What the system itself says: the hypervisor CPU flag, and PCI network functions that are not virtio."""
    flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    physical = 0
    for dev in Path("/sys/bus/pci/devices").iterdir():
        cls = (dev / "class").read_text().strip()
        if cls.startswith("0x02") and (dev / "vendor").read_text().strip() != "0x1af4":
            physical += 1
    return " hypervisor" in flags, physical


def test_collect_this_machine_reports_guest_and_no_sriov_nic(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    r = cli("collect", "-o", str(out))
    assert r.code == 0, r.err
    snap = json.loads(out.read_text())
    guest, physical = _system_facts()
    assert snap["host"]["platform"] == "linux"
    assert snap["host"]["is_vm_guest"] is guest
    assert snap["host"]["os_version"] == Path("/proc/sys/kernel/osrelease").read_text().strip()
    assert snap["iommu"]["kvm_device"] is os.path.exists("/dev/kvm")
    assert len(snap["nics"]) == physical
    if guest:
        assert "guest VM: yes" in r.err
    if physical == 0:
        assert "no physical NICs found" in r.err
        assert snap["vfs"] == []
    assert snap["errors"] == [], snap["errors"]  # nothing optional failed here


def test_live_archive_round_trip(cli: Any, tmp_path: Path) -> None:
    a, s1, s2 = tmp_path / "host.tar.gz", tmp_path / "s1.json", tmp_path / "s2.json"
    assert cli("collect", "--archive", str(a), "-o", str(s1)).code == 0
    r = cli("collect", "--from", str(a), "-o", str(s2))
    assert r.code == 0, r.err
    one, two = json.loads(s1.read_text()), json.loads(s2.read_text())
    assert two["source"]["kind"] == "linux-archive"
    assert two["source"]["collector_version"] == one["source"]["collector_version"] is not None  # who wrote it
    assert _without_source(one) == _without_source(two)
    with tarfile.open(a) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "root/proc/cpuinfo" in names
    assert not any(n.startswith("/") or ".." in n for n in names)


# -- a KVM host with a ConnectX-5, in the real sysfs layout ---------------------------------------------
@pytest.fixture
def cx5_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    lt.build_cx5_host(root)
    return root


def test_cx5_tree_host_cpu_iommu(cx5_root: Path) -> None:
    snap = collect(cx5_root)
    assert snap.source.kind == "linux-live" and snap.source.origin == str(cx5_root)
    h = snap.host
    assert (h.name, h.os_caption, h.os_version) == ("kvm-edge-01", "Ubuntu 22.04.4 LTS", "5.15.0-105-generic")
    assert h.is_vm_guest is False and h.guest_of is None and h.hypervisor_present is True
    c = snap.cpu
    assert (c.vendor, c.sockets, c.cores, c.logical_processors) == ("GenuineIntel", 1, 16, 32)
    assert c.virtualization_extensions is True and c.slat is True
    io_ = snap.iommu
    assert io_ is not None
    assert (io_.active, io_.kind, io_.groups, io_.kvm_device) == (True, "dmar", 60, True)
    assert io_.cmdline_options == {"intel_iommu": "on", "iommu": "pt"}
    assert snap.errors == []


def test_cx5_tree_nics_vfs_bond_libvirt(cx5_root: Path) -> None:
    snap = collect(cx5_root)
    assert [n.name for n in snap.nics] == ["eno1", "eno2", "ens1f0np0", "ens1f1np1"]  # VFs, bridges, lo: not NICs
    pf0, pf1 = snap.nic("ens1f0np0"), snap.nic("ens1f1np1")
    assert pf0 is not None and pf1 is not None
    assert (pf0.driver, pf0.pci_address, pf0.description) == ("mlx5_core", "0000:3b:00.0", "Mellanox ConnectX-5")
    assert (pf0.sriov_support, pf0.sriov_enabled, pf0.vfs_total, pf0.vfs_configured, pf0.vfs_allocated) == (
        "Supported",
        True,
        8,
        4,
        2,
    )
    assert (pf0.link_speed_bps, pf0.status, pf0.mac, pf0.numa_node, pf0.iommu_group) == (
        25_000_000_000,
        "Up",
        "b8:ce:f6:12:34:50",
        0,
        31,
    )
    assert (pf1.sriov_enabled, pf1.vfs_configured, pf1.status, pf1.link_speed_bps) == (False, 0, "Down", None)
    assert [t.model_dump(include={"name", "kind", "members", "mode"}) for t in snap.teams] == [
        {"name": "bond0", "kind": "bond", "members": ["eno1", "eno2"], "mode": "active-backup"}
    ]
    assert snap.nic("eno1").team == "bond0"  # type: ignore[union-attr]

    by_index = {v.index: v for v in snap.vfs}
    assert sorted(by_index) == [0, 1, 2, 3] and {v.pf for v in snap.vfs} == {"ens1f0np0"}
    v0, v1, v2 = by_index[0], by_index[1], by_index[2]
    assert (v0.pci_address, v0.driver, v0.netdev, v0.vm) == ("0000:3b:00.2", "vfio-pci", None, "relay1")
    assert (v0.mac, v0.vlan, v0.qos, v0.spoof_check, v0.trust, v0.link_state) == (
        "52:54:00:6d:90:02",
        100,
        0,
        True,
        False,
        "auto",
    )
    assert (v1.vm, v1.spoof_check, v1.trust, v1.link_state) == ("relay2", False, True, "enable")
    assert (v2.driver, v2.netdev, v2.vm, v2.mac) == ("mlx5_core", "ens1f0v2", None, "00:00:00:00:00:00")

    assert [(vm.name, vm.state) for vm in snap.vms] == [
        ("relay1", "running"),
        ("relay2", "running"),
        ("build-vm", "shut off"),
    ]
    hostdevs = [a for a in snap.vm_adapters if a.kind == "hostdev"]
    assert [(a.vm_name, a.vf_pci_address, a.mac) for a in hostdevs] == [
        ("relay1", "0000:3b:00.2", "52:54:00:6d:90:02"),
        ("relay2", "0000:3b:00.3", "52:54:00:6d:90:03"),
    ]
    bridge = next(a for a in snap.vm_adapters if a.vm_name == "build-vm")
    assert (bridge.kind, bridge.switch_name, bridge.name) == ("bridge", "virbr0", "vnet9")


def test_tree_without_captures_leaves_vf_details_unknown(cx5_root: Path) -> None:
    for f in (cx5_root / ".iovkit/commands").iterdir():
        f.unlink()
    snap = collect(cx5_root)
    assert len(snap.vfs) == 4 and all(v.mac is None and v.spoof_check is None and v.vm is None for v in snap.vfs)
    assert snap.vms == [] and snap.errors == []
    assert snap.nic("ens1f0np0").vfs_allocated is None  # type: ignore[union-attr]  # no libvirt: not known


def test_pf_without_sriov_and_virtual_nics(tmp_path: Path) -> None:
    t = lt.Tree(tmp_path)
    t.host(
        hostname="h",
        pretty="Debian GNU/Linux 12 (bookworm)",
        os_id="debian",
        version_id="12",
        kernel="6.1.0",
        cmdline="ro quiet",
        cpu_model="AMD EPYC 7543",
        vendor="AuthenticAMD",
        cores=32,
        threads=64,
        flags=["svm", "npt", "fpu"],
        kvm=False,
    )
    dev = t.pci("0000:01:00.0", cls="0x020000", vendor="0x10ec", device="0x8168", driver="r8169", iommu_group=3)
    t.netdev("enp1s0", dev, mac="00:e0:4c:68:00:01", speed=1000)
    vio = t.pci("0000:00:03.0", cls="0x020000", vendor="0x1af4", device="0x1041", driver="virtio-pci")
    t.netdev("eth9", f"{vio}/virtio2", mac="52:54:00:00:00:09")
    snap = collect(tmp_path)
    assert [n.name for n in snap.nics] == ["enp1s0"]
    nic = snap.nics[0]
    assert (nic.sriov_support, nic.sriov_enabled, nic.vfs_total, nic.description) == (
        "NotSupported",
        False,
        None,
        "PCI 10ec:8168",
    )
    assert snap.cpu.slat is True and snap.cpu.virtualization_extensions is True
    assert snap.iommu is not None and snap.iommu.kvm_device is False
    assert (snap.iommu.active, snap.iommu.groups, snap.iommu.kind) == (True, 1, None)  # a group, no DMAR/AMD-Vi unit
    assert snap.host.hypervisor_present is False


def test_broken_capture_is_an_error_entry_not_a_crash(cx5_root: Path) -> None:
    (cx5_root / ".iovkit/commands/netlink_vfinfo.json").write_text('{"truncated": ')
    (cx5_root / ".iovkit/commands/virsh_-r_dumpxml_relay2").write_text("<domain><name>relay2</name>")
    snap = collect(cx5_root)
    sources = [e.source for e in snap.errors]
    assert "capture netlink_vfinfo.json" in sources and "virsh -r dumpxml relay2" in sources
    assert all(v.mac is None for v in snap.vfs) and snap.vm("relay2") is not None


def test_root_tree_archive_round_trip_via_cli(cli: Any, cx5_root: Path, tmp_path: Path) -> None:
    a, s1, s2 = tmp_path / "cx5.tar.gz", tmp_path / "s1.json", tmp_path / "s2.json"
    r = cli("collect", "--root", str(cx5_root), "--archive", str(a), "-o", str(s1))
    assert r.code == 0, r.err
    assert "archive written" in r.err
    r2 = cli("collect", "--from", str(a), "-o", str(s2))
    assert r2.code == 0, r2.err
    one, two = json.loads(s1.read_text()), json.loads(s2.read_text())
    assert _without_source(one) == _without_source(two)
    assert len(two["vfs"]) == 4 and two["vfs"][0]["vm"] == "relay1"
    with tarfile.open(a) as tar:
        names = set(tar.getnames())
    # Exactly what was read: the VF dump and virsh outputs by predictable names, no unrelated file.
    assert {"commands/netlink_vfinfo.json", "commands/virsh_-r_list_--all"} <= names
    assert "root/sys/kernel/iommu_groups/0/type" not in names


def test_example_linux_cx5(cli: Any) -> None:
    r = cli("collect", "--example", "linux-cx5")
    assert r.code == 0, r.err
    snap = json.loads(r.out)
    assert snap["source"] == {
        "kind": "example",
        "origin": "linux-cx5",
        "collector_version": "0.1.0",  # the archive's manifest says which iovkit wrote it (tools/build_examples.py)
        "powershell_version": None,
        "sources_read": None,
    }
    assert snap["host"]["os_caption"].startswith("Ubuntu 22.04") and snap["host"]["os_version"].startswith("5.15")
    assert snap["iommu"]["groups"] == 60 and snap["iommu"]["kind"] == "dmar"
    assert [(n["name"], n["vfs_total"], n["vfs_configured"]) for n in snap["nics"] if n["driver"] == "mlx5_core"] == [
        ("ens1f0np0", 8, 4),
        ("ens1f1np1", 8, 0),
    ]
    assert sorted(v["vm"] for v in snap["vfs"] if v["vm"]) == ["relay1", "relay2"]


def test_example_is_what_the_builder_makes(tmp_path: Path) -> None:
    """The shipped archive is reproducible from the builder kept in the repo (no hand edits)."""
    out = tmp_path / "linux-cx5.tar.gz"
    lt.build_example(out)
    shipped = Path(__file__).parents[2] / "iovkit/examples/linux-cx5.tar.gz"
    assert snapshot_from_archive(out).model_dump(exclude={"source"}) == snapshot_from_archive(shipped).model_dump(
        exclude={"source"}
    )


# -- a Linux VM on Hyper-V ---------------------------------------------------------------------------------
def test_hyperv_guest_netvsc_paired_with_vf(tmp_path: Path) -> None:
    lt.build_hyperv_guest(tmp_path)
    snap = collect(tmp_path)
    assert snap.host.is_vm_guest is True and snap.host.guest_of == "Hyper-V"
    assert snap.nics == []  # the VF in the guest pairs with netvsc: a guest NIC, not a physical NIC
    syn, vf = snap.guest_nics
    assert (syn.name, syn.driver, syn.is_vf, syn.paired_with, syn.vf_rx_packets, syn.vf_tx_packets) == (
        "eth0",
        "hv_netvsc",
        False,
        "enP7211s1",
        123456,
        654321,
    )
    assert (vf.name, vf.driver, vf.is_vf, vf.paired_with) == ("enP7211s1", "mlx5_core", True, "eth0")


def test_hyperv_guest_without_vf(tmp_path: Path) -> None:
    lt.build_hyperv_guest(tmp_path, with_vf=False)
    snap = collect(tmp_path)
    assert [(g.name, g.paired_with, g.vf_rx_packets) for g in snap.guest_nics] == [("eth0", None, 0)]


# -- hostile or broken archives: one line, exit 2, names the archive and the member ------------------------
def _tar_gz(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    data = data or {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            payload = data.get(m.name)
            tar.addfile(m, io.BytesIO(payload) if payload is not None else None)
    path.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1))
    return path


def _file(name: str, payload: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    return info, payload


def _link(name: str, target: str, sym: bool = True) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE if sym else tarfile.LNKTYPE
    info.linkname = target
    return info


def _assert_one_line_error(cli: Any, path: Path, *needles: str) -> None:
    r = cli("collect", "--from", str(path))
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iovkit: error: "), r.err
    assert str(path) in lines[0] and "Traceback" not in r.err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize(
    ("name", "builder", "needles"),
    [
        ("dotdot", lambda: [_file("root/../../etc/cron.d/x", b"boom")], ("'root/../../etc/cron.d/x'", "'..'")),
        ("absolute", lambda: [_file("/etc/passwd", b"root:x:0:0")], ("'/etc/passwd'", "absolute")),
        ("symlink", lambda: [_link("root/proc", "../../../etc")], ("'root/proc'", "escapes")),
        ("abs-symlink", lambda: [_link("root/etc", "/etc")], ("'root/etc'", "escapes")),
        ("hardlink", lambda: [_link("root/shadow", "../etc/shadow", sym=False)], ("'root/shadow'", "escapes")),
    ],
)
def test_unsafe_members_are_refused(
    cli: Any, tmp_path: Path, name: str, builder: Any, needles: tuple[str, ...]
) -> None:
    items = builder()
    members = [i[0] if isinstance(i, tuple) else i for i in items]
    data = {i[0].name: i[1] for i in items if isinstance(i, tuple)}
    _assert_one_line_error(cli, _tar_gz(tmp_path / f"{name}.tar.gz", members, data), *needles)


def test_size_bomb_is_refused(cli: Any, tmp_path: Path) -> None:
    """16 MiB of zeros compresses to kilobytes; the header's size is refused before anything is read."""
    path = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("root/proc/cpuinfo")
    info.size = 16 * 1024 * 1024
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert path.stat().st_size < 200_000
    _assert_one_line_error(cli, path, "'root/proc/cpuinfo'", "bytes (limit")


def test_total_size_cap(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import iovkit.sources.linux.archive as arch

    monkeypatch.setattr(arch, "MAX_TOTAL_BYTES", 3 * 1024 * 1024)
    items = [_file(f"root/f{i}", bytes(1024 * 1024)) for i in range(4)]
    path = _tar_gz(tmp_path / "big.tar.gz", [i[0] for i in items], {i[0].name: i[1] for i in items})
    _assert_one_line_error(cli, path, "unpacks to more than", "'root/f3'")


def test_truncated_gzip(cli: Any, tmp_path: Path) -> None:
    shipped = Path(__file__).parents[2] / "iovkit/examples/linux-cx5.tar.gz"
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(shipped.read_bytes()[: shipped.stat().st_size // 2])
    _assert_one_line_error(cli, path, "truncated or corrupt")


def test_archive_without_manifest(cli: Any, tmp_path: Path) -> None:
    info, payload = _file("root/proc/cpuinfo", b"processor : 0\n")
    _assert_one_line_error(cli, _tar_gz(tmp_path / "nomani.tar.gz", [info], {info.name: payload}), "no manifest.json")


def test_root_that_is_not_a_directory(cli: Any, tmp_path: Path) -> None:
    r = cli("collect", "--root", str(tmp_path / "nope"))
    assert r.code == 2 and "not a directory" in r.err and str(tmp_path / "nope") in r.err


# -- kernel interfaces, for real ---------------------------------------------------------------------------
def test_netlink_vfinfo_codec_round_trip() -> None:
    """vf_entries reads what the kernel encodes: build an RTM_NEWLINK with IFLA_VFINFO_LIST, encode, decode."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    from iovkit.sources.linux.netlink import vf_entries
    from iovkit.sources.linux.parsers import parse_ip_vfinfo

    msg = ifinfmsg()
    msg["attrs"] = [
        ("IFLA_IFNAME", "pf0"),
        (
            "IFLA_VFINFO_LIST",
            {
                "attrs": [
                    (
                        "IFLA_VF_INFO",
                        {
                            "attrs": [
                                ("IFLA_VF_MAC", {"vf": 3, "mac": "52:54:00:6d:90:02"}),
                                ("IFLA_VF_VLAN", {"vf": 3, "vlan": 100, "qos": 2}),
                                ("IFLA_VF_SPOOFCHK", {"vf": 3, "spoofchk": 0}),
                                ("IFLA_VF_LINK_STATE", {"vf": 3, "link_state": 2}),
                                ("IFLA_VF_TRUST", {"vf": 3, "trust": 0xFFFFFFFF}),  # -1: not reported by the driver
                            ]
                        },
                    )
                ]
            },
        ),
    ]
    msg.encode()
    decoded = ifinfmsg(msg.data)
    decoded.decode()
    entries = vf_entries(decoded)
    (vf,) = parse_ip_vfinfo(json.dumps([{"ifname": "pf0", "vfinfo_list": entries}]))["pf0"]
    assert (vf.index, vf.mac, vf.vlan, vf.qos, vf.spoof_check, vf.link_state, vf.trust) == (
        3,
        "52:54:00:6d:90:02",
        100,
        2,
        False,
        "disable",
        None,
    )


def test_netlink_dump_of_real_links() -> None:
    from iovkit.sources.linux.netlink import vf_dump

    links = json.loads(vf_dump(["lo", "no-such-if0"]))
    assert links == [{"ifname": "lo", "vfinfo_list": []}]


@needs_root
def test_ethtool_ioctl_on_a_veth() -> None:
    """veth's `ethtool -S` has peer_ifindex: the ioctl path must read exactly the peer's index."""
    from pyroute2 import IPRoute

    from iovkit.sources.linux.netlink import ethtool_stats

    a, b = f"lxa{os.getpid() % 100000}", f"lxb{os.getpid() % 100000}"
    with IPRoute() as ipr:
        ipr.link("add", ifname=a, kind="veth", peer=b)
        try:
            peer_index = ipr.link_lookup(ifname=b)[0]
            stats = ethtool_stats(a)
        finally:
            ipr.link("del", ifname=a)
    assert stats["peer_ifindex"] == peer_index


def test_root_tree_link_leading_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lt.build_hyperv_guest(root, with_vf=False)
    (root / "proc/sys/kernel/hostname").unlink()
    (root / "proc/sys/kernel/hostname").symlink_to("/proc/sys/kernel/hostname")  # absolute: this host's name
    snap = collect(root)
    assert snap.host.name is None
    assert [e.source for e in snap.errors] == ["/proc/sys/kernel/hostname"]
    assert "outside the root" in snap.errors[0].error


def test_every_read_is_relative_to_the_root(cx5_root: Path) -> None:
    """Conformance: the collector never asks for a bare absolute path or a `..` path."""
    from iovkit.snapshot import SourceInfo
    from iovkit.sources.linux.collector import LinuxCollector
    from iovkit.sources.linux.reader import FsReader

    reader = FsReader(cx5_root)
    LinuxCollector(reader).snapshot(SourceInfo(kind="linux-live"))
    rec = reader.record
    for key in [*rec.files, *rec.links, *rec.dirs, *rec.exists]:
        assert not key.startswith("/") and ".." not in key.split("/"), key
    assert "proc/cpuinfo" in rec.files and "dev/kvm" in rec.exists


def test_run_command_real_processes() -> None:
    from iovkit.sources.linux.collector import run_command
    from iovkit.sources.linux.reader import CaptureError

    assert run_command(("echo", "virsh")) == "virsh\n"
    assert run_command(("iovkit-no-such-program-xyz", "list")) is None  # absent here: not collected, no error
    with pytest.raises(CaptureError, match="no-such-file"):
        run_command(("ls", "/no-such-file"))


def test_small_parsers_on_documented_shapes() -> None:
    from iovkit.sources.linux.parsers import (
        guest_of,
        parse_cmdline_iommu,
        parse_ethtool_stats,
        parse_ip_vfinfo,
        parse_virsh_list,
    )

    listing = (
        " Id   Name          State\n-------------------------------\n 1    web front     running\n"
        " -    old vm        shut off\n 7    p1            paused\n"
    )
    assert parse_virsh_list(listing) == [("web front", "running"), ("old vm", "shut off"), ("p1", "paused")]
    # The last option wins (as in the kernel); what follows `--` belongs to init.
    assert parse_cmdline_iommu("intel_iommu=off ro intel_iommu=on iommu=pt -- amd_iommu=on") == {
        "intel_iommu": "on",
        "iommu": "pt",
    }
    assert parse_ethtool_stats("NIC statistics:\n     vf_rx_packets: 12\n     tx_queue_0_packets: 3\n") == {
        "vf_rx_packets": 12,
        "tx_queue_0_packets": 3,
    }
    # Older iproute2 prints plain vlan/qos instead of vlan_list.
    (vf,) = parse_ip_vfinfo(
        '[{"ifname": "p0", "vfinfo_list": [{"vf": 0, "address": "AA:BB:CC:00:00:01", '
        '"vlan": 7, "qos": 1, "spoofchk": true}]}]'
    )["p0"]
    assert (vf.mac, vf.vlan, vf.qos, vf.spoof_check, vf.trust) == ("aa:bb:cc:00:00:01", 7, 1, True, None)
    assert guest_of("QEMU", "Standard PC (Q35 + ICH9, 2009)", None) == "KVM"
    assert guest_of("Microsoft Corporation", "Virtual Machine", None) == "Hyper-V"
    assert guest_of(None, None, "xen") == "Xen"
    assert guest_of(None, None, None) is None
