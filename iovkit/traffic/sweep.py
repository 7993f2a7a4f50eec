"""Sweep: raise the offered rate step by step until the objective breaks, and name the knee.

Why separate from the generator: the stepping and judging are pure (rates in, verdicts out) and tested
without sockets; `run_sweep` composes them with any step runner (the load generator, or a fake in tests).
The knee is the highest offered rate whose step met the objective (loss, p99 and "the sender kept up"),
below the first step that did not.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil

from iovkit import __version__
from iovkit.errors import InputError
from iovkit.traffic import pathwatch
from iovkit.traffic.results import (
    BenchSettings,
    HostFacts,
    Latency,
    Objective,
    RateSummary,
    StepMeasurement,
    StepResult,
    SweepResult,
    host_facts,
    now,
)

StepRunner = Callable[[float], StepMeasurement]
"""Runs one step at the given offered rate (datagrams/s) and returns what it measured."""


def rates(start: float, factor: float, max_rate: float | None, max_steps: int) -> Iterator[float]:
    """Geometric offered rates: start, start*factor, ... up to max_rate (included once) and max_steps."""
    if start <= 0:
        raise InputError(f"the rate must be above 0 datagrams/s (got {start:g})", field="--rate")
    if factor <= 1.0:
        raise InputError(f"the step factor must be above 1 (got {factor:g})", field="--step-factor")
    if max_steps < 1:
        raise InputError(f"at least one step is needed (got {max_steps})", field="--steps")
    if max_rate is not None and max_rate < start:
        raise InputError(f"--max-rate {max_rate:g} is below the start rate {start:g}", field="--max-rate")
    rate = start
    for _ in range(max_steps):
        if max_rate is not None and rate >= max_rate:
            yield float(max_rate)
            return
        yield float(round(rate))
        rate *= factor


def judge(m: StepMeasurement, objective: Objective) -> str | None:
    """None when the step met the objective, else the reason it did not (one short phrase)."""
    if m.sent == 0:
        # open loop: a sender that cannot keep up works through the warm-up's send times first
        return "nothing was sent in the measured window (the sender fell behind: a lower rate or more --senders)"
    achieved = m.sent / m.duration_s if m.duration_s > 0 else 0.0
    if achieved < objective.min_achieved_ratio * m.offered_pps:
        return f"sender reached only {achieved:,.0f} of {m.offered_pps:,.0f}/s"
    if m.loss_pct > objective.max_loss_pct:
        return f"loss {m.loss_pct:.2f}% > {objective.max_loss_pct:g}%"
    if m.latency_kind == "none":  # one-way sending: nothing comes back to time
        return None
    p99 = m.latency_us.get("p99")
    if p99 is None:
        return "no latency samples"
    if p99 > objective.max_p99_us:
        return f"p99 {p99:,.0f} us > {objective.max_p99_us:,.0f} us"
    return None


def knee(steps: list[StepResult], rate_max: bool = False) -> float | None:
    """Highest offered rate within the objective, below the first rate none of whose attempts met it (a miss
    that a repeat at the same rate met does not end the sweep)."""
    best: float | None = None
    for summary in summarize(steps, rate_max):
        if not summary.within_objective:
            break
        best = summary.offered_pps if best is None else max(best, summary.offered_pps)
    return best


PDR_LOSS_PCT = 0.5  # FD.io CSIT's partial drop rate


def drop_rate(steps: list[StepResult], max_loss_pct: float, min_achieved_ratio: float) -> float | None:
    """Highest offered rate at which an attempt lost at most `max_loss_pct` with the sender keeping up (NDR at
    0, PDR at 0.5 %), whatever its latency: the rate question, apart from the latency knee."""
    ok = [
        s.offered_pps
        for s in steps
        if s.sent > 0 and s.loss_pct <= max_loss_pct and s.achieved_pps >= min_achieved_ratio * s.offered_pps
    ]
    return max(ok) if ok else None


def summarize(steps: list[StepResult], rate_max: bool = False) -> list[RateSummary]:
    """One summary per offered rate, in the order the rates were first offered (`--rate max`: one for all, at
    the highest rate an attempt that met the objective reached, else the highest reached)."""
    groups: dict[float, list[StepResult]] = {}
    for s in steps:
        groups.setdefault(-1.0 if rate_max else s.offered_pps, []).append(s)
    out = []
    for rate, group in groups.items():
        p99s = [s.latency_us.p99 for s in group if s.latency_us.p99 is not None]
        good = [s.offered_pps for s in group if s.within_objective] or [s.offered_pps for s in group]
        out.append(
            RateSummary(
                offered_pps=max(good) if rate_max else rate,
                attempts=len(group),
                within_objective=any(s.within_objective for s in group),
                loss_pct_min=min(s.loss_pct for s in group),
                loss_pct_max=max(s.loss_pct for s in group),
                received_pps_min=min(s.received_pps for s in group),
                received_pps_max=max(s.received_pps for s in group),
                p99_us_min=min(p99s) if p99s else None,
                p99_us_max=max(p99s) if p99s else None,
            )
        )
    return out


class CpuMeter:
    """CPU use between start() and stop(), from psutil: per core (host-wide, generator and target alike) and
    of our own processes (this one, its reaped sender children, and `pids`, e.g. a local relay's workers)."""

    def __init__(self, pids: list[int] | None = None) -> None:
        self.pids = pids or []
        self._t0: list[Any] = []
        self._w0 = 0.0
        self._p0 = 0.0

    def _proc_seconds(self) -> float:
        t = os.times()
        total = t.user + t.system + t.children_user + t.children_system
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                c = psutil.Process(pid).cpu_times()
                total += c.user + c.system
        return total

    def start(self) -> None:
        self._t0 = psutil.cpu_times(percpu=True)
        self._w0 = time.monotonic()
        self._p0 = self._proc_seconds()

    def stop(self) -> tuple[list[float], float, float]:
        """(busy % per core, busy CPU seconds over all cores, CPU seconds of our processes)."""
        t1 = psutil.cpu_times(percpu=True)
        proc = max(0.0, self._proc_seconds() - self._p0)
        wall = max(time.monotonic() - self._w0, 1e-9)
        per_core: list[float] = []
        busy_total = 0.0
        for a, b in zip(self._t0, t1, strict=False):
            idle = (b.idle - a.idle) + (getattr(b, "iowait", 0.0) - getattr(a, "iowait", 0.0))
            total = sum(b) - sum(a)
            busy = max(0.0, total - idle)
            busy_total += busy
            per_core.append(round(min(100.0, 100.0 * busy / wall), 1))
        return per_core, busy_total, proc


def to_step(m: StepMeasurement, objective: Objective, cpu: tuple[list[float], float, float] | None) -> StepResult:
    """A judged StepResult from a measurement and the CPU it cost."""
    reason = judge(m, objective)
    per_core, busy, proc = cpu if cpu is not None else ([], None, None)
    handled = m.sent + m.received
    return StepResult(
        offered_pps=m.offered_pps,
        achieved_pps=round(m.sent / m.duration_s, 1) if m.duration_s > 0 else 0.0,
        received_pps=round(m.received / m.duration_s, 1) if m.duration_s > 0 else 0.0,
        sent=m.sent,
        received=m.received,
        expected=m.expected,
        lost=m.lost,
        loss_pct=round(m.loss_pct, 4),
        reordered=m.reordered,
        duplicates=m.duplicates,
        jitter_us=m.jitter_us,
        latency_kind=m.latency_kind if m.latency_kind in ("one-way", "none") else "rtt",
        latency_us=Latency.model_validate(m.latency_us),
        latency_from_send_us=None if m.latency_from_send_us is None else Latency.model_validate(m.latency_from_send_us),
        histogram_from_send=m.histogram_from_send,
        latency_out_of_range=m.latency_out_of_range,
        kernel_timestamps=m.kernel_timestamps,
        send_lag_max_us=round(m.send_lag_max_us, 1),
        duration_s=round(m.duration_s, 4),
        cpu_per_core_pct=per_core,
        cpu_busy_seconds=None if busy is None else round(busy, 4),
        cpu_us_per_packet=None if busy is None or handled == 0 else round(busy * 1e6 / handled, 3),
        process_cpu_seconds=None if proc is None else round(proc, 4),
        process_cpu_us_per_packet=None if proc is None or handled == 0 else round(proc * 1e6 / handled, 3),
        histogram=m.histogram,
        within_objective=reason is None,
        failed_because=reason,
    )


def run_sweep(
    settings: BenchSettings,
    run_step: StepRunner,
    *,
    on_step: Callable[[StepResult], None] | None = None,
    host: HostFacts | None = None,
    pids: list[int] | None = None,
    target_stats: pathwatch.Query | None = None,
) -> SweepResult:
    """Step the offered rate until the objective breaks (or the rates run out) and record every step.

    Each step also records steal time, and with `target_stats` (a relay's stats query) the target's data path;
    `pathwatch.guard_step` marks a step invalid when the path changed or steal passed the settings' limit.
    """
    result = SweepResult(
        tool_version=__version__,
        started=now(),
        settings=settings,
        host=host or host_facts(),
    )
    result.stopped_because = "reached the last step"
    offered = (
        [math.inf]
        if settings.rate_max
        else rates(settings.start_rate, settings.step_factor, settings.max_rate, settings.max_steps)
    )
    rate = settings.start_rate
    try:
        for rate in offered:
            for attempt in range(1, settings.repeats + 1):
                meter = CpuMeter(pids)
                seq, cpu0 = pathwatch.target_seq(target_stats), pathwatch.read_cpu()
                meter.start()
                m = run_step(rate)
                step = to_step(m, settings.objective, meter.stop())
                pathwatch.guard_step(step, cpu0, pathwatch.read_cpu(), target_stats, seq, settings.max_steal_pct)
                step.attempt = attempt
                result.steps.append(step)
                if on_step is not None:
                    on_step(step)
                if step.within_objective:
                    break
            if not step.within_objective:
                # every attempt at this rate missed: on a loaded machine one noisy step alone does not end it
                result.stopped_because = f"{rate:,.0f}/s: {step.failed_because} ({settings.repeats} attempts)"
                break
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM, which the CLI turns into one) keeps the finished steps: a long sweep stopped by
        # hand still leaves a result. The knee of an interrupted sweep is only a lower bound, and says so.
        result.interrupted = True
        result.stopped_because = f"interrupted while offering {rate:,.0f}/s"
    finish(result)
    return result


def finish(result: SweepResult) -> None:
    """Knee, NDR, PDR and the per-rate summaries from the recorded steps."""
    ratio = result.settings.objective.min_achieved_ratio
    rate_max = result.settings.rate_max
    result.knee_pps = knee(result.steps, rate_max)
    result.ndr_pps = drop_rate(result.steps, 0.0, ratio)
    result.pdr_pps = drop_rate(result.steps, PDR_LOSS_PCT, ratio)
    result.rates = summarize(result.steps, rate_max)
