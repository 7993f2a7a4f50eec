"""Render one CheckResult as a table (grouped by scope), JSON, Markdown or JUnit XML.

All four read the same findings list, so a finding never says one thing in the table and another in CI.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from iovkit.checks.catalog import CheckResult, Finding, top_fixes

FORMATS = ("table", "json", "markdown", "junit")
SCOPE_ORDER = {"host": 0, "switch": 1, "nic": 2, "vm-adapter": 3, "vf": 4, "guest-nic": 5}
STYLE = {
    "pass": "green",
    "warn": "yellow",
    "fail": "bold red",
    "info": "blue",
    "unknown": "magenta",
    "not-applicable": "dim",
}
LABEL = {"not-applicable": "N/A"}


def totals(result: CheckResult) -> str:
    """`3 pass, 1 warn, 0 fail, 2 unknown, 4 not applicable` (info only when there is some)."""
    c = result.counts()
    parts = [f"{c['pass']} pass", f"{c['warn']} warn", f"{c['fail']} fail"]
    if c["info"]:
        parts.append(f"{c['info']} info")
    parts += [f"{c['unknown']} unknown", f"{c['not-applicable']} not applicable"]
    return ", ".join(parts)


VERDICT_TEXT = {"ready": "READY", "partial": "PARTIAL", "not-ready": "NOT READY", "unknown": "UNKNOWN"}


def grouped(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by scope ("switch External"), host first, in catalog order within a group."""
    groups: dict[tuple[int, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((SCOPE_ORDER.get(f.scope.kind, 9), str(f.scope)), []).append(f)
    return [(name, fs) for (_, name), fs in sorted(groups.items(), key=lambda kv: kv[0])]


def to_json(result: CheckResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)


PATH_STYLE = {"vf": "bold green", "synthetic": "bold red", "paravirtual": "bold yellow", "emulated": "bold red"}


def render_datapath(guest: dict[str, Any], console: Console) -> None:
    """Inside a VM: per interface the path, its driver, the paired VF and the evidence, then the switch lines."""
    secs = guest.get("sample_seconds")
    console.print(
        Text(f"Data path ({'counters read twice, ' + format(secs, 'g') + ' s apart' if secs else 'one read'})", "bold")
    )
    for i in guest.get("interfaces", []):
        indent = "    " if i.get("master") else "  "
        path = str(i.get("path", "unknown"))
        console.print(
            Text.assemble(
                indent,
                (f"{i['name']}: ", "bold"),
                (path.upper(), PATH_STYLE.get(path, "dim")),
                f"  driver {i.get('driver') or '?'}",
                f", VF {i['paired_vf']}" if i.get("paired_vf") else "",
                f"  ({i.get('basis')})",
            )
        )
        console.print(Text(f"{indent}  {i.get('summary', '')}"))
        for e in i.get("evidence", []):
            console.print(Text(f"{indent}  - {e}", "dim"))
    events = guest.get("kernel_events", [])
    if events:
        console.print(Text("  Last data-path messages in the kernel log:", "bold"))
        for e in events[-5:]:
            console.print(Text(f"    {_event_time(e)}  {e['message']}", "dim"))


def _event_time(e: dict[str, Any]) -> str:
    """'2026-11-28 03:12:45 UTC (04:12:45 local)', or the time as the log printed it."""
    from datetime import datetime

    if not e.get("utc"):
        return str(e.get("time") or "?")
    when = datetime.fromisoformat(str(e["utc"]))
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({when.astimezone():%H:%M:%S} local)"


def render_table(
    result: CheckResult, console: Console, *, fixes: bool = True, passes: bool = True, datapath: bool = True
) -> None:
    """The verdict, one table per scope, the fixes, the totals.

    `passes=False` (doctor's one page) leaves out passing rows and skips that only say "does not apply".
    """
    if datapath and result.datapath is not None:
        render_datapath(result.datapath, console)
    style = {"ready": "green", "partial": "yellow", "unknown": "magenta"}.get(result.verdict, "bold red")
    console.print(Text.assemble(("Verdict: ", "bold"), (VERDICT_TEXT[result.verdict], style), f"  ({result.reason})"))
    shown = result.findings if passes else [f for f in result.findings if f.status in ("fail", "warn", "unknown")]
    for name, fs in grouped(shown):
        t = Table(title=name, title_justify="left", show_edge=False, expand=False, show_header=False)
        t.add_column("status", no_wrap=True)
        t.add_column("id", no_wrap=True)
        t.add_column("finding")
        for f in fs:
            t.add_row(Text(LABEL.get(f.status, f.status.upper()), STYLE[f.status]), Text(f.id), Text(f.message))
        console.print(t)
    if fixes:
        todo = [f for f in result.findings if f.status in ("fail", "warn") and f.fix]
        if todo:
            console.print(Text("Fixes", "bold"))
            seen: set[tuple[str, str]] = set()
            for f in todo:
                key = (f.id, f.fix or "")
                if key in seen:
                    continue
                seen.add(key)
                console.print(Text.assemble((f"[{f.id}] ", STYLE[f.status]), f"{f.scope}: ", (f.fix or "", "cyan")))
    hidden = "" if passes else " (passing and not-applicable checks not shown: `iovkit check` with the same input "
    hidden += "lists them)" if hidden else ""
    console.print(Text(totals(result) + hidden))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """An inline code span that survives backticks inside the command."""
    return f"`` {_md(text)} ``" if "`" in text else f"`{_md(text)}`"


def to_markdown(result: CheckResult) -> str:
    lines = [f"# iovkit check: {VERDICT_TEXT[result.verdict]}", "", f"{result.reason}", ""]
    top = top_fixes(result.findings)
    if top:
        lines += ["## Most important fixes", ""]
        lines += [f"{i}. **{f.id}** ({f.scope}): {_code(f.fix or '')}" for i, f in enumerate(top, 1)]
        lines.append("")
    for name, fs in grouped(result.findings):
        lines += [f"## {name}", "", "| status | id | finding | fix |", "|---|---|---|---|"]
        for f in fs:
            fix = _code(f.fix) if f.fix and f.status in ("fail", "warn") else ""
            if f.status == "unknown" and f.collect:
                fix = _code(f.collect)
            lines.append(f"| {f.status} | {f.id} | {_md(f.message)} | {fix} |")
        lines.append("")
    lines.append(totals(result))
    return "\n".join(lines) + "\n"


def to_junit(result: CheckResult) -> str:
    """One testcase per finding; a failure's message is the fix; system-out holds the finding as JSON."""
    c = result.counts()
    suite = ET.Element(
        "testsuite",
        name="iovkit-check",
        tests=str(len(result.findings)),
        failures=str(c["fail"]),
        errors="0",
        skipped=str(c["unknown"] + c["not-applicable"]),
    )
    suite.set("verdict", result.verdict)
    for f in result.findings:
        case = ET.SubElement(suite, "testcase", classname=f"iovkit.{f.id}", name=f"{f.id} {f.scope}")
        if f.status == "fail":
            el = ET.SubElement(case, "failure", message=f.fix or f.message, type=f.severity)
            el.text = f.message
        elif f.status in ("unknown", "not-applicable"):
            ET.SubElement(case, "skipped", message=f"{f.status}: {f.message}")
        out = ET.SubElement(case, "system-out")
        out.text = json.dumps(f.to_dict(), default=str)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
