"""Compare bench runs before and after a change: knee, latency at matched rates, loss, CPU per packet.

Why repeat-aware: run-to-run variance on one host is typically 5-10 % (coturn's notes), so a single pair of
runs cannot tell a 5 % gain from noise. Each side may hold several runs; the noise band of a metric is the
larger of its spread across runs on either side and a floor (default 5 %). A difference inside the band is
called "within noise", not better or worse. Latency at a matched rate merges the HDR histograms of all
runs on a side (exact), never averages percentiles.

The verdict is set against the guide's figures for SR-IOV: up to 50 % less CPU, 50 % less latency and 30 %
more bandwidth (here: packet rate at the knee).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Literal

from iovkit.errors import InputError
from iovkit.traffic.histo import LatencyHistogram, decode
from iovkit.traffic.results import StepResult, SweepResult

Call = Literal["better", "worse", "within noise", "n/a"]
Overall = Literal["better", "worse", "mixed", "within noise", "n/a"]

GUIDE = {"cpu_pct": -50.0, "latency_pct": -50.0, "rate_pct": 30.0}
"""The guide's figures as relative changes: CPU per packet, p99 latency, knee rate."""

DEFAULT_NOISE_PCT = 5.0
RATE_MATCH_TOLERANCE = 0.01


@dataclass
class Metric:
    """One compared quantity: both sides' values, the relative change and its call."""

    name: str
    unit: str
    before: float | None
    after: float | None
    delta_pct: float | None
    noise_pct: float
    call: Call
    lower_is_better: bool
    guide_pct: float | None = None
    meets_guide: bool | None = None


@dataclass
class RatePoint:
    """Latency/loss/CPU at one offered rate present in every run of both sides."""

    offered_pps: float
    before: dict[str, float | None]
    after: dict[str, float | None]
    metrics: list[Metric]
    both_within_objective: bool = True


@dataclass
class Comparison:
    before_runs: int
    after_runs: int
    knee: Metric
    rates: list[RatePoint]
    summary: list[Metric]
    overall: Overall
    warnings: list[str] = field(default_factory=list)
    after_on_vf: bool | None = None  # did any AFTER step run on a VF (the target relay's samples); None: unknown

    @property
    def worse(self) -> bool:
        return self.overall == "worse"

    def as_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


def _rel(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return 100.0 * (after - before) / before


def _spread_pct(values: list[float]) -> float:
    """Half the min-max range as % of the mean: the run-to-run noise of one side."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return 0.0
    mean = statistics.fmean(vals)
    return 0.0 if mean == 0 else 100.0 * (max(vals) - min(vals)) / 2.0 / abs(mean)


def _call(delta: float | None, noise: float, lower_is_better: bool) -> Call:
    if delta is None:
        return "n/a"
    if abs(delta) <= noise:
        return "within noise"
    improved = delta < 0 if lower_is_better else delta > 0
    return "better" if improved else "worse"


def metric(
    name: str,
    unit: str,
    before: list[float | None],
    after: list[float | None],
    *,
    lower_is_better: bool,
    noise_floor: float,
    guide_pct: float | None = None,
    pooled: tuple[float | None, float | None] | None = None,
) -> Metric:
    """Compare one quantity measured once per run on each side (or pooled values given directly)."""
    b_vals = [v for v in before if v is not None]
    a_vals = [v for v in after if v is not None]
    if pooled is not None:
        b, a = pooled
    else:
        b = statistics.fmean(b_vals) if b_vals else None
        a = statistics.fmean(a_vals) if a_vals else None
    noise = max(noise_floor, _spread_pct(b_vals), _spread_pct(a_vals))
    delta = _rel(b, a)
    meets: bool | None = None
    if guide_pct is not None and delta is not None:
        meets = delta <= guide_pct if guide_pct < 0 else delta >= guide_pct
    return Metric(
        name=name,
        unit=unit,
        before=None if b is None else round(b, 3),
        after=None if a is None else round(a, 3),
        delta_pct=None if delta is None else round(delta, 2),
        noise_pct=round(noise, 2),
        call=_call(delta, noise, lower_is_better),
        lower_is_better=lower_is_better,
        guide_pct=guide_pct,
        meets_guide=meets,
    )


def _matched_rates(runs: list[SweepResult]) -> list[float]:
    """Offered rates present (within 1 %) in every run."""
    if not runs:
        return []
    common: list[float] = []
    for s in runs[0].steps:
        r = s.offered_pps
        if any(abs(c - r) <= RATE_MATCH_TOLERANCE * r for c in common):
            continue  # a repeated attempt at a rate already listed (the sweep retries a missed step)
        if all(any(abs(t.offered_pps - r) <= RATE_MATCH_TOLERANCE * r for t in run.steps) for run in runs[1:]):
            common.append(r)
    return common


def _step_at(run: SweepResult, rate: float) -> StepResult:
    return min(run.steps, key=lambda s: abs(s.offered_pps - rate))


def _merged(steps: list[StepResult], where: str) -> LatencyHistogram:
    total = LatencyHistogram()
    for s in steps:
        total.merge(decode(s.histogram, where=where))
    return total


def _side_at(runs: list[SweepResult], rate: float, where: str) -> tuple[dict[str, float | None], list[StepResult]]:
    steps = [_step_at(r, rate) for r in runs]
    h = _merged(steps, where)
    lost = sum(s.lost for s in steps)
    expected = sum(s.expected for s in steps)
    cpu = [s.cpu_us_per_packet for s in steps if s.cpu_us_per_packet is not None]
    return (
        {
            "p50": h.value_at_us(50),
            "p99": h.value_at_us(99),
            "p99.9": h.value_at_us(99.9),
            "loss_pct": 100.0 * lost / expected if expected else None,
            "cpu_us_per_packet": statistics.fmean(cpu) if cpu else None,
        },
        steps,
    )


def compare(
    before: list[SweepResult], after: list[SweepResult], *, noise_floor_pct: float = DEFAULT_NOISE_PCT
) -> Comparison:
    """The full comparison; raises InputError when the sides cannot be compared at all."""
    if not before or not after:
        raise InputError("compare needs at least one run on each side", field="--after")
    warnings: list[str] = []
    kinds = {r.settings.mode for r in before + after}
    if len(kinds) > 1:
        warnings.append(f"runs mix traffic modes ({', '.join(sorted(kinds))}); latency is not like for like")
    payloads = {r.settings.payload for r in before + after}
    if len(payloads) > 1:
        warnings.append(f"runs use different payload sizes ({', '.join(map(str, sorted(payloads)))} B)")

    # A run with no knee met the objective at no rate: its knee counts as 0 (worse than any found knee).
    any_knee = any(r.knee_pps is not None for r in before + after)
    knee_m = metric(
        "knee",
        "pps",
        [r.knee_pps if r.knee_pps is not None or not any_knee else 0.0 for r in before],
        [r.knee_pps if r.knee_pps is not None or not any_knee else 0.0 for r in after],
        lower_is_better=False,
        noise_floor=noise_floor_pct,
        guide_pct=GUIDE["rate_pct"],
    )
    if any(r.knee_pps is None for r in before + after):
        warnings.append("a run has no knee (its first step already failed the objective)")
    if any(r.interrupted for r in before + after):
        warnings.append("a run was interrupted before its sweep ended: its knee is only a lower bound")

    points: list[RatePoint] = []
    for rate in _matched_rates(before + after):
        b_vals, b_steps = _side_at(before, rate, "before")
        a_vals, a_steps = _side_at(after, rate, "after")
        ms: list[Metric] = []
        for key, unit in (("p50", "us"), ("p99", "us"), ("p99.9", "us")):
            ms.append(
                metric(
                    key,
                    unit,
                    [s.latency_us.model_dump(by_alias=True).get(key) for s in b_steps],
                    [s.latency_us.model_dump(by_alias=True).get(key) for s in a_steps],
                    lower_is_better=True,
                    noise_floor=noise_floor_pct,
                    guide_pct=GUIDE["latency_pct"] if key == "p99" else None,
                    pooled=(b_vals[key], a_vals[key]),
                )
            )
        ms.append(_loss_metric(b_vals["loss_pct"], a_vals["loss_pct"]))
        ms.append(
            metric(
                "cpu_us_per_packet",
                "us",
                [s.cpu_us_per_packet for s in b_steps],
                [s.cpu_us_per_packet for s in a_steps],
                lower_is_better=True,
                noise_floor=noise_floor_pct,
                guide_pct=GUIDE["cpu_pct"],
            )
        )
        within = all(s.within_objective for s in b_steps + a_steps)
        points.append(
            RatePoint(offered_pps=rate, before=b_vals, after=a_vals, metrics=ms, both_within_objective=within)
        )
    if not points:
        warnings.append("no offered rate is common to every run: latency, loss and CPU are not compared")

    summary = [knee_m, *_summaries(points, noise_floor_pct)]
    after_on_vf = _path_warnings(before, after, warnings)
    return Comparison(
        before_runs=len(before),
        after_runs=len(after),
        knee=knee_m,
        rates=points,
        summary=summary,
        overall=_overall(summary),
        warnings=warnings,
        after_on_vf=after_on_vf,
    )


def _path_warnings(before: list[SweepResult], after: list[SweepResult], warnings: list[str]) -> bool | None:
    """Flag an AFTER that never ran on a VF, and invalid steps (path changed or steal) on either side."""
    for side, runs in (("BEFORE", before), ("AFTER", after)):
        bad = [s for r in runs for s in r.steps if s.invalid_because]
        if bad:
            warnings.append(f"{len(bad)} {side} step(s) are invalid: {bad[0].invalid_because}")
    recorded = [s.target_path for r in after for s in r.steps if s.target_path and "paths" in s.target_path]
    if not recorded:
        return None
    paths = list(dict.fromkeys(p for t in recorded for p in t["paths"]))
    if not paths:  # the relay saw no interface carry the steps (loopback): no answer either way
        return None
    if any(p.startswith("vf:") for p in paths):
        return True
    warnings.append(
        f"AFTER never ran on a VF: the target's traffic went over {', '.join(paths)} "
        "(the switch-over did not take effect in the guest; run iovkit doctor inside the VM)"
    )
    return False


def _loss_metric(before: float | None, after: float | None) -> Metric:
    """Loss is compared in percentage points (relative change of ~0 % loss is meaningless)."""
    if before is None or after is None:
        return Metric("loss", "pct-points", before, after, None, 0.0, "n/a", True)
    delta = after - before
    noise = max(0.1, 0.1 * max(before, after))  # 0.1 point, or 10 % of the larger loss
    call: Call = "within noise" if abs(delta) <= noise else ("better" if delta < 0 else "worse")
    return Metric("loss", "pct-points", round(before, 4), round(after, 4), round(delta, 4), round(noise, 3), call, True)


def _summaries(points: list[RatePoint], noise_floor: float) -> list[Metric]:
    """p99 and CPU per packet summarised over the matched rates where both sides met their objective.

    Past the knee, latency is queueing and says more about the knee than about the path; those rates still
    show in `rates`, and the knee metric carries the capacity change.
    """
    out: list[Metric] = []
    usable = [p for p in points if p.both_within_objective] or points
    for key, guide in (("p99", GUIDE["latency_pct"]), ("cpu_us_per_packet", GUIDE["cpu_pct"])):
        deltas = [m for p in usable for m in p.metrics if m.name == key and m.delta_pct is not None]
        if not deltas:
            continue
        med = statistics.median(m.delta_pct for m in deltas if m.delta_pct is not None)
        noise = max(noise_floor, statistics.median(m.noise_pct for m in deltas))
        calls = {m.call for m in deltas}
        call: Call
        if calls == {"worse"} or (med > noise and "better" not in calls):
            call = "worse"
        elif calls == {"better"} or (med < -noise and "worse" not in calls):
            call = "better"
        else:
            call = "within noise"
        meets = med <= guide
        out.append(
            Metric(
                f"{key} (median over {len(deltas)} rates)",
                "%",
                None,
                None,
                round(med, 2),
                round(noise, 2),
                call,
                True,
                guide,
                meets,
            )
        )
    return out


def _overall(summary: list[Metric]) -> Overall:
    """From the knee and p99 only: CPU per packet is shown and set against the guide, but host-wide CPU on the
    generator's host is easily moved by other work, so it does not decide the verdict."""
    calls = [m.call for m in summary if m.call != "n/a" and not m.name.startswith("cpu")]
    if not calls:
        return "n/a"
    worse, better = "worse" in calls, "better" in calls
    if worse and better:
        return "mixed"
    if worse:
        return "worse"
    if better:
        return "better"
    return "within noise"
