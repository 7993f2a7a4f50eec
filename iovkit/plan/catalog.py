"""NIC model -> VFs per port, used only when the host did not report NumVFs (then marked an estimate).

Values are hardware/driver maxima from hyperv.md §6; the Windows driver may expose fewer, and the
host's own NumVFs (Get-NetAdapterSriov) or sriov_totalvfs always wins.
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


CATALOG: tuple[NicModel, ...] = (
    NicModel(r"\bI21[01]\b|\b82580\b", "Intel I210/I211/82580", 0, "igb: no SR-IOV on this family"),
    NicModel(r"\b8257[1-4]|\b82583\b", "Intel 8257x (e1000e)", 0, "e1000e has no VF support"),
    NicModel(r"\bI350\b", "Intel I350", 7, "igb: 7 VFs per port"),
    NicModel(r"\b82576\b", "Intel 82576", 7, "igb: 7 VFs per port"),
    NicModel(r"\b82599\b|\bX520\b|\bX540\b|\bX550\b", "Intel 82599/X520/X540/X550", 63, "ixgbe: 63 per port"),
    NicModel(r"\bXXV710\b|\bXL710\b|\bX710\b|\bX722\b", "Intel X710 family", 64, "i40e: 128 per device, split"),
    NicModel(r"\bE810\b", "Intel E810", 256, "ice: 256 per device"),
    NicModel(r"ConnectX-3", "Mellanox ConnectX-3", 32, "pool shared by both ports (sample host: 32 per port)"),
)


def lookup(description: str | None) -> NicModel | None:
    """The catalog entry matching a NIC description, or None when the model is unknown."""
    if not description:
        return None
    return next((m for m in CATALOG if re.search(m.pattern, description, re.IGNORECASE)), None)
