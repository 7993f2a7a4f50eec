"""`iovkit diagnose FILE` on recordings in the shapes typeperf/logman/relog and Get-Counter write."""

from __future__ import annotations

import json
import math
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iovkit.diagnose.inputs import load
from iovkit.diagnose.script import COUNTERS, counters_script
from tests.fixtures.recordings import get_counter_json, pdh_csv


def _json(r) -> dict:
    return json.loads(r.out)


def test_case_recording_is_flagged_on_core0_with_saturation_near_450k(cli, tmp_path: Path) -> None:
    f = tmp_path / "counters.csv"
    f.write_text(pdh_csv(typeperf_stdout=True), encoding="utf-8", newline="")
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1, r.err
    doc = _json(r)
    assert doc["verdict"] == "bottleneck"
    hot = next(x for x in doc["findings"] if x["id"] == "SINGLE-CORE-SWITCH")
    assert hot["core"] == "0"
    sat = hot["evidence"]["saturation_pps"]
    assert abs(sat - 450_000) / 450_000 < 0.10
    assert 0 < hot["evidence"]["headroom_pps"] < 0.1 * sat
    assert 1.5 < hot["evidence"]["cost_us_per_packet"] < 2.5  # ~0.97 s of core per 450k packets
    assert hot["evidence"]["nic_rx_pps"] == pytest.approx(150_000, rel=0.05)
    assert hot["evidence"]["nic_tx_pps"] == pytest.approx(300_000, rel=0.05)  # host vNIC not double counted
    ranked = [x["id"] for x in doc["recommendations"]]
    assert ranked[:3] == ["SRIOV", "VMQ", "VRSS"]
    assert all(x["why"] for x in doc["recommendations"])


def test_balanced_recording_is_not_flagged(cli, tmp_path: Path) -> None:
    f = tmp_path / "balanced.csv"
    f.write_text(pdh_csv(balanced=True), encoding="utf-8")
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 0, r.err
    doc = _json(r)
    assert doc["verdict"] == "ok"
    assert not [x for x in doc["findings"] if x["id"] in ("SINGLE-CORE-SWITCH", "MISSING-SPREAD")]


def test_german_host_and_time_zone_in_ansi_logman_file(tmp_path: Path) -> None:
    f = tmp_path / "logman.csv"
    f.write_bytes(pdh_csv(host="HV-MÜNCHEN-01", tz="(W. Europe Standard Time)(-60)").encode("cp1252"))
    rec = load(f)
    assert rec.host == "HV-MÜNCHEN-01"
    assert rec.timezone == "W. Europe Standard Time"
    # 09/22/2026 21:42:32.824 local at bias -60 (UTC+1) is 20:42:32.824 UTC
    assert rec.timestamps[0] == datetime(2026, 9, 22, 20, 42, 32, 824000, tzinfo=UTC).timestamp()
    # the " " cell is a missing sample, not a zero
    assert math.isnan(rec.series("hyper-v hypervisor root virtual processor\\% total run time")["root vp 1"][3])


def test_utf16_relog_file_with_german_host_is_flagged(cli, tmp_path: Path) -> None:
    f = tmp_path / "relog.csv"
    f.write_bytes(pdh_csv(host="SRV-KÖLN", tz="(W. Europe Standard Time)(-60)").encode("utf-16"))
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1
    assert _json(r)["findings"][0]["core"] == "0"


def test_get_counter_json_sample_sets_are_flagged(cli, tmp_path: Path) -> None:
    f = tmp_path / "samples.json"
    f.write_text(get_counter_json())
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1
    doc = _json(r)
    assert doc["verdict"] == "bottleneck"
    assert doc["findings"][0]["core"] == "0"


def test_get_counter_json_flat_balanced_is_ok(cli, tmp_path: Path) -> None:
    f = tmp_path / "flat.json"
    f.write_text(get_counter_json(flat=True, balanced=True))
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 0
    assert _json(r)["verdict"] == "ok"


def test_getnetview_zip_counterdetail_is_read(cli, tmp_path: Path) -> None:
    f = tmp_path / "msdbg.HV.zip"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("msdbg.HV/Counters/CounterDetail.csv", pdh_csv(tz="(UTC)(0)"))
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1
    assert _json(r)["verdict"] == "bottleneck"


def test_rich_report_shows_hot_core_sparklines_and_remedies(cli, tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text(pdh_csv())
    r = cli("diagnose", str(f))
    assert r.code == 1
    assert "SINGLE-CORE-SWITCH" in r.out and "bottleneck" in r.out
    assert "████" in r.out  # core 0's sparkline
    assert "SR-IOV" in r.out


def _cell(text: str, line: int, col: int, value: str) -> str:
    """Replace one cell (1-based line and column) of a PDH-CSV text."""
    lines = text.split("\r\n")
    cells = lines[line - 1][1:-1].split('","')
    cells[col - 1] = value
    lines[line - 1] = '"' + '","'.join(cells) + '"'
    return "\r\n".join(lines)


def _drop_cell(text: str, line: int) -> str:
    lines = text.split("\r\n")
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0]
    return "\r\n".join(lines)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda t: _cell(t, 2, 2, "9x8.5"), "line 2, column 2"),
        (lambda t: _drop_cell(t, 3), "line 3: "),
        (lambda t: _cell(t, 5, 1, "2026-22-09 21:42:35"), "line 5: bad timestamp"),
        (lambda t: _cell(t, 1, 7, "Processor 0 DPC"), "line 1, column 7"),
    ],
)
def test_malformed_csv_names_the_line_exit_2(cli, tmp_path: Path, mutate, needle: str) -> None:
    f = tmp_path / "bad.csv"
    text = pdh_csv()
    bad = mutate(text)
    assert bad != text
    f.write_text(bad)
    r = cli("diagnose", str(f))
    assert r.code == 2
    assert r.err.startswith("iovkit: error: ") and needle in r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            '[{"Path": "\\\\\\\\h\\\\processor(0)\\\\% dpc time", "CookedValue": 1.0,\n'
            ' "Timestamp": "2026-09-22T21:42:32"},\n {"Path": "x"',
            "line 3",
        ),
        (
            '[{"Path": "\\\\\\\\h\\\\processor(0)\\\\% dpc time", "Timestamp": "2026-09-22T21:42:32"}]',
            "[0]: missing field 'CookedValue'",
        ),
        (
            '[{"Timestamp": "/Date(1790000000000)/", "CounterSamples": [{"Path": "\\\\\\\\h\\\\processor(0)\\\\% dpc '
            'time", "CookedValue": "lots"}]}]',
            "[0].CounterSamples[0].CookedValue",
        ),
        (
            '{"iovkit-recording": 1, "timestamps": [1, 2], "counters": {"linux cpu\\\\% busy": {"0": [1]}}}',
            "counters.linux cpu\\% busy.0",
        ),
    ],
)
def test_malformed_json_names_the_field_exit_2(cli, tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = cli("diagnose", str(f))
    assert r.code == 2
    assert needle in r.err and r.err.count("\n") == 1


def test_recording_without_needed_counters_says_which(cli, tmp_path: Path) -> None:
    f = tmp_path / "paging.csv"
    f.write_text(
        '\r\n"(PDH-CSV 4.0)","\\\\runner\\Paging File(_Total)\\% Usage","\\\\runner\\Memory\\Commit Limit"\r\n'
        '"09/22/2026 21:42:32.824","0.000000","20261367808.000000"\r\nExiting, please wait...\r\n'
        "The command completed successfully.\r\n"
    )
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 2
    assert _json(r)["verdict"] == "insufficient-data"
    assert "Root Virtual Processor" in r.err and "% Interrupt Time" in r.err
    assert "not recognized" not in r.err  # English objects iovkit does not read are not another language


def test_not_a_counter_file_exit_2(cli, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    r = cli("diagnose", str(f))
    assert r.code == 2 and "not a PDH-CSV" in r.err
    r = cli("diagnose", str(tmp_path / "missing.csv"))
    assert r.code == 2 and "no such file" in r.err


def test_counters_script_lists_the_sets_and_exact_commands(cli) -> None:
    text = counters_script(seconds=120, interval=2)
    assert "typeperf -cf .\\iovkit-counters.txt -si 2 -sc 60 -f CSV -o .\\iovkit-counters.csv -y" in text
    assert "logman create counter iovkit-diag -cf .\\iovkit-counters.txt -si 00:00:02 -rf 00:02:00 -f csv" in text
    for needed in (
        "Root Virtual Processor",
        "Logical Processor",
        "% Interrupt Time",
        "% DPC Time",
        "Virtual Switch(*)",
        "Virtual Switch Processor",
        "Virtual Network Adapter",
        "Network Interface",
    ):
        assert any(needed in c for c in COUNTERS) and needed in text
    r = cli("script", "counters", "--duration", "10", "--interval", "1")
    assert r.code == 0 and "-sc 10" in r.out


def test_getnetview_folder_and_decimal_comma(cli, tmp_path: Path) -> None:
    """A Get-NetView output folder is searched for Counters/CounterDetail.csv; `97,5` reads as 97.5."""
    d = tmp_path / "msdbg.HV-MÜNCHEN" / "Counters"
    d.mkdir(parents=True)
    text = _cell(pdh_csv(host="HV-MÜNCHEN", tz="(W. Europe Standard Time)(-60)", balanced=True), 2, 2, "97,5")
    (d / "CounterDetail.csv").write_text(text, encoding="utf-8")
    rec = load(tmp_path / "msdbg.HV-MÜNCHEN")
    assert rec.series("hyper-v hypervisor root virtual processor\\% total run time")["root vp 0"][0] == 97.5
    r = cli("diagnose", str(tmp_path / "msdbg.HV-MÜNCHEN"), "--format", "json")
    assert r.code == 0 and json.loads(r.out)["host"] == "HV-MÜNCHEN"


def test_windows_udp_error_count_is_a_running_total(cli, tmp_path: Path) -> None:
    """UDPv4 Datagrams Received Errors is a raw count: a constant count is no drop, a rising one is."""
    head = '"(PDH-CSV 4.0) (UTC)(0)","\\\\H\\UDPv4\\Datagrams Received Errors","\\\\H\\Processor(0)\\% DPC Time"'

    def rows(counts: list[int]) -> str:
        return "\r\n".join(f'"09/22/2026 21:42:{30 + i:02d}.000","{c}.000000","5.000000"' for i, c in enumerate(counts))

    f = tmp_path / "udp.csv"
    f.write_text(head + "\r\n" + rows([5000, 5000, 5000]) + "\r\n")
    doc = json.loads(cli("diagnose", str(f), "--format", "json").out)
    assert not [x for x in doc["findings"] if x["id"] == "UDP-BUFFER-DROPS"]
    f.write_text(head + "\r\n" + rows([5000, 5100, 5200]) + "\r\n")
    doc = json.loads(cli("diagnose", str(f), "--format", "json").out)
    udp = next(x for x in doc["findings"] if x["id"] == "UDP-BUFFER-DROPS")
    assert "100.0/s" in udp["summary"]
