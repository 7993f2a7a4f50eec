"""compare: noise-aware verdicts on synthetic runs, and a slow target that moves the knee and is called worse."""

from __future__ import annotations

import json
import random
from pathlib import Path

from iovkit.traffic import histo
from iovkit.traffic.compare import compare
from iovkit.traffic.results import BenchSettings, HostFacts, Latency, Objective, StepResult, SweepResult, now
from tests.fixtures.forwarder import start_forwarder


def _run(knee: float, p99_us: float, *, seed: int, cpu: float = 2.0) -> SweepResult:
    rng = random.Random(seed)
    steps = []
    for rate in (1000.0, 2000.0, 4000.0, 8000.0):
        h = histo.new()
        h.record_many(int(rng.gauss(p99_us * 0.6, p99_us * 0.15) * 1000) for _ in range(2000))
        ok = rate <= knee
        lat = h.percentiles_us()
        steps.append(
            StepResult(
                offered_pps=rate,
                achieved_pps=rate,
                received_pps=rate,
                sent=2000,
                received=2000,
                expected=2000,
                lost=0,
                loss_pct=0.0,
                reordered=0,
                duplicates=0,
                latency_kind="rtt",
                latency_us=Latency.model_validate(lat),
                histogram=h.encode(),
                duration_s=1.0,
                cpu_us_per_packet=cpu,
                within_objective=ok,
                failed_because=None if ok else "p99",
            )
        )
        if not ok:
            break
    return SweepResult(
        tool_version="t",
        started=now(),
        host=HostFacts(hostname="h", kernel="k", os="Linux", python="3"),
        settings=BenchSettings(target="127.0.0.1:1", start_rate=1000, objective=Objective()),
        steps=steps,
        knee_pps=knee,
    )


def test_same_runs_are_within_noise() -> None:
    c = compare([_run(4000, 100, seed=1), _run(4000, 100, seed=2)], [_run(4000, 100, seed=3), _run(4000, 100, seed=4)])
    assert c.knee.call == "within noise"
    assert c.overall == "within noise"


def test_sr_iov_like_gain_is_better_and_meets_the_guide() -> None:
    c = compare([_run(2000, 200, seed=1, cpu=4.0)], [_run(4000, 90, seed=2, cpu=1.8)])
    assert c.overall == "better"
    assert c.knee.delta_pct == 100.0 and c.knee.meets_guide
    p99 = next(m for m in c.summary if m.name.startswith("p99"))
    assert p99.call == "better" and p99.meets_guide
    cpu = next(m for m in c.summary if m.name.startswith("cpu"))
    assert cpu.meets_guide


def test_a_small_difference_inside_the_spread_of_repeats_is_not_called() -> None:
    before = [_run(4000, 100, seed=1), _run(2000, 100, seed=2)]  # knees 4000 and 2000: +-33 % spread
    after = [_run(4000, 100, seed=3), _run(4000, 100, seed=4)]
    c = compare(before, after)
    assert c.knee.noise_pct >= 33
    assert c.knee.call == "within noise"


def test_cli_compare_two_files_and_bad_file(cli, tmp_path: Path) -> None:
    b, a = tmp_path / "b.json", tmp_path / "a.json"
    _run(4000, 100, seed=1).write(b)
    _run(1000, 400, seed=2).write(a)
    r = cli("compare", str(b), str(a), "--no-plots")
    assert r.code == 1
    assert "verdict: after is worse" in r.out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "iovkit.bench/1", "steps": "x"}))
    r = cli("compare", str(b), "--after", str(bad))
    assert r.code == 2 and r.err.count("\n") == 1 and str(bad) in r.err
    # a wrong value is named by its field and shown cut short, the way every loader shows it
    doc = json.loads(b.read_text())
    doc["steps"][0]["sent"] = {"whole": ["object"] * 100}
    bad.write_text(json.dumps(doc))
    r = cli("compare", str(b), "--after", str(bad))
    assert r.code == 2 and r.err.count("\n") == 1
    assert "steps.0.sent" in r.err and "(value {...})" in r.err and "whole" not in r.err
    r = cli("compare", str(b), "--after", str(tmp_path / "missing.json"))
    assert r.code == 2 and "no such file" in r.err


def _sweep(cli, target: tuple[str, int], out: Path) -> None:
    r = cli(
        "bench",
        "--target",
        f"{target[0]}:{target[1]}",
        "--rate",
        "500",
        "--step-factor",
        "2",
        "--steps",
        "4",
        "--step-seconds",
        "0.4",
        "--warmup",
        "0.1",
        "--max-p99",
        "20000",
        "--max-loss",
        "1",
        "--flows",
        "1",
        "-q",
        "--no-plots",
        "-o",
        str(out),
    )
    assert r.code in (0, 1), r.err


def test_slow_target_moves_the_knee_and_compare_calls_it_worse(cli, tmp_path: Path) -> None:
    fast, slow = tmp_path / "fast.json", tmp_path / "slow.json"
    with start_forwarder() as fw:
        _sweep(cli, fw.address, fast)
    # 3 ms of busy wait per datagram: at most ~330 datagrams/s, under the first step's 500/s whatever the load, so
    # the slow run's queue grows from its first step on and both its knee and its p99 are worse by construction
    with start_forwarder(delay_us=3000) as fw:
        _sweep(cli, fw.address, slow)
    r = cli("compare", str(fast), "--after", str(slow), "-o", str(tmp_path / "cmp"))
    assert r.code == 1, r.out + r.err
    assert "verdict: after is worse" in r.out
    data = json.loads(fast.read_text()), json.loads(slow.read_text())
    assert (data[1]["knee_pps"] or 0) < data[0]["knee_pps"]
    assert (tmp_path / "cmp.png").exists() and (tmp_path / "cmp.svg").exists()


def test_after_without_a_knee_is_worse() -> None:
    no_knee = _run(1000, 100, seed=5)
    no_knee.knee_pps = None
    c = compare([_run(4000, 100, seed=1)], [no_knee])
    assert c.knee.after == 0.0 and c.knee.call == "worse"
    assert c.worse


def test_an_interrupted_run_is_flagged_as_a_lower_bound() -> None:
    cut = _run(2000, 100, seed=2)
    cut.interrupted = True
    assert any("interrupted" in w for w in compare([_run(4000, 100, seed=1)], [cut]).warnings)
    assert not any("interrupted" in w for w in compare([_run(4000, 100, seed=1)], [_run(2000, 100, seed=3)]).warnings)


def test_a_repeated_attempt_at_one_rate_is_one_rate() -> None:
    """The sweep repeats a missed step: its two attempts at 1,000/s are one matched rate, not two rows."""
    before, after = _run(4000, 100, seed=1), _run(4000, 100, seed=2)
    for run in (before, after):
        run.steps.insert(1, run.steps[0].model_copy())
    c = compare([before], [after])
    assert [p.offered_pps for p in c.rates] == [1000.0, 2000.0, 4000.0, 8000.0]
