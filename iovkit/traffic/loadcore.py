"""The load generator's sans-IO core: the wire format of a load datagram, the send schedule, per-flow counters.

Why apart from the sender: these are pure functions of numbers and bytes (no socket, no clock of their own), so the
schedule's arithmetic, the counters and the merge of several senders are tested without sockets, and the sender
(`sender.py`) and the orchestration (`loadgen.py`) stay thin. See loadgen.py for what the generator measures.
"""

from __future__ import annotations

import random
import statistics
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from iovkit.errors import InputError
from iovkit.traffic import histo
from iovkit.traffic import protocol as proto
from iovkit.traffic.results import StepMeasurement

ECHO_HDR = struct.Struct("!QHIIIQ")  # sockperf seq | flags | length || magic | flow | scheduled ns
ECHO_MAGIC = 0x494F564B  # "IOVK"
SOCKPERF_CLIENT_PONG = 0x0003  # MASK_CLIENT | MASK_PONG: sockperf server answers these
SOCKPERF_CLIENT = 0x0001  # no pong request: sockperf server counts it and stays silent
ECHO_MIN_PAYLOAD = ECHO_HDR.size  # 30
RELAY_MIN_PAYLOAD = proto.HEADER_SIZE  # 32
WARM_BASE = 1 << 62  # warm-up datagrams use sequence numbers from here: reflected, never counted
_NS = 1_000_000_000
ECHO_SEQ_AT, ECHO_TIME_AT = 0, 22  # offsets of the u64 sequence number and scheduled time in ECHO_HDR
# Payloads of at least ECHO_SENT_END bytes also carry the time the send call was made (u64 ns after the header):
# latency from it (service time) leaves out the generator's own lateness, as sockperf and ping measure.
ECHO_SENT_AT = ECHO_HDR.size
ECHO_SENT_END = ECHO_SENT_AT + 8
RELAY_SEQ_AT, RELAY_TIME_AT = 16, 24  # ... and in protocol.HEADER
_U64 = struct.Struct("!Q")

Mode = Literal["echo", "relay", "send"]
Progress = Callable[[int, int, float | None], None]
"""progress(sent, received, recent p99 us): called about 4 times a second by the first sender."""


@dataclass
class LoadSpec:
    """One load step: where, how fast, how long, in what shape."""

    target: tuple[str, int]
    rate: float
    mode: Mode = "echo"
    seconds: float = 1.0
    warmup: float = 0.2
    drain: float = 0.3
    payload: int = 64
    flows: int = 4  # echo: source sockets per sender process
    senders: int = 1
    batch: int = 256  # datagrams per sendmmsg; receives take at most RECV_BATCH
    poisson: bool = False
    seed: int | None = None
    kernel_timestamps: bool = True
    clients: int = 8  # relay mode
    sessions: int = 2
    relay_key: bytes | None = field(default=None, repr=False)
    join_timeout: float = 2.0
    replies: bool = True  # echo: False asks nothing back (sockperf server then only counts): a pure send test
    spin: bool | None = None  # None: see SPIN_WINDOW_NS; True: always busy-poll; False: only sleep
    gso: bool = True  # UDP GSO where the kernel takes it: up to 64 datagrams per send call (they share its time)

    @property
    def at_max(self) -> bool:
        """`--rate max`: send as fast as the kernel takes datagrams (no schedule)."""
        return self.rate == float("inf")

    def check(self) -> None:
        """Reject impossible settings with one line naming the option."""
        if not self.rate > 0:
            raise InputError(f"the rate must be above 0 datagrams/s (got {self.rate:g})", field="--rate")
        if not self.seconds > 0:
            raise InputError(f"a step must last more than 0 s (got {self.seconds:g})", field="--step-seconds")
        if self.senders < 1 or self.senders > 64:
            raise InputError(f"senders must be 1..64 (got {self.senders})", field="--senders")
        if self.flows < 1 or self.flows > 4096:
            raise InputError(f"flows must be 1..4096 (got {self.flows})", field="--flows")
        if not 1 <= self.batch <= 1024:
            raise InputError(f"must be 1..1024 (got {self.batch})", field="--batch")
        low = RELAY_MIN_PAYLOAD if self.mode == "relay" else ECHO_MIN_PAYLOAD
        if not low <= self.payload <= 1472 * 44:
            raise InputError(
                f"payload must be {low}..65000 bytes in {self.mode} mode (got {self.payload})", field="--payload"
            )
        if not 0 < self.target[1] < 65536:
            raise InputError(f"port must be 1..65535 (got {self.target[1]})", field="--target")
        if self.mode == "relay":
            if self.sessions < 1 or self.clients < 2 * self.sessions:
                raise InputError(
                    f"relay mode needs at least 2 clients per session ({self.clients} clients, "
                    f"{self.sessions} sessions)",
                    field="--clients",
                )
            if self.relay_key is None:
                raise InputError("relay mode needs the relay key (IOVKIT_RELAY_KEY or --key-file)", field="--key-file")
            if self.senders > self.sessions:
                raise InputError(
                    f"relay mode: senders ({self.senders}) cannot exceed sessions ({self.sessions})", field="--senders"
                )


# -- pure counters ---------------------------------------------------------------------------------------------
class FlowTracker:
    """Per-flow receive counters: distinct, duplicates, reordered, RFC 3550 jitter. No I/O, no clock."""

    __slots__ = ("duplicates", "jitter_ns", "max_seq", "prev_transit", "received", "reordered", "seen")

    def __init__(self) -> None:
        self.seen = bytearray(1024)
        self.max_seq = -1
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.jitter_ns = 0.0
        self.prev_transit: int | None = None

    def on(self, seq: int, transit_ns: int) -> bool:
        """Count one arrival; True when it is the first copy of `seq` (its latency should be recorded)."""
        byte, bit = seq >> 3, 1 << (seq & 7)
        seen = self.seen
        if byte >= len(seen):
            seen.extend(bytes(max(len(seen), byte + 1 - len(seen))))
        if seen[byte] & bit:
            self.duplicates += 1
            return False
        seen[byte] |= bit
        self.received += 1
        if seq < self.max_seq:
            self.reordered += 1
        else:
            self.max_seq = seq
        prev = self.prev_transit
        if prev is not None:
            d = transit_ns - prev
            self.jitter_ns += ((d if d >= 0 else -d) - self.jitter_ns) / 16.0
        self.prev_transit = transit_ns
        return True

    def on_many(self, seqs: Any, transits: Any) -> Any:
        """on() for arrivals in order, as int64 arrays, in a few numpy passes (the receive path at hundreds of
        thousands a second); the same counters, and a boolean mask of the first copies."""
        n = len(seqs)
        if n == 0:
            return np.zeros(0, dtype=bool)
        top = int(seqs.max()) >> 3
        if top >= len(self.seen):
            self.seen.extend(bytes(max(len(self.seen), top + 1 - len(self.seen))))
        bitmap = np.frombuffer(self.seen, dtype=np.uint8)
        byte, bit = seqs >> 3, (1 << (seqs & 7)).astype(np.uint8)
        first = np.zeros(n, dtype=bool)
        first[np.unique(seqs, return_index=True)[1]] = True  # a repeat inside the batch is a duplicate too
        new = first & ((bitmap[byte] & bit) == 0)
        fresh = seqs[new]
        np.bitwise_or.at(bitmap, byte[new], bit[new])
        del bitmap  # the bytearray may grow next time: no view may outlive the call
        k = len(fresh)
        self.duplicates += n - k
        if k:
            self.received += k
            running = np.maximum.accumulate(np.concatenate((np.array([self.max_seq], dtype=np.int64), fresh)))
            self.reordered += int((fresh < running[:-1]).sum())
            self.max_seq = int(running[-1])
            t = transits[new]
            prev = self.prev_transit
            d = np.abs(np.diff(t if prev is None else np.concatenate((np.array([prev], dtype=np.int64), t))))
            j = self.jitter_ns
            for x in d.tolist():  # RFC 3550 A.8 is a recurrence: in order, one step per arrival
                j += (x - j) / 16.0
            self.jitter_ns = j
            self.prev_transit = int(t[-1])
        return new


class Schedule:
    """Intended send times in monotonic ns: constant spacing or Poisson (exponential gaps) at `rate`/s."""

    def __init__(self, rate: float, start_ns: int, poisson: bool = False, seed: int | None = None) -> None:
        self.interval = _NS / rate
        self.poisson = poisson
        self.rng = random.Random(seed)
        self._t = float(start_ns)
        self.next_ns = start_ns

    def due(self, now_ns: int, cap: int) -> list[int]:
        """Every intended send time up to now (at most `cap`), advancing the schedule past them."""
        if self.next_ns > now_ns:
            return []
        if self.poisson:
            out: list[int] = []
            while self.next_ns <= now_ns and len(out) < cap:
                out.append(self.pop())
            return out
        iv, t0 = self.interval, self._t
        n = min(cap, max(1, int((now_ns - t0) // iv) + 1))  # next_ns = int(t0) <= now: at least one is due
        times = [int(t0 + i * iv) for i in range(n)]
        self._t = t0 + n * iv
        self.next_ns = int(self._t)
        return times

    def due_array(self, now_ns: int, cap: int) -> Any:
        """Like due(), as an int64 numpy array; constant rate computes the times without a Python loop."""
        if self.poisson or self.next_ns > now_ns:
            return np.array(self.due(now_ns, cap), dtype=np.int64)
        iv, t0 = self.interval, self._t
        n = min(cap, max(1, int((now_ns - t0) // iv) + 1))
        times = (t0 + _arange(n) * iv).astype(np.int64)
        self._t = t0 + n * iv
        self.next_ns = int(self._t)
        return times

    def pop(self) -> int:
        """The next intended send time; advances the schedule."""
        t = self.next_ns
        self._t += self.rng.expovariate(1.0) * self.interval if self.poisson else self.interval
        self.next_ns = int(self._t)
        return t


_AR = np.arange(4096, dtype=np.float64)


def _arange(n: int) -> Any:
    return _AR[:n] if n <= len(_AR) else np.arange(n, dtype=np.float64)


@dataclass
class WorkerResult:
    """What one sender process measured; several merge by summing and merging histograms."""

    sent: int = 0
    expected: int = 0
    received: int = 0
    reordered: int = 0
    duplicates: int = 0
    jitters_ns: list[float] = field(default_factory=list)
    histogram: str = ""
    sent_histogram: str = ""  # latency from the send call ("" where the datagrams do not carry its time)
    out_of_range: int = 0
    kernel_ts: bool = False
    send_lag_max_ns: int = 0
    not_sent: int = 0
    stray: int = 0


def members(spec: LoadSpec, session: int) -> int:
    """Clients in session `session` (clients spread evenly, the first sessions take the remainder)."""
    base, extra = divmod(spec.clients, spec.sessions)
    return base + (1 if session < extra else 0)


def recent_p99(lat: list[int]) -> float | None:
    tail = lat[-2000:]
    if len(tail) < 10:
        return None
    return statistics.quantiles(tail, n=100)[98] / 1000.0


def merge(spec: LoadSpec, results: list[WorkerResult]) -> StepMeasurement:
    """Sum the counters and merge the histograms of several senders (exact)."""
    h = histo.merge_encoded([r.histogram for r in results], where="sender histogram")
    hs = None
    if all(r.sent_histogram for r in results):
        hs = histo.merge_encoded([r.sent_histogram for r in results], where="sender histogram (from send)")
    jit = [j for r in results for j in r.jitters_ns]
    sent = sum(r.sent for r in results)
    return StepMeasurement(
        offered_pps=spec.rate if not spec.at_max else round(sent / spec.seconds, 1),
        sent=sum(r.sent for r in results),
        expected=sum(r.expected for r in results),
        received=sum(r.received for r in results),
        reordered=sum(r.reordered for r in results),
        duplicates=sum(r.duplicates for r in results),
        jitter_us=round(statistics.fmean(jit) / 1000.0, 3) if jit else None,
        latency_kind={"relay": "one-way", "echo": "rtt", "send": "none"}[spec.mode],
        latency_us=h.percentiles_us(),
        histogram=h.encode(),
        duration_s=spec.seconds,
        latency_out_of_range=h.out_of_range + sum(r.out_of_range for r in results),
        kernel_timestamps=any(r.kernel_ts for r in results),
        send_lag_max_us=max((r.send_lag_max_ns for r in results), default=0) / 1000.0,
        extra={"not_sent": float(sum(r.not_sent for r in results)), "stray": float(sum(r.stray for r in results))},
        latency_from_send_us=None if hs is None else hs.percentiles_us(),
        histogram_from_send=None if hs is None else hs.encode(),
    )
