#!/usr/bin/env python3
"""Benchmark (not a test): issue 15's targets, iovkit against the C tools in ../shared/tools, side by side.

Everything runs on loopback; the C tools are built here with `cc -O2` into a temporary directory (never kept).
Each round runs every contender of a comparison back to back, in an order that alternates from round to round,
so drift on a shared machine hits all of them; the numbers are medians over rounds, ratios divide the medians,
and the per-round ratios of adjacent runs are given as median (min-max). Receivers on CPU 0, senders on CPU 1.

1. One-way sender into `udpsink` (no GRO): the rate udpsink counted (delivered), for the C sendmmsg loop
   `udpflood` and `iovkit bench --mode send --rate max` with and without GSO (one process, one socket).
   Targets: iovkit --gso >= 2.5x udpflood; --no-gso >= 0.95x.
2. Reflector drain (bench/relay's method): the server is stopped (SIGSTOP), its receive queue (4 MiB) filled with
   sockperf throughput messages sent with UDP GSO (64 per send), and the time to empty it after SIGCONT is timed
   from the client CPU. `iovkit relay --mode sockperf` (GRO receive) against `sockperf server`. Target >= 1.5x.
3. Relay mode: `iovkit relay` (C data path) loaded by `iovkit bench --mode relay` (three-peer sessions, each
   datagram to two peers) at --relay-rate datagrams/s in; CPU seconds of the relay worker per datagram sent out,
   against `udpecho` at full load (`iovkit bench --mode echo --rate max`; CPU per datagram echoed).
   Target <= 1.2x. The same runs give the load generator's own rate in relay mode (target: one process >= 200k/s).

Usage: python3 bench/gso/run.py [--rounds 5] [--seconds 1.0] [--relay-rate 220000] [--write]
(--write puts the section into bench/RESULTS.md between the gso markers and the raw data in bench/gso/last-run.json)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "relay"))
from run import cpu_seconds, free_port, machine, rx_queue, stopped, udp_drops  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
RAW = ROOT / "bench" / "gso" / "last-run.json"
BEGIN, END = "<!-- gso:begin -->", "<!-- gso:end -->"
SINK = re.compile(r"sink: (\d+) datagrams in ([\d.]+)s = (\d+)/s")
ECHOED = re.compile(r"echoed=(\d+)")
PY = [sys.executable, "-m", "iovkit"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def tools_dir() -> Path:
    for cand in (
        Path(os.environ.get("IOVKIT_TOOLS", "/nonexistent")),
        Path("/work/shared/tools"),
        ROOT.parent / "shared" / "tools",
    ):
        if (cand / "udpflood.c").exists():
            return cand
    raise SystemExit("cannot find udpflood.c: set IOVKIT_TOOLS to the directory of the reference C tools")


def build(tmp: Path) -> dict[str, str]:
    src = tools_dir()
    out = {}
    for name in ("udpflood", "udpecho", "udpsink"):
        exe = tmp / name
        subprocess.run(["cc", "-O2", "-o", str(exe), str(src / f"{name}.c")], check=True)
        out[name] = str(exe)
    return out


def on(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)]


# -- 1. one-way ------------------------------------------------------------------------------------------------
def oneway(kind: str, bins: dict[str, str], secs: float, tmp: Path) -> dict[str, float]:
    """udpsink's delivered rate for one sender. The sender starts against a stand-in socket on the port (so start-up
    and iovkit's check that something listens stay out of the window); after SETTLE s udpsink takes the port and
    counts `secs` from the first datagram it gets. Sends refused in the gap are lost, for both senders alike."""
    port = free_port()
    stand_in = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stand_in.bind(("127.0.0.1", port))
    run_for = secs + SETTLE + 1.0
    res = tmp / f"send-{port}.json"
    if kind == "udpflood":
        cmd = [*on(1), bins["udpflood"], "127.0.0.1", str(port), str(run_for)]
    else:
        cmd = [*on(1), *PY, "bench", "--target", f"127.0.0.1:{port}", "--mode", "send", "--rate", "max"]
        cmd += ["--step-seconds", str(run_for), "--senders", "1", "--flows", "1", "--batch", "1024", "--no-plots"]
        cmd += ["-q", "--format", "json", "-o", str(res), "--gso" if kind == "iovkit-gso" else "--no-gso"]
    sender = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(SETTLE)
    stand_in.close()
    sink = subprocess.Popen([*on(0), bins["udpsink"], str(port), str(secs)], stdout=subprocess.PIPE, text=True)
    text, _ = sink.communicate(timeout=60)
    out, err = sender.communicate(timeout=120)
    m = SINK.search(text or "")
    if kind == "udpflood":
        handed = float(out.split("pps=")[1].split()[0])
    else:
        if not res.exists():
            raise SystemExit(f"{shlex.join(cmd)} failed: {err.strip()}")
        handed = json.loads(res.read_text())["steps"][0]["achieved_pps"]
    return {"delivered": float(m[3]) if m else 0.0, "handed": handed}


SETTLE = 1.5  # seconds a sender runs before udpsink takes the port


# -- 2. drain --------------------------------------------------------------------------------------------------
def server(kind: str, port: int) -> subprocess.Popen[str]:
    if kind == "iovkit":
        cmd = [*PY, "relay", "--mode", "sockperf", "--listen", f"127.0.0.1:{port}", "--log-interval", "0"]
        cmd += ["--format", "json", "--rcvbuf", str(4 << 20), "--pin", "0", "--gso"]
    else:
        cmd = [*on(0), "sockperf", "server", "-i", "127.0.0.1", "-p", str(port), "--buffer-size", str(4 << 20)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    if kind == "iovkit":
        assert proc.stderr is not None
        proc.stderr.readline()
    time.sleep(0.3)
    return proc


def worker(proc: subprocess.Popen[str], kind: str) -> int:
    import psutil

    kids = psutil.Process(proc.pid).children() if kind == "iovkit" else []
    return kids[0].pid if kids else proc.pid


def drain(kind: str, msgs: int, reps: int) -> dict[str, Any]:
    """Fill the stopped server's queue with `msgs` 64-byte sockperf throughput messages (64 per GSO send) and
    time how long it takes to empty after SIGCONT; median over `reps`."""
    port = free_port()
    proc = server(kind, port)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(("127.0.0.1", port))
    tx.setsockopt(17, 103, 64)  # UDP_SEGMENT: 64-byte datagrams
    one = bytearray(64)
    one[8:14] = bytes([0, 1]) + (64).to_bytes(4, "big")  # client, no pong request
    rates, queued_all = [], []
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})
    try:
        pid = worker(proc, kind)
        for rep in range(reps):
            os.kill(pid, signal.SIGSTOP)
            while not stopped(pid):
                time.sleep(0.001)
            d0 = udp_drops(port)
            left = msgs
            while left:
                k = min(64, left)
                tx.send(bytes(one) * k)
                left -= k
            queued = msgs - (udp_drops(port) - d0) * (1 if kind != "iovkit" else 64)
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGCONT)
            while rx_queue(port):
                pass
            secs = time.perf_counter() - t0
            rates.append(queued / secs)
            queued_all.append(queued)
            time.sleep(0.05 + rep * 0)
    finally:
        os.sched_setaffinity(0, old)
        tx.close()
        proc.send_signal(signal.SIGTERM if kind == "iovkit" else signal.SIGINT)
        proc.communicate(timeout=15)
    return {"drain_rate": statistics.median(rates), "rates": rates, "queued": queued_all}


# -- 3. relay CPU per datagram and the relay-mode load generator ------------------------------------------------
def relay_cpu(kind: str, rate: float, secs: float, bins: dict[str, str], tmp: Path, gso: bool) -> dict[str, Any]:
    port = free_port()
    res = tmp / "relay.json"
    key = secrets.token_hex(32)
    env = {**ENV, "IOVKIT_RELAY_KEY": key}
    if kind == "udpecho":
        proc = subprocess.Popen([*on(0), bins["udpecho"], str(port)], stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        pid = proc.pid
        mode = ["--mode", "echo", "--rate", "max", "--flows", "4"]  # the reflector at full load
    else:
        cmd = [*PY, "relay", "--mode", "relay", "--listen", f"127.0.0.1:{port}", "--log-interval", "0"]
        cmd += ["--format", "json", "--rcvbuf", str(8 << 20), "--sndbuf", str(8 << 20), "--pin", "0"]
        cmd += ["--rate-limit", "100000000", "--gso" if gso else "--no-gso"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stderr is not None
        proc.stderr.readline()
        time.sleep(0.3)
        pid = worker(proc, "iovkit")
        mode = ["--mode", "relay", "--rate", str(rate), "--clients", "6", "--sessions", "2"]
    cpu0 = cpu_seconds(pid)
    cmd = [*on(1), *PY, "bench", "--target", f"127.0.0.1:{port}", *mode, "--steps", "1", "--repeats", "1"]
    cmd += ["--step-seconds", str(secs), "--senders", "1", "--max-loss", "100", "--max-p99", "100000000"]
    cmd += ["--no-plots", "-q", "--format", "json", "-o", str(res), "--gso" if gso else "--no-gso"]
    gen = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    cpu = cpu_seconds(pid) - cpu0
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    if kind == "udpecho":
        m = ECHOED.search(out or "")
        out_count = int(m[1]) if m else 0
    else:
        out_count = int(json.loads(out)["total"]["pkts_out"])
    step = json.loads(res.read_text())["steps"][0] if res.exists() else {}
    if not step:
        print(gen.stderr[-500:], file=sys.stderr)
    return {
        "cpu_s": cpu,
        "out": out_count,
        "cpu_us_per_out": cpu * 1e6 / out_count if out_count else None,
        "gen_sent_pps": step.get("achieved_pps"),
        "gen_recv_pps": step.get("received_pps"),
        "gen_loss_pct": step.get("loss_pct"),
        "gen_cpu_s": step.get("process_cpu_seconds"),
    }


# -- report ----------------------------------------------------------------------------------------------------
def med(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def ratios(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> str:
    rs = [x[key] / y[key] for x, y in zip(a, b, strict=False) if x.get(key) and y.get(key)]
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}-{max(rs):.2f})" if rs else "-"


def render(d: dict[str, Any]) -> str:
    o, dr, rl = d["oneway"], d["drain"], d["relay"]
    flood, gso, nogso = o["udpflood"], o["iovkit-gso"], o["iovkit-nogso"]
    fl = med(flood, "delivered")
    lines = [
        BEGIN,
        "## GSO/GRO, the relay's C data path, the one-way sender (issue 15)",
        "",
        f"Run {d['when']} on {d['machine']}; load average before the run {d['load_before']}, after "
        f"{d['load_after']} (the machine was shared with other jobs: compare the ratios, which come from runs side "
        f"by side in one alternating sequence, not the absolute rates). Command: `{d['command']}`. "
        f"{d['rounds']} rounds; receivers on CPU 0, senders on CPU 1; medians over rounds, per-round ratios as "
        "median (min-max).",
        "",
        "| comparison | iovkit | C reference | ratio | per-round ratios | target | met |",
        "|---|---:|---:|---:|---|---|---|",
    ]

    def row(name: str, a: float, b: float, per: str, target: str, ok: bool) -> None:
        lines.append(f"| {name} | {a:,.0f} | {b:,.0f} | {a / b:.2f} | {per} | {target} | {'yes' if ok else 'no'} |")

    g = med(gso, "delivered")
    n = med(nogso, "delivered")
    row(
        "one-way into udpsink, delivered/s: `bench --mode send --rate max --gso` vs udpflood",
        g,
        fl,
        ratios(gso, flood, "delivered"),
        ">= 2.5x",
        g / fl >= 2.5,
    )
    row("the same with `--no-gso`", n, fl, ratios(nogso, flood, "delivered"), ">= 0.95x", n / fl >= 0.95)
    ia, sp = dr["iovkit"], dr["sockperf"]
    a, b = med(ia, "drain_rate"), med(sp, "drain_rate")
    row(
        "reflector drain/s (GSO-filled queue): `relay --mode sockperf --gso` vs `sockperf server`",
        a,
        b,
        ratios(ia, sp, "drain_rate"),
        ">= 1.5x",
        a / b >= 1.5,
    )
    ri, ue = rl["iovkit"], rl["udpecho"]
    a, b = med(ri, "cpu_us_per_out"), med(ue, "cpu_us_per_out")
    met = "yes" if a / b <= 1.2 else "no"
    lines.append(
        f"| relay mode, CPU us per datagram out: `iovkit relay` (C path, GRO/GSO) vs udpecho (per echoed) | "
        f"{a:.3f} | {b:.3f} | {a / b:.2f} | {ratios(ri, ue, 'cpu_us_per_out')} | <= 1.2x | {met} |"
    )
    if rl.get("iovkit-nogso"):
        c = med(rl["iovkit-nogso"], "cpu_us_per_out")
        lines.append(
            f"| the relay with `--no-gso` (C path, no GRO/GSO; load sent without GSO) | {c:.3f} | {b:.3f} | "
            f"{c / b:.2f} | {ratios(rl['iovkit-nogso'], ue, 'cpu_us_per_out')} | (informational) | |"
        )
    gen = med(ri, "gen_sent_pps")
    per_round = ", ".join(f"{r['gen_sent_pps']:,.0f}" for r in ri if r.get("gen_sent_pps"))
    relay_nogso = rl.get("iovkit-nogso")
    without = f"{med(relay_nogso, 'cpu_us_per_out') * 0.3:.2f} cores." if relay_nogso else "not measured."
    lines += [
        "",
        f"Relay-mode load generator (one process, CPU 1, three-peer sessions, each datagram to two peers, GSO): "
        f"offered "
        f"{d['relay_rate']:,.0f}/s, sent {gen:,.0f}/s (median; per round "
        f"{per_round}), received "
        f"{med(ri, 'gen_recv_pps'):,.0f}/s of the forwards, loss {med(ri, 'gen_loss_pct'):.2f}% "
        f"(target: one process drives >= 200,000/s: {'met' if gen >= 200_000 else 'not met'}).",
        "",
        f"Cores one relay needs for the source's workload (150k in, 300k out): relay CPU per datagram out "
        f"{a:.3f} us x 300,000/s = {a * 0.3:.2f} cores (the CPU per datagram out includes the receive work of "
        f"the half datagram in behind each one), measured with GSO/GRO on loopback; without them {without}",
        "",
        "What the rows mean, and what they do not:",
        "- One-way: with GSO one send call hands the kernel 64 datagrams, so the per-call cost (the syscall, the "
        "socket lookup, the route) is paid once per 64; the loopback receive path still cuts them into 64 datagrams "
        "for udpsink, which has no GRO. Without GSO iovkit's sender is a sendmmsg loop like udpflood (numpy stamps "
        "a batch, the kernel sets the rate), so about 1x is the expectation and the per-round spread is the "
        "machine's noise.",
        "- Drain: the queue is filled with GSO sends, as a GSO sender (or a NIC's GRO) fills it. `sockperf server` "
        "has no GRO, so the kernel cuts each 64-datagram packet into 64 queue entries as it queues them; iovkit's "
        "reflector asks for GRO and takes each packet whole, 64 datagrams per buffer, applying the sockperf reply "
        "rule to each. Most of the ratio is that difference, not a faster loop: filled one datagram per packet "
        "(bench/relay's own drain rows) the same C loop drains 1.1x sockperf.",
        "- Relay CPU: the load generator sends with GSO, the relay receives with GRO and forwards consecutive "
        "datagrams to one member as one GSO send, so its CPU per datagram out is far below a reflector that "
        "receives and sends each datagram on its own (udpecho has no GRO/GSO). The `--no-gso` row is the C data "
        "path alone, one datagram per message on both sides: about udpecho's cost per datagram.",
        "",
        "Raw rows (every round): bench/gso/last-run.json. One-way rows: udpsink's delivered count over its "
        f"{d['seconds']} s window, opened {SETTLE} s after the sender started (start-up outside the window). "
        "Handed to the kernel "
        f"(medians): udpflood {med(flood, 'handed'):,.0f}/s, iovkit --gso {med(gso, 'handed'):,.0f}/s, "
        f"--no-gso {med(nogso, 'handed'):,.0f}/s.",
        END,
    ]
    return "\n".join(lines)


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--relay-rate", type=float, default=220_000)
    ap.add_argument("--drain-msgs", type=int, default=4096)
    ap.add_argument("--drain-reps", type=int, default=5)
    ap.add_argument("--no-relay-nogso", action="store_true", help="leave out the relay's --no-gso row")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    data: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "python3 bench/gso/run.py " + shlex.join(sys.argv[1:]),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "relay_rate": args.relay_rate,
        "load_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "oneway": {"udpflood": [], "iovkit-gso": [], "iovkit-nogso": []},
        "drain": {"iovkit": [], "sockperf": []},
        "relay": {"iovkit": [], "udpecho": [], "iovkit-nogso": []},
    }
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        bins = build(tmp)
        for r in range(args.rounds):
            order = ["udpflood", "iovkit-gso", "iovkit-nogso"]
            for kind in order if r % 2 == 0 else order[::-1]:
                data["oneway"][kind].append(oneway(kind, bins, args.seconds, tmp))
            for kind in ("iovkit", "sockperf") if r % 2 == 0 else ("sockperf", "iovkit"):
                data["drain"][kind].append(drain(kind, args.drain_msgs, args.drain_reps))
            kinds = ["iovkit", "udpecho"] + ([] if args.no_relay_nogso else ["iovkit-nogso"])
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                rate = args.relay_rate * 2 if kind == "udpecho" else args.relay_rate
                data["relay"][kind].append(
                    relay_cpu(kind.split("-")[0], rate, args.seconds, bins, tmp, gso=kind != "iovkit-nogso")
                )
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    data["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    section = render(data)
    print(section)
    if args.write:
        RAW.write_text(json.dumps(data, indent=1) + "\n")
        write_results(section)


if __name__ == "__main__":
    main()
