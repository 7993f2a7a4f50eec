"""The in-guest rule: does this VM see a VF beside its synthetic adapter, and does traffic flow over it?

Linux on Hyper-V: hv_netvsc pairs with the VF netdev and counts vf_rx_packets / vf_tx_packets (ethtool -S).
Windows: a "Virtual Function" adapter appears in Get-NetAdapter. Without a VF the VM is still on the switch,
whatever the host says.
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import Ev, Finding, Scope, current_rule, host_scope, ps, rule, sh, skip
from iovkit.policy import Policy
from iovkit.snapshot import GuestInterface, GuestNic, HostSnapshot

# Drivers that only ever drive a VF (a passthrough VF shows as a PCI NIC inside a guest).
VF_DRIVERS = frozenset({"iavf", "i40evf", "ixgbevf", "igbvf", "ice_vf", "bnxt_en_vf", "mlx4_vf", "mana"})

HOST_FIX = "iovkit doctor   # run on the hypervisor host: HV-VF-ACTIVE says why this VM gets no VF"


def _counters_fix(snap: HostSnapshot, syn: GuestNic, vf: GuestNic) -> str:
    """Where to see the VF's packet counters: ethtool on Linux (netvsc's vf_* stats), the VF adapter on Windows."""
    if snap.host.platform == "hyperv":
        return f"Get-NetAdapterStatistics -Name {ps(vf.name)} | Format-List Name, *UnicastPackets"
    return f"ethtool -S {sh(syn.name)} | grep vf_"


def _sample_fix(i: GuestInterface, windows: bool) -> str:
    """The two reads that show which path moves packets, as the user would type them."""
    if windows:
        name = ps(i.paired_vf or i.name)
        return (
            f"Get-NetAdapterStatistics -Name {name} | Format-List Name, *UnicastPackets; Start-Sleep 1; "
            f"Get-NetAdapterStatistics -Name {name} | Format-List Name, *UnicastPackets"
        )
    if i.kind == "synthetic":
        return (
            f"ethtool -S {sh(i.name)} | grep -E ' vf_|queue_.*packets'; sleep 1; ethtool -S {sh(i.name)} | grep ' vf_'"
        )
    return f"ip -s link show {sh(i.name)}; sleep 1; ip -s link show {sh(i.name)}"


def _datapath_findings(snap: HostSnapshot) -> Iterator[Finding]:
    """One finding per routable interface, from the data-path verdict the guest reader made."""
    rid = current_rule()  # called from the GUEST-VF rule
    g = snap.guest
    assert g is not None
    windows = g.os == "windows"
    on_vf = g.on_vf()
    for k, i in enumerate(g.interfaces):
        if i.master is not None:
            continue
        scope = Scope("guest-nic", i.name)
        ev: Ev = {
            f"guest.interfaces[{k}].path": i.path,
            f"guest.interfaces[{k}].driver": i.driver,
            f"guest.interfaces[{k}].paired_vf": i.paired_vf,
            f"guest.interfaces[{k}].basis": i.basis,
            f"guest.interfaces[{k}].evidence": i.evidence,
        }
        if i.path == "vf":
            yield Finding(rid, "pass", scope, f"{i.name}: {i.summary}", ev)
        elif i.path == "unknown":
            yield Finding(
                rid,
                "unknown",
                scope,
                f"{i.name}: {i.summary}; send traffic and read the counters twice",
                ev,
                missing=[f"guest.interfaces[{k}].counters"],
                collect=_sample_fix(i, windows),
            )
        elif i.paired_vf:  # a VF is there but the traffic is not on it
            yield Finding(rid, "warn", scope, f"{i.name}: {i.summary}", ev, fix=_idle_vf_fix(snap, i, windows))
        elif on_vf:  # another interface carries traffic on a VF: this one is a side path (management, ...)
            yield Finding(rid, "info", scope, f"{i.name}: {i.summary} (another interface is on a VF)", ev)
        else:
            yield Finding(rid, "fail", scope, f"{i.name}: {i.summary}", ev, fix=_host_fix(snap))


def _host_fix(snap: HostSnapshot) -> str:
    """Where to find out why this VM has no VF: the hypervisor host's own checks, named for its platform."""
    on = (snap.host.guest_of or "").lower()
    if "vmware" in on or "esx" in on:
        why = "ESX-VFS-ACTIVE and ESX-VM-ADAPTER say"
    elif "kvm" in on or "qemu" in on:
        why = "LX-VFS and LX-VF-BOUND say"
    elif "hyper-v" in on or "hyperv" in on:
        why = "HV-VF-ACTIVE says"
    else:
        why = "its checks say"
    return f"iovkit doctor   # run on the hypervisor host: {why} why this VM gets no VF"


def _idle_vf_fix(snap: HostSnapshot, i: GuestInterface, windows: bool) -> str:
    if windows:
        return f"Enable-NetAdapter -Name {ps(i.paired_vf or '')}; then: {_sample_fix(i, True)}"
    vf = sh(i.paired_vf or "")
    return f"sudo ip link set dev {vf} up; then: {_sample_fix(i, False)}"


def _pair(s: GuestNic, vfs: list[GuestNic]) -> GuestNic | None:
    return next((v for v in vfs if v.paired_with == s.name or (s.paired_with and s.paired_with == v.name)), None)


@rule(
    "GUEST-VF",
    "This VM sees a VF beside its synthetic adapter, and traffic flows over it",
    platform="guest",
    severity="high",
    rationale="Only a VF in the guest, carrying the traffic, takes the VM off the host's virtual switch.",
    remediation=(
        "On the host: `iovkit doctor` there (HV-VF-ACTIVE says why). In the guest: the VF driver; then read "
        "the VF counters (`ethtool -S <synthetic nic> | grep vf_`, or `Get-NetAdapterStatistics` on Windows)."
    ),
    impact=(
        "The guest's traffic still crosses the host's virtual switch: the bottleneck SR-IOV removes is still there."
    ),
)
def guest_vf(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if snap.guest is not None and snap.guest.interfaces:
        yield from _datapath_findings(snap)
        return
    syn = [(i, g) for i, g in enumerate(snap.guest_nics) if not g.is_vf]
    vfs = [g for g in snap.guest_nics if g.is_vf]
    if not snap.guest_nics:
        direct = [(i, n) for i, n in enumerate(snap.nics) if n.driver in VF_DRIVERS]
        for i, n in direct:
            yield Finding(
                rid,
                "pass",
                Scope("nic", n.name),
                f"a VF ({n.driver}) is passed straight to this VM",
                {f"nics[{i}].driver": n.driver},
            )
        if not direct:
            if any("guest" in e.source.lower() or "ethtool" in e.source.lower() for e in snap.errors):
                yield skip(rid, host_scope(snap), ["guest_nics"])
            else:
                yield Finding(
                    rid,
                    "fail",
                    host_scope(snap),
                    "no VF in this VM: its traffic goes through the host's virtual switch",
                    {"guest_nics": [], "nics": [n.name for n in snap.nics]},
                    fix=HOST_FIX,
                )
        return
    for i, s in syn:
        scope = Scope("guest-nic", s.name)
        vf = _pair(s, vfs)
        ev: Ev = {
            f"guest_nics[{i}].driver": s.driver,
            f"guest_nics[{i}].paired_with": s.paired_with,
            f"guest_nics[{i}].vf_rx_packets": s.vf_rx_packets,
            f"guest_nics[{i}].vf_tx_packets": s.vf_tx_packets,
        }
        if vf is None:
            yield Finding(
                rid,
                "fail",
                scope,
                f"{s.name} ({s.driver or 'synthetic'}) has no VF beside it: traffic stays on the host's virtual switch",
                ev,
                fix=HOST_FIX,
            )
            continue
        ev["vf"] = vf.name
        rx = s.vf_rx_packets if s.vf_rx_packets is not None else vf.vf_rx_packets
        tx = s.vf_tx_packets if s.vf_tx_packets is not None else vf.vf_tx_packets
        if rx is None and tx is None:
            yield Finding(
                rid,
                "warn",
                scope,
                f"VF {vf.name} present; its traffic counters were not collected",
                ev,
                missing=[f"guest_nics[{i}].vf_rx_packets", f"guest_nics[{i}].vf_tx_packets"],
                fix=_counters_fix(snap, s, vf),
            )
        elif (rx or 0) + (tx or 0) == 0:
            yield Finding(
                rid,
                "warn",
                scope,
                f"VF {vf.name} present but vf_rx_packets/vf_tx_packets are 0: no "
                "traffic has used it yet (send some, then re-run)",
                ev,
                fix=_counters_fix(snap, s, vf),
            )
        else:
            yield Finding(
                rid, "pass", scope, f"VF {vf.name} carries traffic (vf_rx_packets {rx}, vf_tx_packets {tx})", ev
            )
    if not syn:
        for v in vfs:
            yield Finding(
                rid,
                "pass",
                Scope("guest-nic", v.name),
                f"VF adapter {v.name} present",
                {"guest_nic": v.name, "driver": v.driver},
            )


# The tuning rules register after GUEST-VF (report order: the path first, then what limits it).
from iovkit.checks import guest_tuning  # noqa: E402,F401,I001  (queues and interrupts first)
from iovkit.checks import guest_stack  # noqa: E402,F401
