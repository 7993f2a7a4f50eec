"""The diagnose finding catalog: every finding ID `iovkit diagnose` and `iovkit monitor` can report, as data.

The same model as the check catalog (iovkit.checks.catalog): each finding kind has a stable ID, a title, the
platform whose counters show it, a severity, why it matters, the kind of fix, what it costs and a documentation
link. A Finding with an unregistered ID is a programming error (raised when it is made), and the catalog's
severity is stamped on it. docs/diagnose.md is generated from this table and the remedy catalog
(`python3 -m iovkit.diagnose.docgen > docs/diagnose.md`; tests/diagnose/test_docs_current.py keeps it current).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FindingSeverity = Literal["critical", "warning", "info"]
FindingPlatform = Literal["windows", "linux", "any"]
DOC_PAGE = "docs/diagnose.md"


@dataclass(frozen=True)
class FindingKind:
    id: str
    title: str
    platform: FindingPlatform
    severity: FindingSeverity
    rationale: str  # what the counters show and why it matters
    remediation: str  # the kind of fix; the ranked remedies with their commands are in iovkit.diagnose.remedies
    impact: str  # what it costs the operator
    doc: str


FINDINGS: dict[str, FindingKind] = {}


def finding_kind(
    finding_id: str,
    title: str,
    *,
    platform: FindingPlatform,
    severity: FindingSeverity,
    rationale: str,
    remediation: str,
    impact: str,
    doc: str | None = None,
) -> FindingKind:
    """Register a finding kind (registration order is the reference's order)."""
    if finding_id in FINDINGS:
        raise ValueError(f"duplicate diagnose finding id {finding_id}")
    kind = FindingKind(
        finding_id,
        title,
        platform,
        severity,
        rationale,
        remediation,
        impact,
        doc if doc is not None else f"{DOC_PAGE}#{finding_id.lower()}",
    )
    FINDINGS[finding_id] = kind
    return kind


def kind_of(finding_id: str) -> FindingKind:
    """The registered kind; an unregistered ID is a programming error, not bad input."""
    try:
        return FINDINGS[finding_id]
    except KeyError:
        raise ValueError(f"diagnose finding {finding_id!r} is not registered in iovkit/diagnose/catalog.py") from None


finding_kind(
    "SINGLE-CORE-SWITCH",
    "One core carries the virtual switch's network work while the others have room",
    platform="any",
    severity="critical",
    rationale="A sustained window in which one core is saturated in interrupt/DPC (softirq) time, or handles "
    "most of the switch's packets, while the other cores' mean stays below the room threshold: the packet rate "
    "is capped by that one core (the source case: root virtual processor 0 at 100% near 450,000 pkt/s).",
    remediation="Take the packets off the switch (SR-IOV), or spread them (VMQ/vRSS on Hyper-V, RSS/RPS on "
    "Linux); `iovkit check` and `iovkit plan` prepare the switch-over.",
    impact="Latency and loss rise for every VM on the switch once the core saturates; more cores do not help.",
)
finding_kind(
    "HOT-CORE",
    "One core is saturated, but the recording cannot show that it is network work",
    platform="any",
    severity="warning",
    rationale="A sustained window of one busy core (run time only) with no interrupt/DPC or per-processor "
    "switch counters in the recording: it may be the switch, or any other work.",
    remediation="Record again with the interrupt/DPC and per-processor switch counters (`iovkit script counters`).",
    impact="A bottleneck may be there and cannot be confirmed or ruled out from this recording.",
)
finding_kind(
    "MISSING-SPREAD",
    "One core handles most of the packets: no spread over queues",
    platform="any",
    severity="warning",
    rationale="One core handles at least 80% of the packets above 1,000 pkt/s: VMQ/vRSS (Windows) or RSS/RPS "
    "(Linux) is off, or a single queue or a single flow hash carries everything.",
    remediation="Turn on and widen VMQ/vRSS (Hyper-V) or RSS/RPS (Linux); hash UDP on ports.",
    impact="That core saturates first: the host's packet rate is one core's rate.",
)
finding_kind(
    "UDP-BUFFER-DROPS",
    "UDP socket buffers overflow",
    platform="any",
    severity="warning",
    rationale="UDP receive/send buffer errors are counting: the reader is too slow or its buffer too small.",
    remediation="Bigger socket buffers (net.core.rmem_max and the relay's SO_RCVBUF) and more reader threads.",
    impact="Datagrams are dropped in the host's stack before the application sees them.",
)
finding_kind(
    "SOFTNET-DROPS",
    "Softnet backlog drops (netdev_max_backlog full)",
    platform="linux",
    severity="warning",
    rationale="/proc/net/softnet_stat counts packets dropped because a CPU's input backlog was full.",
    remediation="Raise net.core.netdev_max_backlog and spread receive work (RSS/RPS).",
    impact="Packets are dropped on the receiving CPU before the stack handles them.",
)
finding_kind(
    "SOFTNET-SQUEEZE",
    "Softnet time squeezes (NET_RX ran out of budget)",
    platform="linux",
    severity="warning",
    rationale="/proc/net/softnet_stat counts NET_RX runs cut short by their budget with work left.",
    remediation="Raise net.core.netdev_budget / netdev_budget_usecs and spread receive work (RSS/RPS).",
    impact="Receive work is deferred: latency rises and the backlog may overflow next.",
)
finding_kind(
    "VSWITCH-DROPS",
    "The virtual switch drops packets",
    platform="windows",
    severity="warning",
    rationale="Hyper-V Virtual Switch or virtual network adapter drop counters are counting.",
    remediation="Take the traffic off the switch (SR-IOV) or give it more queues (VMQ, vRSS).",
    impact="VMs lose packets inside the host, before the wire.",
)
finding_kind(
    "NIC-DISCARDS",
    "The NIC discards received packets",
    platform="windows",
    severity="warning",
    rationale="Network Interface 'Packets Received Discarded' is counting: the host does not drain the NIC's "
    "receive rings fast enough.",
    remediation="Spread receive work (RSS/VMQ) and enlarge the receive buffers; SR-IOV for the VMs' traffic.",
    impact="Packets are lost at the NIC: the sender sees loss the VM never counted.",
)
finding_kind(
    "VHOST-SATURATED",
    "vhost-net worker at 100%: the virtio data path is CPU-bound",
    platform="linux",
    severity="critical",
    rationale="A vhost-net kernel thread (one per virtio queue) is saturated: the KVM counterpart of one core "
    "carrying the switch.",
    remediation="SR-IOV (a VF per VM), or more virtio queues (multiqueue) with the guest spreading over them.",
    impact="The VM's packet rate is capped by one host thread; latency and loss rise past it.",
)
finding_kind(
    "HOST-CPU-SATURATED",
    "Every core is busy: the host is overloaded, not one core",
    platform="any",
    severity="warning",
    rationale="All cores are at or above the saturation threshold: spreading cannot help, the host lacks CPU.",
    remediation="Less work per host (fewer VMs, or move load away), or a bigger host; SR-IOV removes the "
    "switch's share.",
    impact="Everything on the host slows down, not only the network.",
)
