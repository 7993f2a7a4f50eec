"""How long `iovkit collect` takes on this machine (the issue asks for under 1 s).

Measures the whole command as a user runs it (a fresh `python -m iovkit collect` process, imports included)
and the Linux collector alone (in-process, warm), then writes the numbers under "## collect" in
bench/RESULTS.md, leaving the other sections alone.

    python3 bench/collect_time.py [--runs N] [--no-write]
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def time_cli(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "iovkit", "collect", "-q", "-o", "/dev/null"], check=True)
        out.append(time.perf_counter() - t0)
    return out


def time_collector(runs: int) -> list[float]:
    from iovkit.sources.linux import collect

    collect()  # warm: imports and page cache
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        collect()
        out.append(time.perf_counter() - t0)
    return out


def section(cli: list[float], lib: list[float]) -> str:
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"  # noqa: E731
    return (
        "## collect\n\n"
        f"`bench/collect_time.py` on {platform.node()} ({platform.machine()}, kernel {platform.release()}, "
        f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d')}; the machine is shared, so these are "
        "upper bounds.\n\n"
        "| what | runs | time |\n|---|---|---|\n"
        f"| `iovkit collect -q -o /dev/null` (new process, imports included) | {len(cli)} | {ms(cli)} |\n"
        f"| `iovkit.sources.linux.collect()` in-process (warm) | {len(lib)} | {ms(lib)} |\n"
    )


def write(text: str) -> None:
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## collect\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    text = section(time_cli(args.runs), time_collector(args.runs * 4))
    print(text)
    if not args.no_write:
        write(text)


if __name__ == "__main__":
    main()
