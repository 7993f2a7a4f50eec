"""Assemble the page: a summary of the inputs, then the sections in the order an operator reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from iovkit.report.assess import fleet_section, guest_section, host_name, hosts_section, inputs_summary
from iovkit.report.build import Report
from iovkit.report.change import measurements_section, plan_section
from iovkit.report.diagnosis import diagnosis_section
from iovkit.report.inputs import Inputs
from iovkit.report.page import page

SECTIONS = (
    ("hosts", "Hosts"),
    ("diagnosis", "Diagnosis"),
    ("plan", "Plan"),
    ("measurements", "Measurements"),
    ("guest", "Guest data path"),
    ("fleet", "Fleet"),
    ("inputs", "Inputs"),
)


def render_fleet(result: Any) -> str:
    """`iovkit fleet ... --format html`: the report's fleet view as a page of its own (same look, same CSP)."""
    report = Report(inputs=Inputs(fleets=[("", result)]), generated=datetime.now(UTC))
    title = f"iovkit fleet {result.command}: {result.inventory}" + (f" ({result.limit})" if result.limit else "")
    subtitle = f"generated {report.generated.strftime('%Y-%m-%d %H:%M UTC')} by iovkit {report.version}"
    return page(title, subtitle, [("fleet", "Fleet")], fleet_section(report))


def render(report: Report) -> str:
    names = [host_name(h) for h in report.hosts] or [
        str(d.report.host or "") for d in report.diagnoses if d.report.host
    ]
    title = "iovkit report" + (f": {', '.join(dict.fromkeys(n for n in names if n))}" if names else "")
    subtitle = (
        f"generated {report.generated.strftime('%Y-%m-%d %H:%M UTC')} by iovkit {report.version}; "
        "self-contained: opens offline, loads nothing"
    )
    body = "".join(
        (
            hosts_section(report),
            diagnosis_section(report),
            plan_section(report),
            measurements_section(report),
            guest_section(report),
            fleet_section(report),
            inputs_summary(report),
        )
    )
    return page(title, subtitle, list(SECTIONS), body)
