"""A counter recording: counter -> instance -> one value per timestamp.

Every input (PDH CSV, Get-Counter JSON, the live /proc sampler) is turned into this one shape, so detection
never knows where the numbers came from. Keys are lower-case `object\\counter` (Get-Counter lower-cases paths,
so everything is compared lower-case); instances are lower-case too, "" when a counter has none. Values are
rates or percentages per interval; None is a missing sample (PDH's `" "` cell).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iovkit.errors import InputError

RECORDING_MARK = "iovkit-recording"
RECORDING_VERSION = 1

Values = list[float | None]


def key(obj: str, counter: str) -> str:
    """The normalised counter key: `processor\\% interrupt time`."""
    return f"{obj.strip().lower()}\\{counter.strip().lower()}"


@dataclass
class Recording:
    """Samples of many counters taken at the same timestamps (seconds; epoch or relative)."""

    source: str  # "pdh-csv" | "get-counter" | "procfs"
    timestamps: list[float] = field(default_factory=list)
    counters: dict[str, dict[str, Values]] = field(default_factory=dict)
    host: str | None = None
    timezone: str | None = None
    path: str | None = None

    def series(self, counter_key: str) -> dict[str, Values]:
        """All instances of one counter (empty when the recording lacks it)."""
        return self.counters.get(counter_key, {})

    def first(self, *keys: str) -> tuple[str, dict[str, Values]] | None:
        """The first of several alternative counters that the recording has (e.g. `.../sec` or not)."""
        for k in keys:
            if self.counters.get(k):
                return k, self.counters[k]
        return None

    def put(self, counter_key: str, instance: str, index: int, value: float | None) -> None:
        """Set one sample, growing the series with None up to the current sample count."""
        inst = self.counters.setdefault(counter_key, {}).setdefault(instance.lower(), [])
        while len(inst) < len(self.timestamps):
            inst.append(None)
        if index < len(inst):
            inst[index] = value

    def pad(self) -> None:
        """Make every series as long as the timestamp list."""
        n = len(self.timestamps)
        for insts in self.counters.values():
            for vals in insts.values():
                vals.extend([None] * (n - len(vals)))

    @property
    def duration(self) -> float:
        return self.timestamps[-1] - self.timestamps[0] if len(self.timestamps) > 1 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            RECORDING_MARK: RECORDING_VERSION,
            "source": self.source,
            "host": self.host,
            "timezone": self.timezone,
            "timestamps": self.timestamps,
            "counters": self.counters,
        }

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
        rec = cls(
            source=str(data.get("source") or "procfs"),
            timestamps=[float(t) for t in ts],
            host=data.get("host"),
            timezone=data.get("timezone"),
            path=path,
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


def mean(values: Values) -> float | None:
    """Mean of the present samples; None when none is present."""
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def total(values: Values) -> float:
    return sum(v for v in values if v is not None)
