"""The data-path verdict inside Linux guests: trees in the shapes guest.md records, an archive, this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iovkit.checks.catalog import run_checks
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot
from iovkit.sources.linux import collect
from iovkit.sources.linux.archive import snapshot_from_archive
from tests.fixtures import guest_trees as gt


def _by_name(snap: HostSnapshot) -> dict[str, Any]:
    assert snap.guest is not None
    return {i.name: i for i in snap.guest.interfaces}


def _findings(snap: HostSnapshot, rid: str, policy: Policy | None = None) -> list[Any]:
    return [f for f in run_checks(snap, policy).findings if f.id == rid]


@pytest.mark.parametrize("mana", [False, True], ids=["mlx5", "mana"])
def test_netvsc_with_vf_whose_counters_rise_is_on_the_vf(tmp_path: Path, mana: bool) -> None:
    gt.build_netvsc_vf(tmp_path, mana=mana)
    snap = collect(tmp_path)
    i = _by_name(snap)
    vf_name = "enP30832p0s0" if mana else "enP53091s1np0"
    eth0, vf = i["eth0"], i[vf_name]
    assert (eth0.kind, eth0.path, eth0.basis, eth0.paired_vf) == ("synthetic", "vf", "counters", vf_name)
    assert (vf.kind, vf.master, vf.slave_flag, vf.driver) == ("vf", "eth0", True, "mana" if mana else "mlx5_core")
    assert "ethtool -S eth0: vf_rx_packets 111180 -> 116180 (+5000 in 1 s)" in eth0.evidence
    assert f"/sys/class/net/{vf_name}/master -> eth0; SLAVE flag set" in vf.evidence
    last = snap.guest.kernel_events[-1] if snap.guest else None
    assert last is not None and last.kind == "to-vf" and last.interface == "eth0"
    assert last.utc is not None and last.utc.isoformat() == "2026-11-20T08:00:03.300000+00:00"
    (f,) = _findings(snap, "GUEST-VF")
    assert f.status == "pass" and f.scope.name == "eth0"
    # the tuning rules read the VF leg (its queues carry the traffic), not the synthetic interface
    q = _findings(snap, "GUEST-QUEUES")
    assert [(x.scope.name, x.status) for x in q] == [(vf_name, "pass")]
    assert [x.status for x in _findings(snap, "GUEST-UDP-HASH")] == ["pass"]
    assert [x.status for x in _findings(snap, "GUEST-IRQ")] == ["pass"]
    # 0% steal on Hyper-V proves nothing (guest steal reporting there is not documented): unknown, not pass
    (st,) = _findings(snap, "GUEST-STEAL")
    assert st.status == "unknown" and "CPU Credits Remaining" in (st.collect or "")


def test_netvsc_with_idle_vf_and_moving_channels_is_synthetic(tmp_path: Path) -> None:
    gt.build_netvsc_vf(tmp_path, vf_moving=False)
    snap = collect(tmp_path)
    eth0 = _by_name(snap)["eth0"]
    assert (eth0.path, eth0.basis) == ("synthetic", "counters")
    (f,) = _findings(snap, "GUEST-VF")
    assert f.status == "warn" and "ip link set dev enP53091s1np0 up" in (f.fix or "")


def test_netvsc_alone_after_vf_removal_is_synthetic_with_the_log_line(tmp_path: Path) -> None:
    gt.build_netvsc_after_removal(tmp_path)
    snap = collect(tmp_path)
    eth0 = _by_name(snap)["eth0"]
    assert (eth0.path, eth0.basis, eth0.paired_vf) == ("synthetic", "topology", None)
    assert "the last switch message says the VF left" in eth0.summary
    assert any(
        e.startswith("kernel log 2026-11-28 03:12:45 UTC: hv_netvsc") and "switched from VF" in e for e in eth0.evidence
    )
    assert [e.kind for e in snap.guest.kernel_events][-3:] == ["from-vf", "other", "vf-removed"]  # type: ignore[union-attr]
    (f,) = _findings(snap, "GUEST-VF")
    assert f.status == "fail" and "iovkit doctor" in (f.fix or "")
    from rich.console import Console

    from iovkit.checks import render

    con = Console(record=True, width=200)
    render.render_datapath(snap.guest.model_dump(mode="json"), con)  # type: ignore[union-attr]
    shown = con.export_text()
    assert "2026-11-28 03:12:45 UTC (" in shown and "Data path switched from VF: enP53091s1np0" in shown


def test_kvm_virtio_guest_is_paravirtual_with_no_vf(tmp_path: Path) -> None:
    gt.build_kvm_virtio(tmp_path)
    snap = collect(tmp_path)
    eth0 = _by_name(snap)["eth0"]
    assert (eth0.kind, eth0.path, eth0.driver, eth0.paired_vf) == ("paravirtual", "paravirtual", "virtio_net", None)
    assert eth0.summary.startswith("paravirtual virtio, no VF")
    assert "VF-driven interfaces in this VM: none" in eth0.evidence
    assert eth0.irqs == {"37": "0-3", "38": "0-3", "39": "0-3"}
    (f,) = _findings(snap, "GUEST-VF")
    assert f.status == "fail"
    # one queue for 4 vCPUs and RPS off: the RPS rule names every queue's rps_cpus with the 4-CPU mask
    (r,) = _findings(snap, "GUEST-RPS")
    assert r.status == "warn" and "echo f | sudo tee $q/rps_cpus" in (r.fix or "")
    (c,) = _findings(snap, "GUEST-CONNTRACK", Policy.model_validate({"relay": {"port": 4321}}))
    assert c.status == "warn" and "--dport 4321 -j NOTRACK" in (c.fix or "")
    (s,) = _findings(snap, "GUEST-SOCKBUF")
    assert s.status == "warn" and "net.core.rmem_max=4194304" in (s.fix or "")
    (d,) = _findings(snap, "GUEST-VF-DRIVER")
    assert d.status == "warn" and "mana" not in d.message and "ixgbevf, iavf, igbvf" in d.message  # KVM families


@pytest.mark.parametrize("primary", [True, False], ids=["vf-primary", "standby-only"])
def test_net_failover(tmp_path: Path, primary: bool) -> None:
    gt.build_net_failover(tmp_path, primary=primary)
    snap = collect(tmp_path)
    i = _by_name(snap)
    ens10 = i["ens10"]
    assert ens10.kind == "failover" and ens10.failover_role == "master"
    assert i["ens10nsby"].failover_role == "standby" and i["ens10nsby"].master == "ens10"
    if primary:
        assert (ens10.path, ens10.basis, ens10.paired_vf) == ("vf", "counters", "ens11")
        assert i["ens11"].failover_role == "primary"
    else:
        assert (ens10.path, ens10.paired_vf) == ("paravirtual", None)
    assert [f.scope.name for f in _findings(snap, "GUEST-VF")] == ["ens10"]  # legs are not judged on their own
    assert [e.kind for e in snap.guest.kernel_events] == ["leg"] * (2 if primary else 1)  # type: ignore[union-attr]


def test_iavf_vf_passed_through(tmp_path: Path) -> None:
    gt.build_iavf_guest(tmp_path)
    snap = collect(tmp_path)
    vf = _by_name(snap)["enp6s0"]
    assert (vf.kind, vf.path, vf.basis, vf.pci_id) == ("vf", "vf", "driver", "8086:1889")
    assert [f.status for f in _findings(snap, "GUEST-VF")] == ["pass"]
    (h,) = _findings(snap, "GUEST-UDP-HASH")
    assert h.status == "warn" and h.fix == "sudo ethtool -N enp6s0 rx-flow-hash udp4 sdfn"
    (irq,) = _findings(snap, "GUEST-IRQ")
    assert irq.status == "warn" and "CPU 0" in irq.message
    (g,) = _findings(snap, "GUEST-GRO")
    assert g.status == "warn" and g.fix == "sudo ethtool -K enp6s0 rx-gro-list off"
    (q,) = _findings(snap, "GUEST-RPS", Policy.model_validate({"relay": {"workers": 8}}))
    assert q.status == "warn" and "queues/tx-N/xps_cpus" in (q.fix or "")  # 4 queues for 8 workers, RPS/XPS off
    # a VF carries this guest's traffic: LX-GUEST says so instead of "no VF"
    (lx,) = _findings(snap, "LX-GUEST")
    assert lx.status == "warn" and "already carries traffic on a VF" in lx.message


def test_steal_time_over_the_sample(tmp_path: Path) -> None:
    t = gt.build_kvm_virtio(tmp_path)
    t.capture("proc_stat.after", gt.proc_stat(1100, 550, 8330, 60))  # 60 of 540 jiffies stolen
    snap = collect(tmp_path)
    assert snap.guest is not None and snap.guest.steal_percent == pytest.approx(11.11, abs=0.01)
    (f,) = _findings(snap, "GUEST-STEAL")
    assert f.status == "fail" and "11.11% steal" in f.message


def test_archive_replays_the_guest_verdict(tmp_path: Path) -> None:
    """collect --archive keeps both counter reads, the ethtool captures and the kernel-log lines."""
    root = tmp_path / "root"
    gt.build_netvsc_vf(root)
    live = collect(root, archive=tmp_path / "guest.tar.gz")
    replayed = snapshot_from_archive(tmp_path / "guest.tar.gz")
    assert replayed.guest == live.guest
    import tarfile

    with tarfile.open(tmp_path / "guest.tar.gz") as tar:
        names = set(tar.getnames())
    for member in (
        "commands/ethtool_-S_eth0",
        "commands/ethtool_-S_eth0.after",
        "commands/ethtool_-l_enP53091s1np0",
        "commands/ethtool_-x_enP53091s1np0",
        "commands/dmesg_datapath",
        "root/proc/net/dev",
        "commands/proc_net_dev.after",
    ):
        assert member in names


def test_check_json_carries_the_datapath(cli: Any, tmp_path: Path) -> None:
    gt.build_kvm_virtio(tmp_path / "root")
    snap = collect(tmp_path / "root")
    p = tmp_path / "snap.json"
    p.write_text(snap.to_json())
    r = cli("check", "--from", str(p), "--format", "json")
    data = json.loads(r.out)
    (eth0,) = data["datapath"]["interfaces"]
    assert (eth0["name"], eth0["path"], eth0["driver"], eth0["paired_vf"]) == (
        "eth0",
        "paravirtual",
        "virtio_net",
        None,
    )
    r = cli("doctor", "--from", str(p), "--format", "json", "--no-examples")
    assert json.loads(r.out)["datapath"]["interfaces"][0]["path"] == "paravirtual"
    r = cli("doctor", "--from", str(p), "--no-examples")
    assert "eth0: PARAVIRTUAL" in r.out and "driver virtio_net" in r.out
    r = cli("collect", "--from", str(p), "-o", str(tmp_path / "again.json"))
    assert "data path: eth0 paravirtual (virtio_net): paravirtual virtio, no VF" in " ".join((r.out + r.err).split())


def test_this_machine_live() -> None:
    """This build machine is a KVM guest with virtio-net: paravirtual virtio, no VF, with the evidence."""
    snap = collect(Path("/"))
    if not snap.host.is_vm_guest or snap.guest is None:
        pytest.skip("not a VM guest")
    virtio = [i for i in snap.guest.routable() if i.driver == "virtio_net"]
    if not virtio:
        pytest.skip("no virtio-net interface here")
    for i in virtio:
        assert (i.path, i.paired_vf) == ("paravirtual", None) or i.lower
        assert any(e.endswith("virtio_net (PCI 1af4:0001)") or "virtio_net" in e for e in i.evidence)
        assert [c.counter for c in i.counters] == ["rx_packets", "tx_packets"]
        assert all(c.before is not None and c.after is not None for c in i.counters)
    assert snap.guest.sample_seconds == 1.0 and snap.guest.steal_percent is not None


def test_esxi_guest_vf_beside_a_vmxnet3_management_nic(tmp_path: Path) -> None:
    gt.build_esxi_guest(tmp_path)
    snap = collect(tmp_path)
    i = _by_name(snap)
    assert (i["ens160"].path, i["ens224"].path, i["ens224"].driver) == ("paravirtual", "vf", "ixgbevf")
    by_scope = {f.scope.name: f for f in _findings(snap, "GUEST-VF")}
    assert by_scope["ens224"].status == "pass"
    assert by_scope["ens160"].status == "info"  # a side path while another interface is on a VF, not a failure


def test_no_vf_fix_names_the_hosts_own_checks(tmp_path: Path) -> None:
    gt.build_kvm_virtio(tmp_path)
    (f,) = _findings(collect(tmp_path), "GUEST-VF")
    assert f.status == "fail" and "LX-VFS and LX-VF-BOUND say why this VM gets no VF" in (f.fix or "")


def test_bond_of_two_vfs_is_on_the_vf_and_a_docker_bridge_is_no_path(tmp_path: Path) -> None:
    gt.build_bond_of_vfs(tmp_path)
    snap = collect(tmp_path)
    assert snap.guest is not None
    assert [i.name for i in snap.guest.routable()] == ["bond0"]  # docker0 over a veth carries no path of its own
    bond = _by_name(snap)["bond0"]
    assert (bond.path, bond.basis, bond.paired_vf) == ("vf", "counters", "enp6s0")
    assert [f.status for f in _findings(snap, "GUEST-VF")] == ["pass"]


def test_notrack_rule_numa_nodes_and_a_big_enough_buffer(tmp_path: Path) -> None:
    t = gt.build_iavf_guest(tmp_path)
    t.capture(
        "nft_list_ruleset",
        "table inet raw {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n"
        "\t\tudp dport 7777 notrack\n\t}\n}\n",
    )
    (tmp_path / "sys/devices/system/node/node1").mkdir(parents=True)
    t.write("proc/sys/net/core/rmem_max", "8388608\n")
    snap = collect(tmp_path)
    (c,) = _findings(snap, "GUEST-CONNTRACK")
    assert c.status == "pass" and c.message == "UDP port 7777 is NOTRACK"
    (n,) = _findings(snap, "GUEST-NUMA")
    assert n.status == "warn" and n.fix == "numactl --cpunodebind=0 --membind=0 iovkit relay ..."
    assert "CPUs 0-7" in n.message
    (b,) = _findings(snap, "GUEST-SOCKBUF")
    assert b.status == "pass"
