"""A load agent: what the iovkit_load_agent module runs on each load host of `iovkit bench --agents`.

It connects back to the controller, measures its clock against the controller's, checks the target answers,
then runs each step it is given at the common start time, with its share of the rate, and sends back what it
measured. The sending itself is iovkit's load generator (traffic.loadgen), exactly as in a one-host bench.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from iovkit.errors import IovkitError, UnreachableError
from iovkit.fleet import loadwire as wire

CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 900.0


def controller_from_env(default: str = "127.0.0.1") -> str:
    """The controller's address as this host sees it: the SSH client's address, or loopback (local connection)."""
    client = os.environ.get("SSH_CLIENT", "").split()
    return client[0] if client else default


def run_agent(host: str, port: int, token: str, name: str) -> dict[str, Any]:
    """Serve one distributed bench until the controller says stop; a summary for Ansible's result."""
    from iovkit.traffic import loadgen
    from iovkit.traffic.results import host_facts

    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except OSError as err:
        raise UnreachableError(
            f"cannot reach the controller at {host}:{port} from this host ({err.strerror or err}); "
            "set the host variable iovkit_controller to an address of the controller it can reach"
        ) from err
    who = f"controller {host}:{port}"
    with sock, sock.makefile("rwb") as fh:
        wire.send(fh, {"op": "hello", "token": token, "name": name, "host": host_facts().model_dump(mode="json")})
        msg = wire.recv(fh, who)
        if msg["op"] != "welcome":
            raise IovkitError(f"{who} refused this agent: {msg.get('why', msg['op'])}")
        target = (str(msg["target"][0]), int(msg["target"][1]))
        samples = []
        for _ in range(wire.PROBES):
            t0 = time.time_ns()
            wire.send(fh, {"op": "clock", "t0": t0})
            reply = wire.recv(fh, who)
            samples.append((t0, int(reply["tc"]), time.time_ns()))
        offset, rtt = wire.clock_estimate(samples)
        try:
            loadgen.probe_echo(target)
        except IovkitError as err:
            wire.send(fh, {"op": "error", "kind": type(err).__name__, "message": f"{name}: {err}"})
            raise
        wire.send(fh, {"op": "ready", "offset_ns": offset, "rtt_ns": rtt})
        sock.settimeout(IDLE_TIMEOUT_S)
        steps = 0
        while True:
            msg = wire.recv(fh, who)
            if msg["op"] == "stop":
                break
            if msg["op"] != "step":
                continue
            spec = loadgen.LoadSpec(target=target, rate=float(msg["rate"]), **msg["spec"])
            # the common start, in the controller's clock -> this host's wall clock -> its monotonic clock
            start_mono = wire.local_start(int(msg["start_ns"]), offset, time.time_ns(), time.monotonic_ns())
            try:
                m = loadgen.run_load(spec, start_ns=start_mono)
            except IovkitError as err:
                wire.send(fh, {"op": "error", "index": msg["index"], "kind": type(err).__name__, "message": str(err)})
                continue
            wire.send(fh, {"op": "result", "index": msg["index"], "m": wire.measurement_to_wire(m)})
            steps += 1
    return {"name": name, "steps": steps, "clock_offset_us": offset / 1000.0, "clock_rtt_us": rtt / 1000.0}
