"""Counter diagnosis: does one core carry the virtual switch, how close is it to saturating, and what fixes it.

Inputs (PDH CSV, Get-Counter JSON, iovkit recordings, the live /proc sampler) become one `Recording`; `diagnose`
turns it into a `DiagnoseReport` (verdict, findings with numbers, ranked remedies).
"""

from __future__ import annotations

import sys
from pathlib import Path

from iovkit.diagnose.detect import DiagnoseReport, Finding, Recommendation, diagnose
from iovkit.diagnose.model import Recording


def live_available() -> bool:
    """True where the live sampler has counters to read (Linux /proc)."""
    from iovkit.diagnose import procfs

    return sys.platform.startswith("linux") and procfs.available()


def live_recording(seconds: float = 1.0, interval: float | None = None) -> Recording:
    """Sample /proc for `seconds` at `interval` (default: one interval of `seconds`)."""
    from iovkit.diagnose import procfs

    return procfs.sample(seconds, interval if interval else seconds)


def doctor_sample(seconds: float = 1.0) -> DiagnoseReport | None:
    """Sample this host's counters for `seconds` and diagnose them; None where no live counters exist."""
    if not live_available():
        return None
    step = seconds / 4 if seconds >= 0.8 else seconds
    return diagnose(live_recording(seconds, step))


def load_recording(path: Path) -> Recording:
    """Read any supported counter file (auto-detected); see `iovkit.diagnose.inputs`."""
    from iovkit.diagnose.inputs import load

    return load(path)


__all__ = [
    "DiagnoseReport",
    "Finding",
    "Recommendation",
    "Recording",
    "diagnose",
    "doctor_sample",
    "live_available",
    "live_recording",
    "load_recording",
]
