"""The saturation estimate, in the operator's unit: the host's NIC (or switch) packet rate at which the hot core
reaches 100%, with the hot core's own packet rate beside it and how both were derived.

Packets are attributed to the hot core by the per-processor counters when the recording has them (Hyper-V
Virtual Switch Processor, per-CPU softnet). Without them, by the hot core's interrupt+DPC time above the other
cores' baseline (their median), so background DPC spread over many idle cores takes no packets. The host
estimate scales what the host passes by the hot core's load: it is never below the rate the host passes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from iovkit.diagnose.model import median
from iovkit.diagnose.view import CoreSeries, View

MIN_LOAD = 0.05  # below 5% load a core's packet cost says nothing


def _mean(a: np.ndarray | None, sl: slice) -> float | None:
    if a is None:
        return None
    part = a[sl]
    ok = ~np.isnan(part)
    return float(part[ok].mean()) if ok.any() else None


def load_fraction(busy: float | None, net: float | None, net_kind: str) -> tuple[float, str]:
    """The hot core's load (0..1) that the packets cost, and the counter it comes from.

    With network work close to run time, the core saturates when its run time reaches 100%, so the larger of
    the two counts (the conservative estimate); with run time far above network work, run time.
    """
    if net is not None and busy is not None and net >= 0.6 * busy:
        v, which = (busy, "run time") if busy >= net else (net, net_kind or "network work")
    elif net is not None and busy is None:
        v, which = net, net_kind or "network work"
    elif busy is not None:
        v, which = busy, "run time"
    else:
        return 0.0, ""
    return min(max(v, 0.0), 100.0) / 100.0, which


def share_of(view: View, hot: CoreSeries, sl: slice) -> tuple[float | None, float | None, str]:
    """(share of packets on the hot core, its measured pkt/s or None, basis)."""
    if view.percore_pps and hot.pkts is not None:
        per = {c.name: _mean(c.pkts, sl) for c in view.cores if c.pkts is not None}
        allp = sum(v for v in per.values() if v)
        own = per.get(hot.name) or 0.0
        what = "Hyper-V Virtual Switch Processor" if view.platform == "windows" else "per-CPU softnet"
        return (own / allp if allp > 0 else None), own, f"per-processor packet counters ({what})"
    nets = {c.name: _mean(c.net, sl) for c in view.cores if c.net is not None}
    if hot.name not in nets or nets[hot.name] is None or len(nets) < 2:
        return None, None, "no per-processor packet or network-time counters"
    others = [v for k, v in nets.items() if k != hot.name and v is not None]
    base = median(others) if others else 0.0
    excess = {k: max((v or 0.0) - base, 0.0) for k, v in nets.items()}
    allx = sum(excess.values())
    share = excess[hot.name] / allx if allx > 0 else None
    return share, None, f"{view.net_kind or 'network'} time above the other cores' baseline ({base:.1f}%)"


def estimate(view: View, hot: CoreSeries, sl: slice) -> dict[str, Any]:
    """The estimate over the samples `sl` (a window, or the whole recording)."""
    busy, net = _mean(hot.busy, sl), _mean(hot.net, sl)
    frac, which = load_fraction(busy, net, view.net_kind)
    share, measured, share_basis = share_of(view, hot, sl)
    host = _mean(view.host_pps, sl)
    rx, tx = _mean(view.rx_pps, sl), _mean(view.tx_pps, sl)
    core_pps = measured if measured else (host * share if host is not None and share is not None else None)
    out: dict[str, Any] = {
        "core": hot.name,
        "core_load_pct": round(frac * 100, 1),
        "core_load_counter": which,
        "packet_share": None if share is None else round(share, 3),
        "share_basis": share_basis,
        "host_pps": _r0(host),
        "host_rx_pps": _r0(rx),
        "host_tx_pps": _r0(tx),
        "host_basis": view.host_basis,
        "core_pps": _r0(core_pps),
    }
    if frac < MIN_LOAD:
        out["derivation"] = f"core {hot.name} is {frac * 100:.0f}% loaded: too little to estimate a saturation rate"
        return out
    parts: list[str] = []
    if host is not None and host > 0:
        sat = max(host / frac, host)
        out["saturation_pps"] = _r0(sat)
        out["headroom_pps"] = _r0(sat - host)
        inout = f" ({rx:,.0f} in + {tx:,.0f} out)" if rx is not None and tx is not None else ""
        parts.append(
            f"the host passes {host:,.0f} pkt/s{inout} on the {view.host_basis or 'host'} while core {hot.name} "
            f"is {frac * 100:.1f}% loaded ({which}): it saturates near {host:,.0f} / {frac:.3f} = {sat:,.0f} pkt/s"
        )
    if core_pps:
        csat = core_pps / frac
        out["core_saturation_pps"] = _r0(csat)
        out["cost_us_per_packet"] = round(frac / core_pps * 1e6, 3)
        how = "counted on it" if measured else f"{(share or 0) * 100:.0f}% of the host's packets"
        parts.append(
            f"core {hot.name} handles {core_pps:,.0f} pkt/s ({how}; {share_basis}), "
            f"{frac / core_pps * 1e6:.2f} µs each, {csat:,.0f} pkt/s at 100%"
        )
    elif share is None:
        parts.append(f"per-core rate unknown ({share_basis})")
    out["derivation"] = "; ".join(parts) or "no packet counters: saturation rate unknown"
    return out


def _r0(v: float | None) -> float | None:
    return None if v is None else round(float(v), 0)
