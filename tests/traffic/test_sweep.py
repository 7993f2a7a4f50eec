"""Sweep: stepping and judging (pure), and real sweeps on loopback that find a knee and write JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iovkit.errors import InputError
from iovkit.traffic import histo
from iovkit.traffic.results import BenchSettings, Objective, StepMeasurement, load_result
from iovkit.traffic.sweep import judge, knee, rates, run_sweep


def _measure(rate: float, *, lost: int = 0, p99: float = 100.0, sent_share: float = 1.0) -> StepMeasurement:
    sent = int(rate * sent_share)
    h = histo.new()
    h.record_many([int(p99 * 1000)] * 10)
    return StepMeasurement(
        offered_pps=rate,
        sent=sent,
        expected=sent,
        received=sent - lost,
        reordered=0,
        duplicates=0,
        jitter_us=1.0,
        latency_kind="rtt",
        latency_us={"p50": p99 / 2, "p90": p99, "p99": p99, "p99.9": p99, "max": p99},
        histogram=h.encode(),
        duration_s=1.0,
    )


def test_rates_are_geometric_and_capped() -> None:
    assert list(rates(1000, 2, None, 4)) == [1000, 2000, 4000, 8000]
    assert list(rates(1000, 2, 5000, 10)) == [1000, 2000, 4000, 5000]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0, 2, None, 3), "--rate"),
        ((10, 1.0, None, 3), "--step-factor"),
        ((10, 2, None, 0), "--steps"),
        ((10, 2, 5, 3), "--max-rate"),
    ],
)
def test_bad_sweep_settings_name_the_option(args: tuple, field: str) -> None:
    with pytest.raises(InputError) as exc:
        list(rates(*args))
    assert field in str(exc.value)


def test_judge_names_what_broke() -> None:
    obj = Objective(max_loss_pct=1.0, max_p99_us=500.0)
    assert judge(_measure(1000), obj) is None
    assert "loss" in (judge(_measure(1000, lost=20), obj) or "")
    assert "p99" in (judge(_measure(1000, p99=900), obj) or "")
    assert "sender reached only" in (judge(_measure(1000, sent_share=0.5), obj) or "")
    assert "fell behind" in (judge(_measure(1000, sent_share=0.0), obj) or "")


def test_knee_is_the_last_rate_within_objective_before_the_first_failure() -> None:
    settings = BenchSettings(
        target="127.0.0.1:1", start_rate=1000, step_factor=2, max_steps=6, objective=Objective(max_p99_us=500)
    )

    def fake(rate: float) -> StepMeasurement:
        return _measure(rate, p99=100 if rate <= 4000 else 5000)

    result = run_sweep(settings, fake)
    # stops at the first rate that missed twice (a miss is repeated before it counts)
    assert [s.offered_pps for s in result.steps] == [1000, 2000, 4000, 8000, 8000]
    assert [s.attempt for s in result.steps] == [1, 1, 1, 1, 2]
    assert result.knee_pps == 4000 == knee(result.steps)
    assert "p99" in (result.stopped_because or "") and "2 attempts" in (result.stopped_because or "")
    assert result.steps[0].cpu_per_core_pct  # per-core CPU recorded for every step


def test_a_noisy_first_step_is_repeated_and_does_not_end_the_sweep() -> None:
    """On a loaded machine one slow first step used to end a sweep with "knee: none"."""
    settings = BenchSettings(
        target="127.0.0.1:1", start_rate=1000, step_factor=2, max_steps=3, objective=Objective(max_p99_us=500)
    )
    calls: list[float] = []

    def fake(rate: float) -> StepMeasurement:
        calls.append(rate)
        return _measure(rate, p99=9000 if len(calls) == 1 else 100)  # only the very first attempt is slow

    result = run_sweep(settings, fake)
    assert calls == [1000, 1000, 2000, 4000]
    assert result.knee_pps == 4000 and result.stopped_because == "reached the last step"
    first = result.rates[0]
    assert (first.offered_pps, first.attempts, first.within_objective) == (1000, 2, True)
    assert first.p99_us_min == 100 and first.p99_us_max == 9000  # the spread of the attempts


def test_ndr_and_pdr_beside_the_knee() -> None:
    """NDR: the highest rate with no loss; PDR: with at most 0.5 % loss; both whatever the latency did."""
    settings = BenchSettings(
        target="127.0.0.1:1",
        start_rate=1000,
        step_factor=2,
        max_steps=5,
        repeats=1,
        objective=Objective(max_p99_us=500, max_loss_pct=5),
    )
    loss = {1000: 0, 2000: 0, 4000: 12, 8000: 200, 16000: 2000}  # 0, 0, 0.3 %, 2.5 %, 12.5 %

    def fake(rate: float) -> StepMeasurement:
        return _measure(rate, lost=loss[int(rate)], p99=100 if rate < 2000 else 900)

    result = run_sweep(settings, fake)
    assert result.knee_pps == 1000  # the latency knee: 2000/s broke the p99
    assert [s.offered_pps for s in result.steps] == [1000, 2000]
    assert result.ndr_pps == 2000 and result.pdr_pps == 2000
    result = run_sweep(settings.model_copy(update={"objective": Objective(max_p99_us=5000, max_loss_pct=50)}), fake)
    assert result.knee_pps == 16000
    assert result.ndr_pps == 2000 and result.pdr_pps == 4000


def test_local_sweep_finds_a_knee_and_writes_json_and_plots(cli, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    r = cli(
        "bench",
        "--local",
        "--rate",
        "1000",
        "--steps",
        "3",
        "--step-factor",
        "2",
        "--step-seconds",
        "0.4",
        "--warmup",
        "0.1",
        "--max-p99",
        "200000",
        "--max-loss",
        "5",
        "-q",
        "-o",
        str(out),
    )
    assert r.code == 0, r.err
    assert "knee:" in r.out
    result = load_result(out)
    assert result.knee_pps is not None and result.knee_pps >= 1000
    assert len(result.steps) >= 1
    step = result.steps[0]
    assert step.latency_kind == "rtt" and step.latency_us.p99 is not None
    assert step.histogram and histo.decode(step.histogram).count == step.received
    # From the send call every datagram's time is at most its time from the schedule (the send is never early),
    # so every percentile is too; both histograms hold the same datagrams.
    sent = step.latency_from_send_us
    assert sent is not None and step.histogram_from_send
    assert histo.decode(step.histogram_from_send).count == step.received
    for q in ("p50", "p90", "p99", "p99_9", "max"):
        assert getattr(sent, q) <= getattr(step.latency_us, q), q
    assert "p99 from send" in r.out
    assert result.host.hostname and result.host.kernel
    data = json.loads(out.read_text())
    assert {"p50", "p90", "p99", "p99.9", "max"} <= set(data["steps"][0]["latency_us"])
    for ext in (".png", ".svg"):
        assert out.with_suffix(ext).stat().st_size > 1000


def test_local_relay_mode_sweep(cli, tmp_path: Path) -> None:
    out = tmp_path / "relay.json"
    r = cli(
        "bench",
        "--local",
        "--mode",
        "relay",
        "--clients",
        "4",
        "--sessions",
        "2",
        "--tick",
        "200",
        "--steps",
        "2",
        "--step-seconds",
        "0.3",
        "--warmup",
        "0.1",
        "--max-p99",
        "200000",
        "--no-plots",
        "-q",
        "-o",
        str(out),
    )
    assert r.code == 0, r.err
    result = load_result(out)
    assert result.steps[0].offered_pps == 800  # 4 clients x 200 Hz
    assert result.steps[0].latency_kind == "one-way"
    assert result.steps[0].expected == result.steps[0].sent  # 2 members per session: fan-out 1


def test_ctrl_c_keeps_the_finished_steps(tmp_path: Path) -> None:
    """A sweep stopped by hand (SIGINT to the whole process group, as a terminal sends it) still writes its
    finished steps, marked interrupted, exits 130 with one line, and no sender process prints a traceback."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iovkit",
            "bench",
            "--local",
            "--rate",
            "500",
            "--steps",
            "200",
            "--step-factor",
            "1.01",
            "--step-seconds",
            "0.2",
            "--warmup",
            "0",
            "--senders",
            "2",
            "--no-plots",
            # The sweep must still be running when the signal comes, however late a loaded machine lets this test
            # send it: an objective no step can miss, a low rate the senders keep up with, every missed step
            # retried ten times, and 200 steps (40 s) it never gets through.
            "--max-p99",
            "10000000",
            "--max-loss",
            "100",
            "--repeats",
            "10",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen = []
    while True:  # ready when the first step has finished: its line is on stderr (time is not a readiness signal)
        line = proc.stderr.readline()
        seen.append(line)
        assert line, "".join(seen)  # the run ended before its first step
        if "/s" in line and "recv" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    stderr = "".join(seen) + stderr
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "iovkit: interrupted"
    result = load_result(out)
    assert result.interrupted and "interrupted" in (result.stopped_because or "")
    assert 1 <= len(result.steps) < 200
    assert "(interrupted)" in stdout


def test_unwritable_output_is_refused_before_any_traffic(cli) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:  # a silent target that counts what arrives
        target.bind(("127.0.0.1", 0))
        r = cli(
            "bench", "--target", f"127.0.0.1:{target.getsockname()[1]}", "-o", "/proc/iovkit-result.json", "--no-plots"
        )
        target.setblocking(False)
        with pytest.raises(BlockingIOError):
            target.recv(2048)  # not one datagram was sent: refused before the probe and the sweep
    assert r.code == 2 and "/proc/iovkit-result.json" in r.err and r.err.count("\n") == 1


def test_one_way_at_max_into_the_local_sink_reports_sent_and_delivered(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "send.json"
    r = cli(
        "bench",
        "--local",
        "--mode",
        "send",
        "--rate",
        "max",
        "--step-seconds",
        "0.3",
        "--no-plots",
        "-q",
        "-o",
        str(out),
    )
    assert r.code == 0, r.err
    assert "NDR (no loss)" in r.out and "PDR (<= 0.5% loss)" in r.out
    result = load_result(out)
    assert result.settings.rate_max and result.settings.mode == "send"
    step = result.steps[0]
    assert step.latency_kind == "none" and step.sent > 0
    assert step.expected == step.sent and 0 < step.received <= step.sent  # what the sink counted
    assert step.offered_pps == step.achieved_pps  # at max, the rate reached is the rate offered


def test_rate_max_is_the_only_word_rate_takes(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("bench", "--local", "--rate", "fast", "--no-plots")
    assert r.code == 2 and "--rate" in r.err and r.err.count("\n") == 1
