"""The bench result JSON: settings, host facts, one record per sweep step, and the knee.

Why a model and not a dict: `compare` reads files written on other machines and days, so the shape is
versioned and validated; a hand-edited or truncated file fails with one line naming file and field.
Histograms travel encoded (HDR histoblob), so steps from several processes or runs merge exactly.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iovkit.errors import InputError
from iovkit.fileio import validation_line, write_text

RESULT_SCHEMA = "iovkit.bench/1"

Mode = Literal["echo", "relay", "send"]
LatencyKind = Literal["rtt", "one-way", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Model):
    """What "within the objective" means for a step: the knee is the highest rate that meets it."""

    max_loss_pct: float = Field(1.0, ge=0, le=100, description="Loss above this share fails the step")
    max_p99_us: float = Field(1000.0, gt=0, description="p99 latency above this fails the step")
    min_achieved_ratio: float = Field(
        0.95, ge=0, le=1, description="Sender reaching less than this share of the offered rate fails the step"
    )


class BenchSettings(_Model):
    """Everything that shaped the traffic, so a run can be repeated and two runs can be told comparable."""

    mode: Mode = "echo"
    target: str = Field(..., description="host:port the traffic went to")
    payload: int = Field(64, description="UDP payload bytes per datagram")
    step_seconds: float = 1.0
    warmup_seconds: float = 0.2
    drain_seconds: float = 0.2
    start_rate: float = Field(..., description="Offered datagrams/s of the first step")
    step_factor: float = 1.5
    max_rate: float | None = None
    max_steps: int = 12
    senders: int = 1
    flows: int = Field(1, description="Source sockets (5-tuples) per sender")
    batch: int = 256
    poisson: bool = False
    clients: int | None = Field(None, description="relay mode: clients in all sessions")
    sessions: int | None = None
    tick_hz: float | None = None
    wait: str | None = Field(
        None,
        description="How senders waited for send times: hybrid (sleep, then spin the "
        "last 50 us), spin or sleep. Spinning costs CPU: see process_cpu_seconds",
    )
    kernel_timestamps: bool | None = Field(None, description="Latency ends at the kernel receive time if true")
    objective: Objective = Field(default_factory=Objective)
    target_stats: str | None = Field(
        None, description="HOST:PORT of the target relay's metrics server, asked after each step for its data path"
    )
    max_steal_pct: float = Field(5.0, ge=0, description="A step with more steal time than this is marked invalid")
    rate_max: bool = Field(False, description="--rate max: one step, as fast as the kernel takes datagrams")
    gso: bool | None = Field(None, description="UDP GSO on send where the kernel takes it (--gso/--no-gso)")
    repeats: int = Field(
        2, ge=1, le=10, description="Attempts at a rate before a miss counts (the first that meets wins)"
    )


class HostFacts(_Model):
    hostname: str
    kernel: str
    os: str
    cpu_model: str | None = None
    cores: int | None = None
    logical_cpus: int | None = None
    python: str


class Latency(_Model):
    """Percentiles in microseconds (None when nothing came back)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p99_9: float | None = Field(None, alias="p99.9")
    max: float | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AgentStep(_Model):
    """One load agent's share of a distributed step (`bench --agents`): its own counters and histogram."""

    agent: str = Field(..., description="Inventory name of the agent host")
    offered_pps: float
    sent: int
    received: int
    expected: int
    lost: int
    loss_pct: float
    reordered: int
    duplicates: int
    latency_us: Latency
    histogram: str = Field(..., description="HDR histoblob (ns); the step's histogram is the exact merge of these")
    start_late_us: float = Field(0.0, description="How far past the common start time the agent began sending")
    send_lag_max_us: float = 0.0


class AgentInfo(_Model):
    """A load agent of a distributed run: who it was and how its clock stood against the controller's."""

    name: str = Field(..., description="Inventory name")
    host: HostFacts
    clock_offset_us: float = Field(..., description="Controller clock minus agent clock (best of several probes)")
    clock_rtt_us: float = Field(..., description="Round trip of the probe the offset came from: its uncertainty")


class StepResult(_Model):
    offered_pps: float
    achieved_pps: float = Field(..., description="Datagrams actually sent per second")
    received_pps: float
    sent: int
    received: int = Field(..., description="Distinct datagrams received (duplicates not counted)")
    expected: int = Field(..., description="Datagrams that should come back (sent x fan-out)")
    lost: int
    loss_pct: float
    reordered: int
    duplicates: int
    jitter_us: float | None = Field(None, description="RFC 3550 interarrival jitter (A.8), mean over flows")
    latency_kind: LatencyKind
    latency_us: Latency
    latency_from_send_us: Latency | None = Field(
        None,
        description="Latency from the send call instead of the scheduled time (echo, payload >= 38 B): "
        "what sockperf and ping report; the difference to latency_us is the generator's own lateness",
    )
    latency_out_of_range: int = 0
    kernel_timestamps: bool = False
    send_lag_max_us: float = Field(0.0, description="Worst lateness of the sender behind its schedule")
    duration_s: float
    cpu_per_core_pct: list[float] = Field(default_factory=list)
    cpu_busy_seconds: float | None = Field(None, description="CPU seconds spent (all cores, whole host)")
    cpu_us_per_packet: float | None = Field(
        None, description="Host-wide busy CPU microseconds per datagram handled (sent + received)"
    )
    process_cpu_seconds: float | None = Field(None, description="CPU seconds of the generator (and a --local relay)")
    process_cpu_us_per_packet: float | None = None
    histogram: str = Field(..., description="HDR histoblob of latency in ns (merges exactly)")
    histogram_from_send: str | None = Field(None, description="HDR histoblob of latency_from_send, in ns")
    within_objective: bool
    failed_because: str | None = None
    attempt: int = Field(1, description="1 for the first run at this rate; a miss is repeated (settings.repeats)")
    agents: list[AgentStep] = Field(default_factory=list, description="bench --agents: each agent's share")
    # the path guard (pathwatch): what ran under this step, and whether it can be trusted
    steal_pct: float | None = Field(None, description="Steal time % of the generator's host during the step")
    target_path: dict[str, Any] | None = Field(
        None,
        description="The target relay's own samples during the step (--target-stats): paths that carried "
        "traffic (kind:interface), path changes, worst steal and CPU %",
    )
    invalid_because: str | None = Field(
        None, description="Set when the data path changed or steal passed --max-steal during the step"
    )


class RateSummary(_Model):
    """All attempts at one offered rate: how many, whether one met the objective, and how far apart they were."""

    offered_pps: float
    attempts: int
    within_objective: bool
    loss_pct_min: float
    loss_pct_max: float
    received_pps_min: float
    received_pps_max: float
    p99_us_min: float | None = None
    p99_us_max: float | None = None


class SweepResult(_Model):
    schema_: str = Field(RESULT_SCHEMA, alias="schema")
    tool_version: str
    started: datetime
    settings: BenchSettings
    host: HostFacts
    steps: list[StepResult] = Field(default_factory=list)
    knee_pps: float | None = Field(None, description="Highest offered rate within the objective")
    ndr_pps: float | None = Field(None, description="Highest offered rate with no loss (NDR), sender keeping up")
    pdr_pps: float | None = Field(None, description="Highest offered rate with at most 0.5% loss (PDR)")
    rates: list[RateSummary] = Field(default_factory=list, description="Per offered rate: attempts and spread")
    stopped_because: str | None = None
    interrupted: bool = Field(False, description="Stopped by hand: the steps are complete, the sweep is not")
    agents: list[AgentInfo] = Field(
        default_factory=list, description="bench --agents: the load agents (host is then the controller)"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, self.to_json() + "\n", "the result")


@dataclass
class StepMeasurement:
    """What a step runner reports for one offered rate (before CPU and judging are added)."""

    offered_pps: float
    sent: int
    expected: int
    received: int
    reordered: int
    duplicates: int
    jitter_us: float | None
    latency_kind: str
    latency_us: dict[str, float | None]
    histogram: str
    duration_s: float
    latency_out_of_range: int = 0
    kernel_timestamps: bool = False
    send_lag_max_us: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    latency_from_send_us: dict[str, float | None] | None = None
    histogram_from_send: str | None = None

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.expected if self.expected else 0.0


def host_facts() -> HostFacts:
    """Facts that decide whether two runs are comparable (same box, same kernel)."""
    uname = platform.uname()
    return HostFacts(
        hostname=socket.gethostname(),
        kernel=uname.release,
        os=uname.system,
        cpu_model=_cpu_model(),
        cores=psutil.cpu_count(logical=False),
        logical_cpus=psutil.cpu_count(logical=True),
        python=platform.python_version(),
    )


def _cpu_model(procfs: str = "/proc") -> str | None:
    try:
        with open(os.path.join(procfs, "cpuinfo"), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model"):
                    return value.strip() or None
    except OSError:
        return None
    return platform.processor() or None


def now() -> datetime:
    return datetime.now(UTC)


def load_result(path: Path) -> SweepResult:
    """Read a result JSON; any defect is one InputError line naming the file and the field."""
    from iovkit.fileio import read_json

    data = read_json(path)
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(
            f"not an iovkit bench result (schema {found!r}, expected {RESULT_SCHEMA!r})", path=str(path), field="schema"
        )
    try:
        return SweepResult.model_validate(data)
    except ValidationError as err:
        loc, msg = validation_line(err)
        raise InputError(msg, path=str(path), field=loc or None) from err
