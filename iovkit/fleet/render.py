"""Views of a fleet result: the terminal table, markdown and a standalone HTML page (JSON is the model itself)."""

from __future__ import annotations

import html

from rich.console import Console
from rich.table import Table

from iovkit.fleet.model import FleetHost, FleetResult, finding_text

FORMATS = ("table", "json", "markdown", "html")
COLUMNS = ("host", "platform", "verdict", "top finding", "VFs free", "VFs used")


def _n(v: int | None) -> str:
    return "?" if v is None else str(v)


def top_text(h: FleetHost) -> str:
    """The one thing to know about a host: its error, its first fix, or its headline."""
    if h.status != "ok":
        return f"{h.status}: {h.error or 'no detail'}"
    if h.top is not None:
        return f"[{h.top.id}] {h.top.message}"
    return h.headline or ""


def row(h: FleetHost) -> list[str]:
    return [h.name, h.platform or "-", h.verdict or "-", top_text(h), _n(h.vfs_free), _n(h.vfs_used)]


def _title(r: FleetResult) -> str:
    lim = f" --limit {r.limit}" if r.limit else ""
    return f"iovkit fleet {r.command} -i {r.inventory}{lim}: {len(r.hosts)} host(s), verdict {r.verdict}"


def render_table(r: FleetResult, console: Console) -> None:
    t = Table(title=_title(r), title_justify="left", show_lines=False)
    for col in COLUMNS:
        t.add_column(col, justify="right" if col.startswith("VFs") else "left", overflow="fold")
    for h in r.hosts:
        style = "red" if h.status != "ok" else None
        t.add_row(*row(h), style=style)
    console.print(t)
    shown = [f for f in r.findings if f.status not in ("pass", "not-applicable")]
    if shown:
        ft = Table(title="fleet rules", title_justify="left")
        for col in ("id", "group", "status", "finding", "fix"):
            ft.add_column(col, overflow="fold")
        for f in shown:
            ft.add_row(f.id, f.group, f.status, finding_text(f.message, f.missing), f.fix or "")
        console.print(ft)
    elif r.findings:
        console.print(f"fleet rules: {len(r.findings)} evaluated, none failed")
    files = sum(len(h.files) for h in r.hosts)
    if files:
        console.print(f"per-host results: {files} file(s) written")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(r: FleetResult) -> str:
    lines = [f"## {_md(_title(r))}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_md(c) for c in row(h)) + " |" for h in r.hosts]
    if r.findings:
        lines += ["", "### Fleet rules", "", "| id | group | status | finding | fix |", "|---|---|---|---|---|"]
        for f in r.findings:
            text = _md(finding_text(f.message, f.missing))
            lines.append(f"| {f.id} | {_md(f.group)} | {f.status} | {text} | {_md(f.fix or '')} |")
    return "\n".join(lines) + "\n"


def to_html(r: FleetResult) -> str:
    """A standalone page (no scripts, no external assets), for a ticket or a wiki."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = "".join(
        f'<tr class="{e(h.verdict or "")}">' + "".join(f"<td>{e(c)}</td>" for c in row(h)) + "</tr>" for h in r.hosts
    )
    rules = ""
    if r.findings:
        rules = (
            "<h2>Fleet rules</h2><table><tr><th>id</th><th>group</th><th>status</th><th>finding</th><th>fix</th></tr>"
        )
        rules += "".join(
            f'<tr class="{e(f.status)}"><td>{e(f.id)}</td><td>{e(f.group)}</td><td>{e(f.status)}</td>'
            f"<td>{e(finding_text(f.message, f.missing))}</td><td><code>{e(f.fix or '')}</code></td></tr>"
            for f in r.findings
        )
        rules += "</table>"
    style = (
        "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".unreachable,.failed,.fail,.not-ready,.blocked{background:#fdd}.partial,.warn{background:#ffd}"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(_title(r))}</title><style>{style}</style>'
        f"</head><body><h1>{e(_title(r))}</h1><table><tr>{head}</tr>{body}</table>{rules}</body></html>\n"
    )
