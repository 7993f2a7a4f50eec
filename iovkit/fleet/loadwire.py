"""The load agents' wire: JSON lines over one TCP connection per agent, and the pure parts around it.

Why TCP and not Ansible for every step: steps run in lock-step (the controller judges a step before it offers
the next), and an Ansible round trip per step costs seconds. Ansible starts the agents; this link carries the
clock probes, the step orders (rate share and common start time) and the results with their HDR histograms.

Messages (one JSON object a line): agent hello{token,name,host} -> controller welcome{target} or refuse{why};
agent clock{t0} -> controller clock{t0,tc} (repeated); agent ready{offset_ns,rtt_ns} or error{message};
controller step{index,rate,start_ns,spec} -> agent result{index,m} or error{index,kind,message}; controller stop.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from typing import Any, Protocol

from iovkit.errors import IovkitError
from iovkit.traffic import histo
from iovkit.traffic.results import StepMeasurement

PROBES = 9


class Stream(Protocol):
    """A socket's buffered file (socket.makefile("rwb"))."""

    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def readline(self, size: int = -1, /) -> bytes: ...


MAX_LINE = 16 << 20


def send(fh: Stream, msg: dict[str, Any]) -> None:
    fh.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
    fh.flush()


def recv(fh: Stream, who: str) -> dict[str, Any]:
    """The next message; a closed or garbled link is an IovkitError naming `who`."""
    line = fh.readline(MAX_LINE)
    if not line:
        raise IovkitError(f"{who}: the connection closed")
    try:
        msg = json.loads(line)
    except json.JSONDecodeError as err:
        raise IovkitError(f"{who}: not a load-agent message ({err.msg})") from err
    if not isinstance(msg, dict) or "op" not in msg:
        raise IovkitError(f"{who}: not a load-agent message")
    return msg


def clock_estimate(samples: list[tuple[int, int, int]]) -> tuple[int, int]:
    """(offset_ns, rtt_ns) from (agent send, controller stamp, agent receive) samples, NTP style.

    offset = controller clock - agent clock, taken from the sample with the shortest round trip (its error is
    at most half that round trip, which is reported with it).
    """
    t0, tc, t1 = min(samples, key=lambda s: s[2] - s[0])
    return tc - (t0 + t1) // 2, t1 - t0


def local_start(start_ns: int, offset_ns: int, wall_now_ns: int, mono_now_ns: int) -> int:
    """The common start (controller clock, ns) as this agent's CLOCK_MONOTONIC time.

    The controller's time minus the offset is this host's wall time; the wall-to-monotonic gap read just now
    turns it into the monotonic clock the load generator schedules by (a wall-clock step later does not move it).
    """
    return mono_now_ns + (start_ns - offset_ns - wall_now_ns)


def measurement_to_wire(m: StepMeasurement) -> dict[str, Any]:
    return asdict(m)


def measurement_from_wire(data: dict[str, Any], who: str) -> StepMeasurement:
    try:
        return StepMeasurement(**data)
    except TypeError as err:
        raise IovkitError(f"{who}: a step result of another iovkit version ({err})") from err


def merge_agents(offered_pps: float, parts: list[StepMeasurement]) -> StepMeasurement:
    """One step from every agent's share: counters summed, histograms merged exactly (one HDR layout)."""
    h = histo.merge_encoded([p.histogram for p in parts], where="agent histogram")
    hs = None
    if parts and all(p.histogram_from_send for p in parts):
        hs = histo.merge_encoded([p.histogram_from_send or "" for p in parts], where="agent histogram (from send)")
    jitters = [p.jitter_us for p in parts if p.jitter_us is not None]
    return StepMeasurement(
        offered_pps=offered_pps,
        sent=sum(p.sent for p in parts),
        expected=sum(p.expected for p in parts),
        received=sum(p.received for p in parts),
        reordered=sum(p.reordered for p in parts),
        duplicates=sum(p.duplicates for p in parts),
        jitter_us=round(statistics.fmean(jitters), 3) if jitters else None,
        latency_kind=parts[0].latency_kind if parts else "rtt",
        latency_us=h.percentiles_us(),
        histogram=h.encode(),
        duration_s=max((p.duration_s for p in parts), default=0.0),
        latency_out_of_range=sum(p.latency_out_of_range for p in parts),
        kernel_timestamps=any(p.kernel_timestamps for p in parts),
        send_lag_max_us=max((p.send_lag_max_us for p in parts), default=0.0),
        extra={
            "not_sent": float(sum(p.extra.get("not_sent", 0.0) for p in parts)),
            "start_late_us": max((p.extra.get("start_late_us", 0.0) for p in parts), default=0.0),
        },
        latency_from_send_us=None if hs is None else hs.percentiles_us(),
        histogram_from_send=None if hs is None else hs.encode(),
    )
