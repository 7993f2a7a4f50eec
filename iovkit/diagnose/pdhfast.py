"""The fast PDH-CSV reader: pyarrow's streaming CSV reader into one column-major float matrix.

iovkit.diagnose.pdhcsv reads the header and builds the Recording; this module turns the rows after the header
into time stamps and a matrix of values, or says None when the line reader must decide (a cell that is not a
number, a row of the wrong length, a time stamp in another shape), which then reads the file again and names the
bad line.

A file over SPLIT_BYTES on a machine with two or more CPUs is read as two halves at once, split at a line end:
pyarrow parses without the GIL, so the halves overlap and a day of 1 s samples of 74 counters (76 MB) is read in
a little over half the wall time of one reader. Both halves write into one matrix (the second half from where
the first is estimated to end, moved up after it), so halves cost no second copy of the values
(bench/diagnose_size.py measures time and memory against one csv-module pass).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

SPLIT_BYTES = 8 << 20  # smaller files: one reader (a second thread costs more than it saves)
BLOCK_BYTES = 512 << 10  # pyarrow keeps a few dozen blocks in flight per reader: the memory of a read scales with it

# One stream's rows: (time stamps, the matrix holding its values, the first row there, the number of rows)
Rows = tuple[np.ndarray, np.ndarray, int, int]


def buffer(body: memoryview) -> object:
    """Bytes in memory as a pyarrow stream."""
    import pyarrow as pa

    return pa.py_buffer(body)


def file_piece(file: Path, start: int, stop: int) -> object:
    """Bytes [start, stop) of a file as one of pyarrow's native streams (read without the GIL)."""
    import pyarrow as pa

    return pa.OSFile(str(file)).get_stream(start, stop - start)


def read_rows(
    piece: Callable[[int, int], object],
    cut: Callable[[int], int | None],
    sample: bytes,
    size: int,
    delimiter: str,
    ncols: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(time stamps, values) of the `size` bytes after the header; None where the line reader must decide.

    `piece(a, b)` opens bytes [a, b) of them as a stream, `cut(at)` is the offset just after the first line end
    at or after `at` (None if none is near), `sample` their first bytes (to estimate the row count)."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency; the line reader still works
        return None
    lines = max(1, sample.count(b"\n"))
    per_line = max(1.0, len(sample) / lines) if sample else float(size)
    est = int(size / per_line * 1.02) + 16
    matrix = np.empty((est, ncols - 1), order="F")
    mid = cut(size // 2) if size >= SPLIT_BYTES and _cpus() >= 2 else None
    try:
        if mid is None or not 0 < mid < size:
            got = _fill(piece(0, size), matrix, 0, est, delimiter, ncols)
            return None if got is None else (got[0], got[1][got[2] : got[2] + got[3]])
        at = max(0, est - int((size - mid) / per_line * 1.02) - 16)  # where the second half's rows start
        second: list[Rows | BaseException | None] = []

        def read_second() -> None:
            try:
                second.append(_fill(piece(mid, size), matrix, at, est, delimiter, ncols))
            except BaseException as e:  # handed to the caller's thread below
                second.append(e)

        worker = threading.Thread(target=read_second, name="iovkit-csv-half", daemon=False)
        worker.start()
        try:
            first = _fill(piece(0, mid), matrix, 0, at, delimiter, ncols)
        finally:
            worker.join()
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    other = second[0]
    if isinstance(other, (pa.ArrowInvalid, pa.ArrowTypeError, ValueError)):
        return None
    if isinstance(other, BaseException):
        raise other
    if first is None or other is None:
        return None
    return _join(first, other, matrix)


def _join(first: Rows, second: Rows, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two halves' rows one after the other: moved up in the shared matrix, or copied where one ran out."""
    (t0, m0, a0, n0), (t1, m1, a1, n1) = first, second
    stamps = np.concatenate([t0, t1])
    if m0 is matrix and m1 is matrix:
        if a1 != n0:
            for j in range(matrix.shape[1]):  # column by column: a column is contiguous, the move a memmove
                matrix[n0 : n0 + n1, j] = matrix[a1 : a1 + n1, j]
        return stamps, matrix[: n0 + n1]
    out = np.empty((n0 + n1, matrix.shape[1]), order="F")
    out[:n0] = m0[a0 : a0 + n0]
    out[n0:] = m1[a1 : a1 + n1]
    return stamps, out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _fill(source: object, matrix: np.ndarray, at: int, limit: int, delimiter: str, ncols: int) -> Rows | None:
    """One stream's rows into matrix[at:limit]; past `limit`, into a matrix of its own, grown as needed."""
    import pyarrow as pa
    import pyarrow.csv as pc

    colnames = [f"c{i}" for i in range(ncols)]

    def invalid(row: pc.InvalidRow) -> str:
        text = (row.text or "").lstrip()
        if (text[:1] == '"' and text[1:2].isdigit()) or text[:1].isdigit():
            return "error"  # a data row with too few/many cells: the line reader names it
        return "skip"  # typeperf status lines, Get-NetView prompt lines

    types = {c: pa.float64() for c in colnames[1:]}
    types["c0"] = pa.string()
    into, start, room = matrix, at, limit - at
    stamps: list[np.ndarray] = []
    n = 0
    with pc.open_csv(
        source,
        read_options=pc.ReadOptions(column_names=colnames, block_size=BLOCK_BYTES, use_threads=False),
        parse_options=pc.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
        convert_options=pc.ConvertOptions(column_types=types, null_values=[" ", "", "  "], strings_can_be_null=False),
    ) as reader:
        for batch in reader:
            k = batch.num_rows
            if n + k > room:
                room = max(int(1.25 * max(room, 1)), n + k)
                grown = np.empty((room, ncols - 1), order="F")
                grown[:n] = into[start : start + n]
                into, start = grown, 0
            if ncols > 1:  # all counters at once, column-major like the matrix, a missing sample as NaN
                into[start + n : start + n + k] = np.asarray(
                    batch.drop_columns(["c0"]).to_tensor(null_to_nan=True, row_major=False)
                )
            t = _batch_times(batch.column(0))
            if t is None:
                return None
            stamps.append(t)
            n += k
    return (np.concatenate(stamps) if stamps else np.empty(0)), into, start, n


def _batch_times(col: object) -> np.ndarray | None:
    """A string column of `MM/dd/yyyy HH:mm:ss.fff` cells, read from Arrow's buffers without Python strings."""
    import pyarrow as pa

    assert isinstance(col, pa.StringArray)
    if len(col) == 0:
        return np.empty(0)
    offs = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset : col.offset + len(col) + 1]
    if not (np.diff(offs) == 23).all():
        return None
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)[offs[0] : offs[-1]]
    return _times(data.reshape(-1, 23))


def _times(u: np.ndarray) -> np.ndarray | None:
    """Rows of 23 ASCII bytes `MM/dd/yyyy HH:mm:ss.fff` -> wall-clock seconds (as if UTC); None if any row has
    another shape."""
    if not ((u[:, 2] == 47) & (u[:, 5] == 47) & (u[:, 10] == 32) & (u[:, 13] == 58) & (u[:, 19] == 46)).all():
        return None
    d = u.astype(np.int64) - 48
    digits = np.r_[0, 1, 3, 4, 6:10, 11, 12, 14, 15, 17, 18, 20:23]
    if ((d[:, digits] < 0) | (d[:, digits] > 9)).any():
        return None
    mon, day = d[:, 0] * 10 + d[:, 1], d[:, 3] * 10 + d[:, 4]
    year = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
    secs = (d[:, 11] * 10 + d[:, 12]) * 3600 + (d[:, 14] * 10 + d[:, 15]) * 60 + d[:, 17] * 10 + d[:, 18]
    if ((mon < 1) | (mon > 12) | (day < 1) | (day > 31) | (secs >= 86400 + 60)).any():
        return None
    ms = d[:, 20] * 100 + d[:, 21] * 10 + d[:, 22]
    return _days_from_civil(year, mon, day) * 86400.0 + secs + ms / 1000.0


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
