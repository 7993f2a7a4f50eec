"""Loadgen benchmark (not a test): iovkit's generator against sockperf and a C sendmmsg loop, on loopback.

    python3 bench/loadgen/run.py [--rounds 3] [--seconds 1] [--rate 10000] [--write]

Against one `sockperf server` on 127.0.0.1, in the same run and alternating the order each round:
- maximum send rate, 64-byte datagrams, no replies asked: iovkit (1 process, and 2 processes), sockperf's
  throughput client (`sockperf tp --mps=max`), and the kernel's own limit: sendmmsg_loop.c (batches of 64,
  compiled here with cc -O2);
- round-trip latency at a fixed rate: iovkit echo mode against `sockperf under-load --reply-every 1 --full-rtt`.
Medians over the rounds; ratios against the targets (>= 1.3x sockperf's rate, >= 90% of the C loop, latency
percentiles within 1.15x of sockperf's). With --write the loadgen section of bench/RESULTS.md is replaced.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from iovkit.traffic.loadgen import LoadSpec, run_load  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- loadgen:begin -->", "<!-- loadgen:end -->"
PAYLOAD = 64


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def build_c(tmp: Path) -> Path:
    exe = tmp / "sendmmsg_loop"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(HERE / "sendmmsg_loop.c")], check=True)
    return exe


def c_rate(exe: Path, port: int, seconds: float) -> float:
    out = subprocess.run([str(exe), "127.0.0.1", str(port), str(seconds), str(PAYLOAD), "64"], capture_output=True,
                         text=True, check=True).stdout
    return float(re.search(r"([\d.]+) msg/s", out).group(1))  # type: ignore[union-attr]


def sockperf_tp(port: int, seconds: float) -> float:
    out: Any = subprocess.run(["sockperf", "tp", "-i", "127.0.0.1", "-p", str(port), "-m", str(PAYLOAD), "-t",
                          str(max(1, round(seconds))), "--mps=max"], capture_output=True, text=True)
    out = out.stdout + out.stderr
    return float(re.search(r"Summary: Message Rate is (\d+) \[msg/sec\]", out).group(1))  # type: ignore[union-attr]


def iovkit_max(port: int, seconds: float, senders: int) -> float:
    m = run_load(LoadSpec(target=("127.0.0.1", port), rate=5e6, seconds=seconds, warmup=0.0, drain=0.0,
                          replies=False, flows=4, senders=senders, batch=64, payload=PAYLOAD))
    return m.sent / seconds


def sockperf_ul(port: int, seconds: float, rate: int) -> dict[str, float]:
    out: Any = subprocess.run(["sockperf", "ul", "-i", "127.0.0.1", "-p", str(port), "-m", str(PAYLOAD), "-t",
                          str(max(1, round(seconds))), "--mps", str(rate), "--reply-every", "1", "--full-rtt"],
                         capture_output=True, text=True)
    out = out.stdout + out.stderr
    pct = {float(p): float(v) for p, v in re.findall(r"---> percentile\s+([\d.]+) =\s+([\d.]+)", out)}
    return {"p50": pct[50.0], "p99": pct[99.0], "p99.9": pct[99.9]}


def iovkit_latency(port: int, seconds: float, rate: int, spin: bool) -> dict[str, float]:
    m = run_load(LoadSpec(target=("127.0.0.1", port), rate=rate, seconds=seconds, warmup=0.4, drain=0.2,
                          flows=1, payload=PAYLOAD, spin=spin))
    return {k: float(m.latency_us[k] or 0.0) for k in ("p50", "p99", "p99.9")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--write", action="store_true", help="write the loadgen section of bench/RESULTS.md")
    args = ap.parse_args()
    if shutil.which("sockperf") is None or shutil.which("cc") is None:
        print("needs sockperf and cc", file=sys.stderr)
        return 2
    port = free_port()
    server = subprocess.Popen(["sockperf", "server", "-i", "127.0.0.1", "-p", str(port), "-m", "1472"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rates: dict[str, list[float]] = {"c": [], "sockperf": [], "iovkit1": [], "iovkit2": []}
    lat: dict[str, list[dict[str, float]]] = {"sockperf": [], "iovkit": [], "iovkit-spin": []}
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            exe = build_c(Path(tmp))
            for r in range(args.rounds):
                tests: list[tuple[str, Callable[[], float]]] = [
                    ("c", lambda: c_rate(exe, port, args.seconds)),
                    ("sockperf", lambda: sockperf_tp(port, args.seconds)),
                    ("iovkit1", lambda: iovkit_max(port, args.seconds, 1)),
                    ("iovkit2", lambda: iovkit_max(port, args.seconds, 2)),
                ]
                lats: list[tuple[str, Callable[[], dict[str, float]]]] = [
                        ("sockperf", lambda: sockperf_ul(port, args.seconds, args.rate)),
                        ("iovkit", lambda: iovkit_latency(port, args.seconds, args.rate, False)),
                        ("iovkit-spin", lambda: iovkit_latency(port, args.seconds, args.rate, True))]
                if r % 2:
                    tests.reverse()
                    lats.reverse()
                for name, fn in tests:
                    rates[name].append(fn())
                    print(f"round {r + 1} {name:9} {rates[name][-1]:>12,.0f} msg/s", flush=True)
                for lname, lfn in lats:
                    lat[lname].append(lfn())
                    print(f"round {r + 1} {lname:11} latency {lat[lname][-1]}", flush=True)
    finally:
        server.terminate()
        server.wait(5)
    med = {k: statistics.median(v) for k, v in rates.items()}
    lmed = {k: {p: statistics.median(d[p] for d in v) for p in ("p50", "p99", "p99.9")} for k, v in lat.items()}
    text = render(args, med, lmed, rates)
    print(text)
    if args.write:
        write_section(text)
    return 0


def render(args: argparse.Namespace, med: dict[str, float], lmed: dict[str, dict[str, float]],
           raw: dict[str, list[float]]) -> str:
    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    r_sp = med["iovkit1"] / med["sockperf"]
    r_c = med["iovkit1"] / med["c"]
    r_sp2 = med["iovkit2"] / med["sockperf"]
    r_c2 = med["iovkit2"] / med["c"]
    lat_ratio = {p: lmed["iovkit"][p] / lmed["sockperf"][p] for p in ("p50", "p99", "p99.9")}
    spin_ratio = {p: lmed["iovkit-spin"][p] / lmed["sockperf"][p] for p in ("p50", "p99", "p99.9")}
    lines = [
        BEGIN,
        "## loadgen: iovkit's generator vs sockperf and a C sendmmsg loop (loopback)",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {platform.node()} "
        f"({_cpu()}, {os.cpu_count()} CPUs, kernel {platform.release()}, Python {platform.python_version()}); "
        "the machine was shared with other jobs, so absolute numbers are noisy.",
        f"Command: `python3 bench/loadgen/run.py --rounds {args.rounds} --seconds {args.seconds} --rate {args.rate} "
        "--write`; one `sockperf server -i 127.0.0.1 -m 1472`; 64-byte payloads; tests alternate order each round; "
        "medians over rounds.",
        "",
        "| max send rate (no replies) | msg/s (median) | all rounds |",
        "|---|---:|---|",
        f"| C sendmmsg loop, batch 64 (`sendmmsg_loop.c`) | {med['c']:,.0f} | {_all(raw['c'])} |",
        f"| `sockperf tp --mps=max` | {med['sockperf']:,.0f} | {_all(raw['sockperf'])} |",
        f"| iovkit, 1 process, 4 flows, batch 64 | {med['iovkit1']:,.0f} | {_all(raw['iovkit1'])} |",
        f"| iovkit, 2 processes | {med['iovkit2']:,.0f} | {_all(raw['iovkit2'])} |",
        "",
        f"| round-trip latency at {args.rate:,}/s, us | p50 | p99 | p99.9 |",
        "|---|---:|---:|---:|",
        f"| `sockperf ul --reply-every 1 --full-rtt` | {lmed['sockperf']['p50']:.1f} | {lmed['sockperf']['p99']:.1f} "
        f"| {lmed['sockperf']['p99.9']:.1f} |",
        f"| iovkit echo (from the scheduled send time) | {lmed['iovkit']['p50']:.1f} | {lmed['iovkit']['p99']:.1f} "
        f"| {lmed['iovkit']['p99.9']:.1f} |",
        f"| iovkit echo, `spin=True` (busy-polls sub-ms waits, like sockperf) | {lmed['iovkit-spin']['p50']:.1f} | "
        f"{lmed['iovkit-spin']['p99']:.1f} | {lmed['iovkit-spin']['p99.9']:.1f} |",
        f"| ratio iovkit / sockperf | {lat_ratio['p50']:.2f} | {lat_ratio['p99']:.2f} | {lat_ratio['p99.9']:.2f} |",
        f"| ratio iovkit spin / sockperf | {spin_ratio['p50']:.2f} | {spin_ratio['p99']:.2f} | "
        f"{spin_ratio['p99.9']:.2f} |",
        "",
        "Targets:",
        f"- rate >= 1.3x sockperf: 1 process {r_sp:.2f}x ({ok(r_sp >= 1.3)}); 2 processes {r_sp2:.2f}x "
        f"({ok(r_sp2 >= 1.3)})",
        f"- rate >= 90% of the C loop: 1 process {100 * r_c:.0f}% ({ok(r_c >= 0.9)}); 2 processes {100 * r_c2:.0f}% "
        f"({ok(r_c2 >= 0.9)}; the C loop uses one core)",
        f"- latency within 1.15x of sockperf: p50 {lat_ratio['p50']:.2f}, p99 {lat_ratio['p99']:.2f}, p99.9 "
        f"{lat_ratio['p99.9']:.2f} ({ok(max(lat_ratio.values()) <= 1.15)}); spinning: p50 {spin_ratio['p50']:.2f}, "
        f"p99 {spin_ratio['p99']:.2f}, p99.9 {spin_ratio['p99.9']:.2f} ({ok(max(spin_ratio.values()) <= 1.15)})",
        "",
        "Notes: iovkit counts latency from the *scheduled* send time (no coordinated omission); sockperf from the "
        "actual send time, and it stamps in user space while iovkit uses kernel receive timestamps where given. "
        "On loopback every send also runs the receive path in the sender's context, so the C loop's rate is the "
        "kernel's loopback limit on this box.",
        END,
    ]
    return "\n".join(lines)


def _all(vals: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in vals)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(text: str) -> None:
    """Replace only the loadgen section (between its markers); keep every other section."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + text + tail
    else:
        new = current.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
