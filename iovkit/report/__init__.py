"""`iovkit report`: one self-contained HTML page from anything iovkit reads or writes, to hand to a team.

Layer "report": it reads the results of doctor, checks, diagnose, plan, apply journals, bench/compare and fleet;
nothing below imports it. Inputs are told apart by content (inputs.py), the stages run as they do for their own
commands (build.py), and the page is built from their result models (assess, diagnosis, change; svg for plots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iovkit.report.build import Report, build_report
from iovkit.report.inputs import Inputs, load_inputs


def render_html(report: Report) -> str:
    from iovkit.report.html import render

    return render(report)


def fleet_page(result: Any) -> str:
    """A fleet result (iovkit.fleet.model.FleetResult) as a self-contained page: `iovkit fleet --format html`."""
    from iovkit.report.html import render_fleet

    return render_fleet(result)


def make_report(
    paths: list[Path],
    before: list[Path] | None = None,
    after: list[Path] | None = None,
    fmt: str = "html",
    examples: list[str] | None = None,
) -> str:
    """Load, judge and render: the HTML text of the report (or, `fmt="json"`, every stage's result as JSON)."""
    report = build_report(load_inputs(paths, before or [], after or [], examples))
    if fmt == "json":
        import json

        from iovkit.report.build import report_json

        return json.dumps(report_json(report), indent=2, default=str) + "\n"
    return render_html(report)


__all__ = ["Inputs", "Report", "build_report", "fleet_page", "load_inputs", "make_report", "render_html"]
