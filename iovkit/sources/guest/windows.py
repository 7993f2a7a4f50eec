"""Inside a Windows VM: the data-path verdict from the collector bundle's guest part.

Sources (collect.ps1's `Invoke-GuestSources`, run when the machine is not a Hyper-V host): Get-NetAdapter (already
collected), `Guest-NetAdapterStatistics` (every adapter's unicast packet counters read twice, one second apart) and
`Guest-NetAdapterHardwareInfo` (LocationInformationString: Get-NetView's VF test), plus Get-NetAdapterRss.
The VF adapter and the synthetic one share a MAC (guest.md §3.3); the VF's counters rising means it carries traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from iovkit.snapshot import CounterDelta, GuestFacts, GuestInterface
from iovkit.sources.guest.verdict import judge

GUEST_SOURCES: tuple[str, ...] = ("Guest-NetAdapterStatistics", "Guest-NetAdapterHardwareInfo")
SYNTHETIC = "Microsoft Hyper-V Network Adapter"  # guest.md §3.2 (also "... #2")
VF_NEEDLES = ("virtual function", "virtual ethernet adapter", "azure network adapter", "adaptive virtual function")
PARAVIRTUAL_NEEDLES = ("virtio ethernet", "vmxnet3", "xen net", "aws pv network")
EMULATED_NEEDLES = ("pro/1000 mt", "82574l", "21140", "(emulated)", "rtl8139", "e1000")
IGNORED_NEEDLES = ("wan miniport", "loopback", "kernel debug", "bluetooth", "wi-fi direct", "hyper-v virtual ethernet")
COUNTERS = ("ReceivedUnicastPackets", "SentUnicastPackets")

Records = Mapping[str, Sequence[Mapping[str, Any]]]


def _get(rec: Mapping[str, Any], name: str) -> Any:
    """PowerShell property names are case-insensitive."""
    low = name.lower()
    return next((v for k, v in rec.items() if str(k).lower() == low), None)


def _str(rec: Mapping[str, Any], name: str) -> str | None:
    v = _get(rec, name)
    return None if v is None or str(v).strip() == "" else str(v).strip()


def _int(v: Any) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if str(v).strip().lower() in ("true", "1"):
        return True
    if str(v).strip().lower() in ("false", "0"):
        return False
    return None


def _mac(v: str | None) -> str | None:
    return v.replace("-", "").replace(":", "").lower() if v else None


def _kind(desc: str) -> str | None:
    d = desc.lower()
    if any(n in d for n in IGNORED_NEEDLES):
        return None
    if desc.startswith(SYNTHETIC):
        return "synthetic"
    if any(n in d for n in VF_NEEDLES):
        return "vf"
    if any(n in d for n in PARAVIRTUAL_NEEDLES):
        return "paravirtual"
    if any(n in d for n in EMULATED_NEEDLES):
        return "emulated"
    return "other"


def windows_guest(records: Records) -> GuestFacts | None:
    """The guest facts of a Windows VM's bundle; None when it holds no adapter listing."""
    adapters = records.get("Get-NetAdapter") or []
    if not adapters:
        return None
    stats = records.get("Guest-NetAdapterStatistics") or []
    reads: dict[tuple[str, int], Mapping[str, Any]] = {}
    for r in stats:
        name, read = _str(r, "Name"), _int(_get(r, "Read"))
        if name and read in (1, 2):
            reads[(name, read)] = r
    hw = {n: r for r in records.get("Guest-NetAdapterHardwareInfo") or [] if (n := _str(r, "Name"))}
    ifaces: list[GuestInterface] = []
    macs: dict[str, str | None] = {}
    for r in adapters:
        name, desc = _str(r, "Name"), _str(r, "InterfaceDescription") or ""
        kind = _kind(desc) if name else None
        if name is None or kind is None:
            continue
        driver = {"synthetic": "netvsc"}.get(kind) or _str(r, "DriverFileName") or desc
        i = GuestInterface(name=name, driver=driver, kind=kind, mac=_str(r, "MacAddress"))
        status = _str(r, "Status")
        i.operstate = status.lower() if status else None
        i.evidence.append(f"Get-NetAdapter -Name '{name}': InterfaceDescription '{desc}', MacAddress {i.mac}")
        loc = _str(hw.get(name, {}), "LocationInformationString")
        if loc:
            i.evidence.append(f"Get-NetAdapterHardwareInfo: LocationInformationString '{loc}'")
        i.numa_node = _int(_get(hw.get(name, {}), "NumaNode"))
        for counter in COUNTERS:
            a, b = reads.get((name, 1)), reads.get((name, 2))
            if a is not None:
                after = _int(_get(b, counter)) if b is not None else None
                i.counters.append(
                    CounterDelta(
                        interface=name,
                        counter=counter,
                        before=_int(_get(a, counter)),
                        after=after,
                        seconds=1.0 if after is not None else None,
                        source=f"Get-NetAdapterStatistics -Name '{name}'",
                    )
                )
        macs[name] = _mac(i.mac)
        ifaces.append(i)
    for s in ifaces:  # pair by MAC: a VF carries the synthetic adapter's MAC
        if s.kind != "synthetic":
            continue
        vf = next((v for v in ifaces if v.kind == "vf" and v.master is None and macs[v.name] == macs[s.name]), None)
        if vf is not None and macs[s.name]:
            s.paired_vf, vf.master = vf.name, s.name
            vf.evidence.append(f"same MAC as {s.name}: the VF behind it")
    rss: dict[str, bool] = {}
    by_name = {i.name: i for i in ifaces}
    for rec in records.get("Get-NetAdapterRss") or []:
        on, n = _bool(_get(rec, "Enabled")), _str(rec, "Name")
        if n and on is not None:
            rss[n] = on
        if n in by_name:  # RSS queues are Windows' receive queues (guest.md §4: raise from the default 2)
            by_name[n].rss_enabled = on
            by_name[n].channels = _int(_get(rec, "NumberOfReceiveQueues"))
    procs = [_int(_get(r, "NumberOfLogicalProcessors")) for r in records.get("Win32_Processor") or []]
    facts = GuestFacts(
        os="windows",
        sample_seconds=1.0 if any(k[1] == 2 for k in reads) else None,
        interfaces=ifaces,
        rss_windows={i.name: rss[i.name] for i in ifaces if i.name in rss and i.master is None},
        vcpus=sum(p for p in procs if p) or None,
    )
    return judge(facts)
