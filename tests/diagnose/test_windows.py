"""Recordings read as time series: a short peak in a long recording, found with its local and UTC times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iovkit.diagnose import diagnose
from iovkit.diagnose.inputs import load
from tests.fixtures.recordings import peak_csv


@pytest.fixture(scope="module")
def four_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 h at 1 s (14,400 samples); root VP 0 saturates for ten minutes from 20:00 local (18:00 UTC)."""
    f = tmp_path_factory.mktemp("peak") / "iovkit-counters_000001.csv"
    f.write_bytes(peak_csv().encode("cp1252"))
    return f


def test_ten_minute_peak_in_four_hours_is_a_bottleneck_with_its_times(cli, four_hours: Path) -> None:
    r = cli("diagnose", str(four_hours), "--format", "json")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    assert doc["verdict"] == "bottleneck"
    assert doc["samples"] == 14_400
    (w,) = doc["windows"]
    assert w["core"] == "0" and doc["worst_window"] == 0
    # 17:00:00.25 local + 3 h = 20:00:00.25 is the first peak sample's end, so the window opens at 19:59:59
    assert w["start_local"] == "2026-09-22T19:59:59+02:00" and w["end_local"] == "2026-09-22T20:09:59+02:00"
    assert w["start_utc"] == "2026-09-22T17:59:59Z" and w["end_utc"] == "2026-09-22T18:09:59Z"
    assert w["duration_s"] == pytest.approx(600, abs=1)
    assert doc["window_share"] == pytest.approx(600 / 14_400, rel=0.01)
    # the whole-recording averages look fine: core 0 averages well under 90%
    core0 = next(c for c in doc["cores"] if c["core"] == "0")
    assert core0["busy_pct"] < 50 and core0["busy_max_pct"] > 99
    # the sparkline buckets carry the peak in their max beside the mean
    assert max(v for v in core0["busy_buckets"]["max"] if v) > 99
    assert max(v for v in core0["busy_buckets"]["mean"] if v) < 90
    hot = next(f for f in doc["findings"] if f["id"] == "SINGLE-CORE-SWITCH")
    assert "19:59:59-20:09:59 local (W. Europe Daylight Time)" in hot["summary"]
    assert "17:59:59-18:09:59 UTC" in hot["summary"]
    assert "4.2% of the recording" in hot["summary"]


def test_the_estimate_is_the_host_rate_in_the_peak_window(four_hours: Path) -> None:
    """450k pkt/s at the NIC with core 0 at 99.6%: the host saturates near 450k / 0.996, never below 450k."""
    rep = diagnose(load(four_hours))
    w = rep.windows[0]
    est = w.estimate
    assert est["host_pps"] == pytest.approx(450_000, rel=0.01)
    assert est["host_rx_pps"] == pytest.approx(150_000, rel=0.01)
    assert est["saturation_pps"] >= est["host_pps"]
    assert est["saturation_pps"] == pytest.approx(450_000 / 0.996, rel=0.01)
    assert "physical NICs" in est["derivation"] and "/ 0.99" in est["derivation"]


def test_min_window_is_configurable(cli, four_hours: Path) -> None:
    r = cli("diagnose", str(four_hours), "--format", "json", "--min-window", "900")
    doc = json.loads(r.out)
    assert doc["windows"] == [] and doc["verdict"] == "ok" and r.code == 0
    r = cli("diagnose", str(four_hours), "--format", "json", "--min-window", "0.5")
    assert r.code == 2 and "--min-window" in r.err


def test_rich_report_names_the_window_and_peaks(cli, four_hours: Path) -> None:
    r = cli("diagnose", str(four_hours))
    assert r.code == 1
    assert "Sustained single-core windows" in r.out and "worst" in r.out
    assert "19:59:59-20:09:59" in r.out
    assert "99.6" in r.out or "99.7" in r.out or "99.5" in r.out  # the peak beside the mean


def test_rich_report_on_an_80_column_pipe_keeps_every_window_field(tmp_path: Path) -> None:
    """Piped to a file or a ticket (80 columns), the window's times, length and the recording span are all there."""
    import os
    import subprocess
    import sys

    f = tmp_path / "peak.csv"
    f.write_bytes(peak_csv(hours=1.0, peak_at=1800).encode("cp1252"))
    env = dict(os.environ, COLUMNS="80")
    r = subprocess.run([sys.executable, "-m", "iovkit", "diagnose", str(f)], capture_output=True, text=True, env=env)
    assert r.returncode == 1, r.stderr
    flat = " ".join(line.strip("│ ") for line in r.stdout.splitlines())
    assert "…" not in r.stdout.split("Per-core load")[0]
    assert "for 3,600 s" in flat
    assert "600 s" in r.stdout


def test_remedy_commands_are_never_cut_with_an_ellipsis_on_80_columns(tmp_path: Path) -> None:
    """A command a user copies (the VMSMP registry path of the VMQ remedy) is folded, never shortened to '…'."""
    import os
    import subprocess
    import sys

    from tests.fixtures.recordings import pdh_csv

    f = tmp_path / "case.csv"
    f.write_text(pdh_csv(), encoding="utf-8")
    env = dict(os.environ, COLUMNS="80")
    r = subprocess.run([sys.executable, "-m", "iovkit", "diagnose", str(f)], capture_output=True, text=True, env=env)
    assert r.returncode == 1, r.stderr
    tail = r.stdout.split("Findings")[1]
    assert "BelowTenGigVmqEnabled" in tail and "…" not in tail


def test_the_sriov_remedy_checks_the_recorded_host_not_this_machine(cli, tmp_path: Path) -> None:
    """A recording is read on a workstation: a bare `iovkit check` there would judge the workstation."""
    from tests.fixtures.recordings import pdh_csv

    f = tmp_path / "case.csv"
    f.write_text(pdh_csv(), encoding="utf-8")
    doc = json.loads(cli("diagnose", str(f), "--format", "json").out)
    sriov = next(r for r in doc["recommendations"] if r["id"] == "SRIOV")
    assert all(c.startswith("iovkit ") and "host.json" in c for c in sriov["commands"])


@pytest.mark.parametrize("length", [1, 2, 29, 30, 31, 61, 1000, 2881, 14_400, 86_399])
@pytest.mark.parametrize("gaps", ["none", "few", "half", "all", "first half"])
def test_buckets_are_the_mean_and_max_of_each_slice_of_the_samples(length: int, gaps: str) -> None:
    """The sparkline and JSON buckets: numpy's mean and max of each np.array_split slice, missing samples left
    out, None where a slice has none; exactly (bucket means are computed a block of slices at a time)."""
    import numpy as np

    from iovkit.diagnose import windows

    rng = np.random.default_rng(length)
    values = rng.uniform(0.0, 100.0, length) * rng.choice([1e-6, 1.0, 3e5])
    missing = {
        "none": np.zeros(length, dtype=bool),
        "few": rng.random(length) < 0.01,
        "half": rng.random(length) < 0.5,
        "all": np.ones(length, dtype=bool),
        "first half": np.arange(length) < length // 2,
    }[gaps]
    values[missing] = np.nan
    means, maxes = [], []
    for part in np.array_split(values, min(windows.BUCKETS, length)):
        present = part[~np.isnan(part)]
        means.append(float(present.mean()) if len(present) else None)
        maxes.append(float(present.max()) if len(present) else None)
    assert windows.buckets(values) == (means, maxes)
