"""PDH-CSV 4.0 as written by typeperf (stdout or -o), logman, relog, and Get-NetView's Counters/CounterDetail.csv.

Shape (hyperv.md §4.2): first cell `"(PDH-CSV 4.0)"` optionally followed by ` (<time zone>)(<bias minutes>)`;
other header cells are `\\\\HOST\\Object(Instance)\\Counter`; data rows start with `"MM/dd/yyyy HH:mm:ss.fff"`;
values are quoted decimals, `" "` is a missing sample. typeperf's stdout starts with an empty line and ends with
status lines (`Exiting, please wait...`, `The command completed successfully.`), which are skipped.
Decimal point: PDH writes `.` regardless of locale; a value with one `,` and no `.` is read as a decimal comma
(assumed for hand-edited/Excel-saved files), anything else malformed is an error naming the line.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from iovkit.diagnose.model import Recording, key
from iovkit.errors import InputError

HEADER_RE = re.compile(r"^\(PDH-CSV (?P<ver>[\d.]+)\)\s*(?:\((?P<tz>[^)]*)\)\s*\((?P<bias>-?\d+)\))?\s*$")
TS_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S")


def decode(data: bytes) -> str:
    """UTF-16 (BOM) from some logman/relog builds, UTF-8 (with or without BOM), else the ANSI code page 1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def looks_like(text: str) -> bool:
    # typeperf quotes every cell; a CSV re-saved by Excel or a script quotes only where needed
    return text.lstrip("\r\n\ufeff \t").startswith(('"(PDH-CSV', "(PDH-CSV"))


def split_path(path: str) -> tuple[str | None, str, str, str]:
    """`\\\\HOST\\Object(Instance)\\Counter` -> (host, object, instance, counter); instance "" when none."""
    p = path.strip()
    host: str | None = None
    if p.startswith("\\\\"):
        host, sep, p = p[2:].partition("\\")
        if not sep:
            raise ValueError(path)
    else:
        p = p.lstrip("\\")
    head, sep, counter = p.rpartition("\\")
    if not sep or not head or not counter:
        raise ValueError(path)
    obj, paren, inst = head.partition("(")
    instance = ""
    if paren:
        if not inst.endswith(")"):
            raise ValueError(path)
        instance = inst[:-1]
    return host, obj, instance, counter


def parse_number(cell: str) -> float | None:
    """A quoted PDH value: blank/space = missing; `.` decimal, or a lone `,` as decimal comma."""
    s = cell.strip()
    if not s:
        return None
    if "," in s and "." not in s and s.count(",") == 1:
        s = s.replace(",", ".")
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(cell)
    return v


def parse(text: str, path: str | None = None) -> Recording:
    """Parse PDH-CSV text into a Recording; any malformed line raises a one-line InputError naming it."""
    lines = text.splitlines()
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines):
        raise InputError("empty file, expected a PDH-CSV header", path=path)
    rows = list(csv.reader([lines[start]]))
    header = rows[0] if rows else []
    m = HEADER_RE.match(header[0].strip()) if header else None
    if m is None:
        raise InputError(
            f"line {start + 1}: not a PDH-CSV header (first cell {header[0] if header else ''!r})", path=path
        )
    tzname, bias = m.group("tz"), m.group("bias")
    rec = Recording(source="pdh-csv", timezone=tzname, path=path)
    cols: list[tuple[str, str]] = []
    for n, cell in enumerate(header[1:], start=2):
        try:
            host, obj, inst, ctr = split_path(cell)
        except ValueError:
            raise InputError(f"line {start + 1}, column {n}: not a counter path: {cell!r}", path=path) from None
        rec.host = rec.host or host
        cols.append((key(obj, ctr), inst.lower()))
    tz = timezone(-timedelta(minutes=int(bias))) if bias is not None else UTC
    for lineno in range(start + 1, len(lines)):
        raw = lines[lineno]
        if not raw.strip():
            continue
        first = raw.lstrip()[:1]
        if first != '"' and not first.isdigit():
            # typeperf status lines ("Exiting, please wait...", "The command completed successfully."); a data
            # row starts with its quoted or, once re-saved by Excel, bare MM/dd/yyyy timestamp
            continue
        try:
            cells = next(csv.reader([raw]))
        except csv.Error as e:
            raise InputError(f"line {lineno + 1}: {e}", path=path) from None
        if len(cells) != len(header):
            raise InputError(f"line {lineno + 1}: {len(cells)} cells, the header has {len(header)}", path=path)
        ts = _timestamp(cells[0], tz)
        if ts is None:
            raise InputError(
                f"line {lineno + 1}: bad timestamp {cells[0]!r} (expected MM/dd/yyyy HH:mm:ss.fff)", path=path
            )
        i = len(rec.timestamps)
        rec.timestamps.append(ts)
        for (ck, inst), cell, n in zip(cols, cells[1:], range(2, len(cells) + 1), strict=True):
            try:
                v = parse_number(cell)
            except ValueError:
                raise InputError(
                    f"line {lineno + 1}, column {n} ({header[n - 1]}): not a number: {cell!r}", path=path
                ) from None
            rec.put(ck, inst, i, v)
    if not rec.timestamps:
        raise InputError("no data rows after the PDH-CSV header", path=path)
    rec.pad()
    return rec


def _timestamp(cell: str, tz: timezone) -> float | None:
    s = cell.strip()
    for fmt in TS_FORMATS:
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=tz).timestamp()
        except ValueError:
            continue
    return None
