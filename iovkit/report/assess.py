"""Sections about what is: each host (doctor verdict, top fixes, the check table), the guest's data path, the fleet."""

from __future__ import annotations

from typing import Any

from iovkit.fleet.model import finding_text
from iovkit.report.build import HostPart, Report
from iovkit.report.markup import absent, badge, code, e, kv, num, section, table

STATUS_ORDER = ("fail", "warn", "unknown", "info", "pass", "not-applicable")


def host_name(part: HostPart) -> str:
    snap = part.snapshot
    return str(getattr(snap.host, "name", None) or part.path)


def _counters_line(report: Report, name: str) -> str:
    """The diagnosis of a recording from this host, when one was given (doctor samples only the host it runs on)."""
    found = [
        (i, d.report.verdict)
        for i, d in enumerate(report.diagnoses)
        if str(d.report.host or d.recording.host or "").lower() == name.lower()
    ]
    if not found:
        return ""
    links = ", ".join(f'<a href="#diag-{i}">{badge(str(v).upper(), "v-" + str(v))}</a>' for i, v in found)
    return f'<p class="verdict">counters: {links} <span class="note">(see Diagnosis)</span></p>'


def hosts_section(report: Report) -> str:
    if not report.hosts:
        body = absent(
            "No host snapshot or capture given. Add one: `iovkit collect -o host.json` (or a Get-NetView .zip, "
            "Format-List text, a Linux archive) and pass it to `iovkit report`."
        )
        return section("hosts", "Hosts", body)
    return section("hosts", "Hosts", "".join(_host(i, part, report) for i, part in enumerate(report.hosts)))


def _host(index: int, part: HostPart, report: Report) -> str:
    doc = part.doctor.to_dict()
    snap = part.snapshot
    name = host_name(part)
    verdict = str(doc.get("verdict", "unknown"))
    src = getattr(getattr(snap, "source", None), "kind", "?")
    collected = getattr(getattr(snap, "source", None), "collected_at", None)
    out = [
        f'<h3 id="host-{index}">{e(name)} <span class="note">({e(getattr(snap.host, "platform", "?"))}, source '
        f"{e(src)}{', collected ' + e(collected) if collected else ''}; {e(part.path)})</span></h3>",
        f'<p class="verdict">doctor: {badge(verdict.upper(), "v-" + verdict)} {e(doc.get("headline"))}</p>',
        _counters_line(report, name),
    ]
    top = doc.get("top_fixes") or []
    if top:
        items = "".join(
            f"<li><b>[{e(f.get('id'))}]</b> {e(f.get('scope'))}: {e(f.get('message'))}<br>{code(f.get('fix'))}</li>"
            for f in top[:3]
        )
        out.append(f'<h3>The fixes that matter most</h3><ol class="fixes">{items}</ol>')
    else:
        out.append('<p class="note">No fix needed: nothing failed or warned.</p>')
    out.append(_check_table(index, doc.get("findings") or []))
    guest = (doc.get("datapath") or part.doctor.check.to_dict().get("datapath")) if doc else None
    if guest:
        out.append("<h3>Data path inside this VM</h3>" + datapath_table(guest))
    return "".join(out)


def _check_table(index: int, findings: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for f in findings:
        counts[str(f.get("status"))] = counts.get(str(f.get("status")), 0) + 1
    tid = f"checks-{index}"
    buttons = [f'<button class="on" data-status="all">all {len(findings)}</button>']
    buttons += [f'<button data-status="{e(s)}">{e(s)} {counts[s]}</button>' for s in STATUS_ORDER if counts.get(s)]
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    ordered = sorted(findings, key=lambda f: rank.get(str(f.get("status")), 99))
    rows, attrs = [], []
    for f in ordered:
        status = str(f.get("status"))
        scope = f.get("scope") or {}
        scope_text = f"{scope.get('kind', '')} {scope.get('name', '')}".strip() if isinstance(scope, dict) else scope
        missing = f.get("missing") or []
        fix = f.get("fix") or f.get("collect")
        said = "not collected" in str(f.get("message") or "")  # unknown results name their missing facts already
        extra = (
            f'<div class="ev">not collected: {e(", ".join(map(str, missing)))}</div>' if missing and not said else ""
        )
        rows.append(
            [
                badge(status, "s-" + status),
                f"<b>{e(f.get('id'))}</b>",
                e(scope_text),
                f"{e(f.get('title'))}<br>{e(f.get('message'))}{extra}",
                kv(f.get("evidence")),
                code(fix if isinstance(fix, str) else None),
            ]
        )
        attrs.append(f'data-status="{e(status)}"')
    head = f'<h3>Checks</h3><div class="filters" data-table="{tid}">{"".join(buttons)}</div>'
    return head + table(
        ("status", "check", "scope", "finding", "evidence", "exact fix"),
        rows,
        table_id=tid,
        row_attrs=attrs,
        widths=("10%", "10%", "11%", "30%", "17%", "22%"),
    )


def datapath_table(guest: dict[str, Any]) -> str:
    secs = guest.get("sample_seconds")
    basis = f"counters read twice, {secs:g} s apart" if isinstance(secs, int | float) else "one read of the counters"
    rows = [
        [
            f"<b>{e(i.get('name'))}</b>"
            + (f" <span class='note'>under {e(i.get('master'))}</span>" if i.get("master") else ""),
            badge(str(i.get("path", "unknown")), _path_class(str(i.get("path", "unknown")))),
            e(i.get("driver")),
            e(i.get("paired_vf")),
            e(i.get("basis")),
            e(i.get("summary")) + kv({str(n): ev for n, ev in enumerate(i.get("evidence") or [], 1)}, limit=6),
        ]
        for i in guest.get("interfaces") or []
    ]
    steal = guest.get("steal_percent")
    extra = (
        f'<p class="note">Steal time over the sample: {num(steal)} % of all CPU time.</p>' if steal is not None else ""
    )
    events = guest.get("kernel_events") or []
    if events:
        lines = "\n".join(f"{ev.get('utc') or ev.get('time') or '?'}  {ev.get('message', '')}" for ev in events[-8:])
        extra += f"<p class='note'>Last data-path messages in the kernel log:</p><pre>{e(lines)}</pre>"
    return (
        f'<p class="note">Per interface, the path its packets take ({e(basis)}).</p>'
        + table(("interface", "data path", "driver", "VF", "decided by", "why"), rows)
        + extra
    )


def _path_class(path: str) -> str:
    return {"vf": "s-pass", "synthetic": "s-fail", "emulated": "s-fail", "paravirtual": "s-warn"}.get(path, "s-unknown")


def guest_section(report: Report) -> str:
    parts = []
    for i, part in enumerate(report.hosts):
        guest = part.doctor.check.to_dict().get("datapath")
        if guest:
            parts.append(f'<h3><a href="#host-{i}">{e(host_name(part))}</a></h3>' + datapath_table(guest))
    if not parts:
        body = absent(
            "No guest capture given: the data-path verdict comes from a snapshot taken inside the VM "
            "(`iovkit collect -o guest.json` in the guest)."
        )
        return section("guest", "Guest data path", body)
    return section("guest", "Guest data path", "".join(parts))


def fleet_section(report: Report) -> str:
    if not report.inputs.fleets:
        body = absent(
            "No fleet result given: `iovkit fleet check -i INVENTORY` writes fleet.json in its results folder."
        )
        return section("fleet", "Fleet", body)
    out = []
    for path, fleet in report.inputs.fleets:
        data = fleet.model_dump(mode="json", by_alias=True)
        verdict = str(data.get("verdict", "unknown"))
        out.append(
            f"<h3>{e(data.get('command'))} over {e(data.get('inventory'))} "
            f'<span class="note">({e(path) + ", " if path else ""}started {e(data.get("started"))})</span></h3>'
            f'<p class="verdict">fleet: {badge(verdict.upper(), "v-" + verdict)}</p>'
        )
        rows = []
        for h in data.get("hosts") or []:
            top = h.get("top") or {}
            status = str(h.get("verdict") or h.get("status") or "unknown")
            rows.append(
                [
                    f"<b>{e(h.get('name'))}</b>",
                    badge(status, "v-" + status),
                    e(h.get("platform")),
                    num(h.get("vfs_total"), "{:,}"),
                    num(h.get("vfs_used"), "{:,}"),
                    num(h.get("vfs_free"), "{:,}"),
                    e(h.get("error") or top.get("message") or h.get("headline"))
                    + (f"<br>{code(top.get('fix'))}" if top.get("fix") else ""),
                ]
            )
        out.append(table(("host", "verdict", "platform", "VFs", "used", "free", "first fix"), rows, numeric=(3, 4, 5)))
        findings = data.get("findings") or []
        if findings:
            frows = [
                [
                    badge(str(f.get("status")), "s-" + str(f.get("status"))),
                    f"<b>{e(f.get('id'))}</b>",
                    e(", ".join(f.get("hosts") or [])),
                    e(finding_text(str(f.get("message") or ""), f.get("missing"))),
                    code(f.get("fix")),
                ]
                for f in findings
            ]
            out.append(table(("status", "fleet rule", "hosts", "finding", "fix"), frows))
    return section("fleet", "Fleet", "".join(out))


def inputs_summary(report: Report) -> str:
    """What was read, by kind, so a reader sees what the page rests on (and what it does not)."""
    inp = report.inputs
    rows = [[e(p), "host snapshot / capture"] for p, _ in inp.hosts]
    rows += [[e(p), "counter recording"] for p, _ in inp.recordings]
    rows += [[e(p), "plan"] for p, _ in inp.plans]
    rows += [[e(p), "apply journal"] for p, _, _ in inp.journals]
    rows += [[e(p), "bench result"] for p, _ in inp.bench]
    rows += [[e(p), "bench result (before)"] for p, _ in inp.before]
    rows += [[e(p), "bench result (after)"] for p, _ in inp.after]
    rows += [[e(p), "fleet result"] for p, _ in inp.fleets]
    return section("inputs", "Inputs", table(("file", "read as"), rows))
