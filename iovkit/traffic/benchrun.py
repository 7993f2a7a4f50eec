"""A whole `iovkit bench`: optionally a relay on loopback, a check that the target answers, the sweep of load steps.

Why apart from sweep.py: the sweep is pure (rates in, verdicts out) and must not know the load generator, and the
load generator must not know the sweep; this module composes the two with the relay runner.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack

from iovkit.hostport import parse_hostport
from iovkit.traffic import loadgen, pathwatch
from iovkit.traffic.relay import PUBLISH_EVERY, RelayHandle, RelaySettings, start_relay
from iovkit.traffic.results import BenchSettings, StepMeasurement, StepResult, SweepResult
from iovkit.traffic.sender import probe_port
from iovkit.traffic.sweep import rates, run_sweep


def run_bench(
    settings: BenchSettings,
    *,
    kernel_timestamps: bool = True,
    spin: bool | None = None,
    relay_key: bytes | None = None,
    local_workers: int | None = None,
    seed: int | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    on_start: Callable[[float], object] | None = None,
    live: Callable[[int, int, float | None], None] | None = None,
) -> SweepResult:
    """A whole bench: optionally start a relay on loopback (`local_workers`), check the target answers, sweep.

    With `local_workers` the relay runs in `settings.mode` on 127.0.0.1 with a fresh random key and no
    per-source rate limit, and `settings.target` is replaced by its address. Bad settings raise before any
    traffic; a silent or closed target raises UnreachableError within about a second.
    """
    if not settings.rate_max:
        list(rates(settings.start_rate, settings.step_factor, settings.max_rate, settings.max_steps))  # validate early
    sink: RelayHandle | None = None
    pids: list[int] = []
    with ExitStack() as stack:
        if local_workers is not None:
            key = secrets.token_bytes(32)
            relay_key = key
            handle = stack.enter_context(
                start_relay(
                    RelaySettings(
                        host="127.0.0.1",
                        port=0,
                        mode="sink" if settings.mode == "send" else settings.mode,
                        workers=local_workers,
                        key=key,
                        rate_pps=1e9,
                        rate_burst=1e9,
                        rcvbuf=4 << 20,
                        sndbuf=4 << 20,
                        gso=settings.gso is not False,
                    )
                )
            )
            pids = list(handle.pids)
            sink = handle if settings.mode == "send" else None
            settings = settings.model_copy(update={"target": f"127.0.0.1:{handle.address[1]}"})
        target = parse_hostport(settings.target, "--target")

        def spec(rate: float) -> loadgen.LoadSpec:
            return loadgen.LoadSpec(
                target=target,
                rate=rate,
                mode=settings.mode,
                seconds=settings.step_seconds,
                warmup=0.0 if settings.mode == "send" else settings.warmup_seconds,  # the sink counts every datagram
                drain=settings.drain_seconds,
                payload=settings.payload,
                flows=settings.flows,
                senders=settings.senders,
                batch=settings.batch,
                poisson=settings.poisson,
                seed=seed,
                kernel_timestamps=kernel_timestamps,
                clients=settings.clients or 8,
                sessions=settings.sessions or 2,
                relay_key=relay_key,
                spin=spin,
                gso=settings.gso is not False,
            )

        spec(math.inf if settings.rate_max else settings.start_rate).check()
        if settings.mode == "send":
            probe_port(target)
            if sink is not None:
                time.sleep(SINK_SETTLE)  # the probe's datagram is counted before the first step, not in it
        if settings.mode == "echo":
            loadgen.probe_echo(target)

        def step(rate: float) -> StepMeasurement:
            if on_start is not None:
                on_start(rate)
            if sink is None:
                return loadgen.run_load(spec(rate), progress=live)
            # one-way into our own sink: what it counted over the step is what was delivered
            before = _sink_count(sink)
            m = loadgen.run_load(spec(rate), progress=live)
            time.sleep(SINK_SETTLE)
            m.received = _sink_count(sink) - before
            m.expected = m.sent
            return m

        query = None
        if settings.target_stats:  # the target relay's stats query: its data path, steal and CPU per step
            query = pathwatch.target_query(parse_hostport(settings.target_stats, "--target-stats"))
        return run_sweep(settings, step, on_step=on_step, pids=pids, target_stats=query)


SINK_SETTLE = 3 * PUBLISH_EVERY  # the sink publishes its counts every PUBLISH_EVERY


def _sink_count(sink: RelayHandle) -> int:
    return int(sink.stats().total["pkts_in"])
