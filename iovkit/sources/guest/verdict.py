"""Which path each guest interface's traffic takes now: a pure judgement over facts the readers gathered.

Order of proof (guest.md §1.3, §2.2, §6): counters that rose between two reads beat the pairing in sysfs, which
beats the last "Data path switched" line of the kernel log, which beats the driver name alone. A fact that was
not read decides nothing: with no counters and no log line a paired netvsc says "unknown", not "vf".
"""

from __future__ import annotations

from iovkit.snapshot import CounterDelta, GuestFacts, GuestInterface, KernelEvent

# netvsc's ethtool -S counters (netvsc_drv.c string tables): the VF's share, and the VMBus channels' own.
VF_COUNTERS = ("vf_rx_packets", "vf_tx_packets")


def rose(counters: list[CounterDelta], names: tuple[str, ...] | None = None, iface: str | None = None) -> int | None:
    """Sum of the deltas of the chosen counters; None when none of them was read twice."""
    picked = [
        c
        for c in counters
        if (names is None or c.counter in names or any(c.counter.endswith(n) for n in names))
        and (iface is None or c.interface == iface)
        and c.delta is not None
    ]
    return None if not picked else sum(max(c.delta or 0, 0) for c in picked)


def describe(c: CounterDelta) -> str:
    per = f" in {c.seconds:g} s" if c.seconds else ""
    if c.delta is None:
        return f"{c.source}: {c.counter} {c.before if c.before is not None else '?'} (read once)"
    return f"{c.source}: {c.counter} {c.before} -> {c.after} ({c.delta:+d}{per})"


def last_switch(events: list[KernelEvent], iface: str) -> KernelEvent | None:
    """The newest to-vf / from-vf / switch-failed message about this netvsc interface."""
    hits = [e for e in events if e.interface == iface and e.kind in ("to-vf", "from-vf", "switch-failed")]
    return hits[-1] if hits else None


def _when(e: KernelEvent) -> str:
    if e.utc is not None:
        return e.utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return e.time or "time not printed"


def judge_netvsc(i: GuestInterface, facts: GuestFacts) -> None:
    """hv_netvsc: synthetic, with or without a VF enslaved under it (transparent bonding, guest.md §1)."""
    vf = facts.interface(i.paired_vf) if i.paired_vf else None
    ev = last_switch(facts.kernel_events, i.name)
    if ev is not None:
        i.evidence.append(f"kernel log {_when(ev)}: {ev.message}")
    if vf is None:
        i.path, i.basis = "synthetic", "topology"
        gone = " (the last switch message says the VF left)" if ev is not None and ev.kind == "from-vf" else ""
        i.summary = f"synthetic ({i.driver}), no VF paired{gone}: traffic crosses VMBus and the host's vSwitch"
        return
    vf_moved = rose(i.counters, VF_COUNTERS)  # netvsc's vf_* counters (Linux)
    if vf_moved is None:  # else the VF's own counters (Linux /proc/net/dev, Windows Get-NetAdapterStatistics)
        vf_moved = rose(vf.counters, None, vf.name)
    syn_moved = _synthetic_queues(i.counters)  # netvsc's VMBus channels (Linux)
    if syn_moved is None and facts.os == "windows":
        syn_moved = rose(i.counters, None, i.name)
    if vf_moved:
        i.path, i.basis = "vf", "counters"
        i.summary = f"VF {vf.name} ({vf.driver or '?'}) carries traffic: its counters rose during the sample"
    elif vf_moved == 0 and syn_moved:
        i.path, i.basis = "synthetic", "counters"
        i.summary = (
            f"VF {vf.name} is paired but idle while the synthetic channels moved packets: traffic is on the "
            "synthetic path"
        )
    elif ev is not None and ev.kind in ("to-vf", "from-vf"):
        i.path, i.basis = ("vf" if ev.kind == "to-vf" else "synthetic"), "kernel-log"
        i.summary = f"no traffic during the sample; the last switch message ({_when(ev)}) says {ev.message.strip()}"
    else:
        i.path, i.basis = "unknown", "none"
        i.summary = f"VF {vf.name} is paired, but no traffic moved during the sample and no switch message was read"


def _synthetic_queues(counters: list[CounterDelta]) -> int | None:
    picked = [
        c
        for c in counters
        if c.counter.startswith(("rx_queue_", "tx_queue_")) and c.counter.endswith("_packets") and c.delta is not None
    ]
    return None if not picked else sum(max(c.delta or 0, 0) for c in picked)


def judge_failover(i: GuestInterface, facts: GuestFacts) -> None:
    """net_failover master: the primary (VF) leg carries traffic when present and running (guest.md §2.2)."""
    legs = [facts.interface(n) for n in i.lower]
    primary = next((g for g in legs if g is not None and g.failover_role == "primary"), None)
    standby = next((g for g in legs if g is not None and g.failover_role == "standby"), None)
    i.paired_vf = primary.name if primary else None
    p_moved = rose(primary.counters, None, primary.name) if primary else None
    s_moved = rose(standby.counters, None, standby.name) if standby else None
    if primary is None:
        i.path, i.basis = "paravirtual", "topology"
        i.summary = "net_failover without a primary (VF) leg: traffic uses the virtio standby leg"
    elif p_moved:
        i.path, i.basis = "vf", "counters"
        i.summary = f"primary VF leg {primary.name} ({primary.driver or '?'}) carries traffic (its counters rose)"
    elif p_moved == 0 and s_moved:
        i.path, i.basis = "paravirtual", "counters"
        i.summary = f"the standby virtio leg {standby.name if standby else '?'} moved packets, the VF leg none"
    elif primary.operstate in ("up", "Up"):
        i.path, i.basis = "vf", "topology"
        i.summary = f"primary VF leg {primary.name} is up (net_failover sends on it); no traffic during the sample"
    else:
        i.path, i.basis = "paravirtual", "topology"
        i.summary = f"primary VF leg {primary.name} is {primary.operstate or 'not running'}: traffic uses standby"


def judge_master(i: GuestInterface, facts: GuestFacts) -> None:
    """A bond or team over legs (VFs from two PFs, say): the path of the legs that moved packets."""
    legs = [g for g in (facts.interface(n) for n in i.lower) if g is not None]
    moving = [g for g in legs if rose(g.counters, None, g.name)]
    carriers = moving or legs
    kinds = {g.kind for g in carriers}
    i.paired_vf = next((g.name for g in carriers if g.kind == "vf"), None)
    if "vf" in kinds:
        i.path, i.basis = "vf", "counters" if moving else "topology"
    elif kinds <= {"paravirtual"} and kinds:
        i.path, i.basis = "paravirtual", "counters" if moving else "topology"
    elif kinds <= {"synthetic"} and kinds:
        i.path, i.basis = "synthetic", "counters" if moving else "topology"
    else:
        i.path, i.basis = "unknown", "none"
    names = ", ".join(f"{g.name} ({g.kind})" for g in carriers) or "none"
    i.summary = f"a master over {names}" + (": those moved packets" if moving else "")


def judge(facts: GuestFacts) -> GuestFacts:
    """Fill path/basis/summary of every interface (legs first: masters read their legs' counters)."""
    for i in facts.interfaces:
        for c in i.counters:
            i.evidence.append(describe(c))
    for i in facts.interfaces:
        if i.kind == "synthetic":
            judge_netvsc(i, facts)
        elif i.kind == "failover":
            judge_failover(i, facts)
        elif i.driver is None and i.lower:
            judge_master(i, facts)
        elif i.kind == "vf":
            i.path, i.basis = "vf", "driver"
            if i.master:
                i.summary = f"VF leg of {i.master}"
            else:
                i.summary = f"a VF ({i.driver}) passed straight to this VM: all its traffic bypasses the vSwitch"
        elif i.kind == "paravirtual":
            i.path, i.basis = "paravirtual", "driver"
            flavour = (i.driver or "").removesuffix("_net").replace("-netfront", "")
            if i.master:
                i.summary = f"{flavour} standby leg of {i.master}"
            else:
                i.summary = f"paravirtual {flavour}, no VF: traffic crosses the hypervisor's virtual switch"
        elif i.kind == "emulated":
            i.path, i.basis = "emulated", "driver"
            i.summary = f"an emulated NIC ({i.driver}): the slowest path, every packet is emulated by the host"
        else:
            i.path, i.basis = "unknown", "none"
            i.summary = f"driver {i.driver or 'unknown'}: not a path iovkit knows"
    return facts
