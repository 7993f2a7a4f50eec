"""What a NIC model can give a VM: VFs per port and receive queue pairs per VF, each row with its source.

One home for NIC knowledge that checks and plan both read (they are siblings and do not import each other).
Values are hardware/driver limits from the reference (hyperv.md §6, guest.md §5); the host's own numbers
(NumVFs, IovQueuePairsAssigned) always win, and a value taken from here is marked an estimate.

Queue pairs per VF matter because a VF takes vRSS away: with a VF the guest's receive interrupts spread only over
the VF's own queues (Microsoft's vRSS documentation), so one queue pair puts a whole relay on one guest vCPU.
The per-VF limits are the Linux VF drivers' (guest.md §5); Windows VF drivers are not documented there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NicModel:
    pattern: str  # regex on the interface description / model name, case-insensitive
    model: str
    vfs_per_port: int  # 0 = no SR-IOV
    note: str = ""
    queue_pairs_per_vf: int | None = None  # the most receive queue pairs one VF can have; None = not known
    vf_driver: str | None = None
    source: str = ""


CATALOG: tuple[NicModel, ...] = (
    NicModel(
        r"\bI21[01]\b|\b82580\b",
        "Intel I210/I211/82580",
        0,
        "igb: no SR-IOV on this family",
        source="hyperv.md §6 (igb_probe_vfs returns early)",
    ),
    NicModel(r"\b8257[1-4]|\b82583\b", "Intel 8257x (e1000e)", 0, "e1000e has no VF support", source="hyperv.md §6"),
    NicModel(
        r"\bI350\b",
        "Intel I350",
        7,
        "igb: 7 VFs per port",
        1,
        "igbvf",
        "hyperv.md §6; guest.md §5 (igbvf_alloc_queues: one TX and one RX ring)",
    ),
    NicModel(
        r"\b82576\b",
        "Intel 82576",
        7,
        "igb: 7 VFs per port",
        1,
        "igbvf",
        "hyperv.md §6; guest.md §5 (igbvf_alloc_queues: one TX and one RX ring)",
    ),
    NicModel(
        r"\b82599\b|\bX520\b|\bX540\b|\bX550\b",
        "Intel 82599/X520/X540/X550",
        63,
        "ixgbe: 63 per port",
        2,
        "ixgbevf",
        "hyperv.md §6; guest.md §5 (IXGBEVF_MAX_RSS_QUEUES 2)",
    ),
    NicModel(
        r"\bXXV710\b|\bXL710\b|\bX710\b|\bX722\b",
        "Intel X710 family",
        64,
        "i40e: 128 per device, split",
        16,
        "iavf",
        "hyperv.md §6; guest.md §5 (I40E_MAX_VF_QUEUES 16, 4 by default)",
    ),
    NicModel(
        r"\bE810\b",
        "Intel E810",
        256,
        "ice: 256 per device",
        16,
        "iavf",
        "hyperv.md §6; guest.md §5 (ICE_MAX_RSS_QS_PER_VF 16)",
    ),
    NicModel(
        r"ConnectX-3",
        "Mellanox ConnectX-3",
        32,
        "pool shared by both ports (sample host: 32 per port)",
        source="hyperv.md §6 (queues per VF not found)",
    ),
)


def lookup(description: str | None) -> NicModel | None:
    """The catalog entry matching a NIC description, or None when the model is unknown."""
    if not description:
        return None
    return next((m for m in CATALOG if re.search(m.pattern, description, re.IGNORECASE)), None)


def default_queue_pairs(vcpus: int | None, description: str | None) -> tuple[int, str]:
    """Queue pairs to request for a VM's VF: min(the VM's vCPUs, the NIC's per-VF limit), and why.

    Unknown stays unknown: with neither number the request stays Hyper-V's default, 1, and the reason says so."""
    model = lookup(description)
    limit = model.queue_pairs_per_vf if model else None
    if vcpus is not None and limit is not None:
        why = f"min({vcpus} vCPUs, {model.model if model else '?'} per-VF limit {limit})"
        return max(1, min(vcpus, limit)), why
    if limit is not None:
        return limit, f"{model.model if model else '?'} per-VF limit {limit} (the VM's vCPUs not in the input)"
    if vcpus is not None:
        return 1, f"1: the per-VF queue limit of {description or 'this NIC'} is not in iovkit's NIC table"
    return 1, "1: neither the VM's vCPUs nor the NIC's per-VF queue limit is known"
