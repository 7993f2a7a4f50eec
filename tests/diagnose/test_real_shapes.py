"""Recordings in the shapes real hosts write: nested time-zone parentheses, Processor Information groups, logical
processors, Get-NetView's CounterDetail.csv with its prompt lines, relog/logman variants, DST and clock jumps, .blg."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iovkit.diagnose import diagnose
from iovkit.diagnose.inputs import load
from iovkit.diagnose.pdhcsv import parse
from tests.fixtures.recordings import peak_csv


def _rows(header: list[str], rows: list[list[str]], tz: str = "(UTC)(0)", sep: str = ",") -> str:
    first = f"(PDH-CSV 4.0) {tz}" if tz else "(PDH-CSV 4.0)"
    lines = [sep.join(f'"{c}"' for c in [first, *header])]
    lines += [sep.join(f'"{c}"' for c in r) for r in rows]
    return "\r\n".join(lines) + "\r\n"


def test_french_time_zone_with_its_own_parentheses_in_cp1252(tmp_path: Path) -> None:
    text = _rows(
        ["\\\\HV\\Processor(0)\\% DPC Time"], [["03/29/2026 10:00:00.000", "1.0"]], "(Maroc (heure d’été))(-60)"
    )
    f = tmp_path / "fr.csv"
    f.write_bytes(text.encode("cp1252"))
    rec = load(f)
    assert rec.timezone == "Maroc (heure d’été)"
    assert rec.timestamps[0] == datetime(2026, 3, 29, 9, 0, tzinfo=UTC).timestamp()  # 10:00 at UTC+1


def test_processor_information_groups_do_not_collide_and_totals_are_skipped() -> None:
    """`0,3` and `1,3` are two cores (numbered across groups); `_Total` and `0,_Total` are not cores."""
    header = [
        f"\\\\HV\\Processor Information({inst})\\% DPC Time"
        for inst in ("0,0", "0,1", "1,0", "1,1", "0,_Total", "1,_Total", "_Total")
    ] + ["\\\\HV\\Network Interface(nic)\\Packets Received/sec"]
    rows = [[f"09/22/2026 21:00:{s:02d}.000", "5", "4", "3", "97", "4.5", "50", "27", "300000"] for s in range(0, 40)]
    rep = diagnose(parse(_rows(header, rows)))
    assert [c.name for c in rep.cores] == ["0", "1", "2", "3"]
    assert [c.label for c in rep.cores] == ["0,0", "0,1", "1,0", "1,1"]
    hot = rep.finding("SINGLE-CORE-SWITCH")
    assert hot is not None and hot.core == "3"  # group 1, number 1


def test_hyper_v_logical_processor_run_time_alone_names_the_core_but_not_network() -> None:
    header = [f"\\\\HV\\Hyper-V Hypervisor Logical Processor(Hv LP {c})\\% Total Run Time" for c in range(4)]
    header += ["\\\\HV\\Hyper-V Hypervisor Logical Processor(_Total)\\% Total Run Time"]
    rows = [[f"09/22/2026 21:00:{s:02d}.000", "99", "10", "12", "11", "33"] for s in range(40)]
    rep = diagnose(parse(_rows(header, rows)))
    assert rep.verdict == "insufficient-data"
    assert rep.finding("SINGLE-CORE-SWITCH") is None
    hot = rep.finding("HOT-CORE")
    assert hot is not None and hot.core == "0"
    assert "% Interrupt Time" in hot.summary and "Virtual Switch Processor" in hot.summary
    assert "network" not in hot.summary.split("cannot show")[0]


def _netview(runs: list[float]) -> str:
    """Get-NetView's CounterDetail.csv: typeperf -sc 5 -si 1 output, then the ExecCommands prompt lines."""
    header = [
        f"\\\\HV-EDGE-02\\Hyper-V Hypervisor Root Virtual Processor(Root VP {c})\\% Total Run Time" for c in (0, 1)
    ]
    header += [
        "\\\\HV-EDGE-02\\Hyper-V Virtual Switch(vSwitch-Ext)\\Packets Received/sec",
        "\\\\HV-EDGE-02\\Hyper-V Virtual Switch(vSwitch-Ext)\\Packets Sent/sec",
        "\\\\HV-EDGE-02\\Network Adapter(Mellanox ConnectX-4 Lx Ethernet Adapter)\\Packets/sec",
    ]
    rows = [[f"03/14/2025 02:41:{7 + s:02d}.118", f"{runs[s]}", "11.5", "150000", "300000", "450000"] for s in range(5)]
    return (
        _rows(header, rows, tz="(Pacific Standard Time)(480)")
        + "Administrator @ HV-EDGE-02:\r\n"
        + 'PS C:\\Windows\\system32> typeperf -cf "C:\\Users\\Administrator\\Desktop\\msdbg.HV-EDGE-02\\Counters\\'
        + 'CounterDetail.InstancesToQuery.txt" -sc 5 -si 1 -f CSV -o "C:\\Users\\Administrator\\Desktop\\'
        + 'msdbg.HV-EDGE-02\\Counters\\CounterDetail.csv"\r\n'
    )


def test_getnetview_counterdetail_with_prompt_lines_run_time_only(cli, tmp_path: Path) -> None:
    """Only root VP run time: the busy core is named, network is not claimed, the missing counters are listed."""
    d = tmp_path / "msdbg.HV-EDGE-02" / "Counters"
    d.mkdir(parents=True)
    (d / "CounterDetail.csv").write_bytes(_netview([99.4, 99.7, 99.1, 99.8, 99.5]).encode("cp1252"))
    r = cli("diagnose", str(tmp_path / "msdbg.HV-EDGE-02"), "--format", "json")
    assert r.code == 2
    doc = json.loads(r.out)
    assert doc["samples"] == 5 and doc["verdict"] == "insufficient-data"
    (hot,) = [f for f in doc["findings"] if f["id"] == "HOT-CORE"]
    assert hot["core"] == "0"
    assert not [f for f in doc["findings"] if f["id"] == "SINGLE-CORE-SWITCH"]
    assert "\\Processor(*)\\% Interrupt Time" in r.err and "Virtual Switch Processor" in r.err
    assert "network work" in r.err and r.err.count("\n") == 1
    assert doc["windows"][0]["start_local"] == "2025-03-14T02:41:06-08:00"
    assert doc["windows"][0]["start_utc"] == "2025-03-14T10:41:06Z"


def test_relog_tsv_and_logman_first_row_of_blanks() -> None:
    """relog -f tsv separates cells by tabs; logman's first row has blanks for rate counters."""
    header = ["\\\\HV\\Processor(0)\\% DPC Time", "\\\\HV\\Processor(1)\\% DPC Time"]
    rows = [["09/22/2026 21:00:00.000", " ", " "]] + [
        [f"09/22/2026 21:00:{s:02d}.000", "96", "3"] for s in range(1, 40)
    ]
    rec = parse(_rows(header, rows, sep="\t"))
    vals = rec.series("processor\\% dpc time")["0"]
    assert math.isnan(vals[0]) and vals[1] == 96.0 and len(vals) == 40


def test_logman_append_repeats_the_header_and_excel_resaved_file_is_read() -> None:
    header = ["\\\\HV\\Processor(0)\\% DPC Time"]
    text = _rows(header, [["09/22/2026 21:00:00.000", "1"]])
    rep = text + text.splitlines()[0] + "\r\n" + '"09/22/2026 21:00:01.000","2"\r\n'
    assert list(parse(rep).series("processor\\% dpc time")["0"]) == [1.0, 2.0]
    excel = "(PDH-CSV 4.0) (UTC)(0),\\\\HV\\Processor(0)\\% DPC Time\r\n09/22/2026 21:00,3\r\n09/22/2026 21:01,4\r\n"
    rec = parse(excel)
    assert list(rec.series("processor\\% dpc time")["0"]) == [3.0, 4.0]
    assert rec.timestamps[1] - rec.timestamps[0] == 60


def test_dst_end_keeps_utc_continuous_and_local_times_right(tmp_path: Path) -> None:
    """Across the October DST end (03:00 CEST -> 02:00 CET) the wall clock steps back an hour: UTC must not."""
    text = peak_csv(hours=2, peak_at=1800, peak_s=3600, cores=4, start=datetime(2026, 10, 25, 2, 0, 0))
    lines = text.split("\r\n")
    # rows from 03:00:00 local on are written an hour earlier, as the host's clock showed them
    out = [lines[0]]
    for ln in lines[1:]:
        if not ln:
            continue
        stamp = datetime.strptime(ln[1:20], "%m/%d/%Y %H:%M:%S")
        if stamp >= datetime(2026, 10, 25, 3, 0, 0):
            stamp = stamp.replace(hour=stamp.hour - 1)
        out.append('"' + stamp.strftime("%m/%d/%Y %H:%M:%S") + ln[20:])
    f = tmp_path / "dst.csv"
    f.write_text("\r\n".join(out) + "\r\n")
    rec = load(f)
    steps = {round(b - a) for a, b in zip(rec.timestamps[:-1], rec.timestamps[1:], strict=True)}
    assert steps == {1}
    assert [e.kind for e in rec.clock_events] == ["dst-end"]
    rep = diagnose(rec)
    (w,) = rep.windows
    doc = w.to_json()
    # the window runs 02:30 CEST (00:30 UTC) to 02:30 CET (01:30 UTC): one hour, not zero
    assert doc["start_local"] == "2026-10-25T02:29:59+02:00" and doc["end_local"] == "2026-10-25T02:29:59+01:00"
    assert doc["start_utc"] == "2026-10-25T00:29:59Z" and doc["end_utc"] == "2026-10-25T01:29:59Z"
    assert doc["duration_s"] == pytest.approx(3600, abs=1)


def test_clock_jump_is_reported_and_does_not_stretch_a_window(tmp_path: Path) -> None:
    text = peak_csv(hours=0.5, peak_at=300, peak_s=600, cores=4, start=datetime(2026, 9, 22, 20, 0, 0))
    lines = text.split("\r\n")
    # the host's clock is set 7 minutes forwards in the middle of the peak
    out = [lines[0]]
    for n, ln in enumerate(lines[1:]):
        if not ln:
            continue
        if n >= 600:
            stamp = datetime.strptime(ln[1:20], "%m/%d/%Y %H:%M:%S")
            ln = '"' + stamp.replace(minute=stamp.minute + 7).strftime("%m/%d/%Y %H:%M:%S") + ln[20:]
        out.append(ln)
    f = tmp_path / "jump.csv"
    f.write_text("\r\n".join(out[: 1 + 1200]) + "\r\n")
    rec = load(f)
    assert [(e.kind, round(e.delta_s)) for e in rec.clock_events] == [("jump", 420)]
    rep = diagnose(rec)
    (w,) = rep.windows
    assert w.duration_s == pytest.approx(600, abs=1)
    assert rep.to_json()["clock_events"] == [{"index": 600, "kind": "jump", "delta_s": 420.0}]


def test_blg_is_refused_with_the_relog_line(cli, tmp_path: Path) -> None:
    f = tmp_path / "DataCollector01.blg"
    f.write_bytes(b"\x00\x01binary perflib log\x00" * 8)
    r = cli("diagnose", str(f))
    assert r.code == 2
    assert "relog DataCollector01.blg -f csv -o DataCollector01.csv" in r.err
    assert r.err.count("\n") == 1


def test_typeperf_stdout_without_a_time_zone_claims_no_utc(cli, tmp_path: Path) -> None:
    """typeperf's stdout header is `"(PDH-CSV 4.0)"` alone: the times are the host's wall clock, zone unknown."""
    text = peak_csv(hours=0.25, peak_at=300, peak_s=120, cores=4, tz="", start=datetime(2026, 9, 22, 20, 0, 0))
    f = tmp_path / "stdout.csv"
    f.write_text("\r\n" + text + "Exiting, please wait...\r\nThe command completed successfully.\r\n")
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    (w,) = doc["windows"]
    assert w["start_local"] == "2026-09-22T20:04:59" and w["start_utc"] is None and w["end_utc"] is None
    assert doc["start_utc"] is None and doc["start_local"] == "2026-09-22T19:59:59"
    hot = next(x for x in doc["findings"] if x["id"] == "SINGLE-CORE-SWITCH")
    assert "on the host's clock (time zone not recorded)" in hot["summary"] and "UTC" not in hot["summary"]
