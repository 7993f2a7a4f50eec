"""Get-Counter samples exported as JSON (`ConvertTo-Json`), in the shapes PowerShell writes.

Accepted: a list (or one object) of PerformanceCounterSample objects {Path, InstanceName, CookedValue, Timestamp},
or of PerformanceCounterSampleSet objects {Timestamp, CounterSamples: [...]}. Paths come back lower-cased
(`\\\\computer01\\processor(0)\\% processor time`). Timestamp as PowerShell 5.1 writes it (`/Date(ms)/`), as 7.x
writes it (ISO 8601), or as `M/d/yyyy H:mm:ss` text. Samples sharing a timestamp form one row.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from iovkit.diagnose import names
from iovkit.diagnose.model import Recording, key
from iovkit.diagnose.pdhcsv import split_path
from iovkit.errors import InputError
from iovkit.sources.windows import MS_DATE, unwrap


def _ts(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    value = unwrap(value)  # PS 5.1 with -Depth: {value: /Date()/, DateTime: text}
    if not isinstance(value, str):
        return None
    s = value.strip()
    if m := MS_DATE.match(s):
        return int(m.group(1)) / 1000.0
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        pass
    for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %I:%M:%S %p"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def parse(text: str, path: str | None = None) -> Recording:
    """Parse Get-Counter JSON; a wrong field raises a one-line InputError naming the sample and field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"line {e.lineno}, column {e.colno}: invalid JSON: {e.msg}", path=path) from None
    items = data if isinstance(data, list) else [data]
    if items and isinstance(items[0], dict) and not ({"CounterSamples", "Path"} & items[0].keys()):
        # a snapshot, plan or bench result handed to diagnose: say what this file is not, not which field lacks
        raise InputError(
            "this JSON is neither Get-Counter output (CounterSamples or Path) nor an iovkit recording", path=path
        )
    flat: list[tuple[str, dict[str, Any], Any]] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError("must be an object", path=path, field=f"[{n}]")
        if "CounterSamples" in item:
            samples = item["CounterSamples"]
            samples = samples if isinstance(samples, list) else [samples]
            for m, s in enumerate(samples):
                if not isinstance(s, dict):
                    raise InputError("must be an object", path=path, field=f"[{n}].CounterSamples[{m}]")
                flat.append((f"[{n}].CounterSamples[{m}]", s, s.get("Timestamp", item.get("Timestamp"))))
        else:
            flat.append((f"[{n}]", item, item.get("Timestamp")))
    if not flat:
        raise InputError("no counter samples", path=path)
    rows: dict[float, list[tuple[str, str, float | None]]] = {}
    langs: dict[str, None] = {}
    unknown: dict[str, None] = {}
    rec = Recording(source="get-counter", path=path)
    for where, s, tsv in flat:
        for fname in ("Path", "CookedValue"):
            if fname not in s:
                raise InputError(f"missing field '{fname}'", path=path, field=where)
        p = s["Path"]
        if not isinstance(p, str):
            raise InputError(f"not a counter path: {p!r}", path=path, field=f"{where}.Path")
        try:
            host, obj, inst, ctr = split_path(p)
        except ValueError:
            raise InputError(f"not a counter path: {p!r}", path=path, field=f"{where}.Path") from None
        if isinstance(s.get("InstanceName"), str) and s["InstanceName"] and not inst:
            inst = s["InstanceName"]
        cv = s["CookedValue"]
        if cv is None:
            val: float | None = None
        elif isinstance(cv, int | float) and not isinstance(cv, bool) and math.isfinite(cv):
            val = float(cv)
        else:
            raise InputError(f"not a number: {cv!r}", path=path, field=f"{where}.CookedValue")
        ts = _ts(tsv)
        if ts is None:
            raise InputError(f"missing or unreadable timestamp {tsv!r}", path=path, field=f"{where}.Timestamp")
        rec.host = rec.host or host
        obj_en, ctr_en, lang = names.to_english(obj, ctr)  # Get-Counter gives the display language's names
        if lang:
            langs[lang] = None
        elif not names.recognized(obj_en):
            unknown[obj] = None
        rows.setdefault(ts, []).append((key(obj_en, ctr_en), inst.lower(), val))
    stamps: list[float | None] = []
    rec.timestamps = stamps
    for i, ts in enumerate(sorted(rows)):
        stamps.append(ts)
        for ck, inst, val in rows[ts]:
            rec.put(ck, inst, i, val)
    rec.pad()
    rec.language = ", ".join(langs) or None
    rec.unrecognized = list(unknown)
    return rec
