"""PDH-CSV 4.0 as written by typeperf (stdout or -o), logman, relog, and Get-NetView's Counters/CounterDetail.csv.

Shape (hyperv.md §4.2): first cell `"(PDH-CSV 4.0)"` optionally followed by ` (<time zone>)(<bias minutes>)`,
where the zone name may hold parentheses of its own (`(Maroc (heure d’été))(-60)`); other header cells are
`\\\\HOST\\Object(Instance)\\Counter`; data rows start with `"MM/dd/yyyy HH:mm:ss.fff"` in the host's wall
clock; values are quoted decimals, `" "` is a missing sample. Lines that are not rows are skipped: typeperf's
status lines (`Exiting, please wait...`) and the `user @ HOST:` / `PS ...>` prompt lines Get-NetView appends.
relog's `-f tsv` is read too (tab between cells).

Reading streams the rows through pyarrow's CSV reader into one float matrix (iovkit.diagnose.pdhfast; a day of
1 s samples of 74 counters in about a tenth of a second and ~50 MB; bench/diagnose_size.py measures it against
one csv-module pass). Anything the fast reader refuses (a malformed cell, a decimal comma, a row of the wrong
length) is read again by the line-by-line reader, which either reads it (decimal comma: a value with one `,` and
no `.`) or names the line and column in a one-line error.

Time: the header's bias applies to the first row. A step of about an hour forwards or back between rows is a
DST change: later rows move to the new offset, so UTC stays continuous. Any other step far from the sample
interval is a clock jump; both are kept as `ClockEvent`s and durations count sample intervals, not clock steps.
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from iovkit.diagnose import names, pdhfast
from iovkit.diagnose.model import ClockEvent, Recording, key, median
from iovkit.errors import InputError

HEADER_RE = re.compile(r"^\(PDH-CSV (?P<ver>[\d.]+)\)\s*(?:\((?P<tz>.*)\)\s*\((?P<bias>[+-]?\d+)\))?\s*$")
TS_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")
DST_TOLERANCE_S = 90.0


@dataclass
class Header:
    line: int  # 1-based line number of the header
    cells: list[str]
    delimiter: str
    tz: str | None
    bias_min: int | None
    data_offset: int  # byte offset of the first line after the header (in the utf-8/ascii bytes)


def looks_like(text: str) -> bool:
    # typeperf quotes every cell; a CSV re-saved by Excel or a script quotes only where needed
    return text.lstrip("\r\n\ufeff \t").startswith(('"(PDH-CSV', "(PDH-CSV"))


def split_path(path: str) -> tuple[str | None, str, str, str]:
    """`\\\\HOST\\Object(Instance)\\Counter` -> (host, object, instance, counter); instance "" when none.

    Instances may hold parentheses (`vEthernet (vSwitch)`, `Root VP 0`): the object ends at its first `(` and
    the instance at the last `)` before the counter.
    """
    p = path.strip()
    host: str | None = None
    if p.startswith("\\\\"):
        host, sep, p = p[2:].partition("\\")
        if not sep:
            raise ValueError(path)
    else:
        p = p.lstrip("\\")
    obj_end = p.find("(")
    slash = p.find("\\")
    if obj_end != -1 and (slash == -1 or obj_end < slash):
        close = p.rfind(")\\")
        if close < obj_end:
            raise ValueError(path)
        obj, instance, counter = p[:obj_end], p[obj_end + 1 : close], p[close + 2 :]
    else:
        obj, sep, counter = p.partition("\\")
        instance = ""
        if not sep:
            raise ValueError(path)
    if not obj or not counter:
        raise ValueError(path)
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


def header_of(data: bytes, path: str | None) -> Header:
    """Find and read the header line (after any empty lines typeperf's stdout starts with)."""
    off, lineno = 0, 1
    while True:
        nl = data.find(b"\n", off)
        line = data[off : nl if nl != -1 else len(data)]
        if line.strip(b"\r\n\t \xef\xbb\xbf"):
            break
        if nl == -1:
            raise InputError("empty file, expected a PDH-CSV header", path=path)
        off, lineno = nl + 1, lineno + 1
    text = _text(line).strip("\r\n\ufeff")
    delimiter = _delimiter(text)
    cells = next(csv.reader([text], delimiter=delimiter))
    m = HEADER_RE.match(cells[0].strip()) if cells else None
    if m is None:
        raise InputError(f"line {lineno}: not a PDH-CSV header (first cell {cells[0] if cells else ''!r})", path=path)
    bias = m.group("bias")
    return Header(
        line=lineno,
        cells=cells,
        delimiter=delimiter,
        tz=m.group("tz"),
        bias_min=int(bias) if bias is not None else None,
        data_offset=nl + 1 if nl != -1 else len(data),
    )


def _delimiter(line: str) -> str:
    """`,` (typeperf/logman/relog csv) or a tab (relog -f tsv): the character after the first cell."""
    if line.startswith('"'):
        end = line.find('"', 1)
        return "\t" if end != -1 and line[end + 1 : end + 2] == "\t" else ","
    tab, comma = line.find("\t"), line.find(",")
    return "\t" if tab != -1 and (comma == -1 or tab < comma) else ","


def parse(text: str, path: str | None = None) -> Recording:
    """Parse PDH-CSV text (see `read` for bytes)."""
    return read(text.encode("utf-8"), path)


def read(data: bytes, path: str | None = None, sidecar: dict[str, str] | None = None) -> Recording:
    """Parse PDH-CSV bytes into a Recording; any malformed line raises a one-line InputError naming it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data.decode("utf-16").encode("utf-8")
    head = header_of(data, path)
    body = memoryview(data)[head.data_offset :]

    def cut(at: int) -> int | None:
        nl = data.find(b"\n", head.data_offset + at, head.data_offset + at + (1 << 16))
        return None if nl == -1 else nl + 1 - head.data_offset

    sample = bytes(body[: 1 << 16])
    return _read(head, lambda a, b: pdhfast.buffer(body[a:b]), cut, sample, body.nbytes, lambda: data, path, sidecar)


def read_file(file: Path, path: str | None = None, sidecar: dict[str, str] | None = None) -> Recording:
    """Stream a PDH-CSV file from disk (only the header is read into memory before the reader starts)."""
    with file.open("rb") as f:
        first = f.read(1 << 20)
        while b"\n" not in first and len(first) < (64 << 20):
            more = f.read(1 << 20)
            if not more:
                break
            first += more
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        return read(file.read_bytes(), path, sidecar)
    head = header_of(first, path)
    size = file.stat().st_size - head.data_offset

    def cut(at: int) -> int | None:
        with file.open("rb") as f:
            f.seek(head.data_offset + at)
            nl = f.read(1 << 16).find(b"\n")
        return None if nl == -1 else at + nl + 1

    return _read(
        head,
        lambda a, b: pdhfast.file_piece(file, head.data_offset + a, head.data_offset + b),
        cut,
        first[head.data_offset : head.data_offset + (1 << 16)],
        size,
        file.read_bytes,
        path,
        sidecar,
    )


def _read(
    head: Header,
    piece: Callable[[int, int], object],
    cut: Callable[[int], int | None],
    sample: bytes,
    size: int,
    whole: Callable[[], bytes],
    path: str | None,
    sidecar: dict[str, str] | None,
) -> Recording:
    ncols = len(head.cells)
    columns = [_column(c, n, head, path) for n, c in enumerate(head.cells[1:], start=2)]
    got = (
        pdhfast.read_rows(piece, cut, sample, size, head.delimiter, ncols)
        if size > 0
        else (np.empty(0), np.empty((0, ncols - 1)))
    )
    if got is None:
        local, matrix = _slow(whole(), head, path)
    else:
        local, matrix = got
    if len(local) == 0:
        raise InputError("no data rows after the PDH-CSV header", path=path)
    return _build(head, columns, local, matrix, path, sidecar)


def _column(cell: str, n: int, head: Header, path: str | None) -> tuple[str | None, str, str, str]:
    try:
        return split_path(cell)
    except ValueError:
        raise InputError(f"line {head.line}, column {n}: not a counter path: {cell!r}", path=path) from None


def _slow(data: bytes, head: Header, path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The line-by-line reader: reads decimal commas and Excel's re-saved shapes, names the bad line otherwise."""
    ncols = len(head.cells)
    stamps = array("d")
    values = array("d")  # 8 bytes a value: a day of 74 counters stays ~50 MB here
    nan = float("nan")
    for lineno, line in enumerate(_lines(data, head.data_offset), start=head.line + 1):
        raw = _text(line.rstrip(b"\r"))
        if not raw.strip():
            continue
        first = raw.lstrip()[:1]
        if first != '"' and not first.isdigit():
            continue  # status and prompt lines
        try:
            cells = next(csv.reader([raw], delimiter=head.delimiter))
        except csv.Error as e:
            raise InputError(f"line {lineno}: {e}", path=path) from None
        if cells == head.cells:
            continue  # logman -a appends a second header
        if len(cells) != ncols:
            raise InputError(f"line {lineno}: {len(cells)} cells, the header has {ncols}", path=path)
        ts = _wall_seconds(cells[0])
        if ts is None:
            raise InputError(f"line {lineno}: bad timestamp {cells[0]!r} (expected MM/dd/yyyy HH:mm:ss.fff)", path=path)
        for n, cell in enumerate(cells[1:], start=2):
            try:
                v = parse_number(cell)
            except ValueError:
                raise InputError(
                    f"line {lineno}, column {n} ({head.cells[n - 1]}): not a number: {cell!r}", path=path
                ) from None
            values.append(nan if v is None else v)
        stamps.append(ts)
    matrix = np.frombuffer(values, dtype=float).reshape(len(stamps), ncols - 1)
    return np.frombuffer(stamps, dtype=float).copy(), np.asfortranarray(matrix)


def _text(line: bytes) -> str:
    """One line as text. Data rows and English headers are ASCII, read as they are; anything else (UTF-8 or
    code page 1252 names) goes through sources.windows, the one home of Windows text decoding, imported only
    then: with it comes the snapshot model, a tenth of a second a day-long file need not pay."""
    try:
        return line.decode("ascii")
    except UnicodeDecodeError:
        from iovkit.sources.windows import decode_text

        return decode_text(line)


def _lines(data: bytes, pos: int) -> Iterator[bytes]:
    """The lines of `data` from `pos`, one at a time (no second copy of a large file in memory)."""
    end = len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        stop = end if nl == -1 else nl
        yield data[pos:stop]
        pos = stop + 1


def _wall_seconds(cell: str) -> float | None:
    s = cell.strip()
    for fmt in TS_FORMATS:
        try:
            dt = datetime.strptime(s, fmt)
        except ValueError:
            continue
        return (dt - datetime(1970, 1, 1)).total_seconds()
    return None


def _build(
    head: Header,
    columns: list[tuple[str | None, str, str, str]],
    local: np.ndarray,
    matrix: np.ndarray,
    path: str | None,
    sidecar: dict[str, str] | None,
) -> Recording:
    rec = Recording(source="pdh-csv", timezone=head.tz, path=path)
    unknown: dict[str, None] = {}
    langs: dict[str, None] = {}
    for j, (host, obj, inst, ctr) in enumerate(columns):
        rec.host = rec.host or host
        obj_en, ctr_en, lang = names.to_english(obj, ctr, sidecar)
        if lang:
            langs[lang] = None
        elif not names.recognized(obj_en):
            unknown[obj] = None
        rec.counters.setdefault(key(obj_en, ctr_en), {})[inst.lower()] = matrix[:, j]
    rec.unrecognized = list(unknown)
    rec.language = ", ".join(langs) or None
    bias_s = 60.0 * head.bias_min if head.bias_min is not None else 0.0
    offsets, events = clock(local)
    # offsets: wall-clock changes (DST) relative to the first row, in seconds
    utc = local + bias_s - offsets
    rec.timestamps = utc
    rec.utc_offsets = (-bias_s + offsets) if head.bias_min is not None else None
    rec.utc_known = head.bias_min is not None
    rec.clock_events = events
    return rec


def clock(local: np.ndarray) -> tuple[np.ndarray, list[ClockEvent]]:
    """Wall-clock shifts after DST changes (seconds, per row, relative to the first row) and every jump found."""
    shift = np.zeros(len(local))
    events: list[ClockEvent] = []
    if len(local) < 3:
        return shift, events
    steps = np.diff(local)
    pos = steps[steps > 0]
    if not len(pos):
        return shift, events
    step = median(pos)
    tol = max(5.0 * step, 10.0)
    for i in np.nonzero(np.abs(steps - step) > tol)[0]:
        extra = float(steps[i] - step)
        hours = round(extra / 1800.0) / 2.0  # DST moves by 1 h (a few zones by 30 min)
        if hours != 0 and abs(hours) <= 2 and abs(extra - hours * 3600.0) <= DST_TOLERANCE_S:
            shift[i + 1 :] += hours * 3600.0
            events.append(ClockEvent(int(i) + 1, "dst-start" if hours > 0 else "dst-end", extra))
        else:
            events.append(ClockEvent(int(i) + 1, "jump", extra))
    return shift, events
