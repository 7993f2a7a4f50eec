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


def report_json(report: Report) -> dict[str, Any]:
    """`iovkit report --format json`: every stage's own result for every input, in one document."""
    inp = report.inputs
    return {
        "generated": report.generated.isoformat(),
        "tool_version": report.version,
        "hosts": [{"input": h.path, "doctor": h.doctor.to_dict()} for h in report.hosts],
        "diagnoses": [{"input": d.path, "diagnose": d.report.to_json()} for d in report.diagnoses],
        "plans": [{"input": p, "plan": plan.model_dump(mode="json", exclude={"snapshot"})} for p, plan in inp.plans],
        "journals": [
            {
                "input": p,
                "plan_id": st.plan_id,
                "host": st.host,
                "status": st.status,
                "done": st.done,
                "undone": sorted(st.undone),
                "interrupted": st.interrupted,
            }
            for p, st, _ in inp.journals
        ],
        "bench": [
            {
                "input": p,
                "result": r.model_dump(
                    mode="json", by_alias=True, exclude={"steps": {"__all__": {"histogram", "histogram_from_send"}}}
                ),
            }
            for p, r in inp.bench
        ],
        "comparison": report.comparison.as_dict() if report.comparison is not None else None,
        "fleets": [{"input": p, "fleet": f.model_dump(mode="json", by_alias=True)} for p, f in inp.fleets],
    }


def build_report(inputs: Inputs) -> Report:
    from iovkit.diagnose import diagnose
    from iovkit.doctor import run_doctor

    report = Report(inputs=inputs, generated=datetime.now(UTC))
    for path, snap in inputs.hosts:
        # a report never samples the machine it runs on: only what was given is judged
        doc = run_doctor(snap, None, use_default_sampler=False, with_examples=False, plan_cmd=inputs.plan_for.get(path))
        report.hosts.append(HostPart(path, snap, doc))
    for path, rec in inputs.recordings:
        report.diagnoses.append(DiagnosisPart(path, rec, diagnose(rec)))
    if inputs.before and inputs.after:
        from iovkit.traffic.compare import compare

        report.comparison = compare([r for _, r in inputs.before], [r for _, r in inputs.after])
    return report
