"""The facts a plan depends on, and their hash: plan stamps it, apply refuses when the live host no longer matches.

Only facts the runbook reads or restores are included (switch settings and NICs, adapter->switch mapping, IOV
weights, NIC SR-IOV state, VF assignments). Counters, VM power state and timestamps are left out, so a
re-collected but unchanged host still matches. It sits beside the snapshot so that plan and apply share it
without importing each other.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from iovkit.snapshot import HostSnapshot


def plan_facts(snap: HostSnapshot) -> dict[str, Any]:
    """A canonical, JSON-able view of the facts a plan depends on, keyed by object name."""
    facts: dict[str, Any] = {
        "host": {"name": snap.host.name, "platform": snap.host.platform, "iov_supported": snap.iov.supported},
        "nics": {
            n.name: {
                "sriov_enabled": n.sriov_enabled,
                "vfs_total": n.vfs_total,
                "vfs_configured": n.vfs_configured,
                "team": n.team,
            }
            for n in snap.nics
        },
        "teams": {t.name: {"kind": t.kind, "members": sorted(t.members)} for t in snap.teams},
        "switches": {
            s.name: {
                "switch_type": s.switch_type,
                "iov_enabled": s.iov_enabled,
                "nics": sorted(n.name for n in snap.switch_nics(s)),
                "allow_management_os": s.allow_management_os,
                "embedded_teaming": s.embedded_teaming,
            }
            for s in snap.switches
        },
        "adapters": {
            a.key: {
                "switch": a.switch_name,
                "iov_weight": a.iov_weight,
                "queue_pairs": a.iov_queue_pairs_requested,
                "mac": a.mac,
            }
            for a in snap.vm_adapters
        },
        "vfs": {f"{v.pf}/{v.index}": {"vm": v.vm, "mac": v.mac} for v in snap.vfs},
    }
    if snap.esxi is not None:
        # ESXi: what the runbook reads or restores (the driver options, the API's SR-IOV config, each VM's
        # memory reservation and adapters); power state and VF ownership are left out like counters.
        e = snap.esxi
        facts["esxi"] = {
            "maintenance": {"in": e.in_maintenance_mode},
            "modules": {m.name: {"options": m.options, "max_vfs": m.params.get("max_vfs")} for m in e.modules},
            "passthru": {
                p.id: {"enabled": p.sriov_enabled, "requested": p.vfs_requested}
                for p in e.passthru or []
                if p.sriov_capable is not None
            },
            "vms": {
                v.name: {
                    "reservation_mb": v.reservation_mb,
                    "reserve_all": v.reserve_all,
                    "adapters": [[a.name, a.type, a.pf, a.network, a.present] for a in v.adapters],
                }
                for v in e.vms
            },
        }
    return facts


def fingerprint(snap: HostSnapshot) -> str:
    body = json.dumps(plan_facts(snap), sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()


def first_difference(old: HostSnapshot, new: HostSnapshot) -> str | None:
    """A short human description of the first fact that differs, e.g. "switch 'External' iov_enabled"."""
    a, b = plan_facts(old), plan_facts(new)
    for section in a:
        sa, sb = a[section], b[section]
        if sa == sb:
            continue
        for key in sorted(set(sa) | set(sb)):
            if key not in sb:
                return f"{section} {key!r} is gone"
            if key not in sa:
                return f"{section} {key!r} is new"
            if sa[key] != sb[key]:
                if isinstance(sa[key], dict):
                    field = next(f for f in sa[key] if sa[key][f] != sb[key].get(f))
                    return f"{section} {key!r} {field}: {sa[key][field]!r} -> {sb[key].get(field)!r}"
                return f"{section} {key}: {sa[key]!r} -> {sb[key]!r}"
    return None
