"""A counter recording: counter -> instance -> one value per timestamp.

Every input (PDH CSV, Get-Counter JSON, the live /proc sampler) is turned into this one shape, so detection
never knows where the numbers came from. Keys are lower-case English `object\\counter` (Get-Counter lower-cases
paths, localized names are mapped to English on reading); instances are lower-case too, "" when a counter has
none. Values are rates or percentages per interval. A series is a float numpy array (NaN = a missing sample,
PDH's `" "` cell) once read from a file, or a list with None while the live sampler builds it; `arr()` gives
the array either way, so a day of 1 s samples stays a few tens of MB.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iovkit.errors import InputError

RECORDING_MARK = "iovkit-recording"
RECORDING_VERSION = 1

Values = list[float | None]
Series = np.ndarray | Values


def median(values: Any) -> float:
    """np.median's value (NaN if any value is NaN) without its check for masked arrays, which imports numpy.ma:
    a fifth of numpy's import time on every diagnose run."""
    a = np.asarray(values, dtype=float).ravel()
    n = a.size
    if n == 0 or np.isnan(a).any():
        return math.nan
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    p = np.partition(a, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2.0)


def key(obj: str, counter: str) -> str:
    """The normalised counter key: `processor\\% interrupt time`."""
    return f"{obj.strip().lower()}\\{counter.strip().lower()}"


def arr(values: Series) -> np.ndarray:
    """A float array of a series; None becomes NaN."""
    return np.asarray(values, dtype=float)


@dataclass
class ClockEvent:
    """The wall clock of the recording jumped between two samples (a DST change, or a clock set)."""

    index: int  # first sample after the jump
    kind: str  # "dst-start" | "dst-end" | "jump"
    delta_s: float  # how far the wall clock moved beyond the sample interval

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "delta_s": round(self.delta_s, 3)}


@dataclass
class Recording:
    """Samples of many counters taken at the same timestamps (UTC epoch seconds, or relative)."""

    source: str  # "pdh-csv" | "get-counter" | "procfs"
    timestamps: Series = field(default_factory=list)
    counters: dict[str, dict[str, Series]] = field(default_factory=dict)
    host: str | None = None
    timezone: str | None = None
    path: str | None = None
    # seconds to add to a UTC timestamp to get the host's wall clock, per sample (None: local time unknown)
    utc_offsets: Series | None = None
    clock_events: list[ClockEvent] = field(default_factory=list)
    # objects in the file whose names iovkit does not know in any language it maps (see names.py)
    unrecognized: list[str] = field(default_factory=list)
    language: str | None = None  # the display language the counter names were recorded in, when not English
    # False when the file gives the host's wall clock without its time zone (typeperf's stdout header has none):
    # timestamps are then that wall clock read as if UTC, and no UTC time is claimed
    utc_known: bool = True

    def series(self, counter_key: str) -> dict[str, Series]:
        """All instances of one counter (empty when the recording lacks it)."""
        return self.counters.get(counter_key, {})

    def first(self, *keys: str) -> tuple[str, dict[str, Series]] | None:
        """The first of several alternative counters that the recording has (e.g. `.../sec` or not)."""
        for k in keys:
            if self.counters.get(k):
                return k, self.counters[k]
        return None

    def put(self, counter_key: str, instance: str, index: int, value: float | None) -> None:
        """Set one sample of a list-built recording, growing the series with None up to the sample count."""
        inst = self.counters.setdefault(counter_key, {}).setdefault(instance.lower(), [])
        assert isinstance(inst, list)
        while len(inst) < len(self.timestamps):
            inst.append(None)
        if index < len(inst):
            inst[index] = value

    def pad(self) -> None:
        """Make every list series as long as the timestamp list."""
        n = len(self.timestamps)
        for insts in self.counters.values():
            for vals in insts.values():
                if isinstance(vals, list):
                    vals.extend([None] * (n - len(vals)))

    @property
    def duration(self) -> float:
        ts = arr(self.timestamps)
        return float(ts[-1] - ts[0]) if len(ts) > 1 else 0.0

    def to_json(self) -> dict[str, Any]:
        def plain(values: Series) -> list[float | None]:
            return [None if math.isnan(v) else v for v in arr(values).tolist()]

        doc: dict[str, Any] = {
            RECORDING_MARK: RECORDING_VERSION,
            "source": self.source,
            "host": self.host,
            "timezone": self.timezone,
            "timestamps": arr(self.timestamps).tolist(),
            "counters": {ck: {i: plain(v) for i, v in insts.items()} for ck, insts in self.counters.items()},
        }
        if self.utc_offsets is not None:
            doc["utc_offsets"] = arr(self.utc_offsets).tolist()
        return doc

    def save(self, path: Path) -> None:
        """Write the recording so `--from FILE` can replay it."""
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: Any, path: str | None = None) -> Recording:
        """Read a recording written by `save`; any wrong field is named in a one-line InputError."""
        if not isinstance(data, dict) or data.get(RECORDING_MARK) != RECORDING_VERSION:
            raise InputError(f"not an iovkit recording (no '{RECORDING_MARK}: 1')", path=path)
        ts = data.get("timestamps")
        if not isinstance(ts, list) or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in ts):
            raise InputError("must be a list of numbers", path=path, field="timestamps")
        counters = data.get("counters")
        if not isinstance(counters, dict):
            raise InputError("must be an object of counter -> instance -> values", path=path, field="counters")
        offsets = data.get("utc_offsets")
        if offsets is not None and (
            not isinstance(offsets, list)
            or len(offsets) != len(ts)
            or not all(isinstance(o, int | float) and not isinstance(o, bool) for o in offsets)
        ):
            raise InputError(f"must be a list of {len(ts)} numbers", path=path, field="utc_offsets")
        rec = cls(
            source=str(data.get("source") or "procfs"),
            timestamps=[float(t) for t in ts],
            host=data.get("host"),
            timezone=data.get("timezone"),
            path=path,
            utc_offsets=[float(o) for o in offsets] if offsets is not None else None,
        )
        for ck, insts in counters.items():
            if not isinstance(insts, dict):
                raise InputError("must be an object of instance -> values", path=path, field=f"counters.{ck}")
            for inst, vals in insts.items():
                where = f"counters.{ck}.{inst}"
                if not isinstance(vals, list) or len(vals) != len(ts):
                    raise InputError(f"must be a list of {len(ts)} values", path=path, field=where)
                clean: Values = []
                for v in vals:
                    if v is None:
                        clean.append(None)
                    elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                        clean.append(float(v))
                    else:
                        raise InputError(f"not a number: {v!r}", path=path, field=where)
                rec.counters.setdefault(ck.lower(), {})[inst.lower()] = clean
        return rec


def mean(values: Series) -> float | None:
    """Mean of the present samples; None when none is present."""
    a = arr(values)
    ok = ~np.isnan(a)
    return float(a[ok].mean()) if ok.any() else None


def peak(values: Series) -> float | None:
    """The largest present sample; None when none is present."""
    a = arr(values)
    ok = ~np.isnan(a)
    return float(a[ok].max()) if ok.any() else None


def total(values: Series) -> float:
    return float(np.nansum(arr(values)))
