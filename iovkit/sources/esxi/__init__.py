"""VMware ESXi snapshot source: pasted esxcli/vim-cmd/lspci output and .vmx files, or pyVmomi (live).

pyVmomi is imported only by `live` (and the live executor), so reading a paste never loads it.
"""

from __future__ import annotations

from iovkit.sources.esxi.paste import looks_like_esxi, snapshot_from_paste

__all__ = ["looks_like_esxi", "snapshot_from_paste"]
