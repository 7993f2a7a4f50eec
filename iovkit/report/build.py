"""Run the stages over what was given: doctor per host, diagnose per recording, compare for a before/after pair.

The report reads each stage's own result model; it computes no verdict of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from iovkit import __version__
from iovkit.report.inputs import Inputs


@dataclass
class HostPart:
    path: str
    snapshot: Any  # HostSnapshot
    doctor: Any  # DoctorReport


@dataclass
class DiagnosisPart:
    path: str
    recording: Any  # Recording
    report: Any  # DiagnoseReport


@dataclass
class Report:
    inputs: Inputs
    generated: datetime
    hosts: list[HostPart] = field(default_factory=list)
    diagnoses: list[DiagnosisPart] = field(default_factory=list)
    comparison: Any | None = None  # traffic.compare.Comparison
    version: str = __version__


def build_report(inputs: Inputs) -> Report:
    from iovkit.diagnose import diagnose
    from iovkit.doctor import run_doctor

    report = Report(inputs=inputs, generated=datetime.now(UTC))
    for path, snap in inputs.hosts:
        # a report never samples the machine it runs on: only what was given is judged
        doc = run_doctor(snap, None, use_default_sampler=False, with_examples=False)
        report.hosts.append(HostPart(path, snap, doc))
    for path, rec in inputs.recordings:
        report.diagnoses.append(DiagnosisPart(path, rec, diagnose(rec)))
    if inputs.before and inputs.after:
        from iovkit.traffic.compare import compare

        report.comparison = compare([r for _, r in inputs.before], [r for _, r in inputs.after])
    return report
