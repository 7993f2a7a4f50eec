"""Sections about the change and its proof: the plan (allocations, steps, console warning, rollback), the apply
journals, and the measurements (latency against offered load with the knee, loss, before/after against the guide).
"""

from __future__ import annotations

from typing import Any

from iovkit.report import svg
from iovkit.report.build import Report
from iovkit.report.markup import absent, badge, e, num, section, table

# The source's SR-IOV figures the comparison is judged against (compare.py carries them per metric as guide_pct).
GUIDE = "up to 50% less CPU, 50% less latency, 30% more bandwidth"


def plan_section(report: Report) -> str:
    inp = report.inputs
    if not inp.plans and not inp.journals:
        body = absent(
            "No plan given: `iovkit plan host.json -o plan.json` writes one; its apply journal sits beside it."
        )
        return section("plan", "Plan", body)
    out = [_plan(path, plan) for path, plan in inp.plans]
    out += [_journal(path, state, events) for path, state, events in inp.journals]
    return section("plan", "Plan", "".join(out))


def _plan(path: str, plan: Any) -> str:
    from iovkit.plan.model import step_title

    out = [
        f"<h3>{e(plan.host or 'host')} ({e(plan.platform)}) <span class='note'>plan {e(plan.plan_id)}, "
        f"{e(path)}</span></h3>"
    ]
    if plan.requires_console:
        out.append(
            '<div class="warnbox"><b>Run this from the host console.</b> A rebuilt switch carries the management '
            "OS: its address can drop while the switch is rebuilt (`iovkit apply --yes --console`).</div>"
        )
    for b in plan.blockers:
        out.append(f'<div class="warnbox">Blocker: {e(b)}</div>')
    for w in plan.warnings:
        out.append(f'<p class="note">Warning: {e(w)}</p>')
    if plan.capacity:
        rows = [
            [e(c.nic), e(c.switch), num(c.vfs, "{:,}"), e(c.source + (" (estimate)" if c.estimate else ""))]
            for c in plan.capacity
        ]
        out.append("<h3>VF capacity</h3>" + table(("port", "switch", "VFs", "from"), rows, numeric=(2,)))
    rows = [
        [
            e(a.vm),
            e(a.adapter),
            e(a.switch),
            e(a.nic),
            num(a.vf, "{:,}"),
            num(a.iov_weight, "{:,}"),
            num(a.queue_pairs, "{:,}"),
            num(a.priority, "{:,}"),
        ]
        for a in plan.allocations
    ]
    out.append(
        "<h3>Allocations</h3>"
        + (
            table(
                ("VM", "adapter", "switch", "port", "VF", "IOV weight", "queue pairs", "priority"),
                rows,
                numeric=(4, 5, 6, 7),
            )
            if rows
            else '<p class="note">No adapter gets a VF.</p>'
        )
    )
    if plan.unfit:
        rows = [[e(u.vm), e(u.adapter), e(u.reason), e(u.moved_to)] for u in plan.unfit]
        out.append("<h3>Adapters that do not fit</h3>" + table(("VM", "adapter", "why", "moved to"), rows))
    steps = [[num(s.id, "{}"), e(step_title(s)), e(s.verification)] for s in plan.steps]
    out.append("<h3>Steps</h3>" + table(("#", "step", "verified by"), steps, numeric=(0,)))
    rollback = _rollback_script(plan)
    if rollback:
        out.append(
            "<h3>Rollback</h3><p class='note'>`iovkit rollback JOURNAL` undoes the finished steps last first; the "
            "same undo as a standalone script for change review:</p>"
            f"<details><summary>rollback script</summary><pre>{e(rollback)}</pre></details>"
        )
    return "".join(out)


def _rollback_script(plan: Any) -> str | None:
    from iovkit.plan import render

    try:
        if plan.platform == "hyperv":
            return render.render_powershell(plan)[1]
        if plan.platform == "linux":
            return render.render_shell(plan)[1]
    except Exception:  # a plan shape a renderer does not know: the step table above still stands
        return None
    return None


def _journal(path: str, state: Any, events: list[dict[str, Any]]) -> str:
    status = str(state.status or ("interrupted" if state.interrupted is not None else "running or cut off"))
    kind = {"completed": "v-ready", "rolled-back": "v-partial"}.get(status, "v-not-ready")
    rows = []
    for ev in events:
        if ev.get("event") in ("step-end", "undo-end", "end", "begin", "rollback-start"):
            rows.append(
                [
                    e(ev.get("time")),
                    e(ev.get("event")),
                    num(ev.get("step"), "{}"),
                    e(ev.get("phase")),
                    e(ev.get("result") or ev.get("status")),
                    e(ev.get("reason") or ""),
                ]
            )
    return (
        f"<h3>Apply journal <span class='note'>{e(path)}, plan {e(state.plan_id)}, host {e(state.host)}</span></h3>"
        f'<p class="verdict">{badge(status, kind)} {len(state.done)} step(s) done, {len(state.undone)} undone</p>'
        + table(("time (UTC)", "event", "step", "phase", "result", "reason"), rows[-60:], numeric=(2,))
    )


def measurements_section(report: Report) -> str:
    inp = report.inputs
    runs = list(inp.bench)
    if not runs and not inp.before:
        body = absent(
            "No bench result given: `iovkit bench --target VM:7777 -o before.json` (and after.json after the "
            "switch-over); pass them as INPUT, or as --before/--after for the comparison."
        )
        return section("measurements", "Measurements", body)
    out = [_run(path, run) for path, run in runs]
    if report.comparison is not None:
        out.append(_comparison(report))
    elif inp.before:
        out.append('<p class="note">No comparison: give --before and --after.</p>')
    return section("measurements", "Measurements", "".join(out))


def _run(path: str, run: Any) -> str:
    steps = list(run.steps)
    offered = [s.offered_pps for s in steps]
    kind = steps[0].latency_kind if steps else "rtt"
    knee = run.knee_pps
    markers = [(knee, f"knee {knee:,.0f}/s")] if knee is not None else []
    lat = svg.Chart(
        title=f"Latency ({kind}) against offered load",
        x_label="offered datagrams/s",
        y_label="µs (log scale)",
        series=[
            svg.Series("p50", offered, [s.latency_us.p50 for s in steps], dots=True),
            svg.Series("p99", offered, [s.latency_us.p99 for s in steps], dots=True),
            svg.Series("p99.9", offered, [s.latency_us.p99_9 for s in steps], dots=True),
        ],
        markers=markers,
        log_y=True,
        y_min=None,
    )
    loss = svg.Chart(
        title="Loss against offered load",
        x_label="offered datagrams/s",
        y_label="loss %",
        series=[svg.Series("loss %", offered, [s.loss_pct for s in steps], dots=True)],
        markers=markers,
        height=180,
    )
    rows = []
    guarded = False
    asked = False
    for s in steps:
        d = s.model_dump(mode="json", by_alias=True)
        guarded = guarded or any(d.get(k) is not None for k in ("steal_pct", "target_path", "invalid_because"))
        asked = asked or d.get("target_path") is not None
        rows.append(
            [
                num(s.offered_pps, "{:,.0f}"),
                num(s.received_pps, "{:,.0f}"),
                num(s.loss_pct, "{:.3f}"),
                num(s.latency_us.p50),
                num(s.latency_us.p99),
                num(s.latency_us.p99_9),
                num(s.cpu_us_per_packet, "{:.3f}"),
                e(_path_text(d.get("target_path"))),
                num(d.get("steal_pct")),
                e(d.get("invalid_because") or ("ok" if s.within_objective else f"over: {s.failed_because}")),
            ]
        )
    settings = run.settings
    head = (
        f"<h3>{e(settings.mode)} -> {e(settings.target)} <span class='note'>{e(path)}, {e(run.started)}, "
        f"{e(run.host.hostname)}</span></h3>"
        f"<p>Knee: <b>{'none (the first step broke the objective)' if knee is None else f'{knee:,.0f} datagrams/s'}"
        f"</b>; stopped: {e(run.stopped_because)}; objective: loss ≤ {num(settings.objective.max_loss_pct)} %, "
        f"p99 ≤ {num(settings.objective.max_p99_us, '{:,.0f}')} µs.</p>"
    )
    note = (
        (
            ""
            if asked
            else '<p class="note">Data path not asked: run bench with `--target-stats HOST:PORT` against an '
            "`iovkit relay --metrics` to record which path (VF or synthetic) carried each step.</p>"
        )
        if guarded
        else '<p class="note">No data-path or steal guard in this result: the target\'s data path was not asked '
        "(`iovkit bench --target-stats HOST:PORT` against an `iovkit relay --metrics`) and no steal time was "
        "measured, so a step cannot show whether traffic moved between the VF and the synthetic path.</p>"
    )
    return (
        head
        + svg.render(lat)
        + svg.render(loss)
        + table(
            (
                "offered/s",
                "received/s",
                "loss %",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
                "CPU µs/pkt",
                "data path",
                "steal %",
                "step",
            ),
            rows,
            numeric=(0, 1, 2, 3, 4, 5, 6, 8),
        )
        + note
    )


def _path_text(path: Any) -> str:
    """The target's data path during a step (bench --target-stats): the paths that carried it, changes, steal."""
    if not path:
        return "–"
    if not isinstance(path, dict):
        return str(path)[:80]
    if path.get("error"):
        return f"unknown ({path['error']})"
    paths = path.get("paths")
    text = ", ".join(map(str, paths)) if isinstance(paths, list) and paths else "no traffic seen"
    changes = path.get("path_changes")
    if changes:
        text += f"; {changes} change(s)"
    steal = path.get("steal_pct_max")
    if isinstance(steal, int | float):
        text += f"; target steal ≤ {steal:.1f} %"
    return text


def _comparison(report: Report) -> str:
    cmp = report.comparison
    assert cmp is not None
    inp = report.inputs
    overall = str(cmp.overall)
    rows = []

    def add(m: Any, rate: str) -> None:
        unit = " pts" if m.unit == "pct-points" else " %"
        change = "–" if m.delta_pct is None else f"{m.delta_pct:+.2f}{unit}"
        guide = "" if m.guide_pct is None else f"{m.guide_pct:+.0f} %: {'met' if m.meets_guide else 'not met'}"
        rows.append(
            [
                e(m.name),
                e(rate),
                num(m.before, "{:,.2f}"),
                num(m.after, "{:,.2f}"),
                e(change),
                f"±{m.noise_pct:.1f}",
                badge(str(m.call), "c-" + str(m.call).replace(" ", "-")),
                e(guide),
            ]
        )

    add(cmp.knee, "–")
    for p in cmp.rates:
        for m in p.metrics:
            add(m, f"{p.offered_pps:,.0f}")
    for m in cmp.summary[1:]:
        add(m, "all ok")
    before = [r for _, r in inp.before]
    after = [r for _, r in inp.after]
    series = []
    for label, runs, dashed in (("before", before, True), ("after", after, False)):
        for i, run in enumerate(runs):
            name = f"{label} p99" + (f" #{i + 1}" if len(runs) > 1 else "")
            series.append(
                svg.Series(
                    name,
                    [s.offered_pps for s in run.steps],
                    [s.latency_us.p99 for s in run.steps],
                    dashed=dashed,
                    dots=True,
                    color="#7f7f7f" if label == "before" else "#1f77b4",
                )
            )
    chart = svg.Chart(
        title="p99 latency before and after",
        x_label="offered datagrams/s",
        y_label="µs (log scale)",
        series=series,
        log_y=True,
        y_min=None,
    )
    warnings = "".join(f'<p class="note">Warning: {e(w)}</p>' for w in cmp.warnings)
    return (
        f"<h3>Before and after <span class='note'>{len(before)} run(s) before, {len(after)} after; against the "
        f"source's figures: {e(GUIDE)}</span></h3>"
        f'<p class="verdict">after is {badge(overall, "c-" + overall.replace(" ", "-"))}</p>'
        + svg.render(chart)
        + table(("metric", "rate/s", "before", "after", "change", "noise", "call", "guide"), rows, numeric=(2, 3, 4, 5))
        + warnings
    )
