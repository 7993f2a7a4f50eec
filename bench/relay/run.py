#!/usr/bin/env python3
"""Benchmark (not a test): the sockperf client against `iovkit relay --mode sockperf` and `sockperf server`.

Everything runs on loopback. The servers alternate within each round (A/B, then B/A) so that drift on a shared
machine hits both. For each server and message size (64 and 512 bytes) it runs:
  * ping-pong: p50/p99/p99.9 latency (sockperf reports RTT/2, in usec);
  * under-load: the same percentiles at --mps (default 10,000) with a reply asked every --reply-every (default 10)
    messages;
  * max rate: the time a stopped server takes to drain a full receive queue (see drain());
  * throughput: full-speed sockperf clients, the server's received count and its CPU time.
Informational latency rows (no targets): the same iovkit server with its reflector loops in Python
(IOVKIT_FASTPATH=0, --no-python-loop leaves it out) and with --busy-poll (0 leaves it out).
The numbers are medians over the rounds. Ratios are iovkit / sockperf server, and the targets are: rate >= 1.0,
p50 and p99 <= 1.1. Results go to bench/RESULTS.md between the relay markers, and the raw data to
bench/relay/last-run.json (--no-write: neither).

Usage: python3 bench/relay/run.py [--rounds 12] [--rate-rounds 5] [--sizes 64,512] [--server-cpu 0 --client-cpu 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- relay:begin -->", "<!-- relay:end -->"
PCT = re.compile(r"---> percentile\s+([\d.]+) =\s+([\d.]+)")
VALID = re.compile(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)")
TP_SENT = re.compile(r"Total of (\d+) messages sent in ([\d.]+) sec")
SP_TOTAL = re.compile(r"Total (\d+) messages received and handled")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taskset(cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu] if cpu else []


class Server:
    """One server process on loopback; stop() returns how many messages it received."""

    def __init__(
        self, kind: str, port: int, cpu: str | None, rcvbuf: int | None = None, busy_poll: float = 0.0
    ) -> None:
        self.kind, self.port = kind, port
        if kind.startswith("iovkit"):
            self.cmd = [
                sys.executable,
                "-m",
                "iovkit",
                "relay",
                "--mode",
                "sockperf",
                "--listen",
                f"127.0.0.1:{port}",
                "--log-interval",
                "0",
                "--format",
                "json",
                "--rcvbuf",
                str(rcvbuf or "208k"),
            ]
            if cpu:
                self.cmd += ["--pin", cpu]
            if kind == "iovkit-busy":
                self.cmd += ["--busy-poll", str(busy_poll)]
        else:
            self.cmd = [*taskset(cpu), "sockperf", "server", "-i", "127.0.0.1", "-p", str(port)]
            if rcvbuf:
                self.cmd += ["--buffer-size", str(rcvbuf)]
        # iovkit-py: the reflector loops in Python instead of C, for comparison (informational)
        env = {**os.environ, "IOVKIT_FASTPATH": "0" if kind == "iovkit-py" else "1"}
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        self.loop = ""
        if kind.startswith("iovkit"):
            assert self.proc.stderr is not None
            start = self.proc.stderr.readline()  # "iovkit relay: sockperf on ..., reflector loops in C"
            self.loop = start.rstrip().rsplit(" ", 1)[-1]
        time.sleep(0.3)

    def worker_pid(self) -> int:
        """The process that reads the socket: iovkit's single worker, or sockperf itself."""
        if self.kind.startswith("iovkit"):
            import psutil

            kids = psutil.Process(self.proc.pid).children()
            return kids[0].pid if kids else self.proc.pid
        return self.proc.pid

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM if self.kind.startswith("iovkit") else signal.SIGINT)
        out, err = self.proc.communicate(timeout=15)
        if self.kind.startswith("iovkit"):
            return int(json.loads(out)["total"]["pkts_in"])
        m = SP_TOTAL.search(out + err)
        return int(m[1]) if m else 0


def client_cmd(
    mode: str, port: int, size: int, duration: float, cpu: str | None, args: argparse.Namespace
) -> list[str]:
    secs = str(int(duration)) if float(duration).is_integer() else str(duration)
    cmd = [*taskset(cpu), "sockperf", mode, "-i", "127.0.0.1", "-p", str(port), "-t", secs, "-m", str(size)]
    if mode == "under-load":
        cmd += ["--mps", str(args.mps), "--reply-every", str(args.reply_every)]
    return cmd


def client(
    mode: str, port: int, size: int, duration: float, cpu: str | None, args: argparse.Namespace
) -> tuple[list[str], str]:
    cmd = client_cmd(mode, port, size, duration, cpu, args)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 5 + 30)
    return cmd, run.stdout + run.stderr


def udp_drops(port: int) -> int:
    """The kernel's drop count (receive queue full) summed over the UDP sockets bound to 127.0.0.1:port."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1].upper() == f"0100007F:{port:04X}":
            total += int(f[-1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (the iovkit relay's workers)."""
    import psutil

    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def throughput(kind: str, size: int, args: argparse.Namespace, commands: dict[str, str]) -> dict[str, Any]:
    """A fresh server, `--tp-clients` sockperf throughput clients at full speed at once: offered and received
    rates, the kernel's drops at the server socket and the server's CPU time. Drops > 0 mean the server, not the
    clients, set the received rate: that is its ceiling."""
    port = free_port()
    srv = Server(kind, port, args.server_cpu)
    try:
        cpu0 = cpu_seconds(srv.proc.pid)
        cmds = [
            client_cmd("throughput", port, size, args.duration, args.client_cpu, args) for _ in range(args.tp_clients)
        ]
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in cmds]
        texts = [p.communicate(timeout=args.duration * 5 + 30)[0] for p in procs]
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        drops = udp_drops(port)
        commands["client throughput"] = f"{args.tp_clients} at once: " + shlex.join(cmds[0]).replace(
            str(port), "PORT"
        ).replace(f"-m {size}", "-m SIZE")
    finally:
        got = srv.stop()
    sent, secs = 0, args.duration
    for text in texts:
        m = TP_SENT.search(text)
        if m:
            sent += int(m[1])
            secs = max(float(m[2]), secs)
    return {
        "client_sent_rate": sent / secs,
        "server_received": got,
        "server_rate": got / secs,
        "drops": drops,
        "drop_pct": 100.0 * drops / sent if sent else 0.0,
        "server_cpu_s": cpu,
        "msgs_per_cpu_s": got / cpu if cpu > 0 else 0.0,
    }


def latency(text: str) -> dict[str, float]:
    pct = {float(p): float(v) for p, v in PCT.findall(text)}
    valid = VALID.search(text)
    return {
        "p50": pct.get(50.0, float("nan")),
        "p99": pct.get(99.0, float("nan")),
        "p99.9": pct.get(99.9, float("nan")),
        "sent": int(valid[2]) if valid else 0,
        "received": int(valid[3]) if valid else 0,
    }


def rx_queue(port: int) -> int:
    """Bytes waiting in the receive queues of the UDP sockets bound to 127.0.0.1:port."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1].upper() == f"0100007F:{port:04X}":
            total += int(f[4].split(":")[1], 16)
    return total


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")


def drain(kind: str, size: int, args: argparse.Namespace, commands: dict[str, str]) -> dict[str, Any]:
    """The server's own ceiling, free of any client's speed: stop the server (SIGSTOP), fill its receive queue
    with sockperf throughput-type messages (no reply asked), let it run again (SIGCONT) and time how long it
    takes to empty the queue, watching /proc/net/udp from the client CPU. Repeated `--drain-reps` times; the
    rate is messages queued / time to empty. Both servers get the same 4 MiB receive buffer."""
    port = free_port()
    srv = Server(kind, port, args.server_cpu, rcvbuf=4 << 20)
    commands[f"{kind} server (drain)"] = shlex.join(srv.cmd).replace(str(port), "PORT")
    rates: list[float] = []
    queued_all: list[int] = []
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(("127.0.0.1", port))
    msg = bytearray(size)
    msg[8:14] = bytes([0, 1]) + size.to_bytes(4, "big")  # flags: client, no pong request; length
    old_cpus = os.sched_getaffinity(0)
    if args.client_cpu:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    try:
        pid = srv.worker_pid()
        for rep in range(args.drain_reps):
            os.kill(pid, signal.SIGSTOP)
            while not stopped(pid):
                time.sleep(0.001)
            d0 = udp_drops(port)
            for seq in range(args.drain_msgs):
                msg[0:8] = (rep * args.drain_msgs + seq).to_bytes(8, "big")
                tx.send(msg)
            queued = args.drain_msgs - (udp_drops(port) - d0)
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGCONT)
            while rx_queue(port):
                pass
            secs = time.perf_counter() - t0
            rates.append(queued / secs)
            queued_all.append(queued)
            time.sleep(0.05)
    finally:
        os.sched_setaffinity(0, old_cpus)
        tx.close()
        srv.stop()
    return {"drain_rate": statistics.median(rates), "drain_rates": rates, "queued": queued_all}


def run_size(
    size: int, args: argparse.Namespace, commands: dict[str, str], loops: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """All runs for one message size: latency against both servers (kept running, alternating client runs),
    then throughput against fresh servers (so each one's received count covers exactly one run)."""
    res: dict[str, list[dict[str, Any]]] = {"iovkit": [], "sockperf": []}
    if args.busy_poll > 0:
        res["iovkit-busy"] = []  # latency only: an informational row, not one of the targets
    if args.python_loop:
        res["iovkit-py"] = []  # latency only: the same server with its reflector loops in Python
    ports = {k: free_port() for k in res}
    servers = {k: Server(k, ports[k], args.server_cpu, busy_poll=args.busy_poll) for k in res}
    for k, srv in servers.items():
        prefix = "IOVKIT_FASTPATH=0 " if k == "iovkit-py" else ""
        commands[f"{k} server"] = prefix + shlex.join(srv.cmd).replace(str(ports[k]), "PORT")
        if srv.loop:
            loops[k] = srv.loop
    try:
        for r in range(args.rounds):
            order = tuple(res) if r % 2 == 0 else tuple(reversed(res))
            rows: dict[str, dict[str, Any]] = {k: {} for k in order}
            for mode in ("ping-pong", "under-load"):
                for k in order:
                    cmd, text = client(mode, ports[k], size, args.duration, args.client_cpu, args)
                    commands[f"client {mode}"] = (
                        shlex.join(cmd).replace(str(ports[k]), "PORT").replace(f"-m {size}", "-m SIZE")
                    )
                    rows[k][mode] = latency(text)
            for k in order:
                res[k].append(rows[k])
    finally:
        for srv in servers.values():
            srv.stop()
    for r in range(args.rounds):
        order = ("iovkit", "sockperf") if r % 2 == 0 else ("sockperf", "iovkit")
        if r < args.rate_rounds:
            for k in order:
                res[k][r]["throughput"] = throughput(k, size, args, commands)
                res[k][r]["drain"] = drain(k, size, args, commands)
        for k in res:
            x = res[k][r]
            pp, ul = x["ping-pong"], x["under-load"]
            line = (
                f"round {r + 1} {size:4d} B {k:11s} pp p50 {pp['p50']:.2f} p99 {pp['p99']:.2f}  "
                f"ul p50 {ul['p50']:.2f} p99 {ul['p99']:.2f}"
            )
            if "throughput" in x:
                tp, dr = x["throughput"], x["drain"]
                line += (
                    f"  rate {tp['server_rate']:,.0f}/s (offered {tp['client_sent_rate']:,.0f}/s, drops "
                    f"{tp['drop_pct']:.0f} %, {tp['msgs_per_cpu_s']:,.0f} msg/CPU-s)  drain "
                    f"{dr['drain_rate']:,.0f}/s ({dr['queued'][0]} queued)"
                )
            print(line, file=sys.stderr, flush=True)
    return res


def median(rows: list[dict[str, Any]], *path: str) -> float:
    """The median of one measurement over the rounds that have it (rate runs may cover fewer rounds)."""
    vals = []
    for r in rows:
        v: Any = r
        for k in path:
            if k not in v:
                break
            v = v[k]
        else:
            vals.append(float(v))
    if not vals:
        raise KeyError(path[0])
    return statistics.median(vals)


def render(data: dict[str, Any]) -> str:
    out = [BEGIN, "## Relay: `iovkit relay --mode sockperf` vs `sockperf server` (loopback)", ""]
    out.append(
        f"Run {data['date']} on {data['machine']}; {data['rounds']} rounds alternating the servers, "
        f"{data['duration']} s per client run, server on CPU {data['server_cpu'] or 'any'}, client on CPU "
        f"{data['client_cpu'] or 'any'}; throughput and drain in the first "
        f"{data.get('rate_rounds', data['rounds'])} rounds. Medians over rounds; the ratio column divides the "
        "two medians, the next column gives the median and range of the ratios of each round's adjacent A/B "
        "pair. Latency is sockperf's (RTT/2, usec). "
        f"The iovkit relay's reflector loops ran in {data.get('loops', {}).get('iovkit', 'Python')}"
        f"{'; the rows marked Python loops ran them in Python' if data.get('python_loop') else ''}. "
        "**Max rate** is each server's own ceiling: the server is stopped (SIGSTOP), its receive queue "
        "(4 MiB buffer, the same for both) is filled with sockperf throughput-type messages, and the time it "
        "takes to empty the queue after SIGCONT is timed from the client CPU "
        f"({data.get('drain_reps', 5)} fills per round, median). A client cannot measure it here: "
        f"{data.get('tp_clients', 1)} `sockperf throughput` clients at full speed (next rows) fill one core and "
        "both servers keep up with them (drops about 1 %); the CPU time each server spent on that load is "
        "the last rate row. Under-load asks for a reply every "
        f"{data.get('reply_every', 100)}th message at {data.get('mps', 10000):,} msg/s (sockperf's default, "
        "every 100th, leaves about 50 samples per 1 s run: too few for a p99)."
    )
    out += [
        "",
        "| size | metric | iovkit relay | sockperf server | ratio (iovkit/sockperf) "
        "| per-round ratios: median (min-max) | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for size in data["sizes"]:
        rows = data["results"][str(size)]
        specs: list[tuple[Any, ...]] = [
            ("max rate: drains a full queue (msg/s)", ("drain", "drain_rate"), ">=", 1.0),
            ("received from full-speed clients (msg/s)", ("throughput", "server_rate"), None, None),
            ("offered by the clients (msg/s)", ("throughput", "client_sent_rate"), None, None),
            ("dropped at the server socket (%)", ("throughput", "drop_pct"), None, None),
            ("received per server CPU-second", ("throughput", "msgs_per_cpu_s"), None, None),
        ]
        for mode in ("ping-pong", "under-load"):
            specs += [
                (f"{mode} p50 (us)", (mode, "p50"), "<=", 1.1),
                (f"{mode} p99 (us)", (mode, "p99"), "<=", 1.1),
                (f"{mode} p99.9 (us)", (mode, "p99.9"), None, None),
            ]
        if rows.get("iovkit-py"):
            for mode in ("ping-pong", "under-load"):
                specs += [
                    (
                        f"{mode} {q} (us), iovkit with its Python loops (IOVKIT_FASTPATH=0)",
                        (mode, q),
                        None,
                        None,
                        "iovkit-py",
                    )
                    for q in ("p50", "p99")
                ]
        if rows.get("iovkit-busy"):
            for mode in ("ping-pong", "under-load"):
                specs += [
                    (
                        f"{mode} {q} (us), iovkit --busy-poll {data.get('busy_poll', 200):g}",
                        (mode, q),
                        None,
                        None,
                        "iovkit-busy",
                    )
                    for q in ("p50", "p99")
                ]
        for spec in specs:
            label, path, op, target = spec[:4]
            who = spec[4] if len(spec) > 4 else "iovkit"
            try:
                a, b = median(rows[who], *path), median(rows["sockperf"], *path)
            except KeyError:  # a last-run.json from before the field existed
                continue
            ratio = a / b if b else float("nan")
            per = []
            for x, y in zip(rows[who], rows["sockperf"], strict=False):
                if path[0] in x and path[0] in y and y[path[0]][path[1]]:
                    per.append(x[path[0]][path[1]] / y[path[0]][path[1]])
            spread = f"{statistics.median(per):.2f} ({min(per):.2f}-{max(per):.2f})" if per else ""
            met = ""
            if op is not None and target is not None:
                met = "yes" if (ratio >= target if op == ">=" else ratio <= target) else "no"
                verdicts.append(met == "yes")
            out.append(
                f"| {size} B | {label} | {a:,.1f} | {b:,.1f} | {ratio:.2f} | {spread} | "
                f"{'' if op is None else f'{op} {target}'} | {met} |"
            )
    out += [
        "",
        f"Targets met: {sum(verdicts)} of {len(verdicts)}. {data.get('note', '')}".rstrip(),
        "",
        "Command lines (PORT and SIZE filled in per run):",
        "",
    ]
    out += [f"- {k}: `{v}`" for k, v in data["commands"].items()]
    out += ["", f"Reproduce: `{data['argv']}` (raw numbers: bench/relay/last-run.json).", END]
    return "\n".join(out)


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node()}, {cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=12, help="latency rounds (the noisy part: many short A/B pairs)")
    ap.add_argument("--rate-rounds", type=int, default=5, help="of those, how many also run throughput and drain")
    ap.add_argument(
        "--busy-poll",
        type=float,
        default=200.0,
        help="also run `iovkit relay --busy-poll US` in the latency runs (informational; 0: not)",
    )
    ap.add_argument(
        "--python-loop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the iovkit relay with its reflector loops in Python (informational rows)",
    )
    ap.add_argument("--sizes", default="64,512")
    ap.add_argument("--mps", type=int, default=10_000)
    ap.add_argument(
        "--reply-every",
        type=int,
        default=10,
        help="under-load: every Nth message asks for a reply (sockperf's default 100 leaves ~50 "
        "samples in a 1 s run, too few for a p99)",
    )
    ap.add_argument("--drain-reps", type=int, default=5, help="fill-and-drain repetitions per server and round")
    ap.add_argument("--drain-msgs", type=int, default=12_000, help="messages sent to the stopped server per fill")
    ap.add_argument("--tp-clients", type=int, default=2, help="sockperf throughput clients run at once")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument(
        "--no-write",
        action="store_true",
        help="a trial: print the section, leave RESULTS.md and last-run.json as they are",
    )
    ap.add_argument("--note", default="", help="A sentence added after the verdict (e.g. about machine noise)")
    ap.add_argument("--render-only", action="store_true", help="Re-render last-run.json into RESULTS.md")
    args = ap.parse_args()
    if args.render_only:
        data = json.loads((ROOT / "bench" / "relay" / "last-run.json").read_text())
        data["note"] = args.note or data.get("note", "")
        section = render(data)
        print(section)
        if not args.no_write:
            write_results(section)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    commands: dict[str, str] = {}
    loops: dict[str, str] = {}
    results = {str(size): run_size(size, args, commands, loops) for size in sizes}
    data = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "rounds": args.rounds,
        "duration": args.duration,
        "sizes": sizes,
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "tp_clients": args.tp_clients,
        "drain_reps": args.drain_reps,
        "reply_every": args.reply_every,
        "busy_poll": args.busy_poll,
        "rate_rounds": args.rate_rounds,
        "mps": args.mps,
        "commands": commands,
        "results": results,
        "loops": loops,
        "python_loop": args.python_loop,
        "argv": shlex.join(["python3", "bench/relay/run.py", *sys.argv[1:]]),
        "note": args.note,
    }
    if not args.no_write:
        (ROOT / "bench" / "relay" / "last-run.json").write_text(json.dumps(data, indent=2))
    section = render(data)
    print(section)
    if not args.no_write:
        write_results(section)


if __name__ == "__main__":
    main()
