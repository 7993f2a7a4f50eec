"""The PowerShell collector shipped in the package (`collect.ps1`), as printed by `iovkit script collect`."""

from __future__ import annotations

from importlib import resources


def collector_script() -> str:
    """The collector's text; it runs on the Hyper-V host (5.1 or 7) without Python."""
    return resources.files("iovkit.sources.hyperv").joinpath("collect.ps1").read_text(encoding="utf-8")
