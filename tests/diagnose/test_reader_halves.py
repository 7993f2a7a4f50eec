"""A large PDH-CSV is read as two halves at once (iovkit.diagnose.pdhfast): the result must be the file read whole.

The size above which a file is split is lowered here so that small files take the same path a day-long recording
takes; each case is read both ways and compared sample for sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iovkit.diagnose import pdhcsv, pdhfast
from iovkit.diagnose.model import Recording
from iovkit.errors import InputError
from tests.fixtures.recordings import pdh_csv


def _read(path: Path, halves: bool, monkeypatch: pytest.MonkeyPatch, in_memory: bool = False) -> tuple[Recording, int]:
    """The recording (from the file, or from its bytes) and how many pieces pyarrow read (0: the line reader)."""
    calls: list[str] = []
    fill, slow = pdhfast._fill, pdhcsv._slow

    def counted_fill(*args: object) -> object:
        calls.append("piece")
        return fill(*args)  # type: ignore[arg-type]

    def counted_slow(*args: object) -> object:
        calls.append("line reader")
        return slow(*args)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(pdhfast, "SPLIT_BYTES", 0 if halves else 1 << 62)
        m.setattr(pdhfast, "_cpus", lambda: 2)
        m.setattr(pdhfast, "_fill", counted_fill)
        m.setattr(pdhcsv, "_slow", counted_slow)
        rec = pdhcsv.read(path.read_bytes(), str(path)) if in_memory else pdhcsv.read_file(path, str(path))
    return rec, 0 if "line reader" in calls else len(calls)


def _same(a: Recording, b: Recording) -> None:
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.counters.keys() == b.counters.keys()
    for name, series in a.counters.items():
        assert series.keys() == b.counters[name].keys()
        for inst, values in series.items():
            np.testing.assert_array_equal(values, b.counters[name][inst], err_msg=f"{name} {inst}")  # NaN == NaN


def _lines(text: str) -> list[str]:
    return text.split("\r\n")


@pytest.mark.parametrize("rows", [5, 40, 401])
@pytest.mark.parametrize("stdout", [False, True])
def test_a_file_read_in_halves_is_the_file_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int, stdout: bool
) -> None:
    """Rows, a missing sample, typeperf's leading blank line and trailing status lines, a status line mid-file."""
    lines = _lines(pdh_csv(n=rows, typeperf_stdout=stdout))
    lines.insert(len(lines) // 2, "Exiting, please wait...")
    f = tmp_path / "counters.csv"
    f.write_text("\r\n".join(lines), newline="")
    whole, one = _read(f, False, monkeypatch)
    halves, two = _read(f, True, monkeypatch)
    assert (one, two) == (1, 2)
    assert len(halves.timestamps) == rows
    _same(halves, whole)
    in_memory, pieces = _read(f, True, monkeypatch, in_memory=True)
    assert pieces == 2
    _same(in_memory, whole)


@pytest.mark.parametrize(("short_from", "short_to"), [(2000, 20_000), (10_000, 20_000), (2000, 7000), (0, 0)])
def test_halves_whose_rows_are_shorter_than_the_first_rows_grow_their_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_from: int, short_to: int
) -> None:
    """The row count is estimated from the first 64 KB; where rows are shorter than those there are more rows:
    both halves, the second half alone or the first half alone outgrow their part of the matrix (or none)."""
    head = '"(PDH-CSV 4.0) (UTC)(0)","\\\\H\\Processor(0)\\% DPC Time","\\\\H\\Processor(1)\\% DPC Time"'
    rows = [
        f'"09/22/2026 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000",'
        + ('"1","2"' if short_from <= i < short_to else '"123456789.123456","987654321.654321"')
        for i in range(20_000)
    ]
    f = tmp_path / "short-rows.csv"
    f.write_text("\r\n".join([head, *rows]) + "\r\n", newline="")
    whole, _ = _read(f, False, monkeypatch)
    halves, two = _read(f, True, monkeypatch)
    assert two == 2 and len(halves.timestamps) == 20_000
    _same(halves, whole)
    assert halves.series("processor\\% dpc time")["1"][-1] == (2.0 if short_to == 20_000 else 987654321.654321)


def test_a_bad_cell_in_the_second_half_is_named_by_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(pdh_csv(n=200))
    cells = lines[180].split(",")
    cells[1] = '"9x8.5"'
    lines[180] = ",".join(cells)
    f = tmp_path / "bad.csv"
    f.write_text("\r\n".join(lines), newline="")
    with pytest.raises(InputError, match=r"line 181, column 2 .*not a number: '9x8.5'"):
        _read(f, True, monkeypatch)


def test_a_decimal_comma_in_the_second_half_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(pdh_csv(n=200))
    cells = lines[150].split('","')
    cells[1] = "97,5"
    lines[150] = '","'.join(cells)
    f = tmp_path / "comma.csv"
    f.write_text("\r\n".join(lines), newline="")
    halves, pieces = _read(f, True, monkeypatch)
    assert pieces == 0  # pyarrow refused the comma, the line reader read it
    assert halves.series("hyper-v hypervisor root virtual processor\\% total run time")["root vp 0"][149] == 97.5
