"""`iovkit bench --agents INVENTORY`: one load agent per inventory host, started through Ansible, in lock-step.

The controller listens on TCP, starts the agents with the collection's bench_agents playbook (each agent
connects back), measures each agent's clock offset, and then runs the ordinary sweep: for every step each agent
gets its share of the rate and one common start time; their measurements come back and merge exactly (counters
summed, HDR histograms added) into one step, which the sweep judges before it offers the next. The result is a
bench result like any other (`iovkit compare` reads it), with the agents and their per-step shares kept.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iovkit.errors import InputError, IovkitError, UnreachableError
from iovkit.fleet import loadwire as wire
from iovkit.traffic.results import (
    AgentInfo,
    AgentStep,
    BenchSettings,
    HostFacts,
    Latency,
    StepMeasurement,
    StepResult,
    SweepResult,
)

TOKEN_ENV = "IOVKIT_AGENT_TOKEN"
HANDSHAKE_TIMEOUT_S = 15.0
START_LEAD_NS = 400_000_000  # the common start is this far ahead of the order (plus twice the worst probe RTT)


@dataclass
class Agent:
    name: str
    sock: socket.socket
    fh: wire.Stream
    info: AgentInfo


@dataclass
class Coordinator:
    """The controller's end of the agents' links (one TCP listener, one connection per agent)."""

    names: list[str]
    target: tuple[str, int]
    bind: tuple[str, int] = ("0.0.0.0", 0)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    agents: dict[str, Agent] = field(default_factory=dict)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.bind[0] else socket.AF_INET
        try:
            self.server = socket.create_server(self.bind, family=family, backlog=max(8, len(self.names)))
        except OSError as err:
            where = f"{self.bind[0]}:{self.bind[1]}"
            raise InputError(f"cannot listen on {where}: {err.strerror}", field="--agent-listen") from None
        self.port = int(self.server.getsockname()[1])

    def close(self) -> None:
        for a in self.agents.values():
            for closer in (getattr(a.fh, "close", None), a.sock.close):
                with contextlib.suppress(OSError):
                    if closer is not None:
                        closer()
        self.server.close()

    def wait_for_agents(self, deadline: float, failures: Callable[[], dict[str, str]]) -> None:
        """Accept every named agent (hello, clock probes, ready); an agent Ansible failed to start ends the wait."""
        while len(self.agents) < len(self.names):
            failed = failures()
            if failed:
                raise UnreachableError(
                    "load agent(s) did not start: " + "; ".join(f"{h}: {why}" for h, why in sorted(failed.items()))
                )
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [n for n in self.names if n not in self.agents]
                raise UnreachableError(
                    f"load agent(s) {', '.join(missing)} did not connect back to port {self.port} in time: the "
                    "controller must be reachable from them (host variable iovkit_controller, --agent-listen)"
                )
            if not select.select([self.server], [], [], min(left, 0.2))[0]:
                continue
            conn, _addr = self.server.accept()
            try:
                self._handshake(conn)
            except (OSError, IovkitError) as err:
                conn.close()
                if isinstance(err, UnreachableError):
                    raise
                # a stray or late connection: not one of ours; keep waiting for the real agents

    def _handshake(self, conn: socket.socket) -> None:
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fh = conn.makefile("rwb")
        hello = wire.recv(fh, "an agent")
        name = str(hello.get("name", ""))
        if hello.get("op") != "hello" or not hmac.compare_digest(str(hello.get("token", "")), self.token):
            wire.send(fh, {"op": "refuse", "why": "wrong token"})
            raise IovkitError("a connection with a wrong token")
        if name not in self.names or name in self.agents:
            wire.send(fh, {"op": "refuse", "why": f"unexpected agent name {name!r}"})
            raise IovkitError(f"unexpected agent {name!r}")
        wire.send(fh, {"op": "welcome", "target": list(self.target)})
        while True:
            msg = wire.recv(fh, f"agent {name}")
            if msg["op"] == "clock":
                wire.send(fh, {"op": "clock", "t0": msg["t0"], "tc": time.time_ns()})
            elif msg["op"] == "ready":
                break
            elif msg["op"] == "error":
                raise UnreachableError(f"load agent {name}: {msg.get('message')}")
            else:
                raise IovkitError(f"agent {name}: unexpected {msg['op']!r} before ready")
        facts = HostFacts.model_validate(hello.get("host") or {})
        info = AgentInfo(
            name=name,
            host=facts,
            clock_offset_us=round(int(msg["offset_ns"]) / 1000.0, 1),
            clock_rtt_us=round(int(msg["rtt_ns"]) / 1000.0, 1),
        )
        self.agents[name] = Agent(name, conn, fh, info)

    def run_step(
        self, index: int, rate: float, spec: dict[str, Any], wait_s: float
    ) -> list[tuple[str, StepMeasurement]]:
        """Order one step from every agent (its share, one start time) and gather their measurements."""
        agents = [self.agents[n] for n in self.names]
        share = rate / len(agents)
        worst_rtt_ns = int(max(a.info.clock_rtt_us for a in agents) * 1000)
        start_ns = time.time_ns() + START_LEAD_NS + 2 * worst_rtt_ns
        for a in agents:
            a.sock.settimeout(wait_s)
            wire.send(a.fh, {"op": "step", "index": index, "rate": share, "start_ns": start_ns, "spec": spec})
        parts: list[tuple[str, StepMeasurement]] = []
        for a in agents:
            try:
                msg = wire.recv(a.fh, f"load agent {a.name}")
            except (OSError, IovkitError) as err:
                raise UnreachableError(
                    f"load agent {a.name} stopped answering during step {index + 1}: {err}"
                ) from None
            if msg["op"] == "error":
                kind = str(msg.get("kind"))
                text = f"load agent {a.name}: {msg.get('message')}"
                raise UnreachableError(text) if kind == "UnreachableError" else IovkitError(text)
            parts.append((a.name, wire.measurement_from_wire(msg["m"], f"load agent {a.name}")))
        return parts

    def stop(self) -> None:
        for a in self.agents.values():
            with contextlib.suppress(OSError):
                wire.send(a.fh, {"op": "stop"})


def agent_step(name: str, m: StepMeasurement) -> AgentStep:
    return AgentStep(
        agent=name,
        offered_pps=m.offered_pps,
        sent=m.sent,
        received=m.received,
        expected=m.expected,
        lost=m.lost,
        loss_pct=round(m.loss_pct, 4),
        reordered=m.reordered,
        duplicates=m.duplicates,
        latency_us=Latency.model_validate(m.latency_us),
        histogram=m.histogram,
        start_late_us=round(m.extra.get("start_late_us", 0.0), 1),
        send_lag_max_us=round(m.send_lag_max_us, 1),
    )


def run_distributed(
    settings: BenchSettings,
    inventory: Path,
    limit: str | None = None,
    *,
    forks: int = 10,
    timeout: int = 10,
    listen: tuple[str, int] = ("0.0.0.0", 0),
    agent_timeout: float = 120.0,
    seed: int | None = None,
    kernel_timestamps: bool = True,
    spin: bool | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    on_agents: Callable[[list[AgentInfo]], None] | None = None,
) -> SweepResult:
    """A whole distributed sweep (echo mode): agents started by Ansible, steps in lock-step, results merged."""
    from iovkit.fleet.inventory import select_hosts
    from iovkit.fleet.runner import PlaybookRun, clean_message, run_playbook
    from iovkit.hostport import parse_hostport
    from iovkit.traffic.sweep import rates, run_sweep

    if settings.mode != "echo":
        raise InputError("--agents runs echo mode (relay sessions need one clock for one-way latency)", field="--mode")
    list(rates(settings.start_rate, settings.step_factor, settings.max_rate, settings.max_steps))  # validate early
    target = parse_hostport(settings.target, "--target")
    names = [h.name for h in select_hosts(inventory, limit)]
    coord = Coordinator(names, target, bind=listen)
    failures: dict[str, str] = {}
    done: dict[str, PlaybookRun] = {}

    def on_event(event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable") and data.get("host"):
            failures[str(data["host"])] = clean_message(dict(data.get("res") or {}))

    def ansible() -> None:
        try:
            done["run"] = run_playbook(
                "bench_agents",
                inventory,
                limit=limit,
                forks=max(forks, len(names)),  # every agent at once: they must all be up for step one
                timeout=timeout,
                extravars=extravars,
                on_event=on_event,
            )
        except IovkitError as err:
            failures["ansible-playbook"] = str(err)

    extravars: dict[str, Any] = {"iovkit_coordinator_port": coord.port}
    if listen[0] not in ("0.0.0.0", "::", ""):
        extravars["iovkit_controller_default"] = listen[0]
    os.environ[TOKEN_ENV] = coord.token  # to ansible-playbook's environment, never its argv (restored below)
    thread = threading.Thread(target=ansible, name="iovkit-agents-ansible", daemon=True)
    spec = {
        "mode": "echo",
        "seconds": settings.step_seconds,
        "warmup": settings.warmup_seconds,
        "drain": settings.drain_seconds,
        "payload": settings.payload,
        "flows": settings.flows,
        "senders": settings.senders,
        "batch": settings.batch,
        "poisson": settings.poisson,
        "seed": seed,
        "kernel_timestamps": kernel_timestamps,
        "spin": spin,
    }
    per_step: list[list[AgentStep]] = []
    try:
        thread.start()
        coord.wait_for_agents(time.monotonic() + agent_timeout, lambda: dict(failures))
        os.environ.pop(TOKEN_ENV, None)
        infos = [coord.agents[n].info for n in names]
        if on_agents is not None:
            on_agents(infos)
        wait_s = settings.warmup_seconds + settings.step_seconds + settings.drain_seconds + 30.0

        def step(rate: float) -> StepMeasurement:
            parts = coord.run_step(len(per_step), rate, spec, wait_s)
            per_step.append([agent_step(n, m) for n, m in parts])
            return wire.merge_agents(rate, [m for _n, m in parts])

        from iovkit.traffic.results import host_facts

        def judged(s: StepResult) -> None:
            s.agents = per_step[-1]
            # the meter ran on the controller, which sent nothing: no CPU figures rather than wrong ones
            s.cpu_per_core_pct, s.cpu_busy_seconds, s.cpu_us_per_packet = [], None, None
            s.process_cpu_seconds, s.process_cpu_us_per_packet = None, None
            if on_step is not None:
                on_step(s)

        from iovkit.traffic import pathwatch

        query = (
            pathwatch.target_query(parse_hostport(settings.target_stats, "--target-stats"))
            if settings.target_stats
            else None
        )
        result = run_sweep(settings, step, on_step=judged, host=host_facts(), target_stats=query)
        result.agents = infos
        return result
    finally:
        os.environ.pop(TOKEN_ENV, None)
        coord.stop()
        coord.close()  # before waiting for Ansible: an agent still connecting is refused now, not left to time out
        thread.join(timeout=60.0)
