"""The load agents' wire without sockets: the clock estimate and the exact merge of the agents' shares."""

from __future__ import annotations

import io

import pytest

from iovkit.errors import IovkitError
from iovkit.fleet import loadwire as wire
from iovkit.traffic import histo
from iovkit.traffic.results import StepMeasurement


def share(latencies_ns: list[int], sent: int, received: int, jitter: float | None = 3.0) -> StepMeasurement:
    h = histo.new()
    h.record_many(latencies_ns)
    return StepMeasurement(
        offered_pps=500.0,
        sent=sent,
        expected=sent,
        received=received,
        reordered=1,
        duplicates=0,
        jitter_us=jitter,
        latency_kind="rtt",
        latency_us=h.percentiles_us(),
        histogram=h.encode(),
        duration_s=1.0,
        extra={"not_sent": 2.0, "start_late_us": 40.0},
    )


def test_the_offset_comes_from_the_fastest_probe() -> None:
    # agent clock 1 ms behind the controller; the second probe was delayed on the way back (asymmetric)
    samples = [(1_000, 1_000_000 + 1_050, 1_100), (2_000, 1_000_000 + 2_050, 9_000), (3_000, 1_000_000 + 3_020, 3_040)]
    offset, rtt = wire.clock_estimate(samples)
    assert (offset, rtt) == (1_000_000, 40)


def test_agents_with_clocks_seconds_apart_start_at_one_instant() -> None:
    start = 1_000_000_000_000  # the controller's common start, in its clock
    # agent A's clock is 5 s behind the controller, agent B's 2 s ahead; both read their clocks at the same instant,
    # 300 ms before the start (controller time), with unrelated monotonic clocks
    a = wire.local_start(start, offset_ns=5_000_000_000, wall_now_ns=start - 300_000_000 - 5_000_000_000, mono_now_ns=7)
    b = wire.local_start(
        start, offset_ns=-2_000_000_000, wall_now_ns=start - 300_000_000 + 2_000_000_000, mono_now_ns=9
    )
    assert (a - 7, b - 9) == (300_000_000, 300_000_000)  # each waits the same 300 ms on its own monotonic clock


def test_merged_step_is_the_exact_sum_of_the_shares() -> None:
    a = share([10_000, 20_000, 30_000], sent=3, received=3)
    b = share([15_000, 900_000], sent=4, received=2, jitter=None)
    m = wire.merge_agents(1000.0, [a, b])
    assert (m.offered_pps, m.sent, m.expected, m.received, m.lost, m.reordered) == (1000.0, 7, 7, 5, 2, 2)
    merged = histo.decode(m.histogram)
    assert merged.count == 5 and merged.equals(histo.merge_encoded([a.histogram, b.histogram]))
    assert m.latency_us["max"] == pytest.approx(900.0, rel=1e-3)  # the slow agent's tail is the step's tail
    assert m.jitter_us == 3.0 and m.extra == {"not_sent": 4.0, "start_late_us": 40.0}


def test_measurements_travel_as_json_lines() -> None:
    a = share([10_000], sent=1, received=1)
    buf = io.BytesIO()
    wire.send(buf, {"op": "result", "index": 0, "m": wire.measurement_to_wire(a)})
    buf.seek(0)
    msg = wire.recv(buf, "agent x")
    assert wire.measurement_from_wire(msg["m"], "agent x") == a
    with pytest.raises(IovkitError, match="agent x: the connection closed"):
        wire.recv(buf, "agent x")
    with pytest.raises(IovkitError, match="not a load-agent message"):
        wire.recv(io.BytesIO(b"[1]\n"), "agent x")
