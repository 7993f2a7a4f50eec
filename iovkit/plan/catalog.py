"""NIC model -> VFs per port, used only when the host did not report NumVFs (then marked an estimate).

The table lives in iovkit.nics (checks read it too); this module keeps the plan's old import path.
"""

from __future__ import annotations

from iovkit.nics import CATALOG, NicModel, default_queue_pairs, lookup

__all__ = ["CATALOG", "NicModel", "default_queue_pairs", "lookup"]
