"""GUEST-* tuning rules, queues and interrupts: can this guest carry the relay's packet rate on its path?

Each rule reads `snap.guest` (filled by iovkit.sources.guest) and the relay's expectations from the policy
(`relay: {port, rcvbuf, workers}`), gives its evidence and the exact command. Facts from guest.md §4/§5.
A guest snapshot without those facts (an older snapshot, a pasted bundle) gets unknowns naming the command
that collects the fact. The stack, CPU and host-wide rules are in guest_stack (registered after these).
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    Scope,
    Status,
    current_rule,
    host_scope,
    not_applicable,
    ps,
    rule,
    sh,
    unknown,
)
from iovkit.policy import Policy, RelayExpectations
from iovkit.snapshot import GuestFacts, GuestInterface, HostSnapshot

NO_GUEST = "no guest facts in this snapshot (collect inside the VM: iovkit collect -o guest.json)"
VF_FAMILIES = {
    "hyperv": ("mlx4_core", "mlx5_core", "mana"),  # Azure/Hyper-V hosts: Mellanox CX-3/4/5 or MANA (guest.md §1.7)
    "other": ("mlx5_core", "ixgbevf", "iavf", "igbvf", "mlx4_core"),
}


def _relay(policy: Policy | None) -> RelayExpectations:
    return policy.relay if policy is not None else RelayExpectations()


def _targets(g: GuestFacts) -> Iterator[tuple[int, GuestInterface]]:
    """The interfaces whose queues carry the traffic: the VF leg when the path is the VF, else the interface."""
    for i in g.routable():
        if i.operstate not in (None, "up", "unknown", "Up"):
            continue
        target = g.interface(i.paired_vf) if i.path == "vf" and i.paired_vf else i
        target = target or i
        yield g.interfaces.index(target), target


def _guest(snap: HostSnapshot, rid: str) -> GuestFacts | Finding:
    if snap.guest is None:
        return unknown(rid, host_scope(snap), ["guest"], NO_GUEST, collect="iovkit collect -o guest.json")
    return snap.guest


def _on_hyperv(snap: HostSnapshot, g: GuestFacts) -> bool:
    return any(i.kind == "synthetic" for i in g.interfaces) or (snap.host.guest_of or "").lower() in (
        "hyper-v",
        "hyperv",
    )


def _linux_only(snap: HostSnapshot, rid: str, g: GuestFacts) -> Finding | None:
    if g.os != "linux":
        return not_applicable(rid, host_scope(snap), "a Linux guest setting (this is a Windows guest)")
    return None


def _linux_guest(snap: HostSnapshot, rid: str) -> GuestFacts | Finding:
    """The guest's facts for a Linux-only rule, or the finding that ends the rule (no guest, a Windows guest)."""
    g = _guest(snap, rid)
    if isinstance(g, Finding):
        return g
    return _linux_only(snap, rid, g) or g


def _want_queues(g: GuestFacts, policy: Policy | None) -> int | None:
    return _relay(policy).workers or g.vcpus


def _cpu_mask(n: int) -> str:
    return format((1 << n) - 1, "x")


@rule(
    "GUEST-VF-DRIVER",
    "The guest carries a VF driver for the host's NIC family",
    platform="guest",
    severity="high",
    rationale="Without the VF driver the VF never binds and traffic stays synthetic while the portal shows "
    "Accelerated Networking enabled; a VM can land on a Mellanox or a MANA host, so carry all of them.",
    remediation="Shell: install the distribution's extra kernel modules and `sudo modprobe -a <missing>`.",
    impact="Without the VF driver the guest cannot use the VF the host gives it: traffic stays synthetic.",
)
def vf_driver(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    if g.os == "windows":
        yield not_applicable(rid, host_scope(snap), "Windows guest: GUEST-VF shows whether a VF adapter appeared")
        return
    on_hyperv = _on_hyperv(snap, g)
    family = VF_FAMILIES["hyperv" if on_hyperv else "other"]
    scope = host_scope(snap)
    ev: Ev = {f"guest.vf_drivers.{m}": g.vf_drivers.get(m) for m in family}
    if not g.vf_drivers:
        yield unknown(
            rid,
            scope,
            ["guest.vf_drivers"],
            "which VF drivers this kernel carries was not collected",
            collect="ls /lib/modules/$(uname -r)/kernel/drivers/net/ethernet/{mellanox/*,microsoft/mana,intel/*vf}",
        )
        return
    bound = [i.driver for i in g.interfaces if i.kind == "vf"]
    missing = [m for m in family if g.vf_drivers.get(m) == "missing"]
    if not missing:
        yield Finding(rid, "pass", scope, f"VF drivers present: {', '.join(family)}", ev)
        return
    pkg = "linux-modules-extra-$(uname -r)" if "ubuntu" in (snap.host.os_caption or "").lower() else "kernel-modules"
    fix = f"sudo apt-get install {pkg} && sudo modprobe -a {' '.join(missing)}"
    if "ubuntu" not in (snap.host.os_caption or "").lower():
        fix = f"sudo dnf install {pkg} && sudo modprobe -a {' '.join(missing)}"
    status: Status = "warn" if bound or len(missing) < len(family) else "fail"
    where = "Hyper-V/Azure" if on_hyperv else "SR-IOV"
    yield Finding(
        rid,
        status,
        scope,
        f"this kernel lacks {', '.join(missing)}: on a {where} host with that NIC family the VF would never bind",
        ev,
        fix=fix,
    )


@rule(
    "GUEST-QUEUES",
    "RX queues match the vCPUs the relay uses (ethtool -l)",
    platform="guest",
    severity="medium",
    rationale="One RX queue per CPU (up to the NIC's maximum) spreads receive work; fewer queues pile every "
    "packet's softirq on a few vCPUs (kernel scaling.rst).",
    remediation="Shell: `sudo ethtool -L <if> combined <n>` (n = min(vCPUs or relay workers, the maximum)).",
    impact="Fewer RX queues than relay workers leave cores idle while one queue's core saturates.",
)
def queues(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    want = _want_queues(g, policy)
    windows = g.os == "windows"
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        ev: Ev = {
            f"guest.interfaces[{k}].channels": i.channels,
            f"guest.interfaces[{k}].channels_max": i.channels_max,
            "guest.vcpus": g.vcpus,
        }
        if i.channels is None or want is None:
            yield unknown(
                rid,
                scope,
                [f"guest.interfaces[{k}].channels", "guest.vcpus"],
                collect=(
                    f"Get-NetAdapterRss -Name {ps(i.name)} | Format-List Name, NumberOfReceiveQueues"
                    if windows
                    else f"ethtool -l {sh(i.name)}"
                ),
            )
            continue
        goal = min(want, i.channels_max or want)
        if i.channels >= goal:
            yield Finding(rid, "pass", scope, f"{i.channels} queue(s) for {want} vCPU/worker(s)", ev)
        else:
            yield Finding(
                rid,
                "warn",
                scope,
                f"{i.channels} queue(s) in use, {i.channels_max} possible, {want} vCPU/worker(s)",
                ev,
                fix=(
                    f"Set-NetAdapterRss -Name {ps(i.name)} -NumberOfReceiveQueues {goal}"
                    if windows
                    else f"sudo ethtool -L {sh(i.name)} combined {goal}"
                ),
            )


@rule(
    "GUEST-RSS",
    "RSS is on and spreads over every queue (ethtool -x / Get-NetAdapterRss)",
    platform="guest",
    severity="medium",
    rationale="Windows guests may have RSS off (Azure's optimisation guide); an indirection table that points "
    "at fewer queues than exist leaves queues idle.",
    remediation="Shell: `sudo ethtool -X <if> equal <n>`; Windows: `Enable-NetAdapterRss -Name <adapter>`.",
    impact="Without RSS over every queue one core takes all receive work and saturates first.",
)
def rss(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    if g.os == "windows":
        if not g.rss_windows:
            yield unknown(
                rid, host_scope(snap), ["guest.rss_windows"], collect="Get-NetAdapterRss | Format-List Name, Enabled"
            )
        for name, on in g.rss_windows.items():
            ev: Ev = {f"guest.rss_windows.{name}": on}
            if on:
                yield Finding(rid, "pass", Scope("guest-nic", name), "RSS enabled", ev)
            else:
                yield Finding(
                    rid,
                    "fail",
                    Scope("guest-nic", name),
                    "RSS disabled",
                    ev,
                    fix=f"Enable-NetAdapterRss -Name {ps(name)}",
                )
        return
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        ev = {
            f"guest.interfaces[{k}].rss_queues_used": i.rss_queues_used,
            f"guest.interfaces[{k}].channels": i.channels,
        }
        if i.channels is not None and i.channels <= 1:
            yield not_applicable(rid, scope, f"{i.name} has one queue: RSS has nothing to spread (see GUEST-RPS)")
        elif i.rss_queues_used is None:
            yield unknown(rid, scope, [f"guest.interfaces[{k}].rss_queues_used"], collect=f"ethtool -x {sh(i.name)}")
        elif i.channels is not None and len(i.rss_queues_used) < i.channels:
            yield Finding(
                rid,
                "warn",
                scope,
                f"the indirection table uses {len(i.rss_queues_used)} of {i.channels} queues",
                ev,
                fix=f"sudo ethtool -X {sh(i.name)} equal {i.channels}",
            )
        else:
            yield Finding(rid, "pass", scope, f"RSS spreads over {len(i.rss_queues_used)} queue(s)", ev)


@rule(
    "GUEST-IRQ",
    "The NIC's interrupts are spread over CPUs (IRQ affinity, irqbalance)",
    platform="guest",
    severity="low",
    rationale="Every queue's interrupt on one CPU makes that CPU the bottleneck; irqbalance overrides manual "
    "affinity, so stop it before pinning (scaling.rst). netvsc channels are VMBus, not Linux IRQs.",
    remediation="Shell: `sudo systemctl enable --now irqbalance`, or stop it and write /proc/irq/N/smp_affinity_list.",
    impact="All NIC interrupts on one CPU make that CPU the guest's bottleneck.",
)
def irq(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        ev: Ev = {f"guest.interfaces[{k}].irqs": i.irqs, "guest.irqbalance_running": g.irqbalance_running}
        if i.kind == "synthetic":
            yield not_applicable(
                rid, scope, "netvsc channel interrupts are VMBus channels: /sys/bus/vmbus/devices/*/channels/*/cpu"
            )
            continue
        if not i.irqs:
            yield unknown(
                rid,
                scope,
                [f"guest.interfaces[{k}].irqs"],
                collect=f"grep -E '{i.name}|{i.pci_id or ''}' /proc/interrupts",
            )
            continue
        cpus = set(i.irqs.values())
        single = all(c.isdigit() for c in cpus) and len(cpus) == 1
        if single and (g.vcpus or 1) > 1 and len(i.irqs) > 1:
            fix = (
                "sudo systemctl enable --now irqbalance"
                if g.irqbalance_running is False
                else (
                    "sudo systemctl stop irqbalance; then for each queue IRQ N: "
                    "echo <cpu> | sudo tee /proc/irq/N/smp_affinity_list"
                )
            )
            yield Finding(rid, "warn", scope, f"all {len(i.irqs)} IRQs of {i.name} go to CPU {cpus.pop()}", ev, fix=fix)
        else:
            how = "irqbalance runs" if g.irqbalance_running else "irqbalance is not running"
            yield Finding(rid, "pass", scope, f"{len(i.irqs)} IRQ(s), affinity {', '.join(sorted(cpus))}; {how}", ev)


@rule(
    "GUEST-RPS",
    "RPS/XPS spread the work when the NIC has fewer queues than the relay needs",
    platform="guest",
    severity="medium",
    rationale="VFs have few queues (igbvf 1, ixgbevf 2, iavf 4); with fewer queues than workers RPS moves "
    "protocol work to other CPUs, XPS maps each CPU to one TX queue (scaling.rst).",
    remediation="Shell: a CPU mask into /sys/class/net/<if>/queues/rx-*/rps_cpus; `net.core.rps_sock_flow_entries`.",
    impact="With fewer queues than workers and no RPS, receive work piles on the queues' cores.",
)
def rps(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    want = _want_queues(g, policy)
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        have = i.channels or i.rx_queues
        ev: Ev = {
            f"guest.interfaces[{k}].channels": i.channels,
            f"guest.interfaces[{k}].rx_queues": i.rx_queues,
            f"guest.interfaces[{k}].rps_queues": i.rps_queues,
            f"guest.interfaces[{k}].xps_queues": i.xps_queues,
            "guest.vcpus": g.vcpus,
        }
        if have is None or want is None or i.rps_queues is None:
            yield unknown(
                rid,
                scope,
                [f"guest.interfaces[{k}].rps_queues"],
                collect=f"grep . /sys/class/net/{i.name}/queues/*/rps_cpus",
            )
        elif have >= want:
            yield not_applicable(rid, scope, f"{have} queue(s) for {want} vCPU/worker(s): RPS not needed")
        elif i.rps_queues == 0:
            mask = _cpu_mask(g.vcpus or want)
            yield Finding(
                rid,
                "warn",
                scope,
                f"{have} RX queue(s) for {want} vCPU/worker(s) and RPS is off",
                ev,
                fix=f"for q in /sys/class/net/{i.name}/queues/rx-*; do echo {mask} | sudo tee $q/rps_cpus; done; "
                "sudo sysctl -w net.core.rps_sock_flow_entries=32768"
                + (
                    "; XPS, each CPU to one TX queue: "
                    f"echo <cpu mask> | sudo tee /sys/class/net/{i.name}/queues/tx-N/xps_cpus"
                    if have > 1 and not i.xps_queues
                    else ""
                ),
            )
        else:
            yield Finding(rid, "pass", scope, f"RPS on {i.rps_queues} of {have} RX queue(s)", ev)
