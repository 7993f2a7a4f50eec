"""Time windows: where in a recording one core was saturated, for how long, and at what packet rate.

A sample meets the single-core condition when one core is saturated (network work >= 90%, or run time >= 90%
with network work close to it) while the other cores average below 75%. A window is a run of such samples
(gaps of at most two samples and 10 s bridged) lasting at least the minimum (default 30 s; a recording or live
sample shorter than that is judged as one window of its own length). Bucketed mean and max series let tables and
sparklines show peaks an average would hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np

from iovkit.diagnose.model import median
from iovkit.diagnose.view import View

HOT_PCT = 90.0  # a core this busy in network work (interrupt/DPC/softirq) is saturated
ROOM_PCT = 75.0  # "the others have room": their mean busy is below this
CLOSE_SHARE = 0.6  # interrupt+DPC "close to" run time: at least this share of it
MIN_WINDOW_S = 30.0
GAP_SAMPLES = 2
GAP_S = 10.0
BUCKETS = 30


@dataclass
class Window:
    """One sustained single-core window, with its times and the numbers inside it."""

    core: str
    first: int  # sample indexes, inclusive
    last: int
    start_utc: float
    end_utc: float
    utc_offset_start: float | None  # seconds east of UTC of the host's wall clock, None when unknown
    utc_offset_end: float | None
    duration_s: float
    busy_mean: float | None
    busy_max: float | None
    net_mean: float | None
    net_max: float | None
    others_busy_mean: float | None
    host_pps_mean: float | None = None
    host_pps_max: float | None = None
    evidence: str = "network"  # "network" | "run-time only"
    estimate: dict[str, Any] = field(default_factory=dict)
    utc_known: bool = True  # False: the times are the host's wall clock, its time zone not recorded

    def times(self) -> tuple[str | None, str | None, str | None, str | None]:
        """(start local, end local, start UTC, end UTC) as ISO 8601; None where the recording cannot say."""
        if not self.utc_known:
            return wall(self.start_utc), wall(self.end_utc), None, None
        return (
            iso(self.start_utc, self.utc_offset_start),
            iso(self.end_utc, self.utc_offset_end),
            iso(self.start_utc, 0.0),
            iso(self.end_utc, 0.0),
        )

    @property
    def load(self) -> float:
        return self.net_mean if self.net_mean is not None and self.evidence == "network" else (self.busy_mean or 0.0)

    def to_json(self) -> dict[str, Any]:
        s_l, e_l, s_u, e_u = self.times()
        return {
            "core": self.core,
            "start_utc": s_u,
            "end_utc": e_u,
            "start_local": s_l,
            "end_local": e_l,
            "duration_s": round(self.duration_s, 1),
            "samples": self.last - self.first + 1,
            "busy_mean_pct": _r(self.busy_mean),
            "busy_max_pct": _r(self.busy_max),
            "net_mean_pct": _r(self.net_mean),
            "net_max_pct": _r(self.net_max),
            "others_busy_mean_pct": _r(self.others_busy_mean),
            "host_pps_mean": _r(self.host_pps_mean, 0),
            "host_pps_max": _r(self.host_pps_max, 0),
            "evidence": self.evidence,
            "estimate": self.estimate,
        }


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(float(v), nd)


def iso(t: float, offset: float | None) -> str | None:
    """ISO 8601 time; UTC with `Z`, local with its offset; None when the local offset is unknown."""
    if offset is None:
        return None
    if offset == 0.0:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return datetime.fromtimestamp(t, timezone(timedelta(seconds=offset))).isoformat(timespec="seconds")


def wall(t: float) -> str:
    """A wall-clock time without a zone (the recording did not say which)."""
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _nanmean(a: np.ndarray) -> float | None:
    ok = ~np.isnan(a)
    return float(a[ok].mean()) if ok.any() else None


def _nanmax(a: np.ndarray) -> float | None:
    ok = ~np.isnan(a)
    return float(a[ok].max()) if ok.any() else None


def saturated(busy: np.ndarray | None, net: np.ndarray | None, n: int) -> tuple[np.ndarray, str]:
    """Per sample: is this core saturated, and on what evidence ("network" or "run-time only")."""
    with np.errstate(invalid="ignore"):  # NaN compares False: a missing sample never meets the condition
        if net is not None:
            hot = net >= HOT_PCT
            if busy is not None:
                hot |= (busy >= HOT_PCT) & (net >= CLOSE_SHARE * busy)
            return hot, "network"
        if busy is not None:
            return busy >= HOT_PCT, "run-time only"
    return np.zeros(n, dtype=bool), ""


def others_room(view: View) -> dict[str, np.ndarray]:
    """Per core, per sample: the other cores' mean busy (or load) is below ROOM_PCT. One pass over all cores."""
    rows = {c.name: (c.busy if c.busy is not None else c.load()) for c in view.cores}
    got = {k: v for k, v in rows.items() if v is not None}
    n = len(view.times)
    if not got:
        return {c.name: np.zeros(n, dtype=bool) for c in view.cores}
    present = {k: ~np.isnan(v) for k, v in got.items()}
    total = np.zeros(n)
    count = np.zeros(n)
    for k, v in got.items():
        total += np.where(present[k], v, 0.0)
        count += present[k]
    out: dict[str, np.ndarray] = {}
    for c in view.cores:
        t, m = total, count
        if c.name in got:
            t = total - np.where(present[c.name], got[c.name], 0.0)
            m = count - present[c.name]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[c.name] = (m > 0) & (t / np.maximum(m, 1) < ROOM_PCT)
    return out


def runs(flag: np.ndarray, intervals: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True, bridging gaps of at most GAP_SAMPLES samples and GAP_S seconds."""
    idx = np.flatnonzero(flag)
    if not len(idx):
        return []
    out: list[tuple[int, int]] = []
    start = prev = int(idx[0])
    for i in idx[1:]:
        i = int(i)
        gap = i - prev - 1
        if gap > GAP_SAMPLES or (gap and float(intervals[prev + 1 : i].sum()) > GAP_S):
            out.append((start, prev))
            start = i
        prev = i
    out.append((start, prev))
    return out


def min_window(view: View, wanted: float | None) -> float:
    """The minimum window: `wanted` (default 30 s), or the whole recording when it is shorter."""
    want = MIN_WINDOW_S if wanted is None else wanted
    return min(want, view.span)


def find(view: View, min_s: float, offsets: np.ndarray | None, utc_known: bool = True) -> list[Window]:
    """Every sustained single-core window, in time order."""
    n = len(view.times)
    out: list[Window] = []
    if n == 0 or len(view.cores) < 2:
        return out
    step = median(view.intervals)
    room = others_room(view)
    for c in view.cores:
        hot, evidence = saturated(c.busy, c.net, n)
        flag = hot & room[c.name]
        for a, b in runs(flag, view.intervals):
            dur = float(view.intervals[a : b + 1].sum())
            if dur + 0.5 * step < min_s:
                continue
            sl = slice(a, b + 1)
            others = [o.busy if o.busy is not None else o.load() for o in view.cores if o is not c]
            ob = [x[sl] for x in others if x is not None]
            om = _nanmean(np.concatenate(ob)) if ob else None
            host = view.host_pps[sl] if view.host_pps is not None else None
            out.append(
                Window(
                    core=c.name,
                    first=a,
                    last=b,
                    start_utc=float(view.times[a] - view.intervals[a]),
                    end_utc=float(view.times[b]),
                    utc_offset_start=float(offsets[a]) if offsets is not None else None,
                    utc_offset_end=float(offsets[b]) if offsets is not None else None,
                    duration_s=dur,
                    busy_mean=_nanmean(c.busy[sl]) if c.busy is not None else None,
                    busy_max=_nanmax(c.busy[sl]) if c.busy is not None else None,
                    net_mean=_nanmean(c.net[sl]) if c.net is not None else None,
                    net_max=_nanmax(c.net[sl]) if c.net is not None else None,
                    others_busy_mean=om,
                    host_pps_mean=_nanmean(host) if host is not None else None,
                    host_pps_max=_nanmax(host) if host is not None else None,
                    evidence=evidence,
                    utc_known=utc_known,
                )
            )
    out.sort(key=lambda w: w.start_utc)
    return out


def worst(windows: list[Window]) -> Window | None:
    """The window with the highest load, the longer one on a tie."""
    return max(windows, key=lambda w: (round(w.load, 1), w.duration_s)) if windows else None


def buckets(values: np.ndarray | None, n: int = BUCKETS) -> tuple[list[float | None], list[float | None]]:
    """Mean and max of each of n equal slices of the samples (fewer when there are fewer samples).

    The slices of np.array_split, summed a block of equal slices at a time (one reduction per block instead of
    four per slice: a day of samples, per core and series); each slice's sum is the one numpy gives that slice
    alone, and a slice with a missing sample is averaged on its own."""
    if values is None or not len(values):
        return [], []
    parts = min(n, len(values))
    size, extra = divmod(len(values), parts)
    cut = extra * (size + 1)  # np.array_split: the first `extra` slices hold one sample more
    blocks = [b for b in (values[:cut].reshape(extra, size + 1), values[cut:].reshape(parts - extra, size)) if len(b)]
    sums = np.concatenate([b.sum(axis=1) for b in blocks])
    tops = np.concatenate([np.fmax.reduce(b, axis=1) for b in blocks])  # NaN only where every sample is missing
    missing = np.concatenate([np.isnan(b).sum(axis=1) for b in blocks])
    lengths = [size + 1] * extra + [size] * (parts - extra)
    means: list[float | None] = []
    maxes: list[float | None] = []
    start = 0
    for i, length in enumerate(lengths):
        if not missing[i]:
            means.append(float(sums[i] / length))
        else:
            means.append(_nanmean(values[start : start + length]))
        maxes.append(None if missing[i] == length else float(tops[i]))
        start += length
    return means, maxes
