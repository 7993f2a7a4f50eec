"""What the collection's modules run on the host Ansible reaches: plain data in, plain data out.

The modules stay thin (argument parsing and Ansible's return shape); the work is here, importable and typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def collect_snapshot(src: str | None, root: str | None) -> dict[str, Any]:
    """The snapshot of this host (live, or its tree under `root`), or of the capture `src`, as JSON data."""
    from iovkit.sources import collect_here, load_input

    snap = load_input(Path(src)) if src else collect_here(Path(root) if root else None)
    data: dict[str, Any] = json.loads(snap.to_json())
    return data
